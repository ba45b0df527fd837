"""FG-NET reader on a fixture laid out as FGNET.zip is published: FGNET/images/001A02.JPG, points/."""

from __future__ import annotations

import pandas as pd
import pytest

from agegender_tf.data import read_dataset, validate_manifest
from agegender_tf.data.fgnet import read
from tests.fixtures import write_jpeg

GOOD = ["001A02.JPG", "001A10.JPG", "001A43a.JPG", "001A43b.JPG", "002A00.JPG", "082A69.JPG"]


@pytest.fixture
def fgnet_root(tmp_path):
    root = tmp_path / "FGNET"
    for seed, name in enumerate(GOOD):
        write_jpeg(root / "images" / name, size=32, seed=seed)
        (root / "points").mkdir(exist_ok=True)
        (root / "points" / name.replace(".JPG", ".pts").lower()).write_text("version: 1\nn_points: 68\n{\n}\n")
    return root


def test_reads_subjects_and_ages_from_names(fgnet_root):
    result = read(fgnet_root)
    manifest = validate_manifest(result.manifest)
    assert result.dropped.empty
    assert len(manifest) == len(GOOD)
    assert list(manifest["subject"]) == ["001", "001", "001", "001", "002", "082"]
    assert list(manifest["age"]) == [2.0, 10.0, 43.0, 43.0, 0.0, 69.0]
    assert manifest["gender"].isna().all()
    assert (manifest["source"] == "fgnet").all() and manifest["age_exact"].all()
    assert result.notes["subjects"] == 3 and result.notes["published_images"] == 1002


def test_root_may_be_the_images_folder(fgnet_root):
    assert read(fgnet_root / "images").manifest["path"].tolist() == read(fgnet_root).manifest["path"].tolist()
    assert len(read_dataset("fgnet", fgnet_root).manifest) == len(GOOD)


def test_bad_names_are_dropped_or_raise_in_strict_mode(fgnet_root):
    write_jpeg(fgnet_root / "images" / "1A02.JPG", size=32)
    write_jpeg(fgnet_root / "images" / "003B12.JPG", size=32)
    (fgnet_root / "images" / "Thumbs.db").write_bytes(b"\0" * 8)
    result = read(fgnet_root)
    assert len(result.manifest) == len(GOOD)
    assert result.dropped_counts() == {"name not <SSS>A<AA>[a-z].JPG": 3}
    with pytest.raises(ValueError, match=r"003B12\.JPG.*pattern"):
        read(fgnet_root, strict=True)


def test_missing_root_and_empty_folder_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*001A02"):
        read(tmp_path / "nowhere")
    (tmp_path / "FGNET" / "images").mkdir(parents=True)
    with pytest.raises(ValueError, match="images holds no files"):
        read(tmp_path / "FGNET")


def test_reading_is_deterministic(fgnet_root):
    pd.testing.assert_frame_equal(read(fgnet_root).manifest, read(fgnet_root).manifest)
