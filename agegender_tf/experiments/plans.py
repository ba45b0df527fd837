"""What a run of a preset builds and feeds (DESIGN.md, "Experiments"): the preset resolved, its data read,
framed and split, and for each network its builder, arguments, augmentation, losses and tf.data pipelines
(``network_plan``). ``runner`` trains and scores from these plans; the benchmarks and the notebooks read
the same plans, so every path builds the same network from the same data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from agegender_tf.binning import AgeBinning, get_binning
from agegender_tf.errors import SplitLeakError, UsageError
from agegender_tf.experiments import presets, workers
from agegender_tf.experiments.presets import Preset, get_augment_preset
from agegender_tf.experiments.rundir import NetworkRun
from agegender_tf.experiments.train import dtype_policy
from agegender_tf.experiments.workers import Worker
from agegender_tf.models.heads import losses_and_metrics
from agegender_tf.pipelines.spec import AugmentSpec


def resolve_preset(name: str, smoke: bool = False, overrides=(), profile: str | None = None) -> Preset:
    """The preset ``name`` with its ``--profile``, ``--smoke`` then ``--set`` overrides applied."""
    return presets.resolve(name, smoke=smoke, profile=profile, overrides=overrides)


def preset_binning(preset: Preset) -> AgeBinning | None:
    """The preset's age binning (None when it has none)."""
    return get_binning(preset.binning) if preset.binning else None


# ---------------------------------------------------------------------------------------------- data
def load_data(preset: Preset, data_root: str | Path, seed: int) -> tuple[dict[str, pd.DataFrame], dict]:
    """Read the preset's dataset and split it into train/val/test manifests; return them and the counts."""
    from agegender_tf.data import read_dataset, splits

    root = Path(data_root) / preset.dataset
    if not root.exists():
        raise FileNotFoundError(f"dataset folder {root} does not exist (--data-root should hold {preset.dataset}/)")
    result = read_dataset(preset.dataset, root)
    manifest = result.manifest
    counts = {"read": int(len(manifest)), "dropped_by_reader": result.dropped_counts()}
    if preset.face_crop:
        manifest, counts["face_boxes"] = face_boxes(preset, manifest)
    parts = splits.split_manifest(manifest, preset.split, preset.dataset, preset_binning(preset), seed)
    counts["not_in_split"] = int(len(manifest) - sum(len(frame) for frame in parts.values()))
    counts["split_sizes_before_limit"] = {name: int(len(frame)) for name, frame in parts.items()}
    parts = splits.limit_parts(parts, preset.max_train_images, seed)
    counts.update({name: int(len(frame)) for name, frame in parts.items()})
    counts["leak_check"] = splits.leak_check(parts)
    if not counts["leak_check"]["ok"]:
        raise SplitLeakError(f"the {preset.dataset} split leaks across its parts (subjects, copies or "
                             f"near-duplicates): {counts['leak_check']['boundaries']}")
    return parts, counts


def face_boxes(preset: Preset, manifest: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """``manifest`` with the preset's detector's box of every face (``data.face_boxes``) and the counts."""
    from agegender_tf.data.face_boxes import boxes_path, join_boxes

    detector = preset.face_crop["detector"]
    path = boxes_path(preset.dataset, detector)
    if not path.is_file():
        raise UsageError(f"{path} not found: framed training needs the detector's boxes "
                         f"(agegender detect-boxes {preset.dataset} --detector {detector} writes them)")
    return join_boxes(manifest, preset.dataset, detector, path)


def face_crop(preset: Preset):
    """The preset's ``FaceCrop`` (None without ``face_crop``): the detector's framing measured on the
    preset's dataset (``model_card.TRAINING_FRAMING``, the predictor's) and the preset's jitter."""
    if not preset.face_crop:
        return None
    from agegender_tf.model_card import TRAINING_FRAMING
    from agegender_tf.pipelines.framing import FaceCrop

    settings = dict(preset.face_crop)
    detector = settings.pop("detector")
    framing = TRAINING_FRAMING.get(preset.dataset, {}).get(detector)
    if framing is None:
        raise UsageError(f"no measured {detector} framing for {preset.dataset} (model_card.TRAINING_FRAMING)")
    return FaceCrop(framing.margin, framing.shift, **settings)


# -------------------------------------------------------------------------------------------- models
def model_kwargs(preset: Preset, tasks: tuple[str, ...], model_args: dict | None = None) -> dict:
    """Builder arguments of ``preset.model``: ``model_args`` (default: the preset's), the input shape
    and the arguments that choose its outputs (its task signature: ``registry.task_arguments``)."""
    from agegender_tf import models

    binning = preset_binning(preset)
    kwargs = dict(preset.model_args if model_args is None else model_args)
    kwargs["input_shape"] = (preset.image_size, preset.image_size, 3)
    kwargs.update(models.task_arguments(preset.model, tasks, binning.num_classes if binning else None))
    return kwargs


def augment_spec(preset: Preset, model_name: str, kwargs: dict):
    """The preset's augmentation for model ``model_name`` built with ``kwargs``: the model's preprocessing
    facts give the value mapping (e.g. ResNet50's preprocess_input) and the resize-then-crop geometry."""
    from agegender_tf import models

    facts = models.preprocessing(model_name, **kwargs)
    return get_augment_preset(preset.augment).with_model_facts(facts).replace(validation_split=0.0)


def make_datasets(preset, spec, tasks, parts, seed, binning, worker: Worker | None = None):
    """The tf.data pipeline of each part (``tfdata.make_dataset``): the training part augmented and shuffled;
    each part in memory or streamed from disk as the preset's ``pipeline`` says (default: by its size). Over
    several workers (``worker``), train and val each read this worker's files (``workers``), and the test set
    (scored by the chief alone) is whole."""
    from agegender_tf.pipelines.tfdata import make_dataset

    settings = preset.pipeline or {}
    common = dict(image_size=preset.image_size, batch_size=preset.batch_size, outputs=tuple(tasks), binning=binning,
                  face_crop=face_crop(preset), mode=settings.get("mode"), shuffle_buffer=settings.get("shuffle_buffer"))
    datasets = {}
    for name, frame in parts.items():
        if worker is not None and worker.several and name != "test":
            datasets[name] = workers.shard_options(make_dataset(frame, spec, training=name == "train", seed=seed,
                                                                shard=(worker.index, worker.count), **common))
        else:
            datasets[name] = make_dataset(frame, spec, training=name == "train", seed=seed, **common)
    return datasets


@dataclass(frozen=True)
class NetworkPlan:
    """How a run builds, feeds and fits one network of a preset (``network_plan``)."""

    run: NetworkRun
    builder: str  # the registered builder
    kwargs: dict  # its arguments (``model_kwargs``: the preset's, the input shape, the outputs)
    augment: AugmentSpec  # the preset's augmentation with the model's preprocessing facts
    loss: Any
    metrics: Any
    loss_weights: dict | None  # per output of a multi-output network (None: one output, or none given)
    per_member_loss: bool  # an ensemble whose members train on their own losses (``members_fit``)

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.run.task_group

    def build(self, policy: str | None = None):
        """The network, built under Keras dtype policy ``policy`` (None: float32)."""
        from agegender_tf import models

        with dtype_policy(policy):
            return models.build(self.builder, **self.kwargs)


def _network(preset: Preset, comparison: str | None) -> tuple[str, str, dict] | None:
    """(model name in reports, builder, builder arguments) of the preset's own model (``comparison`` None) or of
    a keras comparison: a registered model with its defaults, or a variant of the main builder (``vgg16``
    beside ``resnet50``); None when ``comparison`` is no network (a baseline, the members)."""
    from agegender_tf import models

    if comparison is None:
        return models.report_name(preset.model, preset.model_args), preset.model, dict(preset.model_args)
    variant = models.variant_args(preset.model, comparison, preset.model_args)
    if variant is not None:
        return comparison, preset.model, variant
    if comparison in models.available():
        return comparison, comparison, {}
    return None


def network_plan(preset: Preset, task_group, comparison: str | None = None) -> NetworkPlan:
    """The plan of one network of ``preset`` trained for the outputs ``task_group``: the preset's own model, or
    the keras comparison ``comparison`` of ``preset.comparisons``. ``train_one``, the benchmarks and the
    notebooks all take their builder arguments, augmentation, losses and loss weights from here."""
    from agegender_tf import models

    network = _network(preset, comparison)
    if network is None:
        raise ValueError(f"{comparison!r} is not a network the preset {preset.name} can train")
    name, builder, args = network
    tasks = tuple(task_group)
    kwargs = model_kwargs(dataclasses.replace(preset, model=builder), tasks, args)
    loss, metrics = losses_and_metrics(tasks)
    weights = {t: preset.loss_weights[t] for t in tasks if t in preset.loss_weights} if len(tasks) > 1 else None
    return NetworkPlan(NetworkRun(name, tasks, comparison is not None), builder, kwargs,
                       augment_spec(preset, builder, kwargs), loss, metrics, weights or None,
                       preset.trains_members_apart and models.entry(builder).is_ensemble)


def network_plans(preset: Preset) -> list[NetworkPlan]:
    """Every network a run of ``preset`` trains, in order: its own model on each task group, then each keras
    comparison on the first task group."""
    plans = [network_plan(preset, group) for group in preset.task_groups]
    return plans + [network_plan(preset, preset.task_groups[0], other) for other in preset.comparisons
                    if _network(preset, other) is not None]
