"""A run on a disk that fills up: nothing half-written under a final name, one line naming the folder and the
space needed (exit 2), and the same command, once space is freed, resumes from what is whole.

The full disk is injected: ``keras.Model.save`` / ``save_weights`` write part of their file, then raise
``OSError(ENOSPC)`` (or h5py's way of saying it) as a real full disk does.
"""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from agegender_tf.errors import DiskFull
from agegender_tf.experiments import checkpoints
from agegender_tf.experiments import train as train_module
from agegender_tf.model_card import keras_archive_problem
from agegender_tf.paths import size_text
from tests.fixtures import PLUMBING_ARGS, PLUMBING_NETWORK, PLUMBING_PRESET


def tiny_model():
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(2, activation="softmax", name="gender")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


def fit(out_dir, epochs):
    """``train.train`` of a tiny network on 32 random images (val: 8 of them)."""
    import tensorflow as tf

    train_module.set_seed(1)
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 3), dtype=np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(int)
    return train_module.train(
        tiny_model(), tf.data.Dataset.from_tensor_slices((x, y)).batch(8),
        tf.data.Dataset.from_tensor_slices((x[:8], y[:8])).batch(8), optimizer={"name": "adam", "learning_rate": 1e-3},
        callbacks={"early_stopping": {"monitor": "val_loss", "patience": 50}}, epochs=epochs, out_dir=out_dir,
        loss="sparse_categorical_crossentropy", metrics=["accuracy"], verbose=0)


def _full_disk_at(monkeypatch, method: str, call: int, error=None):
    """Make the ``call``-th (1-based) ``keras.Model.<method>`` write a little of its file, then fail as a full
    disk does; the other calls save as usual. Returns the list of paths each call was given."""
    real = getattr(keras.Model, method)
    calls: list[Path] = []

    def saving(self, filepath, *args, **kwargs):
        calls.append(Path(filepath))
        if len(calls) == call:
            Path(filepath).write_bytes(b"PK\x03\x04 the first bytes only")
            raise error or OSError(errno.ENOSPC, "No space left on device")
        return real(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, method, saving)
    return calls


def _temporaries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*") if p.is_file())


def test_a_full_disk_mid_checkpoint_keeps_the_last_whole_one_and_the_rerun_resumes(tmp_path, monkeypatch):
    calls = _full_disk_at(monkeypatch, "save", call=2)
    with pytest.raises(DiskFull) as caught:
        fit(tmp_path, epochs=6)
    message = str(caught.value)
    assert len(calls) == 2 and calls[1].parent == tmp_path and calls[1].name != "best.keras"
    assert message.startswith(f"no space left on the disk holding {tmp_path} (")
    size = (tmp_path / "best.keras").stat().st_size
    assert f"free at least {size_text(size)} (the size of best.keras)" in message
    assert "and rerun the same command" in message and "\n" not in message
    assert keras_archive_problem(tmp_path / "best.keras") is None  # the first checkpoint, whole
    assert _temporaries(tmp_path) == []
    failed_epochs = pd.read_csv(tmp_path / "history.csv")["epoch"].tolist()
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == len(failed_epochs)
    monkeypatch.undo()
    history = fit(tmp_path, epochs=6)  # space freed: the same call resumes after the last whole epoch
    assert history["epoch"].tolist() == list(range(6))
    assert keras_archive_problem(tmp_path / "best.keras") is None
    assert _temporaries(tmp_path) == []


def test_a_full_disk_mid_backup_keeps_the_previous_backup(tmp_path, monkeypatch):
    h5py_full = OSError("Unable to synchronously create file (file write failed: errno = 28, error message = "
                        "'No space left on device')")  # h5py's OSError has no errno, only its text
    _full_disk_at(monkeypatch, "save_weights", call=2, error=h5py_full)
    with pytest.raises(DiskFull, match=rf"no space left on the disk holding {re.escape(str(tmp_path / 'backup'))} "
                                       r"\(.*latest.weights.h5"):
        fit(tmp_path, epochs=4)
    assert json.loads((tmp_path / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    assert pd.read_csv(tmp_path / "history.csv")["epoch"].tolist() == [0]  # epoch 1 is repeated by the rerun
    assert _temporaries(tmp_path) == []
    monkeypatch.undo()
    assert fit(tmp_path, epochs=4)["epoch"].tolist() == [0, 1, 2, 3]


def test_a_full_disk_ends_agegender_run_in_one_line_and_the_rerun_finishes(utkface_layout_root, tmp_path,
                                                                          monkeypatch, capsys):
    from agegender_tf.cli import main

    out = tmp_path / "run"
    command = ["run", PLUMBING_PRESET, "--data-root", str(utkface_layout_root), "--out", str(out), *PLUMBING_ARGS]
    _full_disk_at(monkeypatch, "save", call=1)
    assert main(command) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    network = out / "train" / PLUMBING_NETWORK
    assert line.startswith(f"error: no space left on the disk holding {network} (") and "free at least" in line
    assert "rerun the same command" in line
    assert not (network / "best.keras").exists()  # nothing half-written under the final name...
    assert json.loads((network / "model_card.json").read_text())["tasks"]  # ...beside a whole card
    assert _temporaries(out) == [".lock"]
    monkeypatch.undo()
    assert main(command) == 0
    assert keras_archive_problem(network / "best.keras") is None
    assert json.loads((out / "report.json").read_text())["preset"] == PLUMBING_PRESET
    assert _temporaries(out) == [".lock"]


def test_a_full_disk_writing_the_report_names_the_run_folder(utkface_layout_root, tmp_path, monkeypatch, capsys):
    from agegender_tf.cli import main
    from agegender_tf.experiments import rundir

    out = tmp_path / "run"
    command = ["run", PLUMBING_PRESET, "--data-root", str(utkface_layout_root), "--out", str(out), *PLUMBING_ARGS]
    real = rundir.write_json_atomic

    def full_at_the_report(path, value):
        if Path(path).name == rundir.REPORT_FILE:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        return real(path, value)

    monkeypatch.setattr(rundir, "write_json_atomic", full_at_the_report)
    assert main(command) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    size = (out / "train" / PLUMBING_NETWORK / "best.keras").stat().st_size
    assert line.startswith(f"error: no space left on the disk holding {out} (")
    assert f"free at least {size_text(size)} (the size of the last checkpoint)" in line
    assert not (out / rundir.REPORT_FILE).exists()
    monkeypatch.undo()
    assert main(command) == 0 and (out / rundir.REPORT_FILE).is_file()


def test_the_size_of_a_model_estimates_its_checkpoint(tmp_path):
    model = tiny_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = checkpoints.save_model_atomic(model, tmp_path / "m.keras")
    estimate = checkpoints.variables_bytes(model)
    assert 0.5 * path.stat().st_size <= estimate <= 2 * path.stat().st_size + 50_000
    assert train_module.BEST_MODEL_FILE in checkpoints.WRITTEN
