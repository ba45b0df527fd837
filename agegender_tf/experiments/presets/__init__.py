"""Paper presets as data (DESIGN.md, "Paper presets"): one per source document in ``shared/seeds/``.

As keras-hub keeps ``resnet_presets.py`` beside its model, each paper has its own module here
(``cnn_lstm``, ``cnn_rnn_ensemble``, ``adience_cnn``, ``transfer_vgg16_resnet50``, ``gra_net``)
holding its ``PRESET``, profiles and augmentation spec (``AUGMENT``). ``preset`` holds the
``Preset`` type, ``papers`` the presets and specs by name, ``rules`` the small validation library
and ``schema`` the override schema (``FIELD_RULES``), ``resolve`` and ``check_model_args``.
"""

from __future__ import annotations

from agegender_tf.experiments.presets.papers import AUGMENT_PRESETS, PRESETS, get_augment_preset, get_preset
from agegender_tf.experiments.presets.preset import (
    COMPARE_MEMBERS,
    ENSEMBLE_LOSSES,
    PAPER_NUMBER_KEYS,
    PER_MEMBER_LOSS,
    Preset,
    paper_label_of,
)
from agegender_tf.experiments.presets.rules import (
    Rule,
    anything,
    choice,
    flag,
    integer,
    mapping,
    number,
    sequence_of,
    suggest,
    text,
)
from agegender_tf.experiments.presets.schema import (
    COMPARISONS,
    FIELD_RULES,
    OPTIMIZERS,
    RUN_SET_ARGUMENTS,
    apply_overrides,
    check_consistent,
    check_field,
    check_model_args,
    parse_value,
    resolve,
    smoke_version,
    with_profile,
)
from agegender_tf.tasks import TASKS


def listing() -> list[dict]:
    """One row per preset for ``agegender papers``."""
    return [
        {"name": p.name, "paper": p.paper_label, "seed_document": p.seed_document, "title": p.title,
         "paper_datasets": list(p.paper_datasets), "dataset_used": p.dataset, "model": p.model,
         "tasks": list(p.tasks), "profiles": {name: dict(values) for name, values in p.profiles.items()}}
        for p in PRESETS.values()
    ]


__all__ = [
    "AUGMENT_PRESETS", "COMPARE_MEMBERS", "COMPARISONS", "ENSEMBLE_LOSSES", "FIELD_RULES", "OPTIMIZERS",
    "PAPER_NUMBER_KEYS", "PER_MEMBER_LOSS", "PRESETS", "RUN_SET_ARGUMENTS", "TASKS", "Preset", "Rule", "anything",
    "apply_overrides", "check_consistent", "check_field", "check_model_args", "choice", "flag", "get_augment_preset",
    "get_preset", "integer", "listing", "mapping", "number", "paper_label_of", "parse_value", "resolve", "sequence_of",
    "smoke_version", "suggest", "text", "with_profile",
]
