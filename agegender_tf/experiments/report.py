"""The run report (``report.json``, ``classification_report.txt``) and its figures, from saved files only.

``report.json`` keys: ``preset``, ``title``, ``seed_document``, ``dataset_used``, ``dataset_note``,
``protocol`` (split, image_size, epochs, batch_size, optimizer, augmentation, seed, smoke, profile
(the ``--profile`` name, null when none), counts, seconds (this call), training_seconds (per network)),
``metrics`` (per task of the main model), ``models`` (per model, per task), ``paper`` (the paper's
numbers), ``comparison`` (metric, model, task, paper, kit, gap), ``interpretation`` and ``extra``
(e.g. Adience's five-fold summary). ``render_figures`` redraws every figure from the run folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from agegender_tf.binning import get_binning
from agegender_tf.errors import UsageError
from agegender_tf.experiments import evaluate, plots, rundir
from agegender_tf.experiments.presets import Preset

FIGURES = "figures"


class TestFaceNotFound(UsageError, FileNotFoundError):
    """A test face of ``predictions.csv`` is not under the data root (one line: the face and what to set)."""

    __test__ = False  # not a pytest class


def _task_labels(preset_dict: dict) -> dict:
    """Class labels per task of a saved preset (``targets.task_labels``; None for the age regression)."""
    from agegender_tf.pipelines.targets import task_labels

    tasks = dict.fromkeys(t for group in preset_dict["task_groups"] for t in group)
    return task_labels(tasks, get_binning(preset_dict["binning"]) if preset_dict.get("binning") else None)


def main_model_name(preset_dict: dict) -> str:
    """The main model's name in the tables: a variant such as ``resnet50`` for ``transfer``
    (``registry.report_name``)."""
    from agegender_tf.models import registry

    return registry.report_name(preset_dict["model"], preset_dict["model_args"])


def write_report(preset: Preset, out_dir, predictions: pd.DataFrame, *, counts: dict, seed: int, smoke: bool,
                 seconds: float, parameters: dict, extra: dict | None = None, distribution: dict | None = None,
                 figures: bool = True, data_root=None, training_seconds: dict | None = None) -> dict:
    """Score ``predictions`` per model and task; write ``classification_report.txt``, the figures (``figures``)
    and, last and atomically, ``report.json``: a run folder without it is unfinished.

    ``distribution`` is the ``tf.distribute`` record of the run (``train.distribution_record``);
    ``data_root`` is where the test faces of ``predictions.csv`` (relative paths) are, for the face grid;
    ``training_seconds`` each network's fit time (``done.json``), recorded as ``protocol.training_seconds``.
    """
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
            "augmentation": preset.augment, "binning": preset.binning,
            "task_groups": [list(g) for g in preset.task_groups],
            "max_train_images": preset.max_train_images, "model_args": preset.model_args, "seed": seed,
            "smoke": smoke, "profile": preset.profile, "ensemble_loss": preset.ensemble_loss,
            "precision": preset.dtype_policy, "counts": counts, "parameters": parameters,
            "seconds": round(seconds, 1), "training_seconds": training_seconds or {},
            "distribution": distribution,
        },
        "metrics": by_model.get(main, {}),
        "models": by_model,
        "paper": list(preset.paper_numbers),
        "comparison": comparison,
        "interpretation": [{"ambiguity": a, "choice": c} for a, c in preset.interpretation],
        "extra": extra or {},
    }
    rundir.write_text_atomic(out_dir / "classification_report.txt", classification_texts(predictions, labels,
                                                                                      preset.dataset))
    if figures:
        render_figures(out_dir, json.loads(json.dumps(result, default=str)), data_root=data_root)
    rundir.write_json_atomic(out_dir / rundir.REPORT_FILE, result)
    return result


def classification_texts(predictions: pd.DataFrame, labels: dict, dataset: str) -> str:
    """``classification_report.txt``: scikit-learn's report per model and class task of ``predictions``."""
    texts = []
    for model_name, rows in predictions.groupby("model", sort=False):
        for task, task_labels in labels.items():
            if task_labels is None or f"{task}_true" not in rows:
                continue
            scored = rows[[f"{task}_true", f"{task}_pred"]].dropna()
            if scored.empty:
                continue
            texts.append(f"== {model_name} / {task} ({len(scored)} test faces, {dataset})\n"
                         + evaluate.classification_text(scored[f"{task}_true"], scored[f"{task}_pred"], task_labels))
    return "\n".join(texts)


# The columns of ``metrics_table``: what each model scored on each task's test faces.
METRIC_COLUMNS = ("n", "accuracy", "precision", "recall", "f1", "one_off_accuracy", "mae", "rmse")


def metrics_table(result: dict) -> pd.DataFrame:
    """One row per model and task of a report (``result["models"]``) with its ``METRIC_COLUMNS`` (None where a
    metric does not apply, e.g. accuracy for the age regression)."""
    rows = [{"model": model_name, "task": task, **{k: metrics.get(k) for k in METRIC_COLUMNS}}
            for model_name, tasks in result["models"].items() for task, metrics in tasks.items()]
    return pd.DataFrame(rows)


def render_figures(out_dir, result: dict | None = None, data_root=None) -> list[Path]:
    """Draw every figure of the run in ``out_dir`` from its saved files; return their paths.

    ``result`` is the report when ``write_report`` draws the figures before writing ``report.json``;
    ``data_root`` holds the test faces (``face_paths``).

    A smoke run's figures say under them that their numbers only show that the pipeline runs.
    """
    out_dir = Path(out_dir)
    folder = out_dir / FIGURES
    result = json.loads((out_dir / "report.json").read_text()) if result is None else result
    preset_dict = json.loads((out_dir / "preset.json").read_text())
    labels = _task_labels(preset_dict)
    history = pd.read_csv(out_dir / "history.csv")
    predictions = pd.read_csv(out_dir / "predictions.csv")
    main = result["main_model"]
    note = smoke_note(result)
    paths = []

    def save(fig, name):
        if note:
            plots.add_note(fig, note)
        paths.append(plots.save_fig(name, folder, fig=fig))

    for run_name, rows in history.groupby("run", sort=False):
        network = rundir.NetworkRun.from_folder(run_name, preset_dict["task_groups"], main)
        title = f"{network.name} learning curves: " + ", ".join(plots.TASK_NAMES.get(t, t) for t in network.task_group)
        save(plots.learning_curves(rows.drop(columns=["run"]).reset_index(drop=True), title=title,
                                   tasks=network.task_group), f"learning_curves_{run_name}")
    for task, metrics in result["metrics"].items():
        if labels.get(task) is None:
            continue
        name = plots.TASK_NAMES.get(task, task)
        save(plots.confusion_heatmap(metrics["confusion_matrix"], metrics["labels"],
                                     title=f"{main}: {name} on {metrics['n']} test faces"), f"confusion_{task}")
        save(plots.per_class_bars(metrics["per_class"], title=f"{main}: {name} per class"), f"per_class_{task}")
    ages = pd.read_csv(out_dir / "train_ages.csv")["age"]
    binning = get_binning(preset_dict["binning"]) if preset_dict.get("binning") else None
    save(plots.age_histogram(ages, edges=binning.edges if binning else None,
                             title=f"Ages of the {len(ages)} training faces ({result['dataset_used']})",
                             edge_label=f"age-group edges ({binning.name})" if binning else "class edges"),
         "age_histogram_train")
    main_rows = predictions[predictions["model"] == main].head(18)
    if not main_rows.empty:
        captions = [_caption(row, labels) for _, row in main_rows.iterrows()]
        faces = face_paths(main_rows["path"], out_dir, data_root)
        save(plots.face_grid(faces, captions, title=f"{main}: the first test faces"), "test_faces")
    if len(result["models"]) > 1:
        for task in labels:
            scored = {m: v[task] for m, v in result["models"].items() if task in v}
            if len(scored) > 1:
                regression = labels[task] is None
                metrics = ("mae", "rmse") if regression else ("accuracy", "precision", "recall", "f1")
                save(plots.comparison_bars(scored, metrics=metrics,
                                           title=f"{plots.TASK_NAMES.get(task, task)}: models compared",
                                           value_label="error in years" if regression
                                           else "score on the test faces"),
                     f"comparison_{task}")
    return paths


def face_paths(paths, out_dir, data_root=None) -> list[Path]:
    """``predictions.csv`` paths (relative to the data root) joined with the data root: ``data_root``, else
    the one the run read (its ``fingerprint.json``), else ``$AGEGENDER_DATA``. A face not found is named."""
    from agegender_tf.paths import DATA_ENV

    if data_root is None:
        fingerprint = Path(out_dir) / rundir.FINGERPRINT_FILE
        if fingerprint.is_file():
            data_root = json.loads(fingerprint.read_text()).get("context", {}).get("data_root")
            data_root = os.path.expandvars(data_root) if data_root else None
    if data_root is None or not Path(data_root).is_dir():
        data_root = os.environ.get(DATA_ENV) or data_root
    unset = data_root is None or (f"${DATA_ENV}" in str(data_root) and not os.environ.get(DATA_ENV))
    joined = [Path(data_root or "", path) for path in paths]
    for path, relative in zip(joined, paths):
        if not path.is_file():
            where = (f"${DATA_ENV} is unset" if unset
                     else f"test face {path} of {Path(out_dir) / 'predictions.csv'} not found")
            raise TestFaceNotFound(f"{where}; set ${DATA_ENV} to the data root the run read (the folder "
                                   f"holding {relative})")
    return joined


def smoke_note(result: dict) -> str:
    """The line a smoke run's figures carry ("" for a full run)."""
    if not result.get("protocol", {}).get("smoke"):
        return ""
    return f"smoke run: numbers only show the pipeline runs; see results/{result['preset']}/ for a full run"


def _caption(row, labels) -> list[tuple[str, str]]:
    """Caption lines of one test face: one per task the model predicts, each named."""
    lines = []
    for task, task_labels in labels.items():
        true, pred = row.get(f"{task}_true"), row.get(f"{task}_pred")
        if true is None or pred is None or pd.isna(true) or pd.isna(pred):
            continue
        lines.append(plots.caption_line(task, true, pred, task_labels))
    return lines
