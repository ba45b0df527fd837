"""A committed run folder, read once and held to the code: does its ``report.json`` recompute from its
``predictions.csv``, does each model meet the learning bar, how many epochs did each network run.

Every number comes from the folder's own files: ``report.json`` (protocol, counts, run time, metrics,
paper-vs-kit rows, and ``split_v2``: the test faces a later split excludes, left out of every score),
``predictions.csv`` (the majority-class and median-age baselines of the learning
bar), ``history.csv`` (epochs per network and what stopped them), ``COMMAND.txt`` and each network's fit
time (``protocol.training_seconds``, else ``train/<network>/done.json`` where present).

The learning bar, per model and task on the committed test faces: gender accuracy >= 0.80; age-group
accuracy >= the majority class + 0.05 and macro F1 >= 0.30; age MAE <= 0.6 x the MAE of always
predicting the test median. Paper 000's SVM and K-Means baselines are reported as they come.
``results_table`` renders these into ``results/README.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from agegender_tf.tasks import BASELINES

COMMAND_FILE = "COMMAND.txt"

GENDER_BAR = 0.80
AGE_GROUP_MARGIN = 0.05
AGE_GROUP_F1_BAR = 0.30
AGE_MAE_RATIO = 0.6
# Paper 000's classical baselines: reported as they come, no learning bar.
BASELINE_MODELS = BASELINES
# A classifier "stayed at one class" when at least this share of its test predictions is a single class.
ONE_CLASS_SHARE = 0.99


@dataclass(frozen=True)
class RunFolder:
    """One committed run folder, read once: its report, predictions, histories and command."""

    name: str
    path: Path
    report: dict
    predictions: pd.DataFrame
    history: pd.DataFrame | None
    command: str | None
    network_seconds: dict
    excluded: tuple = ()  # predicted faces a later split excludes (``report["split_v2"]``), not in ``predictions``


def run_folders(results_dir: str | Path) -> list[Path]:
    """The folders of ``results_dir`` that hold a ``report.json``, by name."""
    return sorted(p.parent for p in Path(results_dir).glob("*/report.json"))


def read_run(folder: str | Path) -> RunFolder:
    """Read a run folder's files; a missing or unreadable one is named."""
    folder = Path(folder)
    try:
        report = json.loads((folder / "report.json").read_text())
        predictions = pd.read_csv(folder / "predictions.csv")
    except (OSError, ValueError) as error:
        raise ValueError(f"{folder}: cannot read its report.json / predictions.csv ({error})") from None
    history = pd.read_csv(folder / "history.csv") if (folder / "history.csv").is_file() else None
    command_file = folder / COMMAND_FILE
    command = command_file.read_text().strip() if command_file.is_file() else None
    seconds = dict(report.get("protocol", {}).get("training_seconds") or {})
    for done in sorted(folder.glob("train/*/done.json")):  # checkpoints folder, where it was kept
        seconds.setdefault(done.parent.name, json.loads(done.read_text()).get("seconds"))
    excluded = tuple((report.get("split_v2") or {}).get("excluded") or ())
    if excluded:  # re-scored on a split that excludes some of its test faces (experiments/rescore.py)
        predictions = predictions[~predictions["path"].isin(excluded)].reset_index(drop=True)
    return RunFolder(folder.name, folder, report, predictions, history, command, seconds, excluded)


# ---------------------------------------------------------------------------------------- checking
def task_labels(report: dict) -> dict:
    """Class labels per task of the run (``report._task_labels`` on its protocol; None for the age regression)."""
    from agegender_tf.experiments.report import _task_labels

    protocol = report["protocol"]
    return _task_labels({"task_groups": protocol["task_groups"], "binning": protocol.get("binning")})


def rescore(run: RunFolder) -> dict:
    """Every model's metrics recomputed from ``predictions.csv`` by the kit's own evaluation."""
    from agegender_tf.experiments import evaluate

    return evaluate.evaluate_by_model(run.predictions, task_labels(run.report))


def differences(expected, got, where: str = "", rel: float = 1e-9) -> list[str]:
    """Where ``got`` differs from ``expected`` (numbers within ``rel``, relative), as ``key: expected != got``."""
    if isinstance(expected, dict) and isinstance(got, dict):
        found = [f"{where}.{key}: missing" for key in expected if key not in got]
        found += [f"{where}.{key}: not in the recomputation" for key in got if key not in expected]
        for key in expected.keys() & got.keys():
            found += differences(expected[key], got[key], f"{where}.{key}", rel)
        return found
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        return [d for i, (a, b) in enumerate(zip(expected, got)) for d in differences(a, b, f"{where}[{i}]", rel)]
    numbers = (int, float)
    if isinstance(expected, numbers) and isinstance(got, numbers) and not isinstance(expected, bool):
        same = np.isclose(float(got), float(expected), rtol=rel, atol=0.0) or (np.isnan(expected) and np.isnan(got))
        return [] if same else [f"{where}: {expected!r} != {got!r}"]
    return [] if expected == got else [f"{where}: {expected!r} != {got!r}"]


def metric_mismatches(run: RunFolder) -> list[str]:
    """Where ``report.json`` differs from its ``predictions.csv`` rescored: every model's metrics, the main
    model's ``metrics`` and each paper-vs-kit row's ``kit`` value. Empty when the report holds."""
    models = rescore(run)
    report = run.report
    found = differences(models, report["models"], "models")
    found += differences(models.get(report["main_model"], {}), report["metrics"], "metrics")
    for index, row in enumerate(report.get("comparison", [])):
        kit = models.get(row["model"], {}).get(row["task"], {}).get(row["metric"])
        found += differences(kit, row["kit"], f"comparison[{index}].kit")
    return found


# ------------------------------------------------------------------------------------- the bar
def baselines(run: RunFolder, model: str, task: str) -> dict:
    """The test faces' majority-class share (classes) or the MAE of always predicting their median age."""
    rows = run.predictions[run.predictions["model"] == model]
    scored = rows[[f"{task}_true", f"{task}_pred"]].dropna()
    true = scored[f"{task}_true"].to_numpy(float)
    if task == "age":
        return {"median_mae": float(np.mean(np.abs(true - np.median(true))))}
    top_share = float(scored[f"{task}_pred"].value_counts(normalize=True).max())
    return {"majority": float(pd.Series(true).value_counts(normalize=True).max()), "top_prediction_share": top_share}


def learning_bar(task: str, metrics: dict, baseline: dict) -> tuple[bool, str]:
    """(passed, the rule with this model's numbers) of the learning bar for one task."""
    if task == "gender":
        return metrics["accuracy"] >= GENDER_BAR, f"accuracy >= {GENDER_BAR:.2f}"
    if task == "age_group":
        need = baseline["majority"] + AGE_GROUP_MARGIN
        passed = metrics["accuracy"] >= need and metrics["f1"] >= AGE_GROUP_F1_BAR
        return passed, f"accuracy >= {need:.3f}, macro F1 >= {AGE_GROUP_F1_BAR:.2f}"
    limit = AGE_MAE_RATIO * baseline["median_mae"]
    return metrics["mae"] <= limit, f"MAE <= {limit:.2f}"


def model_rows(run: RunFolder) -> list[dict]:
    """Per model and task: its metrics, baselines, learning-bar verdict and whether it stayed at one class."""
    rows = []
    for model, tasks in run.report["models"].items():
        for task, metrics in tasks.items():
            base = baselines(run, model, task)
            is_baseline = model in BASELINE_MODELS
            passed, rule = (None, "baseline, no bar") if is_baseline else learning_bar(task, metrics, base)
            one_class = task != "age" and base["top_prediction_share"] >= ONE_CLASS_SHARE
            rows.append({"model": model, "task": task, "metrics": metrics, "baseline": base, "passed": passed,
                         "rule": rule, "one_class": one_class})
    return rows


def model_verdicts(rows: list[dict]) -> dict[str, bool | None]:
    """Per model: True when every task meets the bar, False when one misses, None for a baseline."""
    verdicts: dict[str, bool | None] = {}
    for row in rows:
        if row["passed"] is None:
            verdicts.setdefault(row["model"], None)
        else:
            verdicts[row["model"]] = bool(verdicts.get(row["model"], True)) and row["passed"]
    return verdicts


# ----------------------------------------------------------------------------------------- epochs
def epochs_run(run: RunFolder) -> list[dict]:
    """Per trained network (``history.csv``'s ``run``): epochs run, the best ``val_loss`` epoch and what ended it.

    EarlyStopping (min_delta 0) stops ``patience`` epochs after the best one, so a run that ended before
    its epoch cap exactly there was stopped by it; otherwise by the time limit when one was set.
    """
    if run.history is None or "run" not in run.history:
        return []
    protocol = run.report["protocol"]
    callbacks = protocol.get("callbacks") or {}
    cap = int(protocol["epochs"])
    patience = (callbacks.get("early_stopping") or {}).get("patience")
    result = []
    for network, rows in run.history.groupby("run", sort=False):
        rows = rows.drop_duplicates("epoch", keep="last").sort_values("epoch")
        count = len(rows)
        # history.csv counts epochs from 0; reported from 1, as Keras prints them ("Epoch 12/50").
        best = int(rows["epoch"].iloc[int(np.argmin(rows["val_loss"].to_numpy()))]) + 1 if "val_loss" in rows else None
        if count >= cap:
            stopped = "epoch cap"
        elif patience is not None and best is not None and best == int(rows["epoch"].iloc[-1]) + 1 - int(patience):
            stopped = "early stopping"
        elif "time_limit" in callbacks:
            stopped = "time limit"
        else:
            stopped = "not known"
        result.append({"network": network, "epochs": count, "cap": cap, "best_epoch": best, "stopped_by": stopped,
                       "seconds": run.network_seconds.get(network)})
    return result
