"""Hybrid CNN-LSTM of paper 000 sec. V (Jayabharathi & Rohini 2024).

The paper's feature extractor is three 1-D convolutions in a pyramid (48, 32, 16 kernels) with max
pooling and ReLU between them, a dropout layer between the extractor and the sequence block, three
LSTM layers of 20 units (return sequences true, true, false), dropout, a dense layer of 20, and the
output layer.

How the image becomes a sequence (the paper applies 1-D convolutions to face images without saying
how): each image row is one time step, top to bottom, whose features are that row's ``W * 3``
pixel values. The 1-D convolutions slide down the rows, so the LSTMs read the face from forehead
to chin. "48, 32, 16" is read as filter counts; the kernel size, which the paper does not give,
defaults to 3. Input 227x227 as in paper 000 sec. VI (256 resized, 227 crop).
"""

from __future__ import annotations

import keras

from agegender_tf.models.heads import ADIENCE_GROUPS, task_head
from agegender_tf.models.registry import register

# 256x256 images, random 227 crops (the input_shape default) at training, the centre crop at test.
PREPROCESSING = {"mode": "rescale", "resize_to": 256, "paper": "paper 000 sec. V, sec. VI (network training)"}


@register("cnn_lstm", preprocessing=PREPROCESSING, task_signature="single")
def cnn_lstm(
    input_shape=(227, 227, 3),
    task="age_group",
    num_classes=None,
    conv_filters=(48, 32, 16),
    conv_kernel_size=3,
    pool_size=2,
    feature_dropout=0.5,
    lstm_units=(20, 20, 20),
    sequence_dropout=0.5,
    dense_units=20,
    name="cnn_lstm",
):
    """CNN-LSTM (paper 000 sec. V): image rows -> Conv1D pyramid -> 3 LSTMs -> dense 20 -> output.

    Each Conv1D is followed by ReLU and two-fold max pooling ("a two-fold downsampling scheme");
    the last LSTM returns only its final hidden state. Dropout rates are not given in the paper;
    0.5 matches the rate it uses elsewhere (sec. VI).
    """
    height, width, channels = input_shape
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Reshape((height, width * channels), name="rows_as_steps")(inputs)
    for index, filters in enumerate(conv_filters, start=1):
        x = keras.layers.Conv1D(filters, conv_kernel_size, padding="same", name=f"conv{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        x = keras.layers.MaxPooling1D(pool_size, padding="same", name=f"pool{index}")(x)
    x = keras.layers.Dropout(feature_dropout, name="feature_dropout")(x)
    for index, units in enumerate(lstm_units, start=1):
        x = keras.layers.LSTM(units, return_sequences=index < len(lstm_units), name=f"lstm{index}")(x)
    x = keras.layers.Dropout(sequence_dropout, name="sequence_dropout")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="fc")(x)
    outputs = task_head(x, task, num_classes, default_age_groups=ADIENCE_GROUPS)
    return keras.Model(inputs, outputs, name=name)
