"""The override schema: which preset fields may be set, to what (``FIELD_RULES``), and how overrides apply.

``resolve`` applies a profile, then ``--smoke`` (whose sizes win), then ``--set key=value`` pairs
(dotted keys reach into dict fields, values parsed as Python literals where they parse). Every
override (a profile's or ``--set``'s) is checked against ``FIELD_RULES`` (type and range of each
settable field) and refused with one line (``UsageError``) before anything is written; the fields
describing the paper itself (title, paper numbers, ...) cannot be set. ``model_args`` keys are
checked against the registered builder's arguments by ``check_model_args``, which imports
TensorFlow and so runs at the start of a run rather than when the command line is read.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from typing import Any

from agegender_tf.errors import UnknownNameError, UsageError
from agegender_tf.experiments.presets.papers import AUGMENT_PRESETS, get_preset
from agegender_tf.experiments.presets.preset import COMPARE_MEMBERS, ENSEMBLE_LOSSES, Preset
from agegender_tf.experiments.presets.rules import (
    Rule,
    choice,
    flag,
    integer,
    mapping,
    number,
    sequence_of,
    suggest,
    text,
)
from agegender_tf.tasks import BASELINES, CLASSIFICATION_TASKS, TASKS

# The optimizers a preset may name, each with its ``keras.optimizers`` class (``train.make_optimizer``).
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "nadam": "Nadam", "rmsprop": "RMSprop"}
# The networks a preset may compare its own with: a registered model (levi_hassner) or a variant of the
# preset's builder (vgg16 beside resnet50); the classical baselines; and each ensemble member alone.
COMPARISONS = ("levi_hassner", "vgg16") + BASELINES + (COMPARE_MEMBERS,)

_MONITOR = text()
FIELD_RULES: dict[str, Rule] = {
    "image_size": integer(16, 1024),
    "epochs": integer(1),
    "batch_size": integer(1),
    "max_train_images": integer(1, none=True),
    "tta": choice("center", "oversample"),
    "comparisons": sequence_of(COMPARISONS),
    "task_groups": sequence_of(TASKS, nested=True),
    "loss_weights": mapping({task: number(0.0, low_open=False) for task in TASKS}),
    "model": text(),  # a registered builder: checked with model_args by check_model_args
    "model_args": mapping(),  # keys checked against the builder by check_model_args
    "optimizer": mapping({
        "name": choice(*OPTIMIZERS), "learning_rate": number(0.0),
        "momentum": number(0.0, 1.0, low_open=False, high_open=True), "nesterov": flag(),
        "step_at_iteration": integer(1), "step_to": number(0.0), "weight_decay": number(0.0, low_open=False),
        "clipnorm": number(0.0), "clipvalue": number(0.0), "beta_1": number(0.0, 1.0, high_open=True),
        "beta_2": number(0.0, 1.0, high_open=True), "epsilon": number(0.0),
    }, required=("name", "learning_rate")),
    "callbacks": mapping({
        "early_stopping": mapping({"monitor": _MONITOR, "patience": integer(0),
                                   "min_delta": number(0.0, low_open=False),
                                   "restore_best_weights": flag(), "start_from_epoch": integer(0),
                                   "mode": choice("auto", "min", "max")}),
        "reduce_lr": mapping({"monitor": _MONITOR, "patience": integer(0), "factor": number(0.0, 1.0, high_open=True),
                              "min_lr": number(0.0, low_open=False), "min_delta": number(0.0, low_open=False),
                              "cooldown": integer(0), "mode": choice("auto", "min", "max")}),
        "time_limit": mapping({"minutes": number(0.0)}, required=("minutes",)),
    }),
    "split": mapping({"kind": choice("committed", "holdout"), "test_size": number(0.0, 1.0, high_open=True),
                      "val_size": number(0.0, 1.0, high_open=True)}),
    "fold_protocol": choice(None, "adience"),
    "class_weight": choice(None, "balanced"),  # pipelines.targets.CLASS_WEIGHTINGS
    "precision": choice(None, "float32", "mixed_bfloat16", "mixed_float16"),
    "ensemble_loss": choice(*ENSEMBLE_LOSSES),
    "face_crop": mapping({"detector": text(), "scale_std": number(0.0, low_open=False),
                          "shift_std": number(0.0, low_open=False), "rotation_std": number(0.0, low_open=False)},
                         required=("detector",), none=True),
    "pipeline": mapping({"mode": choice("memory", "stream", "auto"), "shuffle_buffer": integer(1)},  # stream.MODES
                        none=True),
}


def _named_choices(field_name: str) -> tuple[str, ...]:
    """Names a field may take that live in other modules (none of them imports TensorFlow)."""
    if field_name == "augment":
        return tuple(AUGMENT_PRESETS)
    if field_name == "binning":
        from agegender_tf.binning import BINNINGS

        return tuple(BINNINGS)
    from agegender_tf.data.readers import available

    return tuple(available())


def check_field(name: str, value: Any, source: str) -> None:
    """Raise ``UsageError`` naming ``source`` when ``value`` may not go into field ``name``."""
    settable = set(FIELD_RULES) | {"augment", "binning", "dataset"}
    if name not in settable:
        if name in {f.name for f in dataclasses.fields(Preset)}:
            hint = "use --profile" if name in ("profile", "profiles") else "it describes the paper"
            raise UsageError(f"{source}: field {name!r} cannot be set ({hint})")
        raise UsageError(f"{source}: a preset has no field {name!r}{suggest(name, settable)}; "
                         f"settable fields: {', '.join(sorted(settable))}")
    if name in FIELD_RULES:
        problem = FIELD_RULES[name](value)
    else:
        options = _named_choices(name)
        allowed = options + ((None,) if name == "binning" else ())
        problem = None if value in allowed else f"must be one of {', '.join(options)}{suggest(value, options)}"
    if problem:
        raise UsageError(f"{source}: {name}{problem}" if problem.startswith(".")
                         else f"{source}: {name} {problem}, got {value!r}")


def check_consistent(preset: Preset, source: str) -> Preset:
    """Refuse combinations of fields that cannot run together."""
    if "age_group" in preset.tasks and not preset.binning:
        raise UsageError(f"{source}: the age_group task needs a binning (e.g. --set binning=decades)")
    several = [list(g) for g in preset.task_groups if len(g) != 1 or g[0] not in CLASSIFICATION_TASKS]
    if preset.class_weight and several:
        raise UsageError(f"{source}: class_weight={preset.class_weight!r} needs networks with one classification "
                         f"output; preset {preset.name} trains {several}")
    if preset.class_weight and preset.ensemble_loss:
        raise UsageError(f"{source}: class_weight and ensemble_loss cannot be combined (class weights need one "
                         "output; ensemble_loss='members' trains one per member)")
    return preset


def apply_overrides(preset: Preset, assignments: list[str] | tuple[str, ...]) -> Preset:
    """Apply ``key=value`` strings, each checked against ``FIELD_RULES``; ``optimizer.learning_rate=1e-4``
    reaches into a dict field. A bad key or value raises ``UsageError`` naming the assignment."""
    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value_text = assignment.partition("=")
        source = f"--set {assignment}"
        if not sep or not key:
            raise UsageError(f"{source}: an override is key=value, e.g. --set epochs=3")
        head, *rest = key.split(".")
        value = parse_value(value_text)
        if rest:
            current = changes.get(head, getattr(preset, head, None))
            if current is None and head in ("pipeline", "face_crop"):  # unset dict fields: start empty
                current = {}
            if not isinstance(current, dict):
                if head in FIELD_RULES or hasattr(preset, head):
                    raise UsageError(f"{source}: field {head!r} is not a dict, so {key!r} cannot be set")
                check_field(head, current, source)  # names the unknown field
            value = _set_nested(dict(current), rest, value, source)
        check_field(head, value, source)
        changes[head] = value
    return check_consistent(dataclasses.replace(preset, **changes), "--set " + " ".join(assignments))


def _set_nested(target: dict, keys: list[str], value: Any, source: str) -> dict:
    key, *rest = keys
    if rest:
        inner = target.get(key, {})
        if not isinstance(inner, dict):
            raise UsageError(f"{source}: {key!r} is not a dict")
        target[key] = _set_nested(dict(inner), rest, value, source)
    else:
        target[key] = value
    return target



def parse_value(text: str) -> Any:
    """A Python literal where ``text`` is one (``3``, ``1e-4``, ``True``, ``None``, ``[1, 2]``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def smoke_version(preset: Preset) -> Preset:
    """The preset with its ``smoke`` overrides applied (few hundred images, small images, 1-2 epochs)."""
    values = dict(preset.smoke)
    if "model_args" in values:
        values["model_args"] = {**preset.model_args, **values["model_args"]}
    return dataclasses.replace(preset, **values)


def with_profile(preset: Preset, profile: str) -> Preset:
    """The preset with its profile ``profile`` applied (checked like ``--set``) and recorded in ``profile``."""
    if profile not in preset.profiles:
        known = ", ".join(preset.profiles) or "none"
        raise UnknownNameError(f"preset {preset.name} has no profile {profile!r}{suggest(profile, preset.profiles)}; "
                               f"its profiles: {known}")
    values = dict(preset.profiles[profile])
    if "model_args" in values:
        values["model_args"] = {**preset.model_args, **values["model_args"]}
    for key, value in values.items():
        check_field(key, value, f"profile {profile!r} of {preset.name}")
    return check_consistent(dataclasses.replace(preset, **values, profile=profile), f"profile {profile!r}")


def resolve(name: str, *, smoke: bool = False, profile: str | None = None, overrides=()) -> Preset:
    """Preset ``name`` with its profile, then ``--smoke`` (whose sizes win), then ``--set`` applied."""
    preset = get_preset(name)
    if profile is not None:
        preset = with_profile(preset, profile)
    if smoke:
        preset = smoke_version(preset)
    return apply_overrides(preset, list(overrides or ()))


# Builder arguments the runner sets itself (from image_size and the task groups).
RUN_SET_ARGUMENTS = ("input_shape", "task", "tasks", "num_classes", "num_age_groups")


def check_model_args(preset: Preset) -> None:
    """Refuse (``UsageError``) an unregistered ``model`` or a ``model_args`` key its builder does not take.

    Imports the model registry, hence TensorFlow: call it at the start of a run, before anything
    is written. An ensemble's builder also takes its members' arguments (the registry's
    ``defaults_from``); a builder taking any ``**kwargs`` without saying whose accepts every key.
    """
    from agegender_tf import models

    if preset.model not in models.available():
        raise UsageError(f"preset {preset.name}: unknown model {preset.model!r}"
                         f"{suggest(preset.model, models.available())}"
                         f"; registered models: {', '.join(models.available())}")
    model = models.entry(preset.model)
    parameters = inspect.signature(model.builder).parameters
    takes_any = model.defaults_from is None and any(p.kind is inspect.Parameter.VAR_KEYWORD
                                                      for p in parameters.values())
    names = [n for n in model.arguments() if n not in RUN_SET_ARGUMENTS]
    for key in preset.model_args:
        if key in RUN_SET_ARGUMENTS:
            raise UsageError(f"model_args.{key} is set by the run itself (from image_size and task_groups); "
                             "set those fields instead")
        if key not in names and not takes_any:
            raise UsageError(f"model_args.{key}: builder {preset.model!r} takes no argument {key!r}"
                             f"{suggest(key, names)}; it takes {', '.join(names)}")
    if preset.ensemble_loss and not model.is_ensemble:
        raise UsageError(f"ensemble_loss={preset.ensemble_loss!r} needs an ensemble; builder {preset.model!r} "
                         "builds one network")

