"""Bad files: both backends convert what is convertible (PNG, grayscale, CMYK) and stop with an
error naming the file for the rest (corrupt, truncated, missing, zero-byte); no silent shrink."""

from functools import partial

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from agegender_tf.pipelines.checks import ImageFileError
from agegender_tf.pipelines.generator import make_generator
from agegender_tf.pipelines.spec import AugmentSpec
from agegender_tf.pipelines.tfdata import make_dataset
from tests.fixtures import truncate, write_jpeg

BACKENDS = {"tfdata": make_dataset, "generator": make_generator,
            "tfdata_stream": partial(make_dataset, mode="stream")}  # the pack is the check (stream.py)


def _manifest(paths):
    return pd.DataFrame({"path": [str(p) for p in paths], "age": 30.0, "age_group": None, "gender": "female",
                         "subject": "s", "source": "fixture"})


def _all_batches(backend, manifest, spec=AugmentSpec()):
    pipeline = BACKENDS[backend](manifest, spec, image_size=40, batch_size=4, training=False)
    if backend.startswith("tfdata"):
        return [np.asarray(x) for x, _ in pipeline]
    return [pipeline[i][0] for i in range(len(pipeline))]


def _bad_file(tmp_path, kind):
    path = tmp_path / f"{kind}.jpg"
    if kind == "corrupt":
        data = write_jpeg(path, 40, seed=1).read_bytes()
        path.write_bytes(data[:20] + np.random.default_rng(0).bytes(len(data) - 20))  # JPEG header, garbage body
    elif kind == "truncated":
        truncate(write_jpeg(path, 40, seed=1), 0.5)
    elif kind == "zero_byte":
        path.write_bytes(b"")
    elif kind == "not_an_image":
        path.write_text("name,age\nx,3\n")
    return path  # "missing": never written


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["corrupt", "truncated", "zero_byte", "missing", "not_an_image"])
def test_unreadable_file_stops_with_its_name(tmp_path, backend, kind):
    good = [write_jpeg(tmp_path / f"good{i}.jpg", 40, seed=i) for i in range(3)]
    bad = _bad_file(tmp_path, kind)
    with pytest.raises(ImageFileError) as info:
        _all_batches(backend, _manifest(good + [bad]))
    assert str(bad) in str(info.value) and list(info.value.problems) == [str(bad)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_png_grayscale_cmyk_convert_to_rgb(tmp_path, backend):
    rgb = np.asarray(Image.open(write_jpeg(tmp_path / "rgb.jpg", 40, seed=2)).convert("RGB"))
    Image.fromarray(rgb).save(tmp_path / "image.png")
    write_jpeg(tmp_path / "gray.jpg", 40, seed=3, mode="L")
    write_jpeg(tmp_path / "cmyk.jpg", 40, seed=4, mode="CMYK")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    paths = [tmp_path / n for n in ("rgb.jpg", "image.png", "gray.jpg", "cmyk.jpg", "palette.png")]
    batches = _all_batches(backend, _manifest(paths))
    images = np.concatenate(batches)
    assert images.shape == (5, 40, 40, 3)  # nothing dropped
    np.testing.assert_allclose(images[0], images[1], atol=1e-6)  # PNG of the same pixels
    gray = images[2]
    np.testing.assert_allclose(gray[..., 0], gray[..., 2], atol=1e-6)  # grayscale -> 3 equal channels
    assert np.abs(images[3] - np.asarray(Image.open(paths[3]).convert("RGB")) / 255.0).mean() < 0.02


def test_backends_convert_cmyk_alike(tmp_path):
    paths = [write_jpeg(tmp_path / f"c{i}.jpg", 40, seed=i, mode="CMYK") for i in range(2)]
    a, b = (np.concatenate(_all_batches(k, _manifest(paths))) for k in ("tfdata", "generator"))
    assert np.abs(a - b).max() * 255 <= 3
