"""A run taken step by step, as the notebooks take it (``runner.start``, ``plans.load_data``,
``runner.network_data``, ``build_network``, ``compile_network``, ``fit_network``, ``finish``), writes the
folder ``runner.run`` writes: the same files, preset, fingerprint, split, history and test predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from agegender_tf.experiments import plans, runner
from agegender_tf.experiments.report import metrics_table
from agegender_tf.experiments.rundir import load_keras_model
from tests.fixtures import SMOKE_RUN_ARGS


def _smoke_preset():
    """The preset ``gra_net_smoke_run`` resolves from ``SMOKE_RUN_ARGS`` (its ``--set`` values)."""
    overrides = [SMOKE_RUN_ARGS[i + 1] for i, arg in enumerate(SMOKE_RUN_ARGS) if arg == "--set"]
    return plans.resolve_preset("gra_net", smoke=True, overrides=overrides)


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != ".lock")


def test_a_run_step_by_step_writes_the_folder_run_writes(gra_net_smoke_run, utkface_layout_root, tmp_path):
    seed = int(SMOKE_RUN_ARGS[SMOKE_RUN_ARGS.index("--seed") + 1])
    preset = _smoke_preset()
    out = runner.start(preset, utkface_layout_root, tmp_path / "steps", seed=seed, smoke=True)
    parts, counts = plans.load_data(preset, utkface_layout_root, seed)
    plan = plans.network_plan(preset, preset.task_groups[0])
    data = runner.network_data(preset, plan, parts, seed)
    assert set(data.datasets) == {"train", "val", "test"}
    assert data.datasets["train"].element_spec[0].shape[1:] == (preset.image_size, preset.image_size, 3)
    model = runner.build_network(preset, plan, seed)
    model, fit = runner.compile_network(preset, plan, model, data)
    assert type(model.optimizer).__name__.lower() == preset.optimizer["name"]
    history = runner.fit_network(preset, plan, model, fit, out, verbose=0)
    assert len(history) == preset.epochs and (out / "train" / plan.run.folder / "done.json").is_file()
    result = runner.finish(preset, utkface_layout_root, out, parts, counts, seed=seed, smoke=True, verbose=0)

    assert _files(out) == _files(gra_net_smoke_run)
    for name in ("preset.json", "train_ages.csv"):
        assert (out / name).read_text() == (gra_net_smoke_run / name).read_text(), name
    identity = [json.loads((f / "fingerprint.json").read_text())["identity"] for f in (out, gra_net_smoke_run)]
    assert identity[0] == identity[1]
    stepped, whole = (pd.read_csv(folder / "predictions.csv") for folder in (out, gra_net_smoke_run))
    assert stepped.columns.tolist() == whole.columns.tolist()
    labels = [c for c in whole.columns if c.endswith("_true") or c in ("model", "path")]
    pd.testing.assert_frame_equal(stepped[labels], whole[labels])
    # Two fits of one network on one CPU agree to float rounding, not to the bit; a barely trained network's
    # gender sits near 0.5, where rounding flips labels: compare the saved networks' outputs instead.
    best = [load_keras_model(f / "train" / plan.run.folder / "best.keras") for f in (out, gra_net_smoke_run)]
    images = next(iter(data.datasets["test"]))[0]
    for name, stepped_out in best[0](images).items():
        np.testing.assert_allclose(stepped_out, best[1](images)[name], rtol=1e-3, atol=1e-4, err_msg=name)
    histories = [pd.read_csv(folder / "history.csv") for folder in (out, gra_net_smoke_run)]
    assert histories[0].columns.tolist() == histories[1].columns.tolist()
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-3)
    report = json.loads((gra_net_smoke_run / "report.json").read_text())
    assert result["protocol"]["counts"] == report["protocol"]["counts"]
    tables = [metrics_table(r) for r in (result, report)]
    assert tables[0][["model", "task"]].equals(tables[1][["model", "task"]])
