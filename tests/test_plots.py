"""Figures: each plot function draws from saved data and save_fig writes a real PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from agegender_tf.experiments import plots
from tests.fixtures import write_jpeg


def _is_png(path):
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 50


def test_every_figure_saves_a_png(tmp_path):
    history = pd.DataFrame({"epoch": [0, 1, 2], "loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.9],
                            "accuracy": [0.5, 0.6, 0.7], "val_accuracy": [0.5, 0.55, 0.6]})
    faces = [write_jpeg(tmp_path / f"face{i}.jpg", size=40, seed=i) for i in range(4)]
    drawn = {
        "curves": lambda: plots.learning_curves(history, title="t"),
        "confusion": lambda: plots.confusion_heatmap([[3, 1], [0, 4]], ["female", "male"]),
        "per_class": lambda: plots.per_class_bars({"female": {"precision": 1, "recall": 0.75, "f1": 0.86},
                                                   "male": {"precision": 0.8, "recall": 1, "f1": 0.89}}),
        "ages": lambda: plots.age_histogram(np.array([1, 5, 30, 30, np.nan, 80]), edges=(0, 10, 20, 60)),
        "faces": lambda: plots.face_grid(faces, ["a", "b", "a", "b"], ["a", "a", "a", "b"], columns=3),
        "comparison": lambda: plots.comparison_bars({"x": {"accuracy": 0.9, "f1": 0.8}, "y": {"accuracy": 0.7}}),
    }
    for name, draw in drawn.items():
        figure = draw()
        assert figure.axes, name
        path = plots.save_fig(name, tmp_path / "figures")
        assert path == tmp_path / "figures" / f"{name}.png" and _is_png(path)


def test_learning_curves_one_panel_per_metric():
    history = pd.DataFrame({"epoch": [0, 1], "loss": [1, 0.5], "val_loss": [1, 0.6], "gender_accuracy": [0.5, 0.6],
                            "age_mae": [9, 8], "learning_rate": [1e-3, 1e-3]})
    figure = plots.learning_curves(history)
    assert [ax.get_title() for ax in figure.axes] == ["loss", "gender_accuracy", "age_mae"]


def test_confusion_heatmap_is_row_normalised():
    figure = plots.confusion_heatmap([[2, 2], [0, 5]], ["a", "b"])
    texts = sorted(t.get_text() for t in figure.axes[0].texts)
    assert texts == ["0.00", "0.50", "0.50", "1.00"]
