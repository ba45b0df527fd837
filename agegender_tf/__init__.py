"""agegender-tf: a Keras 3 / TensorFlow replication kit for age and gender classification.

Importing the package registers its custom Keras layers, so saved ``.keras`` models load back
with ``keras.saving.load_model`` after ``import agegender_tf``.
"""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides the kit's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


def _register_custom_objects():
    # Importing the models package registers every custom layer with Keras. Keras/TensorFlow are
    # heavy, so a missing install should not break the pure-data parts (readers, CLI help).
    try:
        from agegender_tf import models  # noqa: F401
    except ImportError as exc:  # pragma: no cover - only without TensorFlow/Keras installed
        if "keras" not in str(exc) and "tensorflow" not in str(exc):
            raise


_register_custom_objects()
