"""GRA_Net, the Gated Residual Attention Network of paper 004 (secs. 6.1-6.6, 7.1).

A Residual Attention Network (Wang et al. 2017, paper 004 ref. [41]) built from pre-activation
bottleneck residual units, in which every attention module's output is gated (sec. 6.2, Eq. 3):
``O = (gamma + (1 - gamma) * K(X)) * F(X)`` with a trainable gate ``gamma`` in [0, 1]. The soft mask
branch ``K`` (sec. 6.3) max-pools bottom-up, upsamples top-down by bilinear interpolation (as many
times as it pooled), joins the two paths with skip connections, then applies two 1x1 convolutions
and the attention activation (sec. 6.4: mixed, channel or spatial). Gender is a softmax over two
classes; age is decomposed (sec. 6.6) into a classification over age groups plus a regression of
the exact age (sec. 7.1). Images are 32x32 RGB (sec. 7.1).

Layout (the paper names its backbone but not its depth): an Attention-56-style network sized for
32x32 inputs, a 3x3 stem, three stages (at 32, 16, 8 pixels) each of one residual unit plus
attention modules whose masks pool 3, 2 and 1 times, then three residual units of 2048 channels at
4x4. With the defaults it has 29,780,560 trainable parameters (the paper reports "33
million"); the exact count is measured in the tests and docs/models.md.
"""

from __future__ import annotations

import keras

from agegender_tf.models.heads import task_head
from agegender_tf.models.layers import ATTENTION_ACTIVATIONS, AttentionMaskActivation, GatedAttention
from agegender_tf.models.registry import register
from agegender_tf.tasks import TASKS, check_tasks

PREPROCESSING = {"mode": "rescale", "paper": "paper 004 sec. 7.1"}


def residual_unit(x, filters, name, stride=1):
    """Pre-activation bottleneck residual unit (BN-ReLU-conv 1x1, 3x3, 1x1; width filters / 4)."""
    in_channels = x.shape[-1]
    preact = keras.layers.BatchNormalization(name=f"{name}_bn1")(x)
    preact = keras.layers.ReLU(name=f"{name}_relu1")(preact)
    if stride != 1 or in_channels != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_shortcut")(preact)
    else:
        shortcut = x
    width = max(filters // 4, 1)
    y = keras.layers.Conv2D(width, 1, use_bias=False, name=f"{name}_conv1")(preact)
    y = keras.layers.BatchNormalization(name=f"{name}_bn2")(y)
    y = keras.layers.ReLU(name=f"{name}_relu2")(y)
    y = keras.layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = keras.layers.BatchNormalization(name=f"{name}_bn3")(y)
    y = keras.layers.ReLU(name=f"{name}_relu3")(y)
    y = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_conv3")(y)
    return keras.layers.Add(name=f"{name}_add")([shortcut, y])


def _units(x, filters, count, name):
    for index in range(1, count + 1):
        x = residual_unit(x, filters, name=f"{name}_unit{index}")
    return x


def _upsample_to(x, target, name):
    """Bilinear x2 upsampling, cropped to ``target``'s height and width (odd sizes pool up)."""
    x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_upsample")(x)
    extra_h = x.shape[1] - target.shape[1]
    extra_w = x.shape[2] - target.shape[2]
    if extra_h or extra_w:
        x = keras.layers.Cropping2D(((0, extra_h), (0, extra_w)), name=f"{name}_crop")(x)
    return x


def soft_mask_branch(x, filters, depth, units_per_step, activation, name):
    """Bottom-up max pooling, top-down bilinear upsampling with skips, two 1x1 convs, activation (sec. 6.3)."""
    down = [x]
    m = x
    for level in range(1, depth + 1):
        m = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_down{level}_pool")(m)
        m = _units(m, filters, units_per_step, name=f"{name}_down{level}")
        down.append(m)
    skips = {level: residual_unit(down[level], filters, name=f"{name}_skip{level}") for level in range(1, depth)}
    if depth == 0:
        m = _units(m, filters, 2 * units_per_step, name=f"{name}_same")
    for level in range(depth, 0, -1):
        if level in skips:
            m = keras.layers.Add(name=f"{name}_join{level}")([m, skips[level]])
        m = _units(m, filters, units_per_step, name=f"{name}_up{level}")
        m = _upsample_to(m, down[level - 1], name=f"{name}_up{level}")
    for index in (1, 2):
        m = keras.layers.BatchNormalization(name=f"{name}_out_bn{index}")(m)
        m = keras.layers.ReLU(name=f"{name}_out_relu{index}")(m)
        m = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_out_conv{index}")(m)
    return AttentionMaskActivation(activation, name=f"{name}_activation")(m)


def gated_attention_module(x, filters, mask_depth, activation, initial_gate, name, p=1, t=2, r=1):
    """Gated attention module (sec. 6.1-6.2): p units, trunk (t units) gated by the soft mask, p units."""
    x = _units(x, filters, p, name=f"{name}_pre")
    trunk = _units(x, filters, t, name=f"{name}_trunk")
    mask = soft_mask_branch(x, filters, mask_depth, r, activation, name=f"{name}_mask")
    x = GatedAttention(initial_gate=initial_gate, name=f"{name}_gate")([mask, trunk])
    return _units(x, filters, p, name=f"{name}_post")


@register("gra_net", preprocessing=PREPROCESSING, task_signature="multi")
def gra_net(
    input_shape=(32, 32, 3),
    tasks=TASKS,
    num_age_groups=10,
    attention_activation="mixed",
    initial_gate=0.5,
    stem_filters=64,
    stage_filters=(256, 512, 1024),
    attention_modules=(1, 1, 1),
    mask_depths=(3, 2, 1),
    final_filters=2048,
    final_units=3,
    dropout=0.0,
    name="gra_net",
):
    """Gated Residual Attention Network (paper 004) with heads for ``tasks``.

    ``tasks`` is a subset of ("gender", "age_group", "age"); the outputs are a dict keyed by task.
    ``attention_activation``: "mixed" (sigmoid, Eq. 4), "channel" (L2 over channels, Eq. 5) or
    "spatial" (per-channel standardisation then sigmoid, Eq. 6). ``num_age_groups`` is the size of
    the age-group classification; its default 10 is the kit's ``decades`` binning (the paper's Fig. 8
    is not in the seed text). ``initial_gate`` is gamma's starting value (not given in the paper).
    """
    tasks = check_tasks(tasks)
    if attention_activation not in ATTENTION_ACTIVATIONS:
        raise ValueError(f"attention_activation must be one of {ATTENTION_ACTIVATIONS}, got {attention_activation!r}")
    if not len(stage_filters) == len(attention_modules) == len(mask_depths):
        raise ValueError("stage_filters, attention_modules and mask_depths need one entry per stage")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Conv2D(stem_filters, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    for stage, (filters, modules, depth) in enumerate(zip(stage_filters, attention_modules, mask_depths), start=1):
        x = residual_unit(x, filters, stride=1 if stage == 1 else 2, name=f"stage{stage}_entry")
        for module in range(1, modules + 1):
            x = gated_attention_module(
                x, filters, depth, attention_activation, initial_gate, name=f"stage{stage}_attention{module}"
            )
    x = residual_unit(x, final_filters, stride=2, name="final_unit1")
    for index in range(2, final_units + 1):
        x = residual_unit(x, final_filters, name=f"final_unit{index}")
    x = keras.layers.BatchNormalization(name="final_bn")(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = {task: task_head(x, task, num_age_groups if task == "age_group" else None) for task in tasks}
    return keras.Model(inputs, outputs, name=name)
