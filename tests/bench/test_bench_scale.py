"""``bench scale`` on a UTKFace-layout fixture: links under distinct names with the linked faces' labels, one
JSON object per size (each measured in its own process), the mode a run picks and the comparison of the
sizes (no timing assertions: speed is read from the benchmark's own output)."""

from __future__ import annotations

import json
import os

import pytest

from agegender_tf.bench.cli import main
from agegender_tf.bench.scale import linked_faces
from agegender_tf.data.readers import read_dataset
from tests.fixtures import NARROW_LEVI_HASSNER, write_utkface_layout


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_utkface_layout(root / "utkface" / "UTKFace", per_group=5, size=40)  # 30 faces
    return root


def test_links_have_distinct_names_and_the_linked_faces_labels(source, tmp_path):
    root = linked_faces(source, 75, tmp_path)
    manifest = read_dataset("utkface", root / "utkface").manifest
    originals = read_dataset("utkface", source / "utkface").manifest
    assert len(manifest) == 75 and manifest["path"].is_unique
    by_file = originals.set_index("path")
    for _, row in manifest.iterrows():
        target = by_file.loc[os.path.realpath(row["path"])]
        assert (row["age"], row["gender"], row["race"]) == (target["age"], target["gender"], target["race"])
    assert linked_faces(source, 75, tmp_path) == root  # built once, reused


@pytest.mark.slow
def test_bench_scale_reports_each_size_from_its_own_process(source, tmp_path, capsys):
    args = ["scale", "--faces", "40,80", "--data-root", str(source), "--work", str(tmp_path), "--profile", "cpu",
            "--set", "image_size=32", "--set", "batch_size=8", *NARROW_LEVI_HASSNER, "--set", "pipeline.mode=stream",
            "--steps", "3", "--warmup", "1", "--json"]
    assert main(args) == 0
    small, large, goal = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines()[-3:])
    assert (small["faces"], large["faces"]) == (40, 80)
    for report in (small, large):
        assert report["mode"] == "stream" and report["pack"]["faces"] == report["faces"]
        assert report["pack"]["reused"] is False
        assert report["peak_rss_mb"] > 100 and report["img_s"] > 0 and report["first_step_s"] > 0
    assert goal["benchmark"] == "scale_goal" and goal["faces"] == [40, 80]
    assert goal["peak_rss_ratio"] == pytest.approx(large["peak_rss_mb"] / small["peak_rss_mb"], abs=1e-3)
