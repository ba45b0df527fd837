"""``bench pipeline`` times both backends on the faces it was given and reports ratios that follow from
its own throughputs (no timing assertions: speed is read from the benchmark's output)."""

import json
import os

import pytest

from agegender_tf.bench.cli import main
from tests.fixtures import write_jpeg

ARGS = ["--images", "8", "--batch-size", "4", "--image-size", "32", "--repeats", "2"]


@pytest.fixture(scope="module")
def utkface_fixture(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    for i in range(10):
        write_jpeg(root / "UTKFace" / f"{20 + i}_{i % 2}_0_2017010{i}.jpg.chip.jpg", 40, seed=i)
    return root


def _ratio_bounds(numerator: float, denominator: float, step: float = 0.05) -> tuple[float, float]:
    """The ratio's range when both throughputs were rounded to 0.1 img/s."""
    return (numerator - step) / (denominator + step), (numerator + step) / (denominator - step)


def test_bench_pipeline_ratios_follow_from_its_throughputs(utkface_fixture, capsys):
    assert main(["pipeline", "--root", str(utkface_fixture), *ARGS, "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (report["images"], report["image_size"], report["batch_size"], report["repeats"]) == (8, 32, 4, 2)
    assert report["preset"] == "transfer_vgg16_resnet50"  # paper 003's augmentation is what is timed
    for throughput in ("idg_img_s", "tfdata_img_s", "tfdata_cached_img_s"):
        assert report[throughput] > 0
    for ratio, numerator in (("ratio", "tfdata_img_s"), ("ratio_cached", "tfdata_cached_img_s")):
        low, high = _ratio_bounds(report[numerator], report["idg_img_s"])
        assert low - 0.005 <= report[ratio] <= high + 0.005, (ratio, report)
    assert report["cpu_count"] == os.cpu_count() and report["validate_s"] >= 0
    assert len(report["load_average"]) == 3 and report["tensorflow"]


def test_bench_pipeline_prints_the_ratio_line_and_refuses_too_few_faces(utkface_fixture, capsys):
    assert main(["pipeline", "--root", str(utkface_fixture), *ARGS]) == 0
    output = capsys.readouterr().out.strip().splitlines()
    report = json.loads("\n".join(output[output.index("{"):-1]))  # after any lines the backends print
    assert output[-1] == (f"tf.data / ImageDataGenerator: {report['ratio']}x "
                          f"(cached epoch: {report['ratio_cached']}x); goal >= 5x")
    with pytest.raises(ValueError, match="asked for 50 images.*has 10 usable UTKFace faces"):
        main(["pipeline", "--root", str(utkface_fixture), "--images", "50", "--repeats", "1", "--json"])
