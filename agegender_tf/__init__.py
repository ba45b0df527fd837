"""agegender-tf: a Keras 3 / TensorFlow replication kit for age and gender classification.

Importing the package loads no TensorFlow: the data layer, the presets and the command line's
help stay fast. Saved ``.keras`` models need the kit's custom layers registered with Keras, which
``import agegender_tf.models`` does::

    import keras
    import agegender_tf.models  # registers the custom layers
    model = keras.saving.load_model("best.keras")

Importing the package changes no environment variable. ``import_tensorflow_quietly()`` imports
TensorFlow without its C++ start-up chatter (oneDNN, CUDA probing); the command line calls it.
"""

import os
import sys
from contextlib import contextmanager

__version__ = "0.1.0"
__all__ = ["__version__", "import_tensorflow_quietly"]


@contextmanager
def stderr_silenced():
    """Point stderr's file descriptor at ``/dev/null`` for the block: C++ libraries (TensorFlow, LiteRT)
    write their start-up lines there, below Python's ``sys.stderr``."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up logs (oneDNN, CUDA probing) kept off the terminal.

    TensorFlow 2.21 writes them through absl before ``absl::InitializeLog``, which ignores
    ``TF_CPP_MIN_LOG_LEVEL``, so stderr's file descriptor points at ``/dev/null`` for the import and
    the device probe.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_silenced():
        import tensorflow

        # Probing for accelerators prints "failed call to cuInit" on a machine without one; probe
        # here, silenced, rather than at the first operation. GPUs and TPUs are still found.
        tensorflow.config.list_physical_devices()
    from absl import logging as absl_logging  # installed with TensorFlow

    absl_logging.set_verbosity(absl_logging.ERROR)

