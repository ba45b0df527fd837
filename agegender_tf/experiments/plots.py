"""Figures of a run (DESIGN.md, "Plots"), handson-ml3 style: every figure is saved by name with
``save_fig`` into the run's ``figures/`` folder, and each is drawn only from files the run wrote
(``history*.csv``, ``predictions.csv``, ``train_ages.csv``, ``report.json``), so ``agegender report``
redraws them without training.

The module never chooses a matplotlib backend: scripts and CI set ``MPLBACKEND=Agg``, and Jupyter's
inline backend shows a returned figure with ``plt.show()``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from agegender_tf.paths import replace_atomic

CORRECT, WRONG, NEUTRAL = "correct", "wrong", "neutral"
CAPTION_COLOURS = {CORRECT: "green", WRONG: "red", NEUTRAL: "black"}
TASK_NAMES = {"gender": "gender", "age_group": "age group", "age": "age"}
NO_FACES = "no faces"
COMPARISON_NAMES = {"precision": "macro precision", "recall": "macro recall", "f1": "macro F1", "mae": "MAE",
                    "rmse": "RMSE"}


def save_fig(name: str, folder: str | Path, fig=None, fig_extension: str = "png", resolution: int = 100) -> Path:
    """Save ``fig`` (default: the current figure) as ``folder/name.png``, close it and return the path."""
    fig = plt.gcf() if fig is None else fig
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{fig_extension}"
    try:
        with replace_atomic(path) as temporary:  # a full disk leaves the old figure, never half of one
            fig.savefig(temporary, format=fig_extension, dpi=resolution, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def add_note(fig, text: str):
    """Write ``text`` in red under the figure (e.g. that a smoke run's numbers mean nothing); return ``fig``."""
    fig.text(0.5, 0.0, text, ha="center", va="top", color="darkred", fontsize=9, wrap=True)
    return fig


def metric_name(column: str, tasks=()) -> str:
    """A Keras history column as words: ``age_mae`` -> "age MAE (years)", ``accuracy`` of a gender run ->
    "gender accuracy", ``loss`` of a multi-task run -> "total loss"."""
    name = column.removeprefix("val_")
    task = next((t for t in sorted(TASK_NAMES, key=len, reverse=True) if name.startswith(f"{t}_")), None)
    if task is not None:
        name = name[len(task) + 1:]
    elif len(tasks) == 1:
        task = tasks[0]
    words = {"accuracy": "accuracy", "mae": "MAE (years)", "loss": "loss"}.get(name, name.replace("_", " "))
    if task is None:
        return "total loss" if name == "loss" and len(tasks) > 1 else words
    return f"{TASK_NAMES[task]} {words}"


def learning_curves(history: pd.DataFrame, title: str = "", tasks=()):
    """Loss and each metric per epoch, training beside validation (paper 000 Fig. 3, paper 003 Fig. 4.4-4.5).

    ``tasks`` are the run's outputs, used to name a single-task run's bare ``accuracy``/``mae`` columns.
    """
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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric_name(metric, tuple(tasks)))
        ax.grid(True)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_heatmap(matrix, labels, title: str = "", normalize: bool = True):
    """Confusion matrix as a seaborn heatmap (rows: true, columns: predicted) with a colour bar.

    Row-normalised by default, so each row shows where the faces of one true class went and the
    diagonal is that class's recall. A class with no test faces has a blank row marked "no faces".
    """
    matrix = np.asarray(matrix, dtype=float)
    empty = matrix.sum(axis=1) == 0
    shown = matrix / np.where(empty, 1, matrix.sum(axis=1))[:, None] if normalize else matrix.copy()
    size = max(4.5, 0.7 * len(labels) + 3)
    fig, ax = plt.subplots(figsize=(size, size * 0.8))
    colour_bar = "share of the true class's faces" if normalize else "faces"
    sns.heatmap(shown, mask=np.repeat(empty[:, None], len(labels), axis=1), annot=True,
                fmt=".2f" if normalize else ".0f", cmap="Blues", xticklabels=labels, yticklabels=labels, ax=ax,
                vmin=0, vmax=1 if normalize else None, cbar=True, cbar_kws={"label": colour_bar})
    for row in np.flatnonzero(empty):
        ax.text(len(labels) / 2, row + 0.5, NO_FACES, ha="center", va="center", color="grey", fontstyle="italic")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    note = "row-normalised: recall per true class" if normalize else "counts of test faces"
    ax.set_title(f"{title}\n({note})" if title else note)
    fig.tight_layout()
    return fig


def per_class_bars(per_class: dict, title: str = ""):
    """Precision, recall and F1 per class as grouped bars; a class with no test faces is marked, not scored."""
    frame = pd.DataFrame(per_class).T
    support = frame["support"] if "support" in frame else pd.Series(1, index=frame.index)
    scores = frame[["precision", "recall", "f1"]].astype(float).rename(columns={"f1": "F1"})
    scores[support == 0] = np.nan
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(frame) + 2.5), 3.4))
    scores.plot.bar(ax=ax, rot=30, ylim=(0, 1))
    for position, label in enumerate(frame.index):
        if support[label] == 0:
            ax.text(position, 0.02, NO_FACES, ha="center", va="bottom", rotation=90, color="grey", fontstyle="italic")
    ax.set_xlabel("class")
    ax.set_ylabel("score on the test faces")
    ax.set_title(title)
    ax.grid(True, axis="y")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def age_histogram(ages, edges=None, labels=None, title: str = "Ages of the training faces",
                  edge_label: str = "class edges"):
    """Histogram of the training ages, with the binning's class edges drawn (and named in a legend) where given."""
    ages = np.asarray(ages, dtype=float)
    ages = ages[~np.isnan(ages)]
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.hist(ages, bins=np.arange(0, max(ages.max() if ages.size else 1, 1) + 2) - 0.5, color="steelblue",
            label="faces per year of age")
    for index, edge in enumerate((edges or ())[1:]):
        ax.axvline(edge - 0.5, color="darkred", linewidth=0.8, label=edge_label if index == 0 else None)
    ax.set_xlabel("age (years)")
    ax.set_ylabel("faces")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def caption_line(task: str, true, pred, labels=None) -> tuple[str, str]:
    """One caption line and its status for a face: a class task names the prediction (and the truth when
    wrong), the age regression gives the predicted years and the true age."""
    name = TASK_NAMES.get(task, task)
    if labels is None:
        return f"{name} {pred:.0f} y (true {true:.0f})", NEUTRAL
    predicted, actual = labels[int(pred)], labels[int(true)]
    if int(pred) == int(true):
        return f"{name} {predicted}", CORRECT
    return f"{name} {predicted} (true {actual})", WRONG


def face_grid(paths, captions, columns: int = 6, image_size: int = 96, title: str = ""):
    """A grid of test faces, each captioned by one line per task (``captions[i]``: (text, status) pairs from
    ``caption_line``): green when the prediction is right, red when wrong, black for the age in years."""
    from PIL import Image

    count = len(paths)
    lines = max((len(c) for c in captions), default=1)
    rows = max(1, int(np.ceil(count / columns)))
    image_in, caption_in, header_in = 1.9, 0.1 + 0.16 * lines, 0.75
    height = rows * (image_in + caption_in) + header_in
    fig, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, height), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, wspace=0.08, top=1 - header_in / height, bottom=caption_in / height,
                        hspace=caption_in / image_in)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, path, caption in zip(axes.ravel(), paths, captions):
        with Image.open(path) as image:
            ax.imshow(image.convert("RGB").resize((image_size, image_size)))
        for number, (text, status) in enumerate(caption):
            ax.annotate(text, xy=(0.5, 0), xycoords="axes fraction", xytext=(0, -3 - 11.5 * number),
                        textcoords="offset points", ha="center", va="top", fontsize=7.5, color=CAPTION_COLOURS[status])
    used = {status for caption in captions for _, status in caption}
    handles = [Patch(color=CAPTION_COLOURS[s], label=label) for s, label in
               ((CORRECT, "prediction right"), (WRONG, "prediction wrong (true value in brackets)"),
                (NEUTRAL, "predicted age in years (true age in brackets)")) if s in used]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 1 - header_in / height))
    if title:
        fig.suptitle(title, y=1 - 0.1 / height, va="top")
    return fig


def comparison_bars(metrics_by_model: dict[str, dict], metrics=("accuracy", "precision", "recall", "f1"),
                    title: str = "", ylabel: str = "score on the test faces"):
    """One group of bars per model (paper 000 Fig. 4: CNN-LSTM vs DCNN vs SVM vs K-Means)."""
    frame = pd.DataFrame({model: {m: values.get(m, np.nan) for m in metrics}
                          for model, values in metrics_by_model.items()}).T
    frame = frame.rename(columns=COMPARISON_NAMES)
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(frame) + 2), 3.4))
    limit = (0, 1) if max(frame.max(numeric_only=True).fillna(0), default=0) <= 1 else None
    frame.plot.bar(ax=ax, rot=0, ylim=limit)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y")
    fig.tight_layout()
    return fig
