"""Hybrid CNN-RNN with multi-task heads and its ensemble, paper 001 ("Proposed methodology").

A CNN extracts spatial features (a backbone pre-trained on ImageNet and fine-tuned, or a CNN
trained from scratch); the feature map's spatial positions, in raster order, form the sequence an
LSTM or GRU reads; heads give gender (softmax, categorical cross-entropy) and age (regression, MSE).
Ensemble learning averages the predictions of several such models. The paper gives no layer sizes,
so the defaults below are this kit's choices, documented as such.
"""

from __future__ import annotations

import keras

from agegender_tf.models.heads import task_head
from agegender_tf.models.registry import register
from agegender_tf.models.transfer import BACKBONES, load_backbone, set_backbone_trainable
from agegender_tf.tasks import check_tasks

RNN_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def _preprocessing(backbone, **_):
    mode = "rescale" if backbone == "scratch" else BACKBONES[backbone][1]
    return {"mode": mode, "paper": "paper 001 (data normalisation, 0-1 scaling)"}


def _scratch_cnn(inputs, conv_filters):
    x = inputs
    for index, filters in enumerate(conv_filters, start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{index}")(x)
    return x


def _check_tasks(tasks, num_age_groups):
    tasks = check_tasks(tasks)
    if "age_group" in tasks and not num_age_groups:
        raise ValueError("task 'age_group' needs num_age_groups (the binning's class count)")
    return tasks


@register("cnn_rnn", preprocessing=_preprocessing, task_signature="multi")
def cnn_rnn(
    input_shape=(128, 128, 3),
    backbone="scratch",
    backbone_weights=None,
    unfreeze_top=-1,
    conv_filters=(32, 64, 128, 256),
    rnn="lstm",
    rnn_units=128,
    dense_units=64,
    dropout=0.3,
    tasks=("gender", "age"),
    num_age_groups=None,
    name="cnn_rnn",
):
    """CNN features -> spatial positions as a sequence -> LSTM/GRU -> multi-task heads (paper 001).

    ``backbone="scratch"`` builds Conv3x3-BN-ReLU-MaxPool blocks with ``conv_filters``; a name from
    ``transfer.BACKBONES`` (e.g. "vgg16", "resnet50") uses that ImageNet network with
    ``backbone_weights`` (None, "imagenet" or a local file) fine-tuned from its top
    ``unfreeze_top`` layers (-1: all, 0: frozen). Outputs are a dict keyed by ``tasks``
    ("gender" softmax 2, "age" linear years, "age_group" softmax ``num_age_groups``).
    """
    tasks = _check_tasks(tasks, num_age_groups)
    if rnn not in RNN_LAYERS:
        raise ValueError(f"rnn must be one of {sorted(RNN_LAYERS)}, got {rnn!r}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    if backbone == "scratch":
        features = _scratch_cnn(inputs, conv_filters)
    else:
        backbone_model = load_backbone(backbone, input_shape=input_shape, weights=backbone_weights, pooling=None)
        set_backbone_trainable(backbone_model, unfreeze_top)
        features = backbone_model(inputs)
    _, height, width, channels = features.shape
    sequence = keras.layers.Reshape((height * width, channels), name="positions_as_steps")(features)
    x = RNN_LAYERS[rnn](rnn_units, name=rnn)(sequence)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="fc")(x)
    outputs = {task: task_head(x, task, num_age_groups if task == "age_group" else None) for task in tasks}
    return keras.Model(inputs, outputs, name=name)


def ensemble(members, name="ensemble"):
    """One ``keras.Model`` averaging its members' outputs, output by output (paper 001, ensemble learning).

    Members must share the input shape and output names; each output of the ensemble is the mean of
    the members' outputs of that name (class probabilities, or ages in years).
    """
    inputs, member_outputs, output_names = _call_members(members)
    dict_outputs = isinstance(member_outputs[0], dict)
    if not dict_outputs:
        member_outputs = [dict(zip(output_names, keras.tree.flatten(out))) for out in member_outputs]
    outputs = _averaged(member_outputs, output_names)
    if not dict_outputs:
        outputs = [outputs[key] for key in output_names]
        outputs = outputs[0] if len(outputs) == 1 else outputs
    return keras.Model(inputs, outputs, name=name)


def _call_members(members):
    """A fresh input, each member called on it, and the members' output names (checked to agree)."""
    members = list(members)
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
    names = [member.name for member in members]
    if len(set(names)) != len(names):
        raise ValueError(f"ensemble members need distinct names, got {names}")
    input_shape = tuple(members[0].input_shape[1:])
    output_names = list(members[0].output_names)
    for member in members[1:]:
        if tuple(member.input_shape[1:]) != input_shape or list(member.output_names) != output_names:
            raise ValueError(
                f"member {member.name!r} has input {member.input_shape[1:]} / outputs {member.output_names}, "
                f"expected {input_shape} / {output_names}"
            )
    inputs = keras.Input(shape=input_shape, name="image")
    return inputs, [member(inputs) for member in members], output_names


def _averaged(member_outputs, output_names):
    return {
        key: keras.layers.Average(dtype="float32", name=key)([out[key] for out in member_outputs])
        for key in output_names
    }


def members_of(model):
    """The member networks of a model made by ``ensemble`` or ``member_training_model``, in order."""
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(members) < 2:
        raise ValueError(f"{model.name!r} is not an ensemble: it has {len(members)} member network(s)")
    return members


def member_output_name(output, index):
    """The name ``member_training_model`` gives member ``index``'s output ``output`` (e.g. gender_member0)."""
    return f"{output}_member{index}"


def member_training_model(model):
    """An ensemble (``ensemble``) that also outputs each member's heads, to train every member on its own loss.

    Outputs: the averaged ones (``gender``, ...) and each member's (``gender_member0``, ...). With a loss
    on each member's outputs and none on the averages, the members learn independently and are averaged
    only at inference: trained on the averaged output alone, members co-adapt and the ensemble loses the
    diversity that averaging needs (Jeffares et al., "Joint Training of Deep Ensembles Fails Due to
    Learner Collusion", NeurIPS 2023). Paper 001 does not say how its ensemble was trained.
    ``ensemble(members_of(trained), name=...)`` is the averaging model over the same layers.
    """
    inputs, member_outputs, output_names = _call_members(members_of(model))
    if not isinstance(member_outputs[0], dict):
        raise ValueError(f"member training needs members with named (dict) outputs; {model.name!r} has a list")
    outputs = _averaged(member_outputs, output_names)
    for index, out in enumerate(member_outputs):
        for key in output_names:
            name = member_output_name(key, index)
            outputs[name] = keras.layers.Identity(dtype="float32", name=name)(out[key])
    return keras.Model(inputs, outputs, name=model.name)


@register("cnn_rnn_ensemble", preprocessing=_preprocessing, task_signature="multi", defaults_from="cnn_rnn")
def cnn_rnn_ensemble(num_members=3, rnns=("lstm", "gru"), name="cnn_rnn_ensemble", **member_kwargs):
    """An ensemble of ``num_members`` CNN-RNN models (paper 001), cycling through ``rnns`` (LSTM, GRU, ...).

    ``member_kwargs`` go to every ``cnn_rnn`` member (input_shape, backbone, tasks, ...).
    """
    members = [
        cnn_rnn(rnn=rnns[index % len(rnns)], name=f"{name}_member{index}", **member_kwargs)
        for index in range(num_members)
    ]
    return ensemble(members, name=name)
