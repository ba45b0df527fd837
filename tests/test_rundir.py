"""Run-folder identity (fingerprint.json), the exclusive lock, atomic files and corrupt-file messages."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import pytest

from agegender_tf.errors import UsageError
from agegender_tf.experiments import rundir
from agegender_tf.experiments.presets import get_preset, smoke_version


def record(seed=7, **changes):
    preset = dataclasses.replace(smoke_version(get_preset("gra_net")), **changes)
    return rundir.fingerprint(preset, seed=seed, smoke=True, data_root="/anywhere/data")


def test_fingerprint_names_the_committed_split_file_and_its_hash():
    identity = record()["identity"]
    assert identity["split_file"]["name"] == "utkface/split.csv"
    assert len(identity["split_file"]["sha256"]) == 64
    assert identity["dataset_folder"] == "utkface" and identity["seed"] == 7 and identity["smoke"] is True
    assert identity["preset"]["epochs"] == smoke_version(get_preset("gra_net")).epochs
    holdout = record(split={"kind": "holdout"})["identity"]
    assert holdout["split_file"] is None


def test_the_data_root_path_is_context_not_identity(tmp_path):
    rundir.prepare(tmp_path, record())
    moved = record()
    moved["context"]["data_root"] = "/mounted/elsewhere"
    assert rundir.prepare(tmp_path, moved) == "resume"


def test_same_fingerprint_resumes_and_a_different_one_is_refused_in_one_line(tmp_path):
    assert rundir.prepare(tmp_path, record()) == "new"
    (tmp_path / "train").mkdir()
    assert rundir.prepare(tmp_path, record()) == "resume"
    with pytest.raises(UsageError) as refused:
        rundir.prepare(tmp_path, record(seed=8, epochs=4))
    message = str(refused.value)
    assert "\n" not in message
    assert "seed: 7 -> 8" in message and "preset.epochs:" in message and "-> 4" in message
    assert "--overwrite" in message
    assert json.loads((tmp_path / rundir.FINGERPRINT_FILE).read_text())["identity"]["seed"] == 7  # untouched


def test_overwrite_empties_the_run_folder_and_records_the_new_fingerprint(tmp_path):
    rundir.prepare(tmp_path, record())
    (tmp_path / "train" / "net").mkdir(parents=True)
    (tmp_path / "train" / "net" / "best.keras").write_bytes(b"old")
    (tmp_path / "report.json").write_text("{}")
    assert rundir.prepare(tmp_path, record(seed=8), overwrite=True) == "overwrite"
    assert sorted(p.name for p in tmp_path.iterdir()) == [rundir.FINGERPRINT_FILE]
    assert json.loads((tmp_path / rundir.FINGERPRINT_FILE).read_text())["identity"]["seed"] == 8


def test_a_folder_without_fingerprint_is_refused_and_overwrite_never_empties_a_non_run_folder(tmp_path):
    (tmp_path / "preset.json").write_text("{}")  # made by an older kit
    with pytest.raises(UsageError, match="no fingerprint.json"):
        rundir.prepare(tmp_path, record())
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError, match="holds no run"):
        rundir.prepare(other, record(), overwrite=True)
    assert (other / "thesis.tex").read_text() == "precious"


def test_a_cut_fingerprint_is_named(tmp_path):
    (tmp_path / rundir.FINGERPRINT_FILE).write_text('{"identity": {"pre')
    with pytest.raises(rundir.CorruptFile, match="fingerprint.json is corrupt"):
        rundir.prepare(tmp_path, record())


def test_a_second_process_is_refused_while_the_first_holds_the_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from agegender_tf.experiments.rundir import locked
            with locked({str(tmp_path)!r}):
                print("held", flush=True)
                sys.stdin.read()
            """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(rundir.RunFolderBusy) as busy:
            with rundir.locked(tmp_path):
                pytest.fail("the lock was taken twice")
        assert str(busy.value) == f"{tmp_path} is in use by process {holder.pid}"
    finally:
        holder.communicate("", timeout=30)
    with rundir.locked(tmp_path):  # released when the holder ends
        assert (tmp_path / rundir.LOCK_FILE).read_text().strip() == str(__import__("os").getpid())


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    rundir.write_json_atomic(tmp_path / "report.json", {"a": 1})
    rundir.write_json_atomic(tmp_path / "report.json", {"a": 2})
    assert json.loads((tmp_path / "report.json").read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_keras_file_cut_to_half_its_size_is_named_corrupt(tmp_path):
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    path = tmp_path / "train" / "net" / "best.keras"
    path.parent.mkdir(parents=True)
    model.save(path)
    assert rundir.check_run_models(tmp_path) == [path]
    assert rundir.load_keras_model(path).count_params() == model.count_params()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(rundir.CorruptFile) as corrupt:
        rundir.load_keras_model(path)
    message = str(corrupt.value)
    assert message.startswith(f"{path} is corrupt (") and message.endswith("rerun with --overwrite to start fresh")
    assert "\n" not in message
    with pytest.raises(rundir.CorruptFile, match="is corrupt"):
        rundir.check_run_models(tmp_path)
