"""Hostile and odd image files: each is refused in one line naming the file and its problem, before
anything large is decoded, and the files after it are still answered (the memory each path takes is
measured by ``python -m agegender_tf.bench hostile-memory``, not here)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agegender_tf.bench.hostile import write_bitonal_png, write_jpeg_claiming
from agegender_tf.imaging import MAX_DECODED_PIXELS, ImageProblem, image_size, load_rgb
from agegender_tf.serving.cli import expand_paths
from tests.fixtures import write_jpeg


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    return {
        "png_32000": write_bitonal_png(folder / "bitonal_32000.png", 32000, 32000),
        "png_40000": write_bitonal_png(folder / "bitonal_40000.png", 40000, 40000),
        "jpeg_30000": write_jpeg_claiming(folder / "claims_30000.jpg", 30000, 30000),
        "jpeg_60000": write_jpeg_claiming(folder / "claims_60000.jpg", 60000, 60000),
    }


def test_the_hostile_files_are_small_and_claim_what_they_say(hostile):
    assert hostile["png_32000"].stat().st_size < 200_000 and hostile["jpeg_30000"].stat().st_size < 10_000
    assert image_size(hostile["jpeg_30000"]) == (30000, 30000)
    with pytest.raises(ImageProblem, match="too large to decode"):  # PIL would decode a PNG to read its EXIF
        image_size(hostile["png_32000"])


@pytest.mark.parametrize("name, problem", [
    ("png_32000", r"too large to decode \(32000x32000 pixels PNG, 1024 Mpx; at most 40 Mpx unless a JPEG\)"),
    ("png_40000", r"too large \(40000x40000 pixels, 1600 Mpx"),
    ("jpeg_30000", r"JPEG data too short for its 30000x30000 header"),
    ("jpeg_60000", r"too large \(60000x60000 pixels, 3600 Mpx"),
])
@pytest.mark.parametrize("max_side", [None, 4000, 1200])
def test_a_hostile_file_is_one_line_naming_it_and_its_size(hostile, name, problem, max_side):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        with pytest.raises(ImageProblem, match=problem) as caught:
            load_rgb(hostile[name], max_side=max_side)
    message = str(caught.value)
    assert message.startswith(str(hostile[name])) and "\n" not in message
    assert isinstance(caught.value, ValueError)  # the documented error, not Pillow's


def test_a_huge_real_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    """A genuine JPEG of more than MAX_DECODED_PIXELS decodes at the DCT scale that fits, with or
    without ``max_side``; one that fits decodes whole."""
    path = tmp_path / "wide.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (4000, 12000, 3), dtype=np.uint8)).save(path, quality=60)
    assert 4000 * 12000 > MAX_DECODED_PIXELS
    assert load_rgb(path).shape == (2000, 6000, 3)
    assert load_rgb(path, max_side=1000).shape == (500, 1500, 3)  # 1/8: the longest side still >= 1000


def test_a_fifo_is_refused_by_name_without_blocking(tmp_path):
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageProblem, match=r"x.jpg: not a regular file \(a FIFO\)"):
        load_rgb(fifo)
    with pytest.raises(ImageProblem, match="not a regular file"):
        image_size(fifo)
    files, problems = expand_paths([fifo])
    assert files == [] and problems == [f"{fifo}: not a regular file (a FIFO)"]


def test_a_folder_walk_counts_what_it_skipped(tmp_path):
    folder = tmp_path / "photos"
    (folder / "inner").mkdir(parents=True)
    good = write_jpeg(folder / "inner" / "face.jpg", size=(40, 40))
    os.mkfifo(folder / "pipe.jpg")
    (folder / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    (folder / "inner" / "loop").symlink_to(folder)
    (folder / "link.jpg").symlink_to(good)
    (folder / "notes.txt").write_text("not an image suffix: not counted")
    files, problems = expand_paths([folder, tmp_path / "dangling.jpg"])
    assert files == [good, folder / "link.jpg"]
    assert problems == [f"{folder}: skipped 3 entries that are not image files "
                        "(1 FIFOs, 1 broken links, 1 links to folders)",
                        f"{tmp_path / 'dangling.jpg'}: file not found"]


def test_a_float_tiff_keeps_its_brightness(tmp_path):
    values = np.linspace(0.0, 1.0, 32 * 48, dtype=np.float32).reshape(32, 48)
    path = tmp_path / "float.tif"
    Image.fromarray(values, mode="F").save(path)
    image = load_rgb(path)
    assert image.dtype == np.uint8 and image.shape == (32, 48, 3)
    assert image.max() == 255 and abs(float(image.mean()) - 127.5) < 1.0


def test_a_jpeg_whose_header_claims_more_rows_is_refused(tmp_path):
    """A complete small JPEG whose header claims 4096x4096: libjpeg would grey-fill the rows
    the data lacks; the file is refused by its length instead."""
    path = write_jpeg_claiming(tmp_path / "tall.jpg", 4096, 4096)
    with pytest.raises(ImageProblem, match="JPEG data too short for its 4096x4096 header"):
        load_rgb(path)


def test_the_files_after_a_hostile_one_are_still_read(hostile, tmp_path):
    good = write_jpeg(tmp_path / "after.jpg", size=(50, 40))
    answers = []
    for path in (hostile["png_40000"], hostile["jpeg_30000"], good):
        try:
            answers.append(load_rgb(path).shape)
        except ValueError as exc:
            answers.append(str(exc).split(": ", 1)[1].split(" ")[0])
    assert answers == ["too", "JPEG", (40, 50, 3)]
