"""The model registry (timm-style): each builder by name, with its preprocessing facts and task signature.

Builder modules call ``register`` at import; ``agegender_tf.models`` imports them all, so the
registry is full once that package is imported. This module imports no builder (no import cycle).

- **Task signature**: a ``"single"``-task builder takes ``task`` and ``num_classes`` (one output
  named after the task); a ``"multi"``-task builder takes ``tasks`` and ``num_age_groups`` (a dict of
  outputs). ``task_arguments`` gives the right ones, so callers need not know which is which.
- **Preprocessing facts** (like timm's ``pretrained_cfg``): ``mode`` (``spec.PREPROCESS_MODES``),
  optionally ``resize_to`` (the paper's load size for a resize-then-crop model, e.g. 256 for
  227 crops) and ``paper``. ``preprocessing`` adds ``input_size`` (H, W, 3), read from the
  builder's ``input_shape`` argument (its default, or the value it will be built with), and for a
  resize-then-crop model ``crop_size`` (= the input size) and ``resize_to`` scaled to that size.
  The input pipelines read these facts; nothing else states a model's size.
- **Variants**: a builder whose one argument selects a named network (``transfer``'s ``backbone``)
  records it with ``variant_arg`` and ``variants``; reports name such a model by its variant
  (``vgg16``, ``resnet50``), and a preset may compare variants (``comparisons=("vgg16",)``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from agegender_tf.pipelines.spec import PREPROCESS_MODES, scaled_load_size
from agegender_tf.tasks import check_tasks

TASK_SIGNATURES = ("single", "multi")
# The builder arguments each task signature takes.
_TASK_ARGUMENTS = {"single": ("task", "num_classes"), "multi": ("tasks", "num_age_groups")}


@dataclass(frozen=True)
class ModelEntry:
    """One registered builder and what the kit needs to know to call and feed it."""

    name: str
    builder: Callable[..., Any]
    preprocessing: dict | Callable[..., dict]
    task_signature: str
    variant_arg: str | None = None
    variants: tuple[str, ...] = ()
    defaults_from: str | None = None

    @property
    def is_ensemble(self) -> bool:
        """Whether the builder makes an ensemble of another registered builder's networks (``defaults_from``)."""
        return self.defaults_from is not None

    def arguments(self, kwargs: dict | None = None) -> dict:
        """The keyword arguments the builder runs with: its defaults (an ensemble's also its members',
        ``defaults_from``) updated with ``kwargs``."""
        values = entry(self.defaults_from).arguments() if self.defaults_from else {}
        for argument, parameter in inspect.signature(self.builder).parameters.items():
            if parameter.default is not inspect.Parameter.empty:
                values[argument] = parameter.default
        return {**values, **(kwargs or {})}


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, preprocessing: dict | Callable[..., dict], *, task_signature: str,
             variant_arg: str | None = None, variants: tuple[str, ...] = (), defaults_from: str | None = None):
    """Decorator registering a builder under ``name`` with its preprocessing facts and task signature.

    ``preprocessing`` is a dict, or a function of the builder's keyword arguments (all of them, the
    defaults filled in) returning one (e.g. ``transfer``'s mode depends on its ``backbone``).
    ``task_signature`` is ``"single"`` (``task``, ``num_classes``) or ``"multi"`` (``tasks``,
    ``num_age_groups``). ``defaults_from``
    names the registered builder whose defaults a ``**kwargs`` builder passes on (an ensemble's members).
    """
    if task_signature not in TASK_SIGNATURES:
        raise ValueError(f"{name}: task_signature must be one of {TASK_SIGNATURES}, got {task_signature!r}")

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is already registered")
        parameters = inspect.signature(builder).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        missing = [a for a in _TASK_ARGUMENTS[task_signature] + ("input_shape",) if a not in parameters]
        if missing and not takes_any:
            raise ValueError(f"{name}: a {task_signature}-task builder takes {missing}")
        if isinstance(preprocessing, dict):
            _check_facts(name, {**preprocessing, "input_size": (1, 1, 3)})
        _REGISTRY[name] = ModelEntry(name, builder, preprocessing, task_signature, variant_arg, tuple(variants),
                                     defaults_from)
        return builder

    return decorator


def _check_facts(name: str, facts: dict) -> dict:
    if facts.get("mode") not in PREPROCESS_MODES:
        raise ValueError(f"{name}: preprocessing mode must be one of {PREPROCESS_MODES}, got {facts.get('mode')!r}")
    size = facts.get("input_size")
    if size is None or len(size) != 3 or size[2] != 3:
        raise ValueError(f"{name}: preprocessing input_size must be (H, W, 3), got {size!r}")
    return facts


def available() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; KeyError naming the registered models otherwise."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def get_builder(name: str) -> Callable[..., Any]:
    """The builder function registered as ``name``."""
    return entry(name).builder


def build(name: str, /, **kwargs):
    """Build the registered model ``name`` with the given architecture settings (which may include ``name=``)."""
    return entry(name).builder(**kwargs)


def preprocessing(name: str, /, **kwargs) -> dict:
    """Preprocessing facts of model ``name`` built with the settings ``kwargs`` (module docstring).

    ``input_size`` is ``kwargs["input_shape"]`` or the builder's default; a resize-then-crop model
    crops its input size out of a load size keeping the paper's ratio (256/227 at 64 px loads 72).
    """
    model = entry(name)
    arguments = model.arguments(kwargs)
    facts = dict(model.preprocessing(**arguments) if callable(model.preprocessing) else model.preprocessing)
    default_size = tuple(model.arguments()["input_shape"])
    size = tuple(arguments["input_shape"])
    facts["input_size"] = size
    if facts.get("resize_to") is not None:
        paper_load = facts["resize_to"]
        paper_load = (paper_load, paper_load) if isinstance(paper_load, int) else tuple(paper_load)
        facts["crop_size"] = tuple(size[:2])
        facts["resize_to"] = scaled_load_size(size[:2], paper_load, default_size[:2])
    return _check_facts(name, facts)


def task_arguments(name: str, tasks, num_age_groups: int | None) -> dict:
    """The builder arguments that choose its outputs: ``task``/``num_classes`` or ``tasks``/``num_age_groups``."""
    tasks = check_tasks(tasks)
    if entry(name).task_signature == "multi":
        return {"tasks": tasks, "num_age_groups": num_age_groups}
    if len(tasks) != 1:
        raise ValueError(f"model {name!r} has one output; it cannot be built for the tasks {tasks}")
    return {"task": tasks[0], "num_classes": num_age_groups if tasks[0] == "age_group" else None}


def report_name(name: str, model_args: dict | None = None) -> str:
    """The name reports give model ``name`` built with ``model_args``: its variant, else its registered name."""
    model = entry(name)
    if model.variant_arg is None:
        return name
    return str(model.arguments(model_args)[model.variant_arg])


def variant_args(name: str, variant: str, model_args: dict) -> dict | None:
    """``model_args`` with ``name``'s variant argument set to ``variant``; None if ``variant`` is not one of it."""
    model = entry(name)
    if model.variant_arg is None or variant not in model.variants:
        return None
    return {**model_args, model.variant_arg: variant}
