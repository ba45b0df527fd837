"""The five paper presets and their augmentation specs, by name, in source-document order."""

from __future__ import annotations

from agegender_tf.errors import UnknownNameError
from agegender_tf.experiments.presets import (
    adience_cnn,
    cnn_lstm,
    cnn_rnn_ensemble,
    gra_net,
    real_photos,
    transfer_vgg16_resnet50,
)
from agegender_tf.experiments.presets.preset import Preset
from agegender_tf.experiments.presets.rules import suggest
from agegender_tf.pipelines.spec import AugmentSpec

_PAPERS = (cnn_lstm, cnn_rnn_ensemble, adience_cnn, transfer_vgg16_resnet50, gra_net)

PRESETS: dict[str, Preset] = {paper.PRESET.name: paper.PRESET for paper in _PAPERS}
# A preset's ``augment`` names its paper's spec here (each paper module's ``AUGMENT``), or the kit's spec
# for photos that are not studio crops (``real_photos``, which a profile may choose).
AUGMENT_PRESETS: dict[str, AugmentSpec] = {**{paper.PRESET.augment: paper.AUGMENT for paper in _PAPERS},
                                           real_photos.NAME: real_photos.AUGMENT}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError(f"unknown preset {name!r}{suggest(name, PRESETS)}; the presets are "
                               f"{', '.join(PRESETS)} (agegender papers lists them)") from None


def get_augment_preset(name: str) -> AugmentSpec:
    try:
        return AUGMENT_PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown augmentation preset {name!r}; choose one of {sorted(AUGMENT_PRESETS)}") from None
