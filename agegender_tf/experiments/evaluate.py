"""Evaluation (DESIGN.md, "Evaluation"): accuracy, per-class precision/recall/F1 (scikit-learn),
confusion matrix, 1-off accuracy for ordered age groups (paper 000 sec. VIII, Levi-Hassner's
protocol), MAE/MSE/RMSE for ages (paper 001 sec. 3, paper 004 sec. 7.2), k-fold mean +- std (Adience's
five folds), and the paper-vs-kit table.

Predictions travel as one table (``predictions.csv``): per task ``<task>_true`` and ``<task>_pred``
(class index or years), plus a ``model`` column when several models are scored on the same faces.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, precision_recall_fscore_support


def classification_metrics(y_true, y_pred, labels: tuple[str, ...] | list[str], ordered: bool = False) -> dict:
    """Accuracy, macro precision/recall/F1, per-class rows, confusion matrix (and 1-off if ``ordered``)."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError("no samples to evaluate")
    indices = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=indices, average=None, zero_division=0
    )
    macro = precision_recall_fscore_support(y_true, y_pred, labels=indices, average="macro", zero_division=0)
    result = {
        "n": int(y_true.size),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(macro[0]),
        "recall": float(macro[1]),
        "f1": float(macro[2]),
        "per_class": {
            str(label): {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "labels": [str(label) for label in labels],
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
    }
    if ordered:
        result["one_off_accuracy"] = one_off_accuracy(y_true, y_pred)
    return result


def classification_text(y_true, y_pred, labels) -> str:
    """scikit-learn's classification report (the table paper 003 prints in Fig. 4.7)."""
    return classification_report(
        np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int), labels=list(range(len(labels))),
        target_names=[str(label) for label in labels], digits=4, zero_division=0,
    )


def one_off_accuracy(y_true, y_pred) -> float:
    """Share of predictions within one class of the truth (ordered age groups)."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    return float(np.mean(np.abs(y_true - y_pred) <= 1))


def regression_metrics(y_true, y_pred) -> dict:
    """MAE, MSE and RMSE in years."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.size == 0:
        raise ValueError("no samples to evaluate")
    error = y_pred - y_true
    mse = float(np.mean(error**2))
    return {"n": int(y_true.size), "mae": float(np.mean(np.abs(error))), "mse": mse, "rmse": math.sqrt(mse)}


def evaluate_table(predictions: pd.DataFrame, task_labels: dict[str, list[str] | None]) -> dict:
    """Metrics per task from a predictions table; ``task_labels`` maps task -> class labels (None for age)."""
    metrics = {}
    for task, labels in task_labels.items():
        true_col, pred_col = f"{task}_true", f"{task}_pred"
        if true_col not in predictions or pred_col not in predictions:
            raise KeyError(f"predictions lack {true_col!r}/{pred_col!r}; columns: {list(predictions.columns)}")
        rows = predictions[[true_col, pred_col]].dropna()
        if rows.empty:
            continue
        if labels is None:
            metrics[task] = regression_metrics(rows[true_col], rows[pred_col])
        else:
            metrics[task] = classification_metrics(rows[true_col], rows[pred_col], labels, ordered=task == "age_group")
    return metrics


def evaluate_by_model(predictions: pd.DataFrame, task_labels: dict[str, list[str] | None]) -> dict:
    """``evaluate_table`` for each value of the ``model`` column."""
    return {str(model): evaluate_table(rows, task_labels) for model, rows in predictions.groupby("model", sort=False)}


def fold_summary(per_fold: list[dict], keys=("accuracy", "one_off_accuracy", "f1", "mae")) -> dict:
    """Mean and (population) standard deviation over folds of each metric present in every fold."""
    summary = {"folds": len(per_fold)}
    for key in keys:
        values = [fold[key] for fold in per_fold if key in fold]
        if values and len(values) == len(per_fold):
            summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "values": values}
    return summary


def paper_comparison(paper_numbers, kit_metrics_by_model: dict[str, dict]) -> list[dict]:
    """Rows ``metric, model, task, paper, kit, gap`` for every paper number the kit measured too.

    A paper number the kit did not measure gets ``kit`` None, so nothing the paper claims is hidden.
    """
    rows = []
    for number in paper_numbers:
        kit_value = kit_metrics_by_model.get(number["model"], {}).get(number["task"], {}).get(number["metric"])
        rows.append({
            "model": number["model"], "task": number["task"], "metric": number["metric"],
            "paper": number["value"], "kit": kit_value,
            "gap": None if kit_value is None else float(kit_value) - float(number["value"]),
            "source": number["source"],
        })
    return rows


def comparison_markdown(rows: list[dict]) -> str:
    """The paper-vs-kit rows as a Markdown table."""
    lines = ["| model | task | metric | paper | kit | gap | source |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        kit = "not measured" if row["kit"] is None else f"{row['kit']:.4f}"
        gap = "" if row["gap"] is None else f"{row['gap']:+.4f}"
        lines.append(f"| {row['model']} | {row['task']} | {row['metric']} | {row['paper']} | {kit} | {gap} "
                     f"| {row['source']} |")
    return "\n".join(lines)
