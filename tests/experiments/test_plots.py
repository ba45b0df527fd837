"""Figures: each plot reads correctly on its own (titles, labels, legends, colour bar, "no faces"), save_fig
writes a real PNG, and a smoke run's figures say what their numbers mean."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from PIL import Image

from agegender_tf.experiments import plots, report
from tests.fixtures import write_jpeg


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _is_png(path):
    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 50


def _texts(figure):
    return [t.get_text() for t in figure.findobj(lambda artist: hasattr(artist, "get_text"))]


def test_importing_plots_leaves_the_matplotlib_backend_alone():
    """Jupyter's inline backend must survive ``import agegender_tf.experiments.plots`` (plt.show() draws)."""
    code = ("import matplotlib; import agegender_tf.experiments.plots, agegender_tf.experiments.report; "
            "print(matplotlib.get_backend())")
    env = {**os.environ, "MPLBACKEND": "svg"}
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "svg"


def test_every_figure_saves_a_png_and_closes_it(tmp_path):
    history = pd.DataFrame({"epoch": [0, 1, 2], "loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.9],
                            "accuracy": [0.5, 0.6, 0.7], "val_accuracy": [0.5, 0.55, 0.6]})
    faces = [write_jpeg(tmp_path / f"face{i}.jpg", size=40, seed=i) for i in range(4)]
    captions = [[plots.caption_line("gender", 0, i % 2, ["female", "male"])] for i in range(4)]
    drawn = {
        "curves": lambda: plots.learning_curves(history, title="t", tasks=("gender",)),
        "confusion": lambda: plots.confusion_heatmap([[3, 1], [0, 4]], ["female", "male"]),
        "per_class": lambda: plots.per_class_bars({"female": {"precision": 1, "recall": 0.75, "f1": 0.86, "support": 4},
                                                   "male": {"precision": 0.8, "recall": 1, "f1": 0.89, "support": 4}}),
        "ages": lambda: plots.age_histogram(np.array([1, 5, 30, 30, np.nan, 80]), edges=(0, 10, 20, 60)),
        "faces": lambda: plots.face_grid(faces, captions, columns=3),
        "comparison": lambda: plots.comparison_bars({"x": {"accuracy": 0.9, "f1": 0.8}, "y": {"accuracy": 0.7}}),
        "augmentation": lambda: plots.augmentation_strip(np.zeros((2, 8, 8, 3)), ["female, 30 y", "male, 4 y"]),
    }
    for name, draw in drawn.items():
        figure = draw()
        assert figure.axes, name
        path = plots.save_fig(name, tmp_path / "figures", fig=figure)
        assert path == tmp_path / "figures" / f"{name}.png" and _is_png(path)
        assert not plt.fignum_exists(figure.number), f"{name} was left open"


def test_learning_curves_name_metrics_in_words_with_integer_epochs():
    history = pd.DataFrame({"epoch": [0, 1], "loss": [1, 0.5], "val_loss": [1, 0.6], "gender_accuracy": [0.5, 0.6],
                            "age_group_accuracy": [0.2, 0.3], "age_mae": [9, 8], "learning_rate": [1e-3, 1e-3]})
    figure = plots.learning_curves(history, title="gra_net learning curves: gender, age group, age",
                                   tasks=("gender", "age_group", "age"))
    assert [ax.get_title() for ax in figure.axes] == ["total loss", "gender accuracy", "age group accuracy",
                                                      "age MAE (years)"]
    assert figure._suptitle.get_text() == "gra_net learning curves: gender, age group, age"
    figure.canvas.draw()
    for ax in figure.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert ax.get_xlabel() == "epoch" and ax.get_legend() is not None


def test_single_task_runs_name_bare_keras_metrics_by_their_task():
    assert plots.metric_name("accuracy", ("gender",)) == "gender accuracy"
    assert plots.metric_name("val_mae", ("age",)) == "age MAE (years)"
    assert plots.metric_name("loss", ("age_group",)) == "age group loss"
    assert plots.metric_name("age_group_loss", ("gender", "age_group")) == "age group loss"


def test_confusion_heatmap_is_row_normalised_with_a_colour_bar_and_says_so():
    figure = plots.confusion_heatmap([[2, 2], [0, 5]], ["a", "b"], title="m: gender")
    heatmap, colour_bar = figure.axes
    assert sorted(t.get_text() for t in heatmap.texts) == ["0.00", "0.50", "0.50", "1.00"]
    assert "row-normalised: recall per true class" in heatmap.get_title()
    assert colour_bar.get_ylabel() == "share of the true class's faces"
    assert (heatmap.get_xlabel(), heatmap.get_ylabel()) == ("predicted class", "true class")


def test_a_class_without_test_faces_shows_no_faces_not_zero():
    figure = plots.confusion_heatmap([[3, 1, 0], [0, 0, 0], [1, 0, 2]], ["young", "middle", "old"])
    heatmap = figure.axes[0]
    texts = [t.get_text() for t in heatmap.texts]
    assert texts.count(plots.NO_FACES) == 1
    assert len([t for t in texts if t != plots.NO_FACES]) == 6  # the empty row's three cells carry no number
    marker = next(t for t in heatmap.texts if t.get_text() == plots.NO_FACES)
    assert marker.get_position()[1] == pytest.approx(1.5)  # on the middle row
    assert figure.axes[1].get_ylabel()  # colour bar still there


def test_per_class_bars_label_the_score_and_mark_empty_classes():
    figure = plots.per_class_bars({"a": {"precision": 0.5, "recall": 1.0, "f1": 0.67, "support": 3},
                                   "b": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}}, title="t")
    ax = figure.axes[0]
    assert ax.get_ylabel() == "score on the test faces" and ax.get_xlabel() == "class"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["precision", "recall", "F1"]
    marks = [t for t in ax.texts if t.get_text() == plots.NO_FACES]
    assert len(marks) == 1 and marks[0].get_position()[0] == 1  # over class "b"
    assert sorted(t.get_text() for t in ax.texts if t.get_text() not in ("", plots.NO_FACES)) == ["0.50", "0.67",
                                                                                                "1.00"]
    assert [p.get_height() for p in ax.patches] == [0.5, 0, 1.0, 0, 0.67, 0]  # "b" gets no bars


def test_age_histogram_names_its_class_edges_in_a_legend():
    figure = plots.age_histogram(np.array([1, 5, 30, 30, 80]), edges=(0, 10, 20, 60), edge_label="age-group edges (x)")
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["age-group edges (x)", "faces per year of age"] or labels == ["faces per year of age",
                                                                                    "age-group edges (x)"]
    assert len(ax.lines) == 3 and ax.get_xlabel() == "age (years)" and ax.get_ylabel() == "faces"


def test_face_grid_colours_each_task_line_and_has_a_legend(tmp_path):
    faces = [write_jpeg(tmp_path / f"face{i}.jpg", size=40, seed=i) for i in range(2)]
    groups = ["20-29", "30-39"]
    captions = [
        [plots.caption_line("gender", 1, 1, ["female", "male"]), plots.caption_line("age_group", 1, 1, groups),
         plots.caption_line("age", 35.0, 34.2)],
        [plots.caption_line("gender", 0, 1, ["female", "male"]), plots.caption_line("age_group", 1, 0, groups),
         plots.caption_line("age", 33.0, 0.4)],
    ]
    assert captions[0] == [("gender male", plots.CORRECT), ("age group 30-39", plots.CORRECT),
                           ("age 34 y (true 35)", plots.NEUTRAL)]
    assert captions[1][:2] == [("gender male (true female)", plots.WRONG),
                               ("age group 20-29 (true 30-39)", plots.WRONG)]
    figure = plots.face_grid(faces, captions, columns=2)
    colours = {t.get_text(): t.get_color() for ax in figure.axes for t in ax.texts}
    assert to_rgba(colours["gender male"]) == to_rgba("green")
    assert to_rgba(colours["age group 20-29 (true 30-39)"]) == to_rgba("red")
    assert to_rgba(colours["age 0 y (true 33)"]) == to_rgba("black")
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend == ["prediction right", "prediction wrong (true value in brackets)",
                      "predicted age in years (true age in brackets)"]


def _run_folder(tmp_path, smoke: bool):
    """A run folder as ``agegender run`` writes it for a gender + age-group + age model."""
    out = tmp_path / ("smoke" if smoke else "full")
    out.mkdir()
    faces = [str(write_jpeg(tmp_path / "faces" / f"{i}.jpg", size=40, seed=i)) for i in range(4)]
    groups = ["0-9", "10-19", "20-29"]
    pd.DataFrame({"model": "gra_net", "path": faces, "gender_true": [0, 1, 0, 1], "gender_pred": [0, 1, 1, 1],
                  "age_group_true": [0, 2, 2, 2], "age_group_pred": [0, 2, 0, 2],
                  "age_true": [5.0, 25, 28, 22], "age_pred": [7.0, 24, 9, 20]}
                 ).to_csv(out / "predictions.csv", index=False)
    pd.DataFrame({"epoch": [0, 1], "loss": [2.0, 1.5], "val_loss": [2.1, 1.7], "gender_accuracy": [0.5, 0.7],
                  "val_gender_accuracy": [0.5, 0.6], "run": "gra_net__gender_age_group_age"}
                 ).to_csv(out / "history.csv", index=False)
    pd.DataFrame({"age": [5, 25, 28, 22, 14]}).to_csv(out / "train_ages.csv", index=False)
    preset = {"task_groups": [["gender", "age_group", "age"]], "binning": "decades"}
    (out / "preset.json").write_text(json.dumps(preset))
    per_class = {g: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": s} for g, s in zip(groups, (1, 0, 3))}
    metrics = {"gender": {"n": 4, "confusion_matrix": [[1, 1], [0, 2]], "labels": ["female", "male"],
                          "per_class": {k: dict(v, support=2) for k, v in zip(("female", "male"), per_class.values())}},
               "age_group": {"n": 4, "confusion_matrix": [[1, 0, 0], [0, 0, 0], [1, 0, 2]], "labels": groups,
                             "per_class": per_class},
               "age": {"n": 4, "mae": 6.0}}
    written = {"preset": "gra_net", "main_model": "gra_net", "dataset_used": "utkface", "protocol": {"smoke": smoke},
               "metrics": metrics, "models": {"gra_net": metrics}}
    (out / "report.json").write_text(json.dumps(written))
    return out


def test_render_figures_marks_a_smoke_run_and_titles_curves_by_model_and_tasks(tmp_path, monkeypatch):
    drawn = []
    real_save = plots.save_fig

    def keep(name, folder, fig=None, **kwargs):
        drawn.append((name, _texts(fig)))
        return real_save(name, folder, fig=fig, **kwargs)

    monkeypatch.setattr(plots, "save_fig", keep)
    paths = report.render_figures(_run_folder(tmp_path, smoke=True))
    assert all(_is_png(p) for p in paths)
    names = [name for name, _ in drawn]
    assert names == ["learning_curves_gra_net__gender_age_group_age", "confusion_gender", "per_class_gender",
                     "confusion_age_group", "per_class_age_group", "age_histogram_train", "test_faces"]
    note = "smoke run: numbers only show the pipeline runs; see results/gra_net/"
    assert all(any(note in text for text in texts) for _, texts in drawn)
    curves = dict(drawn)["learning_curves_gra_net__gender_age_group_age"]
    assert "gra_net learning curves: gender, age group, age" in curves
    assert "gra_net__gender_age_group_age" not in curves
    assert plots.NO_FACES in dict(drawn)["confusion_age_group"]

    drawn.clear()
    report.render_figures(_run_folder(tmp_path, smoke=False))
    assert not any("smoke run" in text for _, texts in drawn for text in texts)


def _bar_labels(ax):
    return [t.get_text() for t in ax.texts if t.get_text()]


def _right_of_axes(figure, legend):
    figure.canvas.draw()
    return legend.get_window_extent().x0 >= figure.axes[0].get_window_extent().x1


def test_comparison_bars_zoom_in_on_close_scores_and_print_them():
    figure = plots.comparison_bars({"ensemble": {"accuracy": 0.924, "f1": 0.923},
                                    "member0": {"accuracy": 0.917, "f1": 0.916}}, metrics=("accuracy", "f1"),
                                   title="gender: models compared")
    ax = figure.axes[0]
    start, end = ax.get_xlim()
    assert 0.85 < start < 0.916 and end > 0.924  # not 0-1: 0.917 and 0.924 differ visibly
    assert ax.get_xlabel() == f"score on the test faces (axis starts at {start:g}, not 0)"
    assert sorted(_bar_labels(ax)) == ["0.916", "0.917", "0.923", "0.924"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["macro F1", "accuracy"]  # horizontal: no overlap
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["ensemble", "member0"]
    assert _right_of_axes(figure, legend)  # beside the bars, covering none
    assert ax.get_title() == "gender: models compared"


def test_comparison_bars_start_at_zero_for_scores_far_apart():
    figure = plots.comparison_bars({"x": {"accuracy": 0.9}, "y": {"accuracy": 0.3}}, metrics=("accuracy",),
                                   value_label="error in years")
    ax = figure.axes[0]
    assert ax.get_xlim()[0] == 0 and ax.get_xlabel() == "error in years"
    assert sorted(_bar_labels(ax)) == ["0.300", "0.900"]


def test_value_axis_starts_at_a_round_number_under_close_values():
    assert plots.value_axis([7.1, 7.4, 7.3]) == pytest.approx((6.9, 7.4 + 0.25 * 0.5, True))
    assert plots.value_axis([0.5, 0.9])[:1] == (0.0,) and not plots.value_axis([0.5, 0.9])[2]
    assert plots.value_axis([np.nan, None]) == (0.0, 1.0, False)


def test_per_class_bars_show_a_zero_score_as_a_labelled_zero_bar():
    figure = plots.per_class_bars({"female": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 5},
                                   "male": {"precision": 0.6, "recall": 1.0, "f1": 0.75, "support": 5}})
    ax = figure.axes[0]
    zeros = [t for t in ax.texts if t.get_text() == "0"]
    assert len(zeros) == 3  # precision, recall and F1 of "female"
    female = [p for p in ax.patches if abs(p.get_x() + p.get_width() / 2) < 0.5]
    assert len(female) == 3 and all(p.get_height() == 0 and p.get_linewidth() > 0 for p in female)
    assert plots.NO_FACES not in _bar_labels(ax)
    assert _right_of_axes(figure, ax.get_legend())


def test_learning_curves_mark_the_epoch_whose_weights_were_kept():
    history = pd.DataFrame({"epoch": [0, 1, 2, 3], "loss": [1.0, 0.8, 0.6, 0.5], "val_loss": [1.1, 0.7, 0.7, 0.9],
                            "accuracy": [0.5, 0.6, 0.7, 0.8], "val_accuracy": [0.5, 0.6, 0.6, 0.55]})
    assert plots.kept_epoch(history) == 2  # the first of the lowest val_loss, counted from 1
    figure = plots.learning_curves(history, tasks=("gender",))
    for ax in figure.axes:
        marks = [line for line in ax.lines if list(line.get_xdata()) == [2, 2]]
        assert len(marks) == 1, ax.get_title()
        assert f"epoch 2 {plots.KEPT_LABEL}" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert plots.kept_epoch(history.drop(columns=["val_loss"])) is None


def test_augmentation_strip_says_what_each_face_is_and_how_it_was_augmented():
    spec = {"horizontal_flip": True, "rotation_range": 10.0, "zoom_range": [0.9, 1.1], "random_crop": True,
            "crop_size": 227, "blur_prob": 0.2}
    summary = plots.augmentation_summary(spec)
    assert summary == "mirror, rotation ±10°, zoom 0.9-1.1, random crop, blur p=0.2"
    assert plots.augmentation_summary({"zoom_range": [1.0, 1.0]}) == "no augmentation"
    images = np.random.default_rng(0).random((3, 8, 8, 3))
    captions = ["female, 30 y", "male, 4 y", "female, 61 y"]
    figure = plots.augmentation_strip(images, captions, originals=images, augmentation=summary, title="UTKFace")
    axes = np.array(figure.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes[0]] == captions
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["as read", "augmented"]
    assert figure._suptitle.get_text() == f"UTKFace\naugmentation: {summary}"
    plain = plots.augmentation_strip(images, captions, originals=images, augmentation=plots.NO_AUGMENTATION)
    assert [ax.get_ylabel() for ax in plain.axes] == ["as trained", "", ""]  # no second, identical row
    assert plain._suptitle.get_text().endswith("\naugmentation: no augmentation")
