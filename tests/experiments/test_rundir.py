"""Run-folder identity (fingerprint.json), the exclusive lock, atomic files and corrupt-file messages."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from agegender_tf.errors import UsageError
from agegender_tf.experiments import rundir
from agegender_tf.experiments.presets import get_preset, smoke_version
from tests.fixtures import PLUMBING_ARGS, PLUMBING_NETWORK, PLUMBING_PRESET, SMOKE_RUN_ARGS


def record(seed=7, **changes):
    preset = dataclasses.replace(smoke_version(get_preset("gra_net")), **changes)
    return rundir.fingerprint(preset, seed=seed, smoke=True, data_root="/anywhere/data")


def test_fingerprint_names_the_committed_split_file_and_its_hash():
    identity = record()["identity"]
    assert identity["split_file"]["name"] == "utkface/split.csv"
    assert len(identity["split_file"]["train_val_sha256"]) == 64
    assert len(record()["context"]["split_file_sha256"]) == 64
    assert identity["dataset_folder"] == "utkface" and identity["seed"] == 7 and identity["smoke"] is True
    assert identity["preset"]["epochs"] == smoke_version(get_preset("gra_net")).epochs
    holdout = record(split={"kind": "holdout"})["identity"]
    assert holdout["split_file"] is None


def test_a_run_made_on_an_earlier_split_file_with_the_same_train_and_val_faces_resumes(tmp_path):
    """Committed run folders recorded UTKFace's version-1 split.csv by its whole sha256; version 2 only
    excludes test faces, so they resume. A split file of unknown sha256 is refused."""
    new = record()
    old = json.loads(json.dumps(new))
    [(v1_sha, train_val)] = rundir.EARLIER_SPLIT_FILES["utkface/split.csv"].items()
    assert new["identity"]["split_file"]["train_val_sha256"] == train_val  # the committed v2 file's train/val rows
    old["identity"]["split_file"] = {"name": "utkface/split.csv", "sha256": v1_sha}
    rundir.write_json_atomic(tmp_path / rundir.FINGERPRINT_FILE, old)
    assert rundir.prepare(tmp_path, new) == "resume"
    old["identity"]["split_file"]["sha256"] = "0" * 64
    rundir.write_json_atomic(tmp_path / rundir.FINGERPRINT_FILE, old)
    with pytest.raises(UsageError, match="split_file.sha256"):
        rundir.prepare(tmp_path, new)


def test_train_val_sha256_ignores_test_rows_and_the_reason_column(tmp_path):
    v1, v2 = tmp_path / "v1.csv", tmp_path / "v2.csv"
    v1.write_text("file,split\na.jpg,train\nb.jpg,test\nc.jpg,val\nd.jpg,test\n")
    v2.write_text("file,split,reason\na.jpg,train,\nb.jpg,excluded,pixel copy of train face a.jpg (mad 3.0)\n"
                  "c.jpg,val,\nd.jpg,test,\n")
    assert rundir.train_val_sha256(v1) == rundir.train_val_sha256(v2)
    v2.write_text("file,split,reason\na.jpg,val,\nc.jpg,val,\n")
    assert rundir.train_val_sha256(v1) != rundir.train_val_sha256(v2)


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


def test_editing_what_a_preset_says_about_its_paper_does_not_orphan_finished_runs(tmp_path):
    assert rundir.prepare(tmp_path, record()) == "new"
    (tmp_path / "train").mkdir()
    reworded = record(interpretation=(("a new ambiguity", "a new choice"),), title="another title",
                      profiles={"cpu": {"image_size": 48}})
    assert rundir.prepare(tmp_path, reworded) == "resume"
    assert "interpretation" not in reworded["identity"]["preset"]
    old = json.loads((tmp_path / rundir.FINGERPRINT_FILE).read_text())["identity"]
    old["preset"]["title"] = "a title recorded by an older kit"  # older fingerprints held every field
    assert rundir.differences(old, reworded["identity"]) == ""


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


def test_atomic_files_get_the_permissions_a_plain_write_gives(tmp_path):
    (tmp_path / "plain.txt").write_text("x")
    rundir.write_text_atomic(tmp_path / "atomic.txt", "x")
    assert (tmp_path / "atomic.txt").stat().st_mode == (tmp_path / "plain.txt").stat().st_mode


# ------------------------------------------------------------------------- agegender run / report
# The refusal test reruns a copy of the session smoke run (conftest ``gra_net_smoke_run``) and, to start it
# afresh, its settings on 32 training faces (TINY); the kill test trains ``fixtures.PLUMBING_PRESET``'s cheap
# network on them (PLUMBING_TINY).
TINY = [*SMOKE_RUN_ARGS, "--set", "max_train_images=32", "--set", "epochs=2"]
NETWORK = "gra_net__gender_age_group_age"
PLUMBING_TINY = [*PLUMBING_ARGS, "--set", "batch_size=16", "--set", "max_train_images=32", "--set", "epochs=2"]


def _run(root, out, *extra, preset="gra_net", args=TINY):
    from agegender_tf.cli import main

    return main(["run", preset, "--data-root", str(root), "--out", str(out), *args, *extra])


def test_a_kill_after_training_before_the_report_loses_no_training(utkface_layout_root, tmp_path, monkeypatch, capsys):
    from agegender_tf.experiments import train as train_module

    def killed_here(out_dir):
        raise KeyboardInterrupt("simulated kill after done.json, before the backup is removed")

    out = tmp_path / "run"
    monkeypatch.setattr(train_module, "remove_backup", killed_here)
    with pytest.raises(KeyboardInterrupt):
        _run(utkface_layout_root, out, preset=PLUMBING_PRESET, args=PLUMBING_TINY)
    monkeypatch.undo()
    network = out / "train" / PLUMBING_NETWORK
    assert (network / "done.json").exists() and (network / "backup").is_dir()
    assert not (out / "report.json").exists()  # visibly unfinished
    best = (network / "best.keras").read_bytes()
    assert _run(utkface_layout_root, out, preset=PLUMBING_PRESET, args=PLUMBING_TINY) == 0
    assert pd_epochs(network / "history.csv") == [0, 1]  # not retrained from epoch 0, nothing appended
    assert (network / "best.keras").read_bytes() == best
    assert not (network / "backup").exists()
    assert json.loads((out / "report.json").read_text())["protocol"]["epochs"] == 2


def pd_epochs(path):
    import pandas as pd

    return pd.read_csv(path)["epoch"].tolist()


def test_rerun_with_other_settings_is_refused_a_cut_model_is_named_and_overwrite_starts_fresh(
        gra_net_smoke_run, utkface_layout_root, tmp_path, capsys):
    from agegender_tf.cli import main

    out = shutil.copytree(gra_net_smoke_run, tmp_path / "run")  # a finished run of SMOKE_RUN_ARGS (seed 7)
    report_bytes = (out / "report.json").read_bytes()
    epochs = json.loads(report_bytes)["protocol"]["epochs"]
    capsys.readouterr()

    assert _run(utkface_layout_root, out, "--seed", "8", "--set", f"epochs={epochs + 1}", args=SMOKE_RUN_ARGS) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "seed: 7 -> 8" in error and f"preset.epochs: {epochs} -> {epochs + 1}" in error and "--overwrite" in error
    assert (out / "report.json").read_bytes() == report_bytes  # the folder is untouched

    best = out / "train" / NETWORK / "best.keras"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    expected = f"error: {best} is corrupt ("
    assert main(["report", "gra_net", "--run", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(expected) and error.endswith("rerun with --overwrite to start fresh")
    assert _run(utkface_layout_root, out, args=SMOKE_RUN_ARGS) == 2  # its own settings: the cut model is named
    error = capsys.readouterr().err.strip()
    assert error.startswith(expected) and len(error.splitlines()) == 1

    assert _run(utkface_layout_root, out, "--seed", "8", "--set", "epochs=3", "--overwrite") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["protocol"]["seed"] == 8 and report["protocol"]["epochs"] == 3
    assert pd_epochs(out / "train" / NETWORK / "history.csv") == [0, 1, 2]  # trained afresh, not reused
    assert json.loads((out / rundir.FINGERPRINT_FILE).read_text())["identity"]["seed"] == 8


def test_a_second_run_into_a_folder_in_use_exits_at_once(utkface_layout_root, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom agegender_tf.experiments.rundir import locked\n"
                               f"with locked({str(out)!r}):\n    print('held', flush=True)\n    sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert _run(utkface_layout_root, out) == 2
    finally:
        holder.communicate("", timeout=30)
    assert capsys.readouterr().err.strip() == f"error: {out} is in use by process {holder.pid}"
    assert sorted(p.name for p in out.iterdir()) == [rundir.LOCK_FILE]  # nothing written


def test_the_data_root_is_recorded_as_the_environment_variable_when_it_is_that_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AGEGENDER_DATA", str(tmp_path))
    assert rundir.fingerprint(get_preset("gra_net"), seed=1, smoke=False,
                              data_root=str(tmp_path) + "/")["context"]["data_root"] == "$AGEGENDER_DATA"
    elsewhere = tmp_path / "other"
    assert rundir.portable_data_root(elsewhere) == str(elsewhere)


def test_a_setting_added_to_the_kit_later_at_its_off_value_resumes_older_runs(tmp_path):
    new = record()
    old = json.loads(json.dumps(new["identity"]))
    del old["preset"]["class_weight"]  # a fingerprint written before the field existed
    assert new["identity"]["preset"]["class_weight"] is None
    assert rundir.differences(old, new["identity"]) == ""
    assert "class_weight" in rundir.differences(old, record(class_weight="balanced")["identity"])
