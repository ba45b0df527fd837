"""Input pipelines: one augmentation spec (``spec.py``), two backends (``generator.py``:
ImageDataGenerator; ``tfdata.py``: tf.data), shared label encoding (``targets.py``), value mapping
(``preprocess.py``), up-front file checks (``checks.py``), offline class balancing
(``balance.py``) and test-time crops (``tta.py``). Submodules import TensorFlow; this one does not.
The papers' augmentation specs live beside their presets (``agegender_tf.experiments.presets``).
"""

from agegender_tf.pipelines.spec import AugmentSpec

__all__ = ["AugmentSpec"]
