"""`agegender papers | run | report` end to end on a UTKFace-layout fixture, and kill-and-rerun resume.

Most tests read one smoke run trained once per session (``gra_net_smoke_run`` in conftest.py) and check
what it means: the files a run folder holds, metrics that recompute from ``predictions.csv``, truths
that match the file names, counts that add up to the split, and the settings it records.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agegender_tf.binning import get_binning
from agegender_tf.cli import main
from agegender_tf.data.manifest import GENDER_CLASSES
from agegender_tf.experiments.plans import resolve_preset
from agegender_tf.experiments.presets import listing
from tests.fixtures import KILLED_RUN_EPOCHS, KILLED_RUN_HISTORY, SMOKE_RUN_ARGS, csv_rows

NETWORK = "gra_net__gender_age_group_age"
TINY = ["--set", "split.kind=holdout", "--set", "image_size=32", "--set", "batch_size=16"]


def test_papers_lists_the_five(capsys):
    assert main(["papers", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["seed_document"] for r in rows] == [
        "000_2d9ca6d609785c90", "001_21a2552084d7feab", "002_b85b1a003b9b5354", "003_49ef1d907f51e97c",
        "004_f2c8ad08a614c73c"]
    assert main(["papers"]) == 0
    assert "transfer_vgg16_resnet50" in capsys.readouterr().out


def test_papers_prints_each_profile_as_one_line_of_dotted_keys_not_python(capsys):
    assert main(["papers"]) == 0
    out = capsys.readouterr().out
    for python in ("{'", "': ", "(32,", "None", "True", "False", "()"):
        assert python not in out, python
    profiles = [line.strip() for line in out.splitlines() if line.startswith("      ")]
    wide = next(line for line in profiles if line.startswith("cpu_wide: "))
    assert "callbacks.early_stopping.patience 4; " in wide and "model_args.conv_filters 32, 64, 128, 256; " in wide
    assert "loss_weights.age 0.01" in wide and "optimizer.learning_rate 0.001" in out
    assert len(profiles) == sum(len(row["profiles"]) for row in listing())


def test_a_run_folder_holds_its_files(gra_net_smoke_run):
    run = gra_net_smoke_run
    for name in ("preset.json", "report.json", "classification_report.txt", "history.csv", "predictions.csv",
                 "train_ages.csv", f"train/{NETWORK}/best.keras", f"train/{NETWORK}/done.json",
                 f"train/{NETWORK}/history.csv"):
        assert (run / name).is_file(), name
    assert not (run / "train" / NETWORK / "backup").exists()  # removed once the network finished
    report = json.loads((run / "report.json").read_text())
    for key in ("preset", "seed_document", "dataset_used", "protocol", "metrics", "models", "paper", "comparison",
                "interpretation"):
        assert key in report
    assert report["preset"] == "gra_net" and report["main_model"] == "gra_net" and report["dataset_used"] == "utkface"
    assert set(report["metrics"]) == {"gender", "age_group", "age"} and list(report["models"]) == ["gra_net"]
    figures = {p.name for p in (run / "figures").glob("*.png")}
    assert figures == {f"learning_curves_{NETWORK}.png", "confusion_gender.png", "confusion_age_group.png",
                       "per_class_gender.png", "per_class_age_group.png", "age_histogram_train.png", "test_faces.png"}


def test_the_report_records_the_settings_the_run_used(gra_net_smoke_run):
    run = gra_net_smoke_run
    protocol = json.loads((run / "report.json").read_text())["protocol"]
    preset = resolve_preset("gra_net", smoke=True, overrides=TINY[1::2])
    assert protocol["smoke"] is True and protocol["seed"] == int(SMOKE_RUN_ARGS[SMOKE_RUN_ARGS.index("--seed") + 1])
    assert (protocol["image_size"], protocol["batch_size"], protocol["epochs"]) == (32, 16, preset.epochs)
    assert protocol["split"] == {"kind": "holdout"} and protocol["binning"] == "decades"
    assert json.loads((run / "preset.json").read_text())["image_size"] == 32
    history = pd.read_csv(run / "history.csv")
    assert history["run"].unique().tolist() == [NETWORK]
    assert history["epoch"].tolist() == list(range(len(history))) and 1 <= len(history) <= preset.epochs
    import keras

    import agegender_tf.models  # noqa: F401  (registers the custom layers)

    model = keras.saving.load_model(run / "train" / NETWORK / "best.keras")
    assert protocol["parameters"] == {NETWORK: model.count_params()}
    assert model.input_shape == (None, 32, 32, 3)


def test_counts_add_up_to_the_split_and_the_predictions(gra_net_smoke_run, utkface_layout_root):
    run = gra_net_smoke_run
    counts = json.loads((run / "report.json").read_text())["protocol"]["counts"]
    files = sorted((utkface_layout_root / "utkface" / "UTKFace").glob("*.jpg"))
    assert counts["read"] == len(files) == 120 and counts["dropped_by_reader"] == {}
    assert counts["train"] + counts["val"] + counts["test"] == counts["read"] - counts["not_in_split"]
    assert counts["test"] == pytest.approx(0.3 * counts["read"], abs=3)  # the preset's 70:30 holdout
    assert len(pd.read_csv(run / "train_ages.csv")) == counts["train"]
    predictions = pd.read_csv(run / "predictions.csv")
    dropped_test = sum(counts["dropped_for_training"][NETWORK]["test"].values())
    assert len(predictions) == counts["test"] - dropped_test
    # paths relative to the data root: predictions.csv names no machine path
    relative = {f.relative_to(utkface_layout_root).as_posix() for f in files}
    assert predictions["path"].is_unique and set(predictions["path"]) <= relative


def test_truths_match_the_file_names(gra_net_smoke_run):
    """UTKFace names carry ``age_gender`` (0 male, 1 female): the ``*_true`` columns must be those."""
    predictions = pd.read_csv(gra_net_smoke_run / "predictions.csv")
    decades = get_binning("decades")
    for _, row in predictions.iterrows():
        age, gender = (int(part) for part in Path(row["path"]).name.split("_")[:2])
        assert row["age_true"] == age and row["age_group_true"] == decades.to_class(age)
        assert GENDER_CLASSES[int(row["gender_true"])] == ("male" if gender == 0 else "female")
    assert set(predictions["gender_pred"]) <= {0, 1}
    assert set(predictions["age_group_pred"]) <= set(range(decades.num_classes))


def test_report_metrics_recompute_from_the_predictions(gra_net_smoke_run):
    run = gra_net_smoke_run
    metrics = json.loads((run / "report.json").read_text())["metrics"]
    table = pd.read_csv(run / "predictions.csv")
    for task in ("gender", "age_group"):
        true, pred = table[f"{task}_true"].to_numpy(int), table[f"{task}_pred"].to_numpy(int)
        got = metrics[task]
        assert got["n"] == len(table)
        assert got["accuracy"] == pytest.approx(np.mean(true == pred))
        size = len(got["labels"])
        confusion = np.zeros((size, size), int)
        np.add.at(confusion, (true, pred), 1)
        assert got["confusion_matrix"] == confusion.tolist()
        recalls = [confusion[i, i] / confusion[i].sum() if confusion[i].sum() else 0.0 for i in range(size)]
        assert got["recall"] == pytest.approx(np.mean(recalls))
        assert [got["per_class"][label]["support"] for label in got["labels"]] == confusion.sum(axis=1).tolist()
    assert metrics["age_group"]["one_off_accuracy"] == pytest.approx(
        np.mean(np.abs(table["age_group_true"] - table["age_group_pred"]) <= 1))
    error = table["age_pred"] - table["age_true"]
    assert metrics["age"]["mae"] == pytest.approx(error.abs().mean())
    assert metrics["age"]["rmse"] == pytest.approx(np.sqrt((error**2).mean()))
    text = (run / "classification_report.txt").read_text()
    for task in ("gender", "age_group"):
        section = text.split(f"== gra_net / {task} ({len(table)} test faces, utkface)")[1].split("==")[0]
        assert re.search(rf"accuracy\s+{metrics[task]['accuracy']:.4f}\s+{len(table)}", section), section


def test_metrics_table_has_a_row_per_model_and_task(gra_net_smoke_run):
    from agegender_tf.experiments.report import METRIC_COLUMNS, metrics_table

    report = json.loads((gra_net_smoke_run / "report.json").read_text())
    frame = metrics_table(report)
    assert list(frame.columns) == ["model", "task", *METRIC_COLUMNS]
    assert [(m, t) for m, t in zip(frame["model"], frame["task"])] == [
        (m, t) for m, tasks in report["models"].items() for t in tasks]
    age = frame[frame["task"] == "age"].iloc[0]
    assert age["mae"] == pytest.approx(report["models"][age["model"]]["age"]["mae"])


def test_report_redraws_the_figures_from_saved_files(gra_net_smoke_run, tmp_path, capsys):
    run = shutil.copytree(gra_net_smoke_run, tmp_path / "run")
    figures = sorted(p.name for p in (run / "figures").glob("*.png"))
    shutil.rmtree(run / "figures")
    assert main(["report", "gra_net", "--run", str(run)]) == 0
    assert sorted(p.name for p in (run / "figures").glob("*.png")) == figures
    capsys.readouterr()
    assert main(["report", "cnn_lstm", "--run", str(run)]) == 2  # wrong preset for this run folder
    assert "gra_net" in capsys.readouterr().err


def test_report_without_the_data_root_is_one_line(gra_net_smoke_run, tmp_path, capsys, monkeypatch):
    """The face grid needs the test faces: a run made from ``$AGEGENDER_DATA``, redrawn with it unset."""
    run = shutil.copytree(gra_net_smoke_run, tmp_path / "run")
    fingerprint = json.loads((run / "fingerprint.json").read_text())
    fingerprint["context"]["data_root"] = "$AGEGENDER_DATA"
    (run / "fingerprint.json").write_text(json.dumps(fingerprint))
    monkeypatch.delenv("AGEGENDER_DATA", raising=False)
    capsys.readouterr()
    assert main(["report", "gra_net", "--run", str(run)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: $AGEGENDER_DATA is unset; set $AGEGENDER_DATA to the data root the run read")
    assert "utkface/" in line


def test_unknown_preset_and_missing_root_write_nothing(tmp_path, capsys):
    assert main(["run", "nope", "--data-root", str(tmp_path), "--out", str(tmp_path / "a")]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert main(["run", "gra_net", "--data-root", str(tmp_path), "--out", str(tmp_path / "b"), "--smoke"]) == 2
    assert "utkface" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_ensemble_trained_on_its_members_losses_keeps_the_averaging_model(utkface_layout_root, tmp_path):
    """``--set ensemble_loss=members``: each member's loss is in the history, best.keras is the averaging model
    (its outputs only), and the report scores the ensemble and each member alone."""
    from agegender_tf.experiments.rundir import load_keras_model

    out = tmp_path / "run"
    assert main(["run", "cnn_rnn_ensemble", "--data-root", str(utkface_layout_root), "--out", str(out), "--smoke",
                 "--quiet", "--seed", "7", "--set", "ensemble_loss=members", *TINY]) == 0
    network = out / "train" / "cnn_rnn_ensemble__gender_age_group_age"
    history = pd.read_csv(network / "history.csv")
    assert {"val_gender_member0_loss", "val_gender_member1_loss", "val_gender_accuracy"} <= set(history.columns)
    model = load_keras_model(network / "best.keras")
    assert sorted(model.output_names) == ["age", "age_group", "gender"]
    report = json.loads((out / "report.json").read_text())
    assert report["protocol"]["ensemble_loss"] == "members"
    assert {"cnn_rnn_ensemble", "cnn_rnn_ensemble_member0", "cnn_rnn_ensemble_member1"} <= set(report["models"])


@pytest.mark.background_run("killed")
def test_killed_run_resumes_from_its_last_epoch(background_runs):
    """``agegender run`` of ``KILLED_RUN_EPOCHS`` epochs, killed (SIGKILL) in the background once its history
    holds 2 epochs (conftest ``background_runs``, ``fixtures.KILLED_RUN_ARGS``), then the same command again: it
    resumes."""
    folder, killed = background_runs.futures["killed"].result()
    assert killed.returncode == -signal.SIGKILL, f"the run ended before it was killed: {killed.stderr[-3000:]}"
    history = folder / KILLED_RUN_HISTORY
    done_before = csv_rows(history)
    assert 2 <= done_before < KILLED_RUN_EPOCHS
    out = folder / "run"
    assert (history.parent / "backup").is_dir() and not (out / "report.json").exists()
    assert main(killed.args[3:]) == 0  # the same command again (in this process: TensorFlow is loaded already)
    assert pd.read_csv(history)["epoch"].tolist() == list(range(KILLED_RUN_EPOCHS))
    assert json.loads((out / "report.json").read_text())["protocol"]["epochs"] == KILLED_RUN_EPOCHS
