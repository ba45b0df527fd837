"""`agegender papers | run | report` end to end on a UTKFace-layout fixture, and kill-and-rerun resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from agegender_tf.cli import main
from tests.fixtures import write_jpeg

TINY = ["--set", "split.kind=holdout", "--set", "image_size=32", "--set", "batch_size=16"]


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    """120 real JPEGs named as UTKFace names them: ``[age]_[gender]_[race]_[date].jpg.chip.jpg``."""
    root = tmp_path_factory.mktemp("data")
    index = 0
    for age in (5, 25, 45):
        for gender in (0, 1):
            for copy in range(20):
                stamp = f"2017011{index % 10}1{index:05d}"
                write_jpeg(root / "utkface" / "UTKFace" / f"{age + copy % 3}_{gender}_{copy % 5}_{stamp}.jpg.chip.jpg",
                           size=40, seed=index)
                index += 1
    return root


def test_papers_lists_the_five(capsys):
    assert main(["papers", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["seed_document"] for r in rows] == [
        "000_2d9ca6d609785c90", "001_21a2552084d7feab", "002_b85b1a003b9b5354", "003_49ef1d907f51e97c",
        "004_f2c8ad08a614c73c"]
    assert main(["papers"]) == 0
    assert "transfer_vgg16_resnet50" in capsys.readouterr().out


def test_run_smoke_writes_report_and_figures_then_report_redraws(fixture_root, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "gra_net", "--data-root", str(fixture_root), "--out", str(out), "--smoke", "--quiet", *TINY])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    for key in ("preset", "seed_document", "dataset_used", "protocol", "metrics", "paper", "comparison",
                "interpretation"):
        assert key in report
    counts = report["protocol"]["counts"]
    assert counts["read"] == 120 and counts["train"] + counts["val"] + counts["test"] == 120
    assert set(report["metrics"]) == {"gender", "age_group", "age"}
    assert 0 <= report["metrics"]["gender"]["accuracy"] <= 1 and report["metrics"]["age"]["mae"] >= 0
    assert "one_off_accuracy" in report["metrics"]["age_group"]
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == counts["test"]
    assert {"gender_true", "gender_pred", "age_group_pred", "age_pred"} <= set(predictions.columns)
    assert "macro avg" in (out / "classification_report.txt").read_text()
    assert (out / "train" / "gra_net__gender_age_group_age" / "best.keras").exists()
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    expected = {"age_histogram_train.png", "confusion_gender.png", "per_class_age_group.png", "test_faces.png"}
    assert expected <= set(figures)
    assert any(name.startswith("learning_curves_") for name in figures)
    for path in (out / "figures").glob("*.png"):
        path.unlink()
    capsys.readouterr()
    assert main(["report", "gra_net", "--run", str(out)]) == 0
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == figures
    assert main(["report", "cnn_lstm", "--run", str(out)]) == 2  # wrong preset for this run folder


def test_unknown_preset_and_missing_root(tmp_path, capsys):
    # user errors: one line and exit 2, nothing written (tests/test_cli_errors.py has every case)
    assert main(["run", "nope", "--data-root", str(tmp_path)]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert main(["run", "gra_net", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--smoke"]) == 2
    assert "utkface" in capsys.readouterr().err and not (tmp_path / "o").exists()


def _history_rows(path: Path) -> int:
    try:
        return len(pd.read_csv(path))
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return 0


def test_killed_run_resumes_from_its_last_epoch(fixture_root, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "agegender_tf.cli", "run", "gra_net", "--data-root", str(fixture_root),
               "--out", str(out), "--smoke", "--quiet", *TINY, "--set", "epochs=12",
               "--set", "callbacks={'early_stopping': {'monitor': 'val_loss', 'patience': 100}}"]
    history = out / "train" / "gra_net__gender_age_group_age" / "history.csv"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while _history_rows(history) < 2 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.fail("the run finished before it could be killed")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = _history_rows(history)
    assert 2 <= done_before < 12
    assert (history.parent / "backup").is_dir()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    epochs = pd.read_csv(history)["epoch"].tolist()
    assert epochs == list(range(12)), epochs
    assert (out / "report.json").exists()
