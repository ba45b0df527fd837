"""``agegender run``: one paper preset end to end (read, split, train, evaluate, report, figures).

Layout of a run folder ``OUT``:

- ``fingerprint.json`` what made the folder (``rundir.fingerprint``): a rerun with other settings is
  refused unless ``--overwrite``; ``.lock`` held (``fcntl.flock``) while a run writes the folder
- ``preset.json`` the preset as run (after ``--smoke`` and ``--set``)
- ``train/<run>/`` one folder per trained network (``network_plan``; named by ``rundir.NetworkRun.folder``):
  ``history.csv``, ``best.keras`` (best val_loss), ``backup/`` while it is unfinished, ``done.json`` once it
  finished (a rerun loads it instead)
- ``history.csv`` every network's history with a ``run`` column; ``predictions.csv`` (``model``,
  ``path`` relative to the data root, ``<task>_true``, ``<task>_pred``); ``train_ages.csv``; ``report.json``;
  ``classification_report.txt``; ``figures/*.png``; ``report.json`` is written last (atomically), so a
  folder without it is unfinished

A killed run started again with the same command resumes: finished networks are loaded from their
``best.keras``, the interrupted one continues from its last finished epoch (``train.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from agegender_tf.binning import AgeBinning, get_binning
from agegender_tf.errors import SplitLeakError, UsageError
from agegender_tf.experiments import predictions, presets, report, rundir, workers
from agegender_tf.experiments.folds import run_fold_protocol
from agegender_tf.experiments.predictions import TrainedNetwork
from agegender_tf.experiments.presets import Preset, get_augment_preset
from agegender_tf.experiments.rundir import NetworkRun
from agegender_tf.experiments.train import (
    DONE_FILE,
    distribution_record,
    dtype_policy,
    global_batch_size,
    load_finished,
    make_strategy,
    set_seed,
    train,
)
from agegender_tf.experiments.workers import Worker
from agegender_tf.models.baselines import BASELINES, baseline_predictions
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


def train_one(preset: Preset, plan: NetworkPlan, parts, out_dir: Path, seed: int, verbose: int = 2, *,
              strategy=None, worker: Worker = Worker()):
    """Train (or load, if finished before) the network of ``plan`` under ``strategy`` (None: the current one);
    return (network, datasets, usable parts, dropped). A worker other than the chief (``workers``) trains
    with its files in its own folder and returns no network (None): the chief alone scores it."""
    from agegender_tf.pipelines.targets import class_weights, usable_rows

    binning = preset_binning(preset)
    tasks = plan.tasks
    usable, dropped = {}, {}
    for name, frame in parts.items():
        usable[name], dropped[name] = usable_rows(frame, outputs=tasks, binning=binning)
    # The preset's batch is per replica (docs/distribute.md).
    batched = dataclasses.replace(preset, batch_size=global_batch_size(preset.batch_size))
    datasets = make_datasets(batched, plan.augment, tasks, usable, seed, binning, worker)
    run_dir = out_dir / "train" / plan.run.folder
    own_dir = worker.folder(out_dir) / "train" / plan.run.folder  # run_dir on the chief
    if worker.is_chief:
        from agegender_tf.model_card import write_model_card  # what `agegender predict` needs, beside best.keras

        write_model_card(run_dir, preset, plan.run.name, plan.builder, plan.kwargs, tasks, plan.augment,
                         train_faces=len(usable["train"]))
        model = load_finished(run_dir)
        if model is not None:
            return (TrainedNetwork(plan.run.name, tasks, model, plan.augment, preset.image_size), datasets, usable,
                    dropped)
    elif (run_dir / DONE_FILE).exists():  # the chief's mark: every worker skips what the chief finished
        return None, datasets, usable, dropped
    # Over several workers only the training is distributed: the chief then scores the network alone.
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        set_seed(seed)
        model = plan.build(preset.dtype_policy)
        class_weight = (class_weights(usable["train"], tasks, binning, preset.class_weight)
                        if preset.class_weight else None)
        fit = dict(train_data=datasets["train"], val_data=datasets["val"], loss=plan.loss, metrics=plan.metrics,
                   loss_weights=plan.loss_weights)
        if plan.per_member_loss:
            model, fit = members_fit(model, fit, tasks)
        train(model, optimizer=preset.optimizer, callbacks=preset.callbacks, epochs=preset.epochs, out_dir=own_dir,
              class_weight=class_weight, verbose=verbose, chief_dir=None if worker.is_chief else run_dir, **fit)
    if not worker.is_chief:
        workers.clear(own_dir)
        return None, datasets, usable, dropped
    model = rundir.load_keras_model(run_dir / "best.keras")
    return TrainedNetwork(plan.run.name, tasks, model, plan.augment, preset.image_size), datasets, usable, dropped


def members_fit(ensemble_model, fit: dict, tasks):
    """``ensemble_loss="members"``: the model and ``train`` arguments that fit each member of
    ``ensemble_model`` on its own outputs' losses (``cnn_rnn.member_training_model``).

    Every member output gets its task's loss and loss weight; the averaged outputs keep their loss and
    metrics at weight 0, so ``history.csv`` reports the ensemble as a jointly trained one does, while
    ``val_loss`` (early stopping, the checkpoint) is the members' sum. ``best.keras`` is then the
    averaging model over the best epoch's members (``finalize``).
    """
    from agegender_tf.models.cnn_rnn import ensemble, member_output_name, member_training_model, members_of

    tasks = tuple(tasks)
    if len(tasks) == 1:  # losses_and_metrics and the dataset use plain values for one output
        fit = {**fit, "loss": {tasks[0]: fit["loss"]}, "metrics": {tasks[0]: fit["metrics"]}}
        for part in ("train_data", "val_data"):
            fit[part] = fit[part].map(lambda x, y: (x, {tasks[0]: y}))
    training = member_training_model(ensemble_model)
    count = len(members_of(training))
    weights = fit["loss_weights"] or {t: 1.0 for t in tasks}
    loss, loss_weights = dict(fit["loss"]), {t: 0.0 for t in tasks}
    for index in range(count):
        for task in tasks:
            loss[member_output_name(task, index)] = fit["loss"][task]
            loss_weights[member_output_name(task, index)] = weights.get(task, 1.0)

    def copy_targets(x, y):
        return x, {**y, **{member_output_name(t, i): y[t] for i in range(count) for t in tasks}}

    fit = {**fit, "loss": loss, "loss_weights": loss_weights,
           "train_data": fit["train_data"].map(copy_targets), "val_data": fit["val_data"].map(copy_targets),
           "finalize": lambda trained: ensemble(members_of(trained), name=ensemble_model.name)}
    return training, fit


# ------------------------------------------------------------------------------------------- the run
def run(preset: Preset, data_root: str | Path, out_dir: str | Path, *, smoke: bool = False, seed: int = 42,
        verbose: int = 2, overwrite: bool = False, strategy: str = "default", cpu_replicas: int | None = None) -> dict:
    """Train and evaluate the resolved ``preset``; write the run folder (module docstring); return the report.

    ``preset`` is resolved once by the caller (``presets.resolve``: ``--profile``, ``--smoke``, ``--set``);
    ``smoke`` says whether ``--smoke`` was among them (the fingerprint and report record it; the profile is
    ``preset.profile``). The folder is locked for the run and must hold a run of the same fingerprint (or
    nothing): ``overwrite`` empties it first (``rundir.prepare``). ``strategy`` / ``cpu_replicas``: the
    ``tf.distribute`` strategy that builds, compiles and fits every network (``train.make_strategy``). Over
    several workers (``workers``) the chief checks and writes ``out_dir``; another worker trains beside it,
    writing only its own ``OUT/.workers/<i>``, and returns ``{"worker": i, "workers": n}``, no report.
    """
    if not isinstance(preset, Preset):
        raise TypeError(f"run takes a resolved Preset (presets.resolve(name, ...)), got {type(preset).__name__}")
    distributor = make_strategy(strategy, cpu_replicas)
    distribution = distribution_record(distributor, strategy, preset.batch_size)
    record = rundir.fingerprint(preset, seed=seed, smoke=smoke, data_root=data_root, profile=preset.profile,
                                distribution=distribution)
    worker = workers.worker_of(distributor)
    settings = dict(seed=seed, smoke=smoke, verbose=verbose, distribution=distribution)
    if not worker.several:
        with rundir.locked(out_dir), distributor.scope():
            rundir.prepare(out_dir, record, overwrite)
            return _run_in_folder(preset, data_root, Path(out_dir), **settings)
    # Several workers: only the training runs under the strategy (train_one); the chief scores alone.
    with rundir.locked(worker.folder(out_dir)):
        workers.prepare_together(distributor, worker, lambda: rundir.prepare(out_dir, record, overwrite))
        result = _run_in_folder(preset, data_root, Path(out_dir), **settings, strategy=distributor, worker=worker)
        workers.chief_agrees(distributor, worker, True)  # every worker ends with the chief's report
        return result


def _run_in_folder(preset: Preset, data_root, out_dir: Path, *, seed: int, smoke: bool, verbose: int,
                   distribution: dict, strategy=None, worker: Worker = Worker()) -> dict:
    """``run`` inside its locked, checked folder: ``report.json`` goes first and comes back last."""
    if worker.is_chief:
        (out_dir / rundir.REPORT_FILE).unlink(missing_ok=True)
        rundir.write_json_atomic(out_dir / "preset.json", preset.to_dict())
    started = time.time()
    set_seed(seed)
    parts, counts = load_data(preset, data_root, seed)
    if not worker.is_chief:
        for plan in network_plans(preset):
            train_one(preset, plan, parts, out_dir, seed, verbose, strategy=strategy, worker=worker)
        return {"worker": worker.index, "workers": worker.count}
    rundir.write_csv_atomic(pd.DataFrame({"age": parts["train"]["age"].to_numpy()}), out_dir / "train_ages.csv")

    binning = preset_binning(preset)
    tables, dropped_for_training, trained, main_networks = [], {}, {}, []
    for plan in network_plans(preset):
        is_main = not plan.run.comparison
        network, datasets, usable, dropped = train_one(preset, plan, parts, out_dir, seed, verbose,
                                                       strategy=strategy, worker=worker)
        dropped_for_training[plan.run.folder] = dropped
        trained[plan.run.folder] = int(network.model.count_params())
        tables += predictions.test_tables(network, datasets["test"], usable["test"], binning,
                                          members=preset.scores_members,
                                          oversample=is_main and preset.tta == "oversample",
                                          batch_size=preset.batch_size, seed=seed)
        if is_main:
            main_networks.append(network)
    baselines = [c for c in BASELINES if c in preset.comparisons]
    if baselines:
        tables.append(baseline_predictions(parts, preset.tasks, binning, seed, baselines))
    table = predictions.combine_tables(tables)
    table["path"] = predictions.relative_paths(table["path"], data_root)
    rundir.write_csv_atomic(table, out_dir / "predictions.csv")
    histories = [pd.read_csv(p).assign(run=p.parent.name) for p in sorted((out_dir / "train").glob("*/history.csv"))]
    rundir.write_csv_atomic(pd.concat(histories, ignore_index=True), out_dir / "history.csv")
    # Each network's fit time (its done.json), kept when a rerun reuses finished networks.
    training_seconds = {p.parent.name: json.loads(p.read_text()).get("seconds")
                        for p in sorted((out_dir / "train").glob(f"*/{DONE_FILE}"))}

    counts["dropped_for_training"] = dropped_for_training
    extra = (run_fold_protocol(preset.fold_protocol, main_networks, data_root, binning, preset.batch_size, seed)
             if preset.fold_protocol else {})
    result = report.write_report(preset, out_dir, table, counts=counts, seed=seed, smoke=smoke,
                                 seconds=time.time() - started, parameters=trained, extra=extra,
                                 distribution=distribution, data_root=data_root, training_seconds=training_seconds)
    return result


