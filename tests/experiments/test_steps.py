"""A run taken step by step, as the notebooks take it (``runner.start``, ``plans.load_data``,
``runner.network_data``, ``build_network``, ``compile_network``, ``fit_network``, ``finish``), writes the
folder ``runner.run`` writes: the same files, preset, fingerprint, split, history and test predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd

from agegender_tf.experiments import plans, runner
from agegender_tf.experiments.report import metrics_table
from tests.fixtures import REPO_ROOT, RUN_STEPS, run_step_by_step, smoke_run_preset

# Both paths in one fresh process with TensorFlow's op determinism on (process-wide, so not in the test's
# own): two fits of one network on a CPU then agree to the bit, and the folders can be compared exactly.
BOTH_PATHS = """
import sys
import tensorflow as tf
tf.config.experimental.enable_op_determinism()
from agegender_tf.experiments import runner
from tests.fixtures import run_step_by_step, smoke_run_preset
root, out = sys.argv[1], sys.argv[2]
preset, seed = smoke_run_preset()
runner.run(preset, root, f"{out}/whole", smoke=True, seed=seed, verbose=0)
run_step_by_step(preset, root, f"{out}/steps", seed)
"""


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != ".lock")


def test_a_run_step_by_step_writes_the_folder_run_writes(utkface_layout_root, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", BOTH_PATHS, str(utkface_layout_root), str(tmp_path)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    steps, whole = tmp_path / "steps", tmp_path / "whole"
    assert _files(steps) == _files(whole)
    for name in ("preset.json", "train_ages.csv", "predictions.csv", "history.csv", "classification_report.txt"):
        assert (steps / name).read_text() == (whole / name).read_text(), name
    identity = [json.loads((f / "fingerprint.json").read_text())["identity"] for f in (steps, whole)]
    assert identity[0] == identity[1]
    reports = [json.loads((f / "report.json").read_text()) for f in (steps, whole)]
    assert reports[0]["protocol"]["counts"] == reports[1]["protocol"]["counts"]
    pd.testing.assert_frame_equal(metrics_table(reports[0]), metrics_table(reports[1]))


def test_each_step_hands_the_next_what_it_needs(utkface_layout_root, tmp_path):
    """The steps' own results, as a notebook shows them: the pipelines at the preset's size, the paper's
    optimizer, the history of the fitted epochs, and a fitted network that is not fitted again."""
    preset, seed = smoke_run_preset()
    out = runner.start(preset, utkface_layout_root, tmp_path / "run", seed=seed, smoke=True)
    parts, _ = plans.load_data(preset, utkface_layout_root, seed)
    plan = plans.network_plan(preset, preset.task_groups[0])
    data = runner.network_data(preset, plan, parts, seed)
    assert set(data.datasets) == {"train", "val", "test"}
    assert data.datasets["train"].element_spec[0].shape[1:] == (preset.image_size, preset.image_size, 3)
    model, fit = runner.compile_network(preset, plan, runner.build_network(preset, plan, seed), data)
    assert type(model.optimizer).__name__.lower() == preset.optimizer["name"]
    history = runner.fit_network(preset, plan, model, fit, out, verbose=0)
    assert len(history) == preset.epochs and (out / "train" / plan.run.folder / "done.json").is_file()
    again = runner.fit_network(preset, plan, model, fit, out, verbose=0)
    pd.testing.assert_frame_equal(again, history)


def test_the_step_by_step_helper_is_the_notebooks_sequence():
    """``tests.fixtures.run_step_by_step`` calls the steps in the order the notebooks do (``RUN_STEPS``;
    test_notebooks.py holds the notebooks to the same order)."""
    import inspect

    source = inspect.getsource(run_step_by_step)
    positions = [source.find(step) for step in RUN_STEPS]
    assert -1 not in positions and positions == sorted(positions)
