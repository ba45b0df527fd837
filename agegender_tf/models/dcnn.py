"""Plain deep CNN baseline ("DCNN") of paper 000 sec. VII, Table I.

Paper 000 compares its CNN-LSTM with a DCNN without describing it; this is a plain VGG-style
network: blocks of two 3x3 convolutions with ReLU and 2x2 max pooling, global average pooling,
a dense layer with dropout, and the task's output layer. Same 227x227 input as the other paper 000
models so the comparison uses the same images.
"""

from __future__ import annotations

import keras

from agegender_tf.models.heads import ADIENCE_GROUPS, task_head
from agegender_tf.models.registry import register

# The same 256 -> 227 crops as the other paper 000 networks.
PREPROCESSING = {"mode": "rescale", "resize_to": 256, "paper": "paper 000 sec. VII (Table I, DCNN)"}


@register("dcnn", preprocessing=PREPROCESSING, task_signature="single")
def dcnn(
    input_shape=(227, 227, 3),
    task="age_group",
    num_classes=None,
    block_filters=(32, 64, 128, 256),
    convs_per_block=2,
    dense_units=256,
    dropout=0.5,
    name="dcnn",
):
    """Plain deep CNN (paper 000 Table I baseline): VGG-style conv blocks -> GAP -> dense -> output."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for block, filters in enumerate(block_filters, start=1):
        for conv in range(1, convs_per_block + 1):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}"
            )(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{block}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="fc")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = task_head(x, task, num_classes, default_age_groups=ADIENCE_GROUPS)
    return keras.Model(inputs, outputs, name=name)
