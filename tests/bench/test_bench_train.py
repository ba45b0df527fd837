"""``bench train`` and ``bench precision`` run on a UTKFace-layout fixture and print their JSON
fields (no timing assertions: speed is read from the benchmark's own output)."""

from __future__ import annotations

import json

import pytest

from agegender_tf.bench.cli import main
from agegender_tf.bench.train import PRECISION_SETTINGS
from tests.fixtures import NARROW_LEVI_HASSNER, write_jpeg

TINY = ["--smoke", "--set", "split.kind=holdout", "--set", "image_size=32", "--set", "batch_size=8",
        *NARROW_LEVI_HASSNER,  # adience_cnn's network, narrow
        "--steps", "3", "--warmup", "1", "--repeats", "1", "--json"]


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    """60 real JPEGs named as UTKFace names them: ``[age]_[gender]_[race]_[date].jpg.chip.jpg``."""
    root = tmp_path_factory.mktemp("data")
    index = 0
    for age in (5, 25, 45):
        for gender in (0, 1):
            for copy in range(10):
                stamp = f"2017011{index % 10}1{index:05d}"
                write_jpeg(root / "utkface" / "UTKFace" / f"{age + copy % 3}_{gender}_{copy % 5}_{stamp}.jpg.chip.jpg",
                           size=40, seed=index)
                index += 1
    return root


def _report(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bench_train_reports_both_feeds_and_their_ratio(fixture_root, capsys):
    assert main(["train", "--preset", "adience_cnn", "--data-root", str(fixture_root), *TINY]) == 0
    report = _report(capsys)
    assert report["preset"] == "adience_cnn" and report["network"] == "levi_hassner"
    assert report["image_size"] == 32 and report["batch_size"] == 8
    assert report["steps"] == 3 and report["faces"]["train"] > 8
    assert report["in_memory_img_s"] > 0 and report["pipeline_img_s"] > 0
    assert report["ratio"] == pytest.approx(report["pipeline_img_s"] / report["in_memory_img_s"], abs=0.01)
    assert len(report["rounds_img_s"]["in_memory"]) == len(report["rounds_img_s"]["pipeline"]) == 2  # two blocks each
    for key in ("cache_fill_s", "cpu_count", "cpu_features", "tensorflow", "load_average_before"):
        assert key in report


def test_bench_precision_reports_every_setting(fixture_root, capsys):
    assert main(["precision", "--preset", "adience_cnn", "--data-root", str(fixture_root), "--accuracy-steps", "2",
                 "--val-images", "8", *TINY]) == 0
    report = _report(capsys)
    assert set(report["settings"]) == set(PRECISION_SETTINGS)
    for name, row in report["settings"].items():
        assert "error" not in row, f"{name}: {row.get('error')}"
        assert row["img_s"] > 0 and row["policy"] == PRECISION_SETTINGS[name][0]
        assert row["jit_compile"] is PRECISION_SETTINGS[name][1]
        assert {"loss", "accuracy"} <= set(row["validation"]) and row["validation"]["loss"] > 0
    float32 = report["settings"]["float32"]
    assert float32["speedup"] == float32["speedup_best_rounds"] == float32["speedup_cpu"] == 1.0
    assert report["passes"] == 2 and all(len(row["rounds_img_s"]) == 2 for row in report["settings"].values())


def test_bench_precision_passes_interleave_the_settings(fixture_root, capsys):
    assert main(["precision", "--preset", "adience_cnn", "--data-root", str(fixture_root), "--settings",
                 "float32,bf16", "--passes", "3", *[arg for arg in TINY if arg != "--json"]]) == 0
    output = capsys.readouterr().out.strip().splitlines()
    report = json.loads("\n".join(output[output.index("{"):-1]))  # indented JSON, then the summary line
    assert output[-1].startswith("adience_cnn (levi_hassner): float32 ") and "speed-up by CPU time 1.0" in output[-1]
    assert set(report["settings"]) == {"float32", "bf16"} and report["passes"] == 3
    for row in report["settings"].values():
        assert len(row["rounds_img_s"]) == len(row["rounds_cpu_ms_per_img"]) == 3  # one round (--repeats 1) per pass
        assert row["cpu_ms_per_img"] > 0 and row["speedup_cpu"] > 0
        assert row["speedup_best_rounds"] == pytest.approx(max(row["rounds_img_s"]) / max(
            report["settings"]["float32"]["rounds_img_s"]), abs=0.02)


def test_bench_rejects_unknown_settings_and_missing_root(fixture_root, monkeypatch):
    with pytest.raises(SystemExit):
        main(["precision", "--preset", "gra_net", "--data-root", str(fixture_root), "--settings", "fp8", *TINY])
    with pytest.raises(SystemExit):
        main(["precision", "--preset", "gra_net", "--data-root", str(fixture_root), "--passes", "0", *TINY])
    monkeypatch.delenv("AGEGENDER_DATA", raising=False)
    with pytest.raises(SystemExit):
        main(["train", "--preset", "gra_net", "--steps", "3"])
