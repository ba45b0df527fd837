"""agegender-tf: a Keras 3 / TensorFlow replication kit for age and gender classification.

Importing the package loads no TensorFlow: the data layer, the presets and the command line's
help stay fast. Saved ``.keras`` models need the kit's custom layers registered with Keras, which
``import agegender_tf.models`` does::

    import keras
    import agegender_tf.models  # registers the custom layers
    model = keras.saving.load_model("best.keras")
"""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides the kit's own output; this only
# sets a default before any TensorFlow import (the command line also silences what it ignores).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
