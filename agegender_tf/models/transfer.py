"""Transfer learning from ImageNet backbones, paper 003 secs. 3.4-3.5 and 4.2-4.4.

A ``keras.applications`` backbone without its top and with global average pooling, frozen; Dense 512
ReLU; dropout 0.5; the classification layer (2 genders or 4 life stages). With ``weights=None`` the
parameter counts equal paper 003's summaries: VGG16 gender 14,978,370 total / 263,682 trainable;
ResNet50 age (4 classes) 24,638,852 / 1,051,140.
"""

from __future__ import annotations

from pathlib import Path

import keras

from agegender_tf.models.heads import task_head
from agegender_tf.models.registry import register

# backbone name -> (keras.applications constructor, preprocessing mode of its ImageNet weights)
BACKBONES = {
    "vgg16": (keras.applications.VGG16, "vgg16"),
    "vgg19": (keras.applications.VGG19, "vgg16"),  # same Caffe-style preprocess_input as VGG16
    "resnet50": (keras.applications.ResNet50, "resnet50"),
    "resnet101": (keras.applications.ResNet101, "resnet50"),
    "resnet152": (keras.applications.ResNet152, "resnet50"),
}


class PretrainedWeightsUnavailable(RuntimeError):
    """ImageNet weights could not be downloaded; the message says how to pass a local file."""


def _preprocessing(backbone, **_):
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    return {"mode": BACKBONES[backbone][1], "paper": "paper 003 sec. 3.4, 4.1"}


def load_backbone(backbone="vgg16", input_shape=(224, 224, 3), weights=None, pooling="avg"):
    """A ``keras.applications`` network without its top; ``weights`` None, "imagenet" or a local file.

    A local file is any weights file ``keras.Model.load_weights`` reads: the ``*_notop.h5`` file
    Keras downloads from its storage bucket, or a ``.weights.h5`` saved from the same backbone.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    constructor = BACKBONES[backbone][0]
    kwargs = dict(include_top=False, input_shape=tuple(input_shape), pooling=pooling)
    if weights is None:
        return constructor(weights=None, **kwargs)
    if weights == "imagenet":
        try:
            return constructor(weights="imagenet", **kwargs)
        except Exception as exc:  # keras.utils.get_file raises a bare Exception on a failed fetch
            raise PretrainedWeightsUnavailable(
                f"could not download the ImageNet weights of {backbone} ({exc}). Offline, download the "
                f"file keras.applications.{constructor.__name__} uses for include_top=False (e.g. "
                f"vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 for vgg16) on a connected machine "
                f"and pass its local path: build('transfer', backbone={backbone!r}, "
                f"weights='/path/{backbone}_weights_tf_dim_ordering_tf_kernels_notop.h5')"
            ) from exc
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path} "
                                "(weights must be None, 'imagenet' or a file path)")
    model = constructor(weights=None, **kwargs)
    try:
        model.load_weights(str(path))
    except Exception as exc:
        raise ValueError(f"{path}: cannot load as {backbone} weights (include_top=False): {exc}") from exc
    return model


def set_backbone_trainable(backbone_model, unfreeze_top=0, train_batchnorm=False):
    """Freeze the backbone except its top ``unfreeze_top`` layers (fine-tuning switch, paper 003 sec. 4.2).

    ``unfreeze_top=0`` freezes everything (the paper's setting); ``-1`` unfreezes every layer.
    BatchNormalization layers stay frozen (and so in inference mode, keeping pretrained statistics)
    unless ``train_batchnorm``: a backbone trained from scratch has no statistics to keep.
    """
    layers = backbone_model.layers
    first_trainable = 0 if unfreeze_top < 0 else len(layers) - unfreeze_top
    backbone_model.trainable = unfreeze_top != 0
    for index, layer in enumerate(layers):
        is_batchnorm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = unfreeze_top != 0 and index >= first_trainable and (train_batchnorm or not is_batchnorm)
    return backbone_model


def reinitialize_kernels(backbone_model, initializer) -> None:
    """Draw every convolution kernel of ``backbone_model`` anew from ``initializer`` (seeded by Keras' global seed)."""
    initializer = keras.initializers.get(initializer)
    for layer in backbone_model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.kernel.assign(initializer(tuple(layer.kernel.shape), dtype=layer.kernel.dtype))


# Reports name a transfer model by its backbone (vgg16, resnet50), as paper 003 does.
@register("transfer", preprocessing=_preprocessing, task_signature="single", variant_arg="backbone",
          variants=tuple(BACKBONES))
def transfer(
    backbone="vgg16",
    input_shape=(224, 224, 3),
    task="gender",
    num_classes=None,
    weights="imagenet",
    dense_units=512,
    dropout=0.5,
    unfreeze_top=0,
    kernel_initializer=None,
    name=None,
):
    """Frozen ImageNet backbone + GAP + Dense 512 ReLU + dropout 0.5 + head (paper 003 sec. 3.5, 4.2).

    ``task="gender"`` (2 classes) or ``task="age_group", num_classes=4`` (life stages) as in paper 003.
    ``weights``: "imagenet" (downloaded by Keras where the network allows; offline it raises
    ``PretrainedWeightsUnavailable`` saying how to pass a file), a local weights file, or None.
    ``unfreeze_top``: number of top backbone layers left trainable for fine-tuning (0: all frozen).
    With ``weights=None`` and ``unfreeze_top=-1`` the backbone trains from scratch, BatchNorm included.
    ``kernel_initializer``: with ``weights=None``, draw the backbone's convolution kernels from this
    initializer instead of keras.applications' glorot_uniform; "he_normal" (He et al. 2015) keeps the
    signal's scale through a plain ReLU stack such as VGG16's 13 convolutions, which from glorot
    stayed at chance here (``results/README.md``).
    """
    if kernel_initializer is not None and weights is not None:
        raise ValueError("kernel_initializer redraws the backbone's kernels: it needs weights=None, "
                         f"got weights={weights!r}")
    backbone_model = load_backbone(backbone, input_shape=input_shape, weights=weights, pooling="avg")
    if kernel_initializer is not None:
        reinitialize_kernels(backbone_model, kernel_initializer)
    set_backbone_trainable(backbone_model, unfreeze_top, train_batchnorm=weights is None)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = backbone_model(inputs)
    x = keras.layers.Dense(dense_units, activation="relu", name="fc")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = task_head(x, task, num_classes)
    return keras.Model(inputs, outputs, name=name or f"transfer_{backbone}_{task}")
