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
KEPT_LABEL = "kept (lowest val_loss)"
NO_AUGMENTATION = "no augmentation"
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


def kept_epoch(history: pd.DataFrame) -> int | None:
    """The epoch (counted from 1) whose weights the run kept: the checkpoint is the lowest ``val_loss``
    (``train.py``'s ``save_best_only``, the first of equal lows); None without a ``val_loss`` column."""
    if "val_loss" not in history or history["val_loss"].isna().all():
        return None
    row = history["val_loss"].idxmin()
    return int(history.loc[row, "epoch"]) + 1 if "epoch" in history else int(history.index.get_loc(row)) + 1


def learning_curves(history: pd.DataFrame, title: str = "", tasks=()):
    """Loss and each metric per epoch, training beside validation (paper 000 Fig. 3, paper 003 Fig. 4.4-4.5).

    ``tasks`` are the run's outputs, used to name a single-task run's bare ``accuracy``/``mae`` columns. A
    dotted line on every panel marks the epoch whose weights were kept (``kept_epoch``).
    """
    metrics = [c for c in history.columns if c not in ("epoch", "learning_rate", "lr") and not c.startswith("val_")]
    columns = min(len(metrics), 4)
    rows = int(np.ceil(len(metrics) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for unused in axes.ravel()[len(metrics):]:
        fig.delaxes(unused)
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    kept = kept_epoch(history)
    for ax, metric in zip(axes.ravel(), metrics):
        ax.plot(epochs, history[metric], "o-", label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "s--", label="validation")
        if kept is not None:
            ax.axvline(kept, color="grey", linestyle=":", linewidth=1.5,
                       label=f"epoch {kept} {KEPT_LABEL}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric_name(metric, tuple(tasks)))
        ax.grid(True)
        ax.legend(fontsize=8)
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
    """Precision, recall and F1 per class as grouped bars, each with its value printed on it (a score of 0 is a
    bar labelled "0", never a gap); a class with no test faces is marked "no faces", not scored."""
    frame = pd.DataFrame(per_class).T
    support = frame["support"] if "support" in frame else pd.Series(1, index=frame.index)
    scores = frame[["precision", "recall", "f1"]].astype(float).rename(columns={"f1": "F1"})
    scores[support == 0] = np.nan
    fig, ax = plt.subplots(figsize=(max(5.5, 0.9 * len(frame) + 3.5), 3.6))
    scores.plot.bar(ax=ax, rot=30 if len(frame) > 4 else 0, ylim=(0, 1.15), width=0.8)
    for container, column in zip(ax.containers, scores.columns):  # pandas draws a class not scored at 0
        values = scores[column].to_numpy()
        ax.bar_label(container, labels=[_score_text(v) for v in values], padding=1, fontsize=6.5,
                     rotation=90 if len(frame) > 4 else 0)
        for bar, value in zip(container, values):
            if value == 0:  # a zero score: a stub in the bar's colour under its "0"
                bar.set_edgecolor(bar.get_facecolor())
                bar.set_linewidth(1.5)
    for position, label in enumerate(frame.index):
        if support[label] == 0:
            ax.text(position, 0.02, NO_FACES, ha="center", va="bottom", rotation=90, color="grey", fontstyle="italic")
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("class")
    ax.set_ylabel("score on the test faces")
    ax.set_title(title)
    ax.grid(True, axis="y")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _score_text(value: float) -> str:
    """A bar's label: "0" for a score of zero, two decimals otherwise, nothing for a class not scored."""
    if not np.isfinite(value):
        return ""
    return "0" if value == 0 else f"{value:.2f}"


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


def value_axis(values) -> tuple[float, float, bool]:
    """Limits of a bar chart's value axis and whether it starts above 0: when every value lies within a quarter
    of the largest (0.917 beside 0.924), an axis from 0 would hide their differences, so it starts just below
    the smallest at a round number; room is left above the largest for the printed values."""
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if not values.size:
        return 0.0, 1.0, False
    low, high = float(values.min()), float(values.max())
    spread = high - low
    if low <= 0 or spread >= 0.25 * high:
        return 0.0, (high or 1.0) * 1.15, False
    spread = max(spread, 0.01 * high)
    step = 10.0 ** np.floor(np.log10(spread))
    start = float(np.floor((low - spread / 2) / step) * step)
    return start, high + 0.25 * (high - start), start > 0


def comparison_bars(metrics_by_model: dict[str, dict], metrics=("accuracy", "precision", "recall", "f1"),
                    title: str = "", value_label: str = "score on the test faces"):
    """Models compared on each metric (paper 000 Fig. 4: CNN-LSTM vs DCNN vs SVM vs K-Means) as horizontal bars:
    one group per metric, one bar per model (named in a legend beside the bars), its value printed at its end.

    Close values get an axis that does not start at 0 (``value_axis``), and the axis label says where it starts.
    """
    frame = pd.DataFrame({model: {m: values.get(m, np.nan) for m in metrics}
                          for model, values in metrics_by_model.items()})
    frame = frame.rename(index=COMPARISON_NAMES).astype(float)
    start, end, cut = value_axis(frame.to_numpy().ravel())
    models = len(frame.columns)
    fig, ax = plt.subplots(figsize=(7.5, max(2.6, 0.3 * models * len(frame) + 1.2)))
    colours = [f"C{index % 10}" for index in range(models)][::-1]  # the first model keeps the first colour
    frame.iloc[::-1, ::-1].plot.barh(ax=ax, width=0.8, xlim=(start, end), color=colours)  # first metric, model on top
    decimals = 3 if max(frame.max().fillna(0), default=0) <= 1 else 2
    for container in ax.containers:
        ax.bar_label(container, labels=["" if not np.isfinite(p.get_width()) else f"{p.get_width():.{decimals}f}"
                                        for p in container], padding=2, fontsize=7)
    ax.set_xlabel(f"{value_label} (axis starts at {start:g}, not 0)" if cut else value_label)
    ax.set_ylabel("")
    ax.set_title(title)
    ax.grid(True, axis="x")
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False,
              title="model")  # top to bottom, as the bars of each group
    fig.tight_layout()
    return fig


def augmentation_summary(spec: dict) -> str:
    """What an augmentation spec (``AugmentSpec.to_dict()``) does to a training face, in a few words
    ("mirror, rotation ±10°, zoom 0.9-1.1"); "no augmentation" when it draws nothing at random."""
    parts = []
    if spec.get("horizontal_flip"):
        parts.append("mirror")
    if spec.get("rotation_range"):
        parts.append(f"rotation ±{spec['rotation_range']:g}°")
    if spec.get("width_shift_range") or spec.get("height_shift_range"):
        parts.append(f"shift ±{spec.get('width_shift_range', 0):g} width, ±{spec.get('height_shift_range', 0):g} "
                     "height")
    zoom = tuple(spec.get("zoom_range") or (1.0, 1.0))
    if zoom != (1.0, 1.0):
        parts.append(f"zoom {zoom[0]:g}-{zoom[1]:g}")
    if spec.get("brightness_range"):
        parts.append("brightness ×{:g}-{:g}".format(*spec["brightness_range"]))
    if spec.get("noise_std"):
        parts.append(f"noise σ {spec['noise_std']:g}")
    if spec.get("random_crop") and spec.get("crop_size"):
        parts.append("random crop")
    for key, name in (("blur_prob", "blur"), ("low_res_prob", "low resolution"), ("jpeg_prob", "JPEG re-encoding"),
                      ("greyscale_prob", "greyscale")):
        if spec.get(key):
            parts.append(f"{name} p={spec[key]:g}")
    if spec.get("color_jitter"):
        parts.append(f"colour jitter ±{spec['color_jitter']:g}")
    return ", ".join(parts) or NO_AUGMENTATION


def augmentation_strip(augmented, captions, originals=None, augmentation: str = "",
                       title: str = "Training faces as the model sees them"):
    """A strip of training faces (float images in 0..1), each titled by what it is (``captions[i]``, e.g. its
    gender and age); with ``originals`` a first row shows the same faces without augmentation. The figure's
    title says which augmentation (``augmentation_summary``) drew the augmented row; a paper that augments
    nothing gets one row, "as trained"."""
    if augmentation == NO_AUGMENTATION:
        rows = [("as trained", augmented)]
    else:
        rows = ([("as read", originals)] if originals is not None else []) + [("augmented", augmented)]
    count = len(augmented)
    fig, axes = plt.subplots(len(rows), count, figsize=(2 * count, 2.2 * len(rows) + 0.6), squeeze=False)
    for row, (name, images) in enumerate(rows):
        for column, (ax, image) in enumerate(zip(axes[row], images)):
            ax.imshow(np.clip(np.asarray(image, dtype=float), 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(captions[column], fontsize=8)
            if column == 0:
                ax.set_ylabel(name)
    fig.suptitle(f"{title}\naugmentation: {augmentation}" if augmentation else title, fontsize=10)
    fig.tight_layout()
    return fig
