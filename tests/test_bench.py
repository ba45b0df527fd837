"""The pipeline benchmark runs and prints its JSON fields (no timing assertions)."""

import json

from agegender_tf.bench import main
from tests.fixtures import write_jpeg


def test_bench_pipeline_prints_json(tmp_path, capsys):
    for i in range(8):
        write_jpeg(tmp_path / "UTKFace" / f"{20 + i}_{i % 2}_0_2017010{i}.jpg.chip.jpg", 40, seed=i)
    assert main(["pipeline", "--root", str(tmp_path), "--images", "8", "--batch-size", "4", "--image-size", "32", "--repeats", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("idg_img_s", "tfdata_img_s", "tfdata_cached_img_s", "ratio", "images", "image_size", "cpu_count", "machine"):
        assert key in report
    assert report["images"] == 8 and report["image_size"] == 32
    assert report["idg_img_s"] > 0 and report["tfdata_img_s"] > 0
