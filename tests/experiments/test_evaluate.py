"""Evaluation: metrics against hand-computed values, 1-off accuracy, regression errors, folds, paper table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from agegender_tf.experiments import evaluate


def test_classification_metrics_by_hand():
    # truth 0 0 1 1 1, prediction 0 1 1 1 0: class 0 P=1/2 R=1/2, class 1 P=2/3 R=2/3
    metrics = evaluate.classification_metrics([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["female", "male"])
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["per_class"]["female"]["precision"] == pytest.approx(0.5)
    assert metrics["per_class"]["male"]["recall"] == pytest.approx(2 / 3)
    assert metrics["precision"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert metrics["confusion_matrix"] == [[1, 1], [1, 2]]
    assert "one_off_accuracy" not in metrics


def test_one_off_counts_neighbouring_groups():
    truth, pred = [0, 3, 5, 7], [1, 3, 3, 7]
    assert evaluate.one_off_accuracy(truth, pred) == pytest.approx(3 / 4)
    metrics = evaluate.classification_metrics(truth, pred, [str(i) for i in range(8)], ordered=True)
    assert metrics["one_off_accuracy"] == pytest.approx(3 / 4) and metrics["accuracy"] == pytest.approx(2 / 4)


def test_classes_absent_from_the_test_set_still_appear():
    metrics = evaluate.classification_metrics([0, 0], [0, 0], ["a", "b", "c"])
    assert metrics["per_class"]["c"]["support"] == 0
    assert np.array(metrics["confusion_matrix"]).shape == (3, 3)


def test_regression_metrics():
    metrics = evaluate.regression_metrics([10, 20, 30], [12, 20, 26])
    assert metrics["mae"] == pytest.approx(2.0)
    assert metrics["mse"] == pytest.approx((4 + 0 + 16) / 3)
    assert metrics["rmse"] == pytest.approx(math.sqrt(20 / 3))


def test_mismatched_or_empty_inputs_are_errors():
    with pytest.raises(ValueError, match="shape"):
        evaluate.classification_metrics([0, 1], [0], ["a", "b"])
    with pytest.raises(ValueError, match="no samples"):
        evaluate.regression_metrics([], [])


def test_evaluate_table_by_model_and_text_report():
    table = pd.DataFrame({
        "model": ["a"] * 4 + ["b"] * 4,
        "gender_true": [0, 1, 0, 1] * 2, "gender_pred": [0, 1, 0, 1, 1, 1, 1, 1],
        "age_true": [10.0, 20, 30, 40] * 2, "age_pred": [11.0, 19, 30, 40, 10, 20, 30, 50],
    })
    by_model = evaluate.evaluate_by_model(table, {"gender": ["female", "male"], "age": None})
    assert by_model["a"]["gender"]["accuracy"] == 1.0 and by_model["b"]["gender"]["accuracy"] == 0.5
    assert by_model["b"]["age"]["mae"] == pytest.approx(2.5)
    text = evaluate.classification_text(table["gender_true"], table["gender_pred"], ["female", "male"])
    assert "female" in text and "macro avg" in text
    with pytest.raises(KeyError, match="age_group_true"):
        evaluate.evaluate_table(table, {"age_group": ["x", "y"]})


def test_fold_summary_mean_and_std():
    folds = [{"accuracy": 0.5, "f1": 0.4}, {"accuracy": 0.7, "f1": 0.6}]
    summary = evaluate.fold_summary(folds)
    assert summary["folds"] == 2
    assert summary["accuracy"]["mean"] == pytest.approx(0.6) and summary["accuracy"]["std"] == pytest.approx(0.1)
    assert "mae" not in summary


def test_paper_comparison_keeps_unmeasured_numbers():
    paper = [{"model": "m", "task": "gender", "metric": "accuracy", "value": 0.9, "source": "seed x"},
             {"model": "m", "task": "age", "metric": "mae", "value": 4.2, "source": "seed x"}]
    rows = evaluate.paper_comparison(paper, {"m": {"gender": {"accuracy": 0.8}}})
    assert rows[0]["gap"] == pytest.approx(-0.1)
    assert rows[1]["kit"] is None and rows[1]["gap"] is None
    markdown = evaluate.comparison_markdown(rows)
    assert "not measured" in markdown and "-0.1000" in markdown
