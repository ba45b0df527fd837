"""Custom layers of the five papers, written with ``keras.ops`` only (any Keras backend).

Every class is registered with ``keras.saving.register_keras_serializable(package="agegender_tf")``
and returns its full constructor arguments from ``get_config``, so models using them save to
``.keras`` and load back after ``import agegender_tf.models`` (never ``Lambda``).
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "agegender_tf"


@keras.saving.register_keras_serializable(package=PACKAGE)
class LocalResponseNormalization(keras.layers.Layer):
    """Cross-channel local response normalisation (paper 000 sec. VI, paper 002; Levi & Hassner 2015).

    ``y_c = x_c / (bias + alpha / depth * sum_{c' in window(c)} x_{c'}^2) ** beta`` over a window of
    ``depth`` neighbouring channels (Caffe's ``ACROSS_CHANNELS`` LRN: local_size 5, alpha 1e-4,
    beta 0.75, k 1, as in the authors' Caffe prototxt). Channels-last.
    """

    def __init__(self, depth=5, alpha=1e-4, beta=0.75, bias=1.0, **kwargs):
        super().__init__(**kwargs)
        if depth < 1 or depth % 2 == 0:
            raise ValueError(f"LocalResponseNormalization depth must be a positive odd number, got {depth}")
        self.depth = int(depth)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.bias = float(bias)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        squared = ops.square(x)
        radius = self.depth // 2
        channels = squared.shape[-1]
        padded = ops.pad(squared, [[0, 0]] * (len(squared.shape) - 1) + [[radius, radius]])
        window_sum = padded[..., 0:channels]
        for offset in range(1, self.depth):
            window_sum = window_sum + padded[..., offset : offset + channels]
        scale = ops.power(self.bias + (self.alpha / self.depth) * window_sum, self.beta)
        return ops.cast(x / scale, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(depth=self.depth, alpha=self.alpha, beta=self.beta, bias=self.bias)
        return config


ATTENTION_ACTIVATIONS = ("mixed", "channel", "spatial")


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionMaskActivation(keras.layers.Layer):
    """The soft mask's final activation, paper 004 sec. 6.4 (Eqs. 4-6).

    - ``"mixed"`` (f1): sigmoid of every channel at every position.
    - ``"channel"`` (f2): L2 normalisation across the channels at each spatial position.
    - ``"spatial"`` (f3): each channel standardised over its spatial positions (mean, std), then sigmoid.

    Computed in float32 (sums of squares overflow float16) and cast back to the input dtype.
    """

    def __init__(self, kind="mixed", epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        if kind not in ATTENTION_ACTIVATIONS:
            raise ValueError(f"attention activation must be one of {ATTENTION_ACTIVATIONS}, got {kind!r}")
        self.kind = kind
        self.epsilon = float(epsilon)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        if self.kind == "mixed":
            out = ops.sigmoid(x)
        elif self.kind == "channel":
            norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + self.epsilon)
            out = x / norm
        else:
            spatial_axes = tuple(range(1, len(x.shape) - 1))
            mean = ops.mean(x, axis=spatial_axes, keepdims=True)
            std = ops.std(x, axis=spatial_axes, keepdims=True)
            out = ops.sigmoid((x - mean) / (std + self.epsilon))
        return ops.cast(out, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.kind, epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class UnitInterval(keras.constraints.Constraint):
    """Clips a weight into [0, 1] after each update (the gate of paper 004 sec. 6.2)."""

    def __call__(self, w):
        return ops.clip(w, 0.0, 1.0)

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GatedAttention(keras.layers.Layer):
    """Gated residual attention output, paper 004 sec. 6.2, Eq. 3: ``(gamma + (1 - gamma) * K) * F``.

    Called on ``[mask, trunk]``. ``gamma`` is one trainable scalar kept in [0, 1]: gamma 0 gives the
    full mask effect ``K * F``, gamma 1 passes the trunk features ``F`` unchanged (the paper's table).
    """

    def __init__(self, initial_gate=0.5, trainable_gate=True, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= initial_gate <= 1.0:
            raise ValueError(f"initial_gate must lie in [0, 1], got {initial_gate}")
        self.initial_gate = float(initial_gate)
        self.trainable_gate = bool(trainable_gate)

    def build(self, input_shape):
        mask_shape, trunk_shape = input_shape
        if tuple(mask_shape[1:]) != tuple(trunk_shape[1:]):
            raise ValueError(f"GatedAttention needs mask and trunk of the same shape, "
                             f"got {mask_shape} and {trunk_shape}")
        self.gamma = self.add_weight(
            name="gamma",
            shape=(),
            initializer=keras.initializers.Constant(self.initial_gate),
            constraint=UnitInterval(),
            trainable=self.trainable_gate,
        )

    def call(self, inputs):
        mask, trunk = inputs
        gamma = ops.cast(self.gamma, trunk.dtype)
        return (gamma + (1.0 - gamma) * ops.cast(mask, trunk.dtype)) * trunk

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        config = super().get_config()
        config.update(initial_gate=self.initial_gate, trainable_gate=self.trainable_gate)
        return config
