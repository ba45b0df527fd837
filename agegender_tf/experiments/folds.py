"""Fold protocols a preset asks for with ``fold_protocol`` (paper 000 sec. VI, paper 002: Adience's five folds).

Only part of Adience's images exist here, so its folds cannot be trained on: the networks a run
trained are tested on every official fold that has images, and the per-fold scores give the
five-fold mean +- std over the folds that have faces. The result goes to ``report.json`` under
``extra.<protocol>_folds``.
"""

from __future__ import annotations

from pathlib import Path

from agegender_tf.binning import AgeBinning
from agegender_tf.experiments import evaluate
from agegender_tf.experiments.predictions import TrainedNetwork, predict_table


def adience_fold_protocol(networks: list[TrainedNetwork], data_root: str | Path, binning: AgeBinning | None,
                          batch_size: int, seed: int) -> dict:
    """Each network scored on each Adience fold with images: ``{"tasks": {task: {"per_fold", mean, std}}}``."""
    from agegender_tf.data import read_dataset
    from agegender_tf.pipelines.targets import task_labels, usable_rows
    from agegender_tf.pipelines.tfdata import make_dataset
    from agegender_tf.tasks import REGRESSION_TASKS

    root = Path(data_root) / "adience"
    if not root.exists():
        return {"available": False, "reason": f"{root} not found"}
    manifest = read_dataset("adience", root).manifest
    if "image_found" in manifest:
        manifest = manifest[manifest["image_found"].astype(bool)].reset_index(drop=True)
    summary = {"available": True, "faces_with_images": int(len(manifest)), "tasks": {}}
    for network in networks:
        labels = task_labels(network.tasks, binning)
        per_task = {task: [] for task in network.tasks}
        for fold, frame in manifest.groupby("fold"):
            frame, _ = usable_rows(frame.reset_index(drop=True), outputs=network.tasks, binning=binning)
            if frame.empty:
                continue
            dataset = make_dataset(frame, network.spec, image_size=network.image_size, batch_size=batch_size,
                                   outputs=network.tasks, binning=binning, training=False, seed=seed)
            table = predict_table(network.model, dataset, frame, network.tasks, binning, network.name)
            for task in network.tasks:
                if task in REGRESSION_TASKS:
                    metrics = evaluate.regression_metrics(table[f"{task}_true"], table[f"{task}_pred"])
                    per_task[task].append({"fold": int(fold), "n": metrics["n"], "mae": metrics["mae"]})
                    continue
                metrics = evaluate.classification_metrics(table[f"{task}_true"], table[f"{task}_pred"], labels[task],
                                                          ordered=task == "age_group")
                per_task[task].append({"fold": int(fold), **{k: metrics[k] for k in
                                                             ("n", "accuracy", "f1", "one_off_accuracy")
                                                             if k in metrics}})
        for task, per_fold in per_task.items():
            summary["tasks"][task] = {"per_fold": per_fold, **evaluate.fold_summary(per_fold)}
    return summary


# fold_protocol name -> function(networks, data_root, binning, batch_size, seed) -> summary
FOLD_PROTOCOLS = {"adience": adience_fold_protocol}


def run_fold_protocol(name: str, networks: list[TrainedNetwork], data_root, binning, batch_size: int,
                      seed: int) -> dict:
    """``report.json``'s ``extra`` entry for the preset's ``fold_protocol`` ``name``."""
    if name not in FOLD_PROTOCOLS:
        raise ValueError(f"unknown fold_protocol {name!r}; choose one of {sorted(FOLD_PROTOCOLS)}")
    return {f"{name}_folds": FOLD_PROTOCOLS[name](networks, data_root, binning, batch_size, seed)}
