"""Model builders of the five papers, registered by name (timm-style registry, keras-hub-style builders).

>>> from agegender_tf import models
>>> models.available()
['cnn_lstm', 'cnn_rnn', 'cnn_rnn_ensemble', 'dcnn', 'gra_net', 'levi_hassner', 'transfer']
>>> model = models.build("levi_hassner", num_classes=8)
>>> models.preprocessing("levi_hassner")["input_size"]
(227, 227, 3)

Each builder is a function whose keyword arguments are the architecture's settings (the paper's
values as defaults) and returns a plain functional ``keras.Model``. The registry
(``models/registry.py``) keeps beside each builder its preprocessing facts (``input_size`` from
the builder's ``input_shape``, ``mode`` in ``spec.PREPROCESS_MODES``, for a resize-then-crop model
``resize_to``/``crop_size``, ``paper``) and its task signature (``task_arguments``); pipelines apply
the facts, the models take float32 images already preprocessed. Importing this package registers
the custom layers and every builder.
"""

from __future__ import annotations

# Importing a builder module registers its builder (builders import ``register`` from ``registry``,
# not from here, so there is no import cycle); importing ``layers`` registers the custom layers.
from agegender_tf.models import cnn_lstm, cnn_rnn, dcnn, gra_net, layers, levi_hassner, transfer  # noqa: F401
from agegender_tf.models.cnn_rnn import ensemble  # noqa: F401
from agegender_tf.models.registry import (  # noqa: F401
    available,
    build,
    entry,
    get_builder,
    preprocessing,
    register,
    report_name,
    task_arguments,
    variant_args,
)
from agegender_tf.models.transfer import PretrainedWeightsUnavailable  # noqa: F401
from agegender_tf.pipelines.spec import PREPROCESS_MODES as PREPROCESSING_MODES  # noqa: F401
