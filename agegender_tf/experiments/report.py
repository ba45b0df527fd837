"""The run report (``report.json``, ``classification_report.txt``) and its figures, from saved files only.

``report.json`` keys: ``preset``, ``title``, ``seed_document``, ``dataset_used``, ``dataset_note``,
``protocol`` (split, image_size, epochs, batch_size, optimizer, augmentation, seed, smoke, counts),
``metrics`` (per task of the main model), ``models`` (per model, per task), ``paper`` (the paper's
numbers), ``comparison`` (metric, model, task, paper, kit, gap), ``interpretation`` and ``extra``
(e.g. Adience's five-fold summary). ``render_figures`` redraws every figure from the run folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from agegender_tf.binning import get_binning
from agegender_tf.experiments import evaluate, plots
from agegender_tf.experiments.presets import Preset

FIGURES = "figures"


def _task_labels(preset_dict: dict) -> dict:
    from agegender_tf.data.manifest import GENDER_CLASSES

    tasks = list(dict.fromkeys(t for group in preset_dict["task_groups"] for t in group))
    labels = {}
    for task in tasks:
        if task == "gender":
            labels[task] = list(GENDER_CLASSES)
        elif task == "age_group":
            labels[task] = list(get_binning(preset_dict["binning"]).labels)
        else:
            labels[task] = None
    return labels


def main_model_name(preset_dict: dict) -> str:
    if preset_dict["model"] == "transfer":
        return preset_dict["model_args"].get("backbone", "vgg16")
    return preset_dict["model"]


def write_report(preset: Preset, out_dir, predictions: pd.DataFrame, *, counts: dict, seed: int, smoke: bool,
                 seconds: float, parameters: dict, extra: dict | None = None) -> dict:
    """Score ``predictions`` per model and task, write ``report.json`` and ``classification_report.txt``."""
    out_dir = Path(out_dir)
    preset_dict = preset.to_dict()
    labels = _task_labels(preset_dict)
    by_model = evaluate.evaluate_by_model(predictions, labels)
    main = main_model_name(preset_dict)
    comparison = evaluate.paper_comparison(preset.paper_numbers, by_model)
    result = {
        "preset": preset.name,
        "title": preset.title,
        "seed_document": preset.seed_document,
        "paper_datasets": list(preset.paper_datasets),
        "dataset_used": preset.dataset,
        "dataset_note": preset.dataset_note,
        "main_model": main,
        "protocol": {
            "split": preset.split, "image_size": preset.image_size, "epochs": preset.epochs,
            "batch_size": preset.batch_size, "optimizer": preset.optimizer, "callbacks": preset.callbacks,
            "augmentation": preset.augment, "binning": preset.binning, "task_groups": [list(g) for g in preset.task_groups],
            "max_train_images": preset.max_train_images, "model_args": preset.model_args, "seed": seed,
            "smoke": smoke, "counts": counts, "parameters": parameters, "seconds": round(seconds, 1),
        },
        "metrics": by_model.get(main, {}),
        "models": by_model,
        "paper": list(preset.paper_numbers),
        "comparison": comparison,
        "interpretation": [{"ambiguity": a, "choice": c} for a, c in preset.interpretation],
        "extra": extra or {},
    }
    (out_dir / "report.json").write_text(json.dumps(result, indent=2, default=str))
    texts = []
    for model_name, rows in predictions.groupby("model", sort=False):
        for task, task_labels in labels.items():
            if task_labels is None or f"{task}_true" not in rows:
                continue
            scored = rows[[f"{task}_true", f"{task}_pred"]].dropna()
            if scored.empty:
                continue
            texts.append(f"== {model_name} / {task} ({len(scored)} test faces, {preset.dataset})\n"
                         + evaluate.classification_text(scored[f"{task}_true"], scored[f"{task}_pred"], task_labels))
    (out_dir / "classification_report.txt").write_text("\n".join(texts))
    return result


def render_figures(out_dir) -> list[Path]:
    """Draw every figure of the run in ``out_dir`` from its saved files; return their paths."""
    out_dir = Path(out_dir)
    folder = out_dir / FIGURES
    result = json.loads((out_dir / "report.json").read_text())
    preset_dict = json.loads((out_dir / "preset.json").read_text())
    labels = _task_labels(preset_dict)
    history = pd.read_csv(out_dir / "history.csv")
    predictions = pd.read_csv(out_dir / "predictions.csv")
    main = result["main_model"]
    paths = []
    for run_name, rows in history.groupby("run", sort=False):
        plots.learning_curves(rows.drop(columns=["run"]).reset_index(drop=True), title=run_name)
        paths.append(plots.save_fig(f"learning_curves_{run_name}", folder))
    for task, metrics in result["metrics"].items():
        if labels.get(task) is None:
            continue
        plots.confusion_heatmap(metrics["confusion_matrix"], metrics["labels"], title=f"{main}: {task}")
        paths.append(plots.save_fig(f"confusion_{task}", folder))
        plots.per_class_bars(metrics["per_class"], title=f"{main}: {task} per class")
        paths.append(plots.save_fig(f"per_class_{task}", folder))
    ages = pd.read_csv(out_dir / "train_ages.csv")["age"]
    binning = get_binning(preset_dict["binning"]) if preset_dict.get("binning") else None
    plots.age_histogram(ages, edges=binning.edges if binning else None,
                        title=f"Ages of the {len(ages)} training faces ({result['dataset_used']})")
    paths.append(plots.save_fig("age_histogram_train", folder))
    main_rows = predictions[predictions["model"] == main].head(18)
    if not main_rows.empty:
        captions_true, captions_pred = [], []
        for _, row in main_rows.iterrows():
            captions_true.append(_caption(row, labels, "true"))
            captions_pred.append(_caption(row, labels, "pred"))
        plots.face_grid(main_rows["path"].tolist(), captions_true, captions_pred,
                        title="test faces: true (first line) / predicted (second line)")
        paths.append(plots.save_fig("test_faces", folder))
    if len(result["models"]) > 1:
        for task in labels:
            scored = {m: v[task] for m, v in result["models"].items() if task in v}
            if len(scored) > 1:
                metrics = ("mae", "rmse") if labels[task] is None else ("accuracy", "precision", "recall", "f1")
                plots.comparison_bars(scored, metrics=metrics, title=f"{task}: models compared")
                paths.append(plots.save_fig(f"comparison_{task}", folder))
    return paths


def _caption(row, labels, which: str) -> str:
    parts = []
    for task, task_labels in labels.items():
        value = row.get(f"{task}_{which}")
        if value is None or pd.isna(value):
            continue
        parts.append(f"{value:.0f}y" if task_labels is None else task_labels[int(value)])
    return " ".join(parts)
