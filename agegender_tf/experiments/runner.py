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

``run`` is the whole of it in one call (the CLI's). The same run, step by step, as the notebooks take it:
``start`` (the folder), ``plans.load_data``, then for a network ``network_data`` (its tf.data pipelines),
``build_network``, ``compile_network`` (the paper's optimizer), ``fit_network`` (the paper's callbacks), and
``finish`` (every other network of the preset, the test scores, ``report.json``): the same folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from agegender_tf.experiments import predictions, report, rundir, workers
from agegender_tf.experiments.folds import run_fold_protocol
from agegender_tf.experiments.plans import NetworkPlan, load_data, make_datasets, network_plans, preset_binning
from agegender_tf.experiments.predictions import TrainedNetwork
from agegender_tf.experiments.presets import Preset
from agegender_tf.experiments.train import (
    DONE_FILE,
    HISTORY_FILE,
    compile_model,
    distribution_record,
    fit_model,
    global_batch_size,
    load_finished,
    make_strategy,
    set_seed,
    uses_schedule,
)
from agegender_tf.experiments.workers import Worker
from agegender_tf.models.baselines import BASELINES, baseline_predictions


# ------------------------------------------------------------------------------------- one network
@dataclass(frozen=True)
class NetworkData:
    """The faces one network trains and is scored on (``network_data``)."""

    datasets: dict  # part -> tf.data.Dataset of (image, targets) batches; "train" augmented and shuffled
    usable: dict  # part -> manifest rows that carry every label the network's outputs need
    dropped: dict  # part -> {reason: rows dropped for want of a label}


def network_data(preset: Preset, plan: NetworkPlan, parts, seed: int, worker: Worker = Worker()) -> NetworkData:
    """The rows of each part ``plan``'s outputs can use and their tf.data pipelines (``plans.make_datasets``)."""
    from agegender_tf.pipelines.targets import usable_rows

    binning = preset_binning(preset)
    usable, dropped = {}, {}
    for name, frame in parts.items():
        usable[name], dropped[name] = usable_rows(frame, outputs=plan.tasks, binning=binning)
    # The preset's batch is per replica (docs/distribute.md).
    batched = dataclasses.replace(preset, batch_size=global_batch_size(preset.batch_size))
    return NetworkData(make_datasets(batched, plan.augment, plan.tasks, usable, seed, binning, worker), usable, dropped)


def build_network(preset: Preset, plan: NetworkPlan, seed: int):
    """``plan``'s network, its weights drawn from ``seed``, under the preset's dtype policy."""
    set_seed(seed)
    return plan.build(preset.dtype_policy)


def compile_network(preset: Preset, plan: NetworkPlan, model, data: NetworkData):
    """``model`` compiled with the preset's optimizer and ``plan``'s losses, metrics and loss weights; return it
    and the arguments of ``fit_network``. An ensemble whose members train apart is compiled as its member
    training model (``members_fit``); ``best.keras`` then keeps the averaging ensemble."""
    from agegender_tf.pipelines.targets import class_weights

    binning = preset_binning(preset)
    fit = dict(train_data=data.datasets["train"], val_data=data.datasets["val"], loss=plan.loss,
               metrics=plan.metrics, loss_weights=plan.loss_weights,
               class_weight=(class_weights(data.usable["train"], plan.tasks, binning, preset.class_weight)
                             if preset.class_weight else None))
    if plan.per_member_loss:
        model, fit = members_fit(model, fit, plan.tasks)
    compile_model(model, optimizer=preset.optimizer, loss=fit.pop("loss"), metrics=fit.pop("metrics"),
                  loss_weights=fit.pop("loss_weights"))
    return model, fit


def fit_network(preset: Preset, plan: NetworkPlan, model, fit: dict, out_dir, verbose: int = 2,
                worker: Worker = Worker()) -> pd.DataFrame:
    """Fit the compiled ``model`` (``compile_network``) with the preset's callbacks and epochs into the run
    folder ``out_dir`` (``train/<network>/``: best checkpoint, history, resume); return its history. A
    network the folder holds finished (its ``done.json``) is not fitted again: its history is returned."""
    run_dir = Path(out_dir) / "train" / plan.run.folder
    if worker.is_chief and (run_dir / DONE_FILE).is_file():
        return pd.read_csv(run_dir / HISTORY_FILE)
    own_dir = worker.folder(out_dir) / "train" / plan.run.folder  # run_dir on the chief
    return fit_model(model, callbacks=preset.callbacks, epochs=preset.epochs, out_dir=own_dir, verbose=verbose,
                     schedule=uses_schedule(preset.optimizer), chief_dir=None if worker.is_chief else run_dir, **fit)


def train_one(preset: Preset, plan: NetworkPlan, parts, out_dir: Path, seed: int, verbose: int = 2, *,
              strategy=None, worker: Worker = Worker()):
    """Train (or load, if finished before) the network of ``plan`` under ``strategy`` (None: the current one);
    return (network, its ``NetworkData``). A worker other than the chief (``workers``) trains with its files
    in its own folder and returns no network (None): the chief alone scores it."""
    data = network_data(preset, plan, parts, seed, worker)
    run_dir = Path(out_dir) / "train" / plan.run.folder
    if worker.is_chief:
        from agegender_tf.model_card import write_model_card  # what `agegender predict` needs, beside best.keras

        write_model_card(run_dir, preset, plan.run.name, plan.builder, plan.kwargs, plan.tasks, plan.augment,
                         train_faces=len(data.usable["train"]))
        model = load_finished(run_dir)
        if model is not None:
            return TrainedNetwork(plan.run.name, plan.tasks, model, plan.augment, preset.image_size), data
    elif (run_dir / DONE_FILE).exists():  # the chief's mark: every worker skips what the chief finished
        return None, data
    # Over several workers only the training is distributed: the chief then scores the network alone.
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model, fit = compile_network(preset, plan, build_network(preset, plan, seed), data)
        fit_network(preset, plan, model, fit, out_dir, verbose, worker)
    if not worker.is_chief:
        workers.clear(worker.folder(out_dir) / "train" / plan.run.folder)
        return None, data
    model = rundir.load_keras_model(run_dir / "best.keras")
    return TrainedNetwork(plan.run.name, plan.tasks, model, plan.augment, preset.image_size), data


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


def start(preset: Preset, data_root: str | Path, out_dir: str | Path, *, seed: int = 42, smoke: bool = False,
          overwrite: bool = False) -> Path:
    """The first step of ``run`` taken alone (the notebooks): check or empty ``out_dir`` for this run
    (``rundir.prepare``, the default strategy) and write ``preset.json``; return the folder."""
    record = rundir.fingerprint(preset, seed=seed, smoke=smoke, data_root=data_root, profile=preset.profile,
                                distribution=_one_process(preset))
    with rundir.locked(out_dir):
        rundir.prepare(out_dir, record, overwrite)
        _start_folder(preset, Path(out_dir))
    return Path(out_dir)


def finish(preset: Preset, data_root: str | Path, out_dir: str | Path, parts, counts: dict, *, seed: int = 42,
           smoke: bool = False, verbose: int = 2) -> dict:
    """The last step of ``run`` taken alone, after ``start``: train every network of the preset not yet
    finished in ``out_dir`` (those fitted step by step are loaded), score them on the test faces and write
    ``predictions.csv``, ``history.csv``, the figures and ``report.json``; return the report."""
    out_dir = Path(out_dir)
    started = (out_dir / "preset.json").stat().st_mtime  # when ``start`` began the folder
    with rundir.locked(out_dir):
        return _score_and_report(preset, data_root, out_dir, parts, counts, seed=seed, smoke=smoke, verbose=verbose,
                                 distribution=_one_process(preset), started=started)


def _one_process(preset: Preset) -> dict:
    """The distribution record of a run in this process alone, on the default strategy (the steps')."""
    return distribution_record(make_strategy("default"), "default", preset.batch_size)


def _start_folder(preset: Preset, out_dir: Path) -> None:
    """``report.json`` goes first (a folder without it is unfinished); ``preset.json`` records the preset."""
    (out_dir / rundir.REPORT_FILE).unlink(missing_ok=True)
    rundir.write_json_atomic(out_dir / "preset.json", preset.to_dict())


def _run_in_folder(preset: Preset, data_root, out_dir: Path, *, seed: int, smoke: bool, verbose: int,
                   distribution: dict, strategy=None, worker: Worker = Worker()) -> dict:
    """``run`` inside its locked, checked folder: ``report.json`` goes first and comes back last."""
    if worker.is_chief:
        _start_folder(preset, out_dir)
    started = time.time()
    set_seed(seed)
    parts, counts = load_data(preset, data_root, seed)
    if not worker.is_chief:
        for plan in network_plans(preset):
            train_one(preset, plan, parts, out_dir, seed, verbose, strategy=strategy, worker=worker)
        return {"worker": worker.index, "workers": worker.count}
    return _score_and_report(preset, data_root, out_dir, parts, counts, seed=seed, smoke=smoke, verbose=verbose,
                             distribution=distribution, started=started, strategy=strategy, worker=worker)


def _score_and_report(preset: Preset, data_root, out_dir: Path, parts, counts: dict, *, seed: int, smoke: bool,
                      verbose: int, distribution: dict, started: float, strategy=None,
                      worker: Worker = Worker()) -> dict:
    """Train (or load) every network of the preset, score each and the baselines on the test faces, write the
    tables and the report (the chief)."""
    rundir.write_csv_atomic(pd.DataFrame({"age": parts["train"]["age"].to_numpy()}), out_dir / "train_ages.csv")
    binning = preset_binning(preset)
    counts = dict(counts)
    tables, dropped_for_training, trained, main_networks = [], {}, {}, []
    for plan in network_plans(preset):
        is_main = not plan.run.comparison
        network, data = train_one(preset, plan, parts, out_dir, seed, verbose, strategy=strategy, worker=worker)
        dropped_for_training[plan.run.folder] = data.dropped
        trained[plan.run.folder] = int(network.model.count_params())
        tables += predictions.test_tables(network, data.datasets["test"], data.usable["test"], binning,
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


