"""Levi & Hassner's lean CNN, as described in paper 000 sec. VI ("CNN architecture") and paper 002.

Three convolutions (96 7x7/4, 256 5x5, 384 3x3), each followed by ReLU and 3x3/2 max pooling, the
first two also by local response normalisation; two fully connected layers of 512 with ReLU and
dropout 0.5; a softmax. Weights are drawn from a Gaussian with std 0.01 (paper 000 sec. VI,
"Initialization"). Images of 256x256 are cropped to 227x227 (random crops with mirroring for
training, paper 000 sec. VI "Network training"). Shapes follow the paper's text: 96x28x28 after the
first block, 256x14x14 after the second.
"""

from __future__ import annotations

import keras

from agegender_tf.models.heads import ADIENCE_GROUPS, task_head
from agegender_tf.models.layers import LocalResponseNormalization
from agegender_tf.models.registry import register

# 256x256 images, random 227 crops (the input_shape default) at training, the centre crop at test.
PREPROCESSING = {"mode": "rescale", "resize_to": 256, "paper": "paper 000 sec. VI; paper 002"}


@register("levi_hassner", preprocessing=PREPROCESSING, task_signature="single")
def levi_hassner(
    input_shape=(227, 227, 3),
    task="age_group",
    num_classes=None,
    conv_filters=(96, 256, 384),
    conv_kernels=(7, 5, 3),
    first_stride=4,
    pool_size=3,
    pool_stride=2,
    lrn_depth=5,
    lrn_alpha=1e-4,
    lrn_beta=0.75,
    dense_units=(512, 512),
    dropout=0.5,
    init_std=0.01,
    name="levi_hassner",
):
    """Levi-Hassner CNN (paper 000 sec. VI, paper 002). Defaults: 8 Adience age groups (``num_classes=None``),
    227x227 input.

    ``task="gender"`` (2 classes) builds the gender network; the output layer is named after the task.
    LRN follows the first two pooled blocks only, as in the authors' prototxt. Pooling uses "same"
    padding, which reproduces Caffe's ceil-mode sizes (56 -> 28 -> 14 -> 7 for a 227 input).
    """
    if len(conv_filters) != len(conv_kernels):
        raise ValueError(f"conv_filters {conv_filters} and conv_kernels {conv_kernels} must have the same length")
    gaussian = keras.initializers.RandomNormal(stddev=init_std)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for index, (filters, kernel) in enumerate(zip(conv_filters, conv_kernels), start=1):
        x = keras.layers.Conv2D(
            filters,
            kernel,
            strides=first_stride if index == 1 else 1,
            padding="valid" if index == 1 else "same",
            activation="relu",
            kernel_initializer=gaussian,
            name=f"conv{index}",
        )(x)
        x = keras.layers.MaxPooling2D(pool_size, strides=pool_stride, padding="same", name=f"pool{index}")(x)
        if index < len(conv_filters):
            x = LocalResponseNormalization(depth=lrn_depth, alpha=lrn_alpha, beta=lrn_beta, name=f"norm{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate(dense_units, start=len(conv_filters) + 3):
        x = keras.layers.Dense(units, activation="relu", kernel_initializer=gaussian, name=f"fc{index}")(x)
        x = keras.layers.Dropout(dropout, name=f"drop{index}")(x)
    outputs = task_head(x, task, num_classes, kernel_initializer=gaussian, default_age_groups=ADIENCE_GROUPS)
    return keras.Model(inputs, outputs, name=name)
