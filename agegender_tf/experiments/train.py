"""Training (DESIGN.md, "Training"): ``model.fit`` with the paper's callbacks, plus resume.

Callbacks as the papers use them: EarlyStopping with patience (seed 003 sec. 4.3: 2-3 epochs),
ModelCheckpoint of the best validation loss (seed 000 sec. V, seed 003 sec. 3.6), ReduceLROnPlateau
(seed 000 sec. V: lower the rate after 10 epochs without improvement), and the optimizers: SGD
1e-3 -> 1e-4 after 10k iterations (seed 000 sec. VII, Levi-Hassner), Adam 1e-3 (seed 003 sec. 4.2),
Nadam 1e-3 (seed 004 sec. 7.1). ``BackupAndRestore`` makes a killed run, started again with the same
command, resume from its last finished epoch; ``CSVLogger`` then appends to ``history.csv``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import keras
import pandas as pd

HISTORY_FILE = "history.csv"
BEST_MODEL_FILE = "best.keras"
BACKUP_DIR = "backup"


def set_seed(seed: int | None, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow; ``deterministic`` also turns on op determinism (CPU bit-identical)."""
    if seed is None:
        return
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def make_optimizer(spec: dict) -> keras.optimizers.Optimizer:
    """Optimizer from a preset's ``optimizer`` dict: ``name`` (sgd|adam|nadam|rmsprop), ``learning_rate``,
    optional ``momentum`` (SGD) and a step decay ``step_at_iteration`` -> ``step_to``."""
    spec = dict(spec)
    name = spec.pop("name").lower()
    rate = spec.pop("learning_rate")
    step_at, step_to = spec.pop("step_at_iteration", None), spec.pop("step_to", None)
    if step_at is not None:
        rate = keras.optimizers.schedules.PiecewiseConstantDecay([int(step_at)], [float(rate), float(step_to)])
    classes = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam, "nadam": keras.optimizers.Nadam,
               "rmsprop": keras.optimizers.RMSprop}
    if name not in classes:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(classes)}")
    return classes[name](learning_rate=rate, **spec)


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


def make_callbacks(spec: dict, out_dir: str | Path, uses_schedule: bool = False) -> list[keras.callbacks.Callback]:
    """The preset's callbacks (``early_stopping``, ``reduce_lr``, ``time_limit``: {"minutes": m}) plus BackupAndRestore, CSVLogger (appending) and the best-val_loss checkpoint."""
    out_dir = Path(out_dir)
    history_path = out_dir / HISTORY_FILE
    best_so_far = None
    if history_path.exists() and history_path.stat().st_size > 0:
        previous = pd.read_csv(history_path)
        if "val_loss" in previous and previous["val_loss"].notna().any():
            best_so_far = float(previous["val_loss"].min())
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.BackupAndRestore(str(out_dir / BACKUP_DIR), save_freq="epoch", delete_checkpoint=True),
        keras.callbacks.CSVLogger(str(history_path), append=True),
        keras.callbacks.ModelCheckpoint(str(out_dir / BEST_MODEL_FILE), monitor="val_loss", save_best_only=True,
                                        initial_value_threshold=best_so_far),
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


def train(model: keras.Model, train_data, val_data, *, optimizer: dict, callbacks: dict, epochs: int, out_dir,
          loss, metrics=None, loss_weights=None, extra_callbacks=(), verbose: int = 2) -> pd.DataFrame:
    """Compile and fit ``model``; return the whole history (all runs of this ``out_dir``) as a DataFrame.

    A fresh run (no backup in ``out_dir``) starts a new ``history.csv``; a run whose backup exists
    resumes from the epoch after the last one it finished.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resuming(out_dir):
        for stale in (out_dir / HISTORY_FILE, out_dir / BEST_MODEL_FILE):
            stale.unlink(missing_ok=True)
        shutil.rmtree(out_dir / BACKUP_DIR, ignore_errors=True)
    opt = make_optimizer(optimizer)
    model.compile(optimizer=opt, loss=loss, metrics=metrics, loss_weights=loss_weights)
    uses_schedule = "step_at_iteration" in optimizer
    model.fit(train_data, validation_data=val_data, epochs=int(epochs),
              callbacks=make_callbacks(callbacks, out_dir, uses_schedule) + list(extra_callbacks), verbose=verbose)
    return pd.read_csv(out_dir / HISTORY_FILE)
