"""UTKFace reader on published-layout fixtures and on the real set (when AGEGENDER_DATA has it)."""

from __future__ import annotations

import math

import pytest

from agegender_tf.data import read_dataset, validate_manifest
from agegender_tf.data.utkface import parse_name, read
from agegender_tf.paths import DatasetNotFoundError
from tests.fixtures import write_jpeg

REGULAR = ["25_0_2_20170116174525125.jpg.chip.jpg", "3_1_0_20170109150557335.jpg.chip.jpg",
           "71_1_4_20170117195521117.jpg.chip.jpg"]
IRREGULAR = {
    "39_1_20170116174525125.jpg.chip.jpg": "no race field",
    "24_0_1_20170116220224657 .jpg.chip.jpg": "irregular date/suffix part",
    "55_0_0_20170116232725357jpg.chip.jpg": "irregular date/suffix part",
}
UNUSABLE = {
    "face_20170116174525125.jpg.chip.jpg": "file name has no age_gender labels",
    "30_3_0_20170116174525125.jpg.chip.jpg": "gender code 3 is not 0 (male) or 1 (female)",
    "130_0_0_20170116174525125.jpg.chip.jpg": "age 130 outside 0-120",
}


@pytest.fixture()
def utkface_fixture(tmp_path):
    folder = tmp_path / "UTKFace"
    for seed, name in enumerate([*REGULAR, *IRREGULAR, *UNUSABLE]):
        write_jpeg(folder / name, size=32, seed=seed)
    (folder / "notes.txt").write_text("not an image")
    return tmp_path


def test_parse_name_reads_labels_and_flags_irregular_names():
    assert parse_name(REGULAR[0]) == ({"age": 25, "gender": "male", "race": 2}, None, None)
    labels, reason, warning = parse_name("39_1_20170116174525125.jpg.chip.jpg")
    assert labels == {"age": 39, "gender": "female", "race": None} and reason is None
    assert warning == "no race field"
    assert parse_name("30_0_7_20170116174525125.jpg.chip.jpg")[2] == "race code 7 outside 0-4"


@pytest.mark.parametrize("sub", ["", "UTKFace"])
def test_reader_keeps_labelled_names_and_drops_the_rest_with_reasons(utkface_fixture, sub):
    result = read(utkface_fixture / sub if sub else utkface_fixture)
    manifest = validate_manifest(result.manifest)
    assert sorted(manifest["file"]) == sorted([*REGULAR, *IRREGULAR])
    row = manifest.set_index("file").loc["3_1_0_20170109150557335.jpg.chip.jpg"]
    assert (row["age"], row["gender"], row["race"], row["source"]) == (3.0, "female", 0.0, "utkface")
    assert row["subject"] == "3_1_0_20170109150557335" and row["age_exact"]
    assert math.isnan(manifest.set_index("file").loc["39_1_20170116174525125.jpg.chip.jpg", "race"])
    dropped = dict(zip(result.dropped["item"].map(lambda p: p.rsplit("/", 1)[-1]), result.dropped["reason"]))
    assert dropped == {**UNUSABLE, "notes.txt": "not an image file (.jpg/.jpeg/.png)"}
    warnings = result.notes["name_warnings"]
    assert set(warnings) == set(IRREGULAR)
    for name, kind in IRREGULAR.items():
        assert warnings[name].startswith(kind)
    assert result.notes["name_warning_counts"] == {"irregular date/suffix part": 2, "no race field": 1}
    assert result.notes["files_seen"] == len(manifest) + len(result.dropped)


def test_reader_adds_content_hashes_that_match_duplicates(utkface_fixture):
    folder = utkface_fixture / "UTKFace"
    (folder / "26_0_2_20170116174525126.jpg.chip.jpg").write_bytes((folder / REGULAR[0]).read_bytes())
    manifest = read(utkface_fixture, with_hashes=True).manifest.set_index("file")
    assert manifest.loc["26_0_2_20170116174525126.jpg.chip.jpg", "content_hash"] == manifest.loc[
        REGULAR[0], "content_hash"]
    assert manifest["content_hash"].nunique() == len(manifest) - 1


def test_missing_or_empty_root_raises_naming_the_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="(?s)does not exist.*susanqq"):
        read(tmp_path / "nowhere")
    (tmp_path / "UTKFace").mkdir()
    with pytest.raises(DatasetNotFoundError, match="holds no files"):
        read(tmp_path)


def test_real_utkface_every_file_is_kept_or_dropped(utkface_root):
    result = read_dataset("utkface", utkface_root)
    manifest = validate_manifest(result.manifest)
    files = sorted(p.name for p in (utkface_root / "UTKFace").iterdir() if p.is_file())
    assert len(manifest) + len(result.dropped) == len(files)
    # Gender code is the second underscore field wherever a name has one; count independently.
    codes = [name.split("_")[1] for name in files if name.count("_") >= 2]
    kept = manifest["gender"].value_counts().to_dict()
    assert kept.get("male", 0) <= codes.count("0") and kept.get("female", 0) <= codes.count("1")
    assert manifest["age"].between(0, 120).all() and manifest["subject"].is_unique
    assert set(result.notes["name_warnings"]) <= set(files)
