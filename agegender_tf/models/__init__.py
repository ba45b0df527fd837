"""Model builders of the five papers, registered by name (timm-style registry, keras-hub-style builders).

>>> from agegender_tf import models
>>> models.available()
['cnn_lstm', 'cnn_rnn', 'cnn_rnn_ensemble', 'dcnn', 'gra_net', 'levi_hassner', 'transfer']
>>> model = models.build("levi_hassner", num_classes=8)
>>> models.preprocessing("levi_hassner")["input_size"]
(227, 227, 3)

Each builder is a function whose keyword arguments are the architecture's settings (the paper's
values as defaults) and returns a plain functional ``keras.Model``. Its preprocessing facts
(``input_size`` (H, W, 3), ``mode`` in ``rescale | vgg16 | resnet50 | standardize``, optional
``resize_to``/``crop``, ``paper``) are kept beside it with ``register``; pipelines apply them, the
models take float32 images already preprocessed. Importing this package registers the custom layers.
"""

from __future__ import annotations

from typing import Any, Callable

from agegender_tf.models import layers  # noqa: F401  (registers the custom layers with Keras)

PREPROCESSING_MODES = ("rescale", "vgg16", "resnet50", "standardize")

_BUILDERS: dict[str, Callable[..., Any]] = {}
_PREPROCESSING: dict[str, dict | Callable[..., dict]] = {}


def register(name: str, preprocessing: dict | Callable[..., dict]):
    """Decorator registering a builder under ``name`` with its preprocessing facts.

    ``preprocessing`` is a dict, or a function of the builder's keyword arguments returning one
    (e.g. ``transfer``'s mode depends on its ``backbone``).
    """

    def decorator(builder):
        if name in _BUILDERS:
            raise ValueError(f"model name {name!r} is already registered")
        if isinstance(preprocessing, dict):
            _check_preprocessing(name, preprocessing)
        _BUILDERS[name] = builder
        _PREPROCESSING[name] = preprocessing
        return builder

    return decorator


def _check_preprocessing(name: str, facts: dict) -> dict:
    if facts.get("mode") not in PREPROCESSING_MODES:
        raise ValueError(f"{name}: preprocessing mode must be one of {PREPROCESSING_MODES}, got {facts.get('mode')!r}")
    size = facts.get("input_size")
    if size is None or len(size) != 3 or size[2] != 3:
        raise ValueError(f"{name}: preprocessing input_size must be (H, W, 3), got {size!r}")
    return facts


def available() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_BUILDERS)


def _lookup(name: str):
    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _BUILDERS[name]


def build(name: str, /, **kwargs):
    """Build the registered model ``name`` with the given architecture settings (which may include ``name=``)."""
    return _lookup(name)(**kwargs)


def preprocessing(name: str, /, **kwargs) -> dict:
    """Preprocessing facts of model ``name`` (for the settings ``kwargs`` it would be built with).

    An ``input_shape`` in ``kwargs`` overrides the default ``input_size``.
    """
    _lookup(name)
    facts = _PREPROCESSING[name]
    facts = dict(facts(**kwargs) if callable(facts) else facts)
    if kwargs.get("input_shape") is not None:
        facts["input_size"] = tuple(kwargs["input_shape"])
    return _check_preprocessing(name, facts)


# Builder modules register themselves on import.
from agegender_tf.models import cnn_lstm, cnn_rnn, dcnn, gra_net, levi_hassner, transfer  # noqa: E402,F401
from agegender_tf.models.cnn_rnn import ensemble  # noqa: E402,F401
from agegender_tf.models.transfer import PretrainedWeightsUnavailable  # noqa: E402,F401
