"""Training files that are never half-written (``train.make_callbacks``), and a full disk said in one line.

``best.keras`` (``WholeModelCheckpoint``), the ``BackupAndRestore`` backup (``WholeBackupAndRestore``:
its weights and the epoch it reached) and ``history.csv`` (``WholeCSVLogger``) are each written under a
temporary name in their folder and renamed when whole (``paths.replace_atomic``): a kill or a full disk
mid-write leaves the previous whole file, so the same command run again resumes from what is whole.

A full disk (ENOSPC, EDQUOT) is ``errors.DiskFull``: one line naming the folder, the space free and the
space needed (the size of the file being written: its previous version, else the model's variables).
"""

from __future__ import annotations

import io
import json
from contextlib import contextmanager
from pathlib import Path

import keras

from agegender_tf.errors import DiskFull
from agegender_tf.paths import disk_full_error, is_disk_full, replace_atomic, write_text_atomic

RERUN = "rerun the same command: it resumes from the last whole checkpoint"
# The files written through replace_atomic here, whose temporaries a kill may leave (``remove_temporaries``).
WRITTEN = ("best.keras", "finalized.keras", "latest.weights.h5", "training_metadata.json", "history.csv",
           "elapsed.json", "done.json", "model_card.json")


ARCHIVE_BYTES, PER_VARIABLE_BYTES = 32 * 1024, 2 * 1024  # a .keras file's config and its HDF5 bookkeeping


def variables_bytes(model) -> int:
    """About what ``model.save`` writes: the bytes of ``model``'s variables and its optimizer's, plus the
    archive's own (the estimate of a first checkpoint's size, when there is no earlier one to measure)."""
    optimizer = getattr(model, "optimizer", None)
    variables = [*model.variables, *(optimizer.variables if optimizer is not None else [])]
    total = ARCHIVE_BYTES + PER_VARIABLE_BYTES * len(variables)
    for variable in variables:
        dtype = str(getattr(variable, "dtype", "float32"))
        count = 1
        for side in variable.shape:
            count *= int(side or 1)
        total += count * (2 if "16" in dtype else 8 if "64" in dtype else 1 if "8" in dtype else 4)
    return total


@contextmanager
def reporting_disk_full(path, needed=None, what: str = "", then: str = RERUN):
    """Turn a full disk while writing ``path`` into ``DiskFull`` naming its folder; ``needed()`` estimates
    the bytes to free (called only then)."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        raise disk_full_error(Path(path).parent, needed() if needed else None, what, then) from None


def _size_or(path: Path, model) -> int:
    return path.stat().st_size if path.is_file() else variables_bytes(model)


def save_model_atomic(model, path) -> Path:
    """``model.save(path)`` through a temporary ``.keras`` file beside it, renamed when whole."""
    path = Path(path)
    with reporting_disk_full(path, lambda: _size_or(path, model), f"the size of {path.name}"):
        with replace_atomic(path, suffix=".keras") as temporary:
            model.save(temporary, overwrite=True)
    return path


def save_weights_atomic(model, path) -> Path:
    """``model.save_weights(path)`` through a temporary ``.weights.h5`` file beside it, renamed when whole."""
    path = Path(path)
    with reporting_disk_full(path, lambda: _size_or(path, model), f"the size of {path.name}"):
        with replace_atomic(path, suffix=".weights.h5") as temporary:
            model.save_weights(temporary, overwrite=True)
    return path


def write_text_reporting(path, text: str) -> Path:
    """``paths.write_text_atomic`` with a full disk as ``DiskFull``."""
    with reporting_disk_full(path, lambda: len(text.encode()), f"the size of {Path(path).name}"):
        return write_text_atomic(path, text)


def remove_temporaries(folder) -> None:
    """Delete the temporaries of ``WRITTEN`` files that a killed write left in ``folder`` (and its backup)."""
    folder = Path(folder)
    for candidate in [*folder.glob(".*"), *folder.glob("*/.*")]:
        if candidate.is_file() and any(candidate.name.startswith(f".{name}.") for name in WRITTEN):
            candidate.unlink(missing_ok=True)


class WholeModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` whose file is written under a temporary name and renamed when whole.

    Keras decides whether an epoch is saved (its own ``_save_model``, whose helpers differ between Keras 3.8
    and 3.15); while it does, the callback's model is one whose ``save`` / ``save_weights`` go through
    ``save_model_atomic`` / ``save_weights_atomic``."""

    def _save_model(self, epoch, batch, logs):
        model = self._model
        self._model = _WholeWrites(model)
        try:
            super()._save_model(epoch, batch, logs)
        finally:
            self._model = model


class _WholeWrites:
    """``model`` with ``save`` and ``save_weights`` writing whole files; everything else is the model's."""

    def __init__(self, model):
        self._wrapped = model

    def save(self, filepath, overwrite=True, **kwargs):
        Path(filepath).parent.mkdir(parents=True, exist_ok=True)
        save_model_atomic(self._wrapped, filepath)

    def save_weights(self, filepath, overwrite=True, **kwargs):
        Path(filepath).parent.mkdir(parents=True, exist_ok=True)
        save_weights_atomic(self._wrapped, filepath)

    def __getattr__(self, name):
        return getattr(self._wrapped, name)


class WholeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose weights and epoch record are each written whole (weights first: a kill
    between the two repeats one epoch from its own weights, never loads a cut-short file).

    ``restore_dir`` (a worker other than the chief, ``workers``): resume from the chief's backup there, while
    this worker's own saves go to ``backup_dir``, its temporary folder (every worker saves: the chief's alone
    would wait for the others), so that every worker starts again from the same epoch."""

    def __init__(self, backup_dir, *args, restore_dir=None, **kwargs):
        super().__init__(backup_dir, *args, **kwargs)
        self.restore_dir = restore_dir

    def on_train_begin(self, logs=None):
        if self.restore_dir is None:
            return super().on_train_begin(logs)
        own = self._weights_path, self._training_metadata_path
        self._weights_path = str(Path(self.restore_dir) / Path(own[0]).name)
        self._training_metadata_path = str(Path(self.restore_dir) / Path(own[1]).name)
        try:
            self._load_model()
        finally:
            self._weights_path, self._training_metadata_path = own

    def _save_model(self):
        Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
        save_weights_atomic(self.model, self._weights_path)
        write_text_reporting(self._training_metadata_path,
                             json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))


class WholeCSVLogger(keras.callbacks.CSVLogger):
    """``CSVLogger`` that rewrites the whole file (the rows before this run, then this run's) each epoch."""

    def on_train_begin(self, logs=None):
        path = Path(self.filename)
        self._before = path.read_bytes().decode() if self.append and path.is_file() else ""
        self.append_header = not self._before
        self.csv_file = io.StringIO()
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        write_text_reporting(self.filename, self._before + self.csv_file.getvalue())
