"""Figures of a run (DESIGN.md, "Plots"), handson-ml3 style: every figure is saved by name with
``save_fig`` into the run's ``figures/`` folder, and each is drawn only from files the run wrote
(``history*.csv``, ``predictions.csv``, ``train_ages.csv``, ``report.json``), so ``agegender report``
redraws them without training.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def save_fig(name: str, folder: str | Path, tight_layout: bool = True, fig_extension: str = "png", resolution: int = 100) -> Path:
    """Save the current figure as ``folder/name.png`` and close it; return the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{fig_extension}"
    if tight_layout:
        plt.tight_layout()
    plt.savefig(path, format=fig_extension, dpi=resolution)
    plt.close()
    return path


def learning_curves(history: pd.DataFrame, title: str = ""):
    """Loss and each metric per epoch, training beside validation (seed 000 Fig. 3, seed 003 Fig. 4.4-4.5)."""
    metrics = [c for c in history.columns if c not in ("epoch", "learning_rate", "lr") and not c.startswith("val_")]
    columns = min(len(metrics), 4)
    rows = int(np.ceil(len(metrics) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for unused in axes.ravel()[len(metrics):]:
        fig.delaxes(unused)
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    for ax, metric in zip(axes.ravel(), metrics):
        ax.plot(epochs, history[metric], "o-", label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "s--", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(True)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def confusion_heatmap(matrix, labels, title: str = "", normalize: bool = True):
    """Confusion matrix as a seaborn heatmap (rows: true, columns: predicted), row-normalised by default."""
    matrix = np.asarray(matrix, dtype=float)
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    size = max(3.5, 0.7 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    sns.heatmap(shown, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues", xticklabels=labels,
                yticklabels=labels, cbar=False, ax=ax, vmin=0)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return fig


def per_class_bars(per_class: dict, title: str = ""):
    """Precision, recall and F1 per class as grouped bars."""
    frame = pd.DataFrame(per_class).T[["precision", "recall", "f1"]]
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(frame) + 2), 3.2))
    frame.plot.bar(ax=ax, rot=30, ylim=(0, 1))
    ax.set_title(title)
    ax.grid(True, axis="y")
    return fig


def age_histogram(ages, edges=None, labels=None, title: str = "Ages of the training faces"):
    """Histogram of the training ages, with the binning's class edges drawn where given."""
    ages = np.asarray(ages, dtype=float)
    ages = ages[~np.isnan(ages)]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(ages, bins=np.arange(0, max(ages.max() if ages.size else 1, 1) + 2) - 0.5, color="steelblue")
    for edge in (edges or ())[1:]:
        ax.axvline(edge - 0.5, color="darkred", linewidth=0.8)
    ax.set_xlabel("age (years)")
    ax.set_ylabel("faces")
    ax.set_title(title)
    return fig


def face_grid(paths, true_labels, pred_labels, columns: int = 6, image_size: int = 96, title: str = ""):
    """A grid of test faces captioned ``true / predicted`` (green when right, red when wrong)."""
    from PIL import Image

    count = len(paths)
    rows = max(1, int(np.ceil(count / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.1 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, path, true, pred in zip(axes.ravel(), paths, true_labels, pred_labels):
        with Image.open(path) as image:
            ax.imshow(image.convert("RGB").resize((image_size, image_size)))
        ax.set_title(f"{true}\n{pred}", fontsize=8, color="green" if true == pred else "red")
    if title:
        fig.suptitle(title)
    return fig


def comparison_bars(metrics_by_model: dict[str, dict], metrics=("accuracy", "precision", "recall", "f1"), title: str = ""):
    """One group of bars per model (seed 000 Fig. 4: CNN-LSTM vs DCNN vs SVM vs K-Means)."""
    frame = pd.DataFrame({model: {m: values.get(m, np.nan) for m in metrics} for model, values in metrics_by_model.items()}).T
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(frame) + 2), 3.4))
    frame.plot.bar(ax=ax, rot=0, ylim=(0, 1))
    ax.set_title(title)
    ax.grid(True, axis="y")
    return fig
