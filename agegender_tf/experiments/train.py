"""Training (DESIGN.md, "Training"): ``model.fit`` with the paper's callbacks, plus resume.

Callbacks as the papers use them: EarlyStopping with patience (paper 003 sec. 4.3: 2-3 epochs),
ModelCheckpoint of the best validation loss (paper 000 sec. V, paper 003 sec. 3.6), ReduceLROnPlateau
(paper 000 sec. V: lower the rate after 10 epochs without improvement), and the optimizers: SGD
1e-3 -> 1e-4 after 10k iterations (paper 000 sec. VII, Levi-Hassner), Adam 1e-3 (paper 003 sec. 4.2),
Nadam 1e-3 (paper 004 sec. 7.1). ``BackupAndRestore`` makes a killed run, started again with the same
command, resume from its last finished epoch; ``CSVLogger`` then appends to ``history.csv``. A finished
network is marked (``done.json``) before its backup is removed, so a kill in between loses nothing. Every
file is written whole (``checkpoints``); a full disk is one line (``errors.DiskFull``) and the rerun resumes.

Scaling out (DESIGN.md, "Scaling out"; ``docs/distribute.md``): ``make_strategy`` returns the
``tf.distribute`` strategy of ``--strategy``; ``--cpu-replicas N`` first splits the CPU into N logical
devices so that MirroredStrategy can be exercised without GPUs. The preset's batch size is per replica.
Over several workers (``workers``) a worker other than the chief trains with ``chief_dir``: it writes its
files to its own temporary folder and resumes from the chief's backup.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from pathlib import Path

import keras
import pandas as pd

from agegender_tf.errors import UsageError
from agegender_tf.experiments.checkpoints import (
    RERUN,
    WholeBackupAndRestore,
    WholeCSVLogger,
    WholeModelCheckpoint,
    remove_temporaries,
    reporting_disk_full,
    save_model_atomic,
    variables_bytes,
)
from agegender_tf.experiments.presets import OPTIMIZERS
from agegender_tf.experiments.rundir import load_keras_model, write_json_atomic

HISTORY_FILE = "history.csv"
BEST_MODEL_FILE = "best.keras"
BACKUP_DIR = "backup"
DONE_FILE = "done.json"
# Seconds of fit time of the epochs finished so far, across resumed runs (done.json's "seconds" sums them).
ELAPSED_FILE = "elapsed.json"
STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def progress_verbosity(quiet: bool = False, stream=None) -> int:
    """Keras ``verbose`` for ``fit``: 0 with ``--quiet`` (CI), 1 (a per-step bar with ETA) on a terminal,
    2 (one line per epoch) when the output is a log file or pipe."""
    if quiet:
        return 0
    stream = sys.stdout if stream is None else stream
    return 1 if getattr(stream, "isatty", lambda: False)() else 2


def set_seed(seed: int | None, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow; ``deterministic`` also turns on op determinism (CPU bit-identical)."""
    if seed is None:
        return
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def dtype_policy(name: str | None):
    """Build networks under Keras dtype policy ``name`` (None: float32), then restore the global policy.

    A layer keeps the policy it was built with (its compute dtype is saved in ``best.keras``); the heads
    stay float32 (``models.heads``), and ``compile`` adds loss scaling itself under ``mixed_float16``."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(name or "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def make_optimizer(spec: dict) -> keras.optimizers.Optimizer:
    """Optimizer from a preset's ``optimizer`` dict: ``name`` (one of ``presets.OPTIMIZERS``), ``learning_rate``,
    optional ``momentum`` (SGD) and a step decay ``step_at_iteration`` -> ``step_to``."""

    spec = dict(spec)
    name = spec.pop("name").lower()
    rate = spec.pop("learning_rate")
    step_at, step_to = spec.pop("step_at_iteration", None), spec.pop("step_to", None)
    if step_at is not None:
        rate = keras.optimizers.schedules.PiecewiseConstantDecay([int(step_at)], [float(rate), float(step_to)])
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return getattr(keras.optimizers, OPTIMIZERS[name])(learning_rate=rate, **spec)


class TimeLimit(keras.callbacks.Callback):
    """Stop training at the end of the first epoch that ends past ``minutes`` of wall time.

    Lets a run use "the largest scale this machine allows" in a fixed time; the epochs it ran are
    in ``history.csv`` and the limit in the report's protocol.
    """

    def __init__(self, minutes: float):
        super().__init__()
        self.minutes = float(minutes)
        self.stopped_at_epoch = None

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self._start > 60 * self.minutes:
            self.model.stop_training = True
            self.stopped_at_epoch = epoch


class FitClock(keras.callbacks.Callback):
    """Writes ``elapsed.json`` after each epoch: the seconds of this run's finished epochs plus those of the
    runs it resumes (an epoch cut short by a kill is not counted), so a resumed network's fit time is whole."""

    clock = staticmethod(time.monotonic)

    def __init__(self, out_dir: str | Path):
        super().__init__()
        self.path = Path(out_dir) / ELAPSED_FILE
        self.before = float(json.loads(self.path.read_text())["seconds"]) if self.path.exists() else 0.0
        self.seconds = self.before

    def on_train_begin(self, logs=None):
        self._start = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = self.before + self.clock() - self._start
        write_json_atomic(self.path, {"seconds": round(self.seconds, 1)})


def make_callbacks(spec: dict, out_dir: str | Path, uses_schedule: bool = False,
                   chief_dir: str | Path | None = None) -> list[keras.callbacks.Callback]:
    """The preset's callbacks (``early_stopping``, ``reduce_lr``, ``time_limit``: {"minutes": m}) plus
    the best-val_loss checkpoint, BackupAndRestore and CSVLogger (appending), each writing whole files.

    ``chief_dir`` (a worker other than the chief): restore from the chief's backup and take the best
    val_loss so far from its history, so that every worker saves at the same epochs (a save is a step all
    the workers take together)."""
    out_dir = Path(out_dir)
    history_path = Path(chief_dir or out_dir) / HISTORY_FILE
    best_so_far = None
    if history_path.exists() and history_path.stat().st_size > 0:
        previous = pd.read_csv(history_path)
        if "val_loss" in previous and previous["val_loss"].notna().any():
            best_so_far = float(previous["val_loss"].min())
    # Each file is written whole (``checkpoints``), in this order at an epoch's end: a write that fails (a
    # full disk) leaves the backup and history.csv at the epoch before, so the rerun repeats that epoch.
    callbacks: list[keras.callbacks.Callback] = [
        WholeModelCheckpoint(str(out_dir / BEST_MODEL_FILE), monitor="val_loss", save_best_only=True,
                             initial_value_threshold=best_so_far),
        # ``train`` removes the backup itself, after ``done.json`` marks the network finished.
        WholeBackupAndRestore(str(out_dir / BACKUP_DIR), save_freq="epoch", delete_checkpoint=False,
                              restore_dir=str(Path(chief_dir) / BACKUP_DIR) if chief_dir else None),
        WholeCSVLogger(str(out_dir / HISTORY_FILE), append=True),
    ]
    if "early_stopping" in spec:
        callbacks.append(keras.callbacks.EarlyStopping(**spec["early_stopping"]))
    if "time_limit" in spec:
        callbacks.append(TimeLimit(**spec["time_limit"]))
    if "reduce_lr" in spec and not uses_schedule:
        # A LearningRateSchedule owns the rate; ReduceLROnPlateau could not set it.
        callbacks.append(keras.callbacks.ReduceLROnPlateau(**spec["reduce_lr"]))
    return callbacks


def resuming(out_dir: str | Path) -> bool:
    """Whether ``out_dir`` holds the backup of an interrupted run."""
    return (Path(out_dir) / BACKUP_DIR).is_dir() and any((Path(out_dir) / BACKUP_DIR).iterdir())


def remove_backup(out_dir: str | Path) -> None:
    """Delete the BackupAndRestore backup of a network that ``done.json`` marks finished."""
    shutil.rmtree(Path(out_dir) / BACKUP_DIR, ignore_errors=True)


def load_finished(out_dir: str | Path):
    """The best model of a network marked finished in ``out_dir`` (removing a leftover backup), else None."""
    out_dir = Path(out_dir)
    if not (out_dir / DONE_FILE).exists():
        return None
    remove_backup(out_dir)
    return load_keras_model(out_dir / BEST_MODEL_FILE)


def build_before_fit(model: keras.Model, dataset) -> None:
    """Create a compiled model's optimizer and metric variables from ``dataset``'s element spec, as Keras
    does itself under a ``tf.distribute`` strategy. Otherwise ``fit`` creates them while tracing the train
    step, and TensorFlow then traces that step a second time (about half of a short GRA_Net run)."""
    if getattr(model, "_distribute_strategy", None) is not None or not hasattr(model, "_symbolic_build"):
        return  # fit builds them first (or a Keras without this hook: two traces, same training)
    model._symbolic_build(data_batch=dataset.element_spec[:2])


def compile_model(model: keras.Model, *, optimizer: dict, loss, metrics=None, loss_weights=None) -> keras.Model:
    """``model.compile`` with the preset's optimizer (``make_optimizer``), losses and metrics; returns ``model``."""
    model.compile(optimizer=make_optimizer(optimizer), loss=loss, metrics=metrics, loss_weights=loss_weights)
    return model


def uses_schedule(optimizer: dict) -> bool:
    """Whether the preset's ``optimizer`` sets its rate by a schedule (which ReduceLROnPlateau could not set)."""
    return "step_at_iteration" in optimizer


def fit_model(model: keras.Model, train_data, val_data, *, callbacks: dict, epochs: int, out_dir,
              schedule: bool = False, class_weight=None, extra_callbacks=(), verbose: int = 2, finalize=None,
              chief_dir=None) -> pd.DataFrame:
    """``model.fit`` of a compiled ``model`` with the preset's ``callbacks`` (``make_callbacks``) into
    ``out_dir``; return the whole history (all runs of this ``out_dir``) as a DataFrame. ``schedule``: the
    optimizer's rate follows a schedule (``uses_schedule``).

    A fresh run (no backup in ``out_dir``) starts a new ``history.csv``; a run whose backup exists
    resumes from the epoch after the last one it finished. When ``fit`` returns, ``done.json`` (seconds of
    fit over every run of it: ``FitClock``, parameters, epochs) is written first and the backup removed
    after it. ``class_weight`` (one-output networks) weights the training loss per class
    (``targets.class_weights``); validation losses stay unweighted. ``finalize`` maps the best checkpoint's
    model to the one ``best.keras`` keeps (e.g. the averaging ensemble of member-trained networks), before
    ``done.json``; it must accept its own output too (a resumed run may find ``best.keras`` finalized).
    ``chief_dir``: this is a worker other than the chief (``workers``), ``out_dir`` its temporary folder
    (emptied first) and ``chief_dir`` the chief's folder of the network, whose backup it resumes from.
    """
    out_dir = Path(out_dir)
    if chief_dir is not None:
        shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_temporaries(out_dir)  # of writes a kill cut short; the files they were to replace are whole
    if chief_dir is None and not resuming(out_dir):
        for stale in (out_dir / HISTORY_FILE, out_dir / BEST_MODEL_FILE, out_dir / DONE_FILE, out_dir / ELAPSED_FILE):
            stale.unlink(missing_ok=True)
        shutil.rmtree(out_dir / BACKUP_DIR, ignore_errors=True)  # an empty backup folder
    clock = FitClock(out_dir)
    build_before_fit(model, train_data)
    # The pipeline shuffles (seeded); fit's own shuffle only warns on a tf.data.Dataset.
    best = out_dir / BEST_MODEL_FILE
    with reporting_disk_full(best, lambda: best.stat().st_size if best.is_file() else variables_bytes(model),
                             f"the size of {BEST_MODEL_FILE}", RERUN):
        # The clock after the files: an epoch whose files failed is not counted (the rerun repeats it).
        model.fit(train_data, validation_data=val_data, epochs=int(epochs), shuffle=False, class_weight=class_weight,
                  callbacks=[*make_callbacks(callbacks, out_dir, schedule, chief_dir), clock,
                             *extra_callbacks],
                  verbose=verbose)
        history = pd.read_csv(out_dir / HISTORY_FILE)
        if finalize is not None:
            save_model_atomic(finalize(load_keras_model(best)), best)
        write_json_atomic(out_dir / DONE_FILE, {"seconds": round(clock.seconds, 1),
                                                "params": int(model.count_params()), "epochs": int(len(history))})
    remove_backup(out_dir)
    return history


def train(model: keras.Model, train_data, val_data, *, optimizer: dict, callbacks: dict, epochs: int, out_dir,
          loss, metrics=None, loss_weights=None, **fit) -> pd.DataFrame:
    """``compile_model`` then ``fit_model`` (its keyword arguments ``fit``); return the whole history."""
    compile_model(model, optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights)
    return fit_model(model, train_data, val_data, callbacks=callbacks, epochs=epochs, out_dir=out_dir,
                     schedule=uses_schedule(optimizer), **fit)


# ------------------------------------------------------------------------------------ tf.distribute
def split_cpu(replicas: int) -> None:
    """Split the CPU into ``replicas`` logical devices (before TensorFlow initialises its devices)."""
    import tensorflow as tf

    if replicas < 1:
        raise UsageError(f"--cpu-replicas must be at least 1, got {replicas}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == replicas:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError:
        raise UsageError(f"--cpu-replicas {replicas}: TensorFlow has already started with "
                         f"{len(tf.config.list_logical_devices('CPU'))} CPU device(s); split the CPU before "
                         "anything else uses TensorFlow (a fresh process)") from None


def make_strategy(name: str = "default", cpu_replicas: int | None = None):
    """The ``tf.distribute`` strategy ``name`` (``STRATEGIES``); see ``docs/distribute.md``.

    ``mirrored``: one replica per GPU, or per logical CPU device with ``cpu_replicas``;
    ``multiworker``: MultiWorkerMirroredStrategy over the machines in ``TF_CONFIG``;
    ``tpu``: TPUStrategy on the TPU that ``TPUClusterResolver`` finds (Colab, Cloud TPU VM).
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise UsageError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if cpu_replicas:
        split_cpu(int(cpu_replicas))
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if cpu_replicas and not tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        from agegender_tf.experiments.workers import fix_keras

        fix_keras()  # Keras 3's trainer over several workers (workers.py)
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise UsageError(f"--strategy tpu: no TPU found ({str(error).splitlines()[0][:160]})") from None
    return tf.distribute.TPUStrategy(resolver)


def global_batch_size(per_replica: int) -> int:
    """The batch the input pipeline must yield so that each replica of the current strategy gets ``per_replica``."""
    import tensorflow as tf

    return int(per_replica) * int(tf.distribute.get_strategy().num_replicas_in_sync)


def distribution_record(strategy, name: str, per_replica_batch: int) -> dict:
    """``protocol.distribution`` of the report: the strategy, its workers, replicas and devices, the global
    batch, and over several workers how each reads its share of the data (``workers.INPUT_SHARDING``).

    The learning rate is the paper's, whatever the number of replicas (``learning_rate_scaling``: none).
    """
    import tensorflow as tf

    from agegender_tf.experiments.workers import INPUT_SHARDING, worker_of

    replicas = int(strategy.num_replicas_in_sync)
    worker = worker_of(strategy)
    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        # The default strategy places ops on the first GPU, else the CPU.
        devices = [(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))[0].name]
    else:
        devices = [str(d) for d in strategy.extended.worker_devices]
    if worker.several:  # the same devices on every worker (MultiWorkerMirroredStrategy requires it)
        devices = [d.replace(f"/task:{worker.index}/", f"/task:{task}/")
                   for task in range(worker.count) for d in devices]
    record = {"strategy": name, "workers": worker.count, "replicas": replicas, "devices": devices,
              "per_replica_batch_size": int(per_replica_batch), "global_batch_size": int(per_replica_batch) * replicas,
              "learning_rate_scaling": "none"}
    if worker.several:
        record["input_sharding"] = dict(INPUT_SHARDING)
    return record
