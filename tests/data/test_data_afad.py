"""AFAD reader on a fixture laid out as AFAD-Full is published: <age>/<111|112>/<image>.jpg."""

from __future__ import annotations

import pandas as pd
import pytest

from agegender_tf.data import read_dataset, validate_manifest
from agegender_tf.data.afad import read
from tests.fixtures import write_jpeg

# (age folder, gender code, file name) of the well-formed images.
GOOD = [
    ("15", "111", "100001-0.jpg"),
    ("15", "112", "100002-0.jpg"),
    ("23", "111", "100003-0.jpg"),
    ("23", "111", "100004-1.jpg"),
    ("40", "112", "100005-0.jpg"),
    ("72", "112", "100006-0.jpg"),
]


@pytest.fixture
def afad_root(tmp_path):
    root = tmp_path / "AFAD-Full"
    for seed, (age, code, name) in enumerate(GOOD):
        write_jpeg(root / age / code / name, size=32, seed=seed)
    (root / "README.md").write_text("AFAD-Full\n")
    return root


def test_reads_ages_genders_and_subjects(afad_root):
    result = read(afad_root)
    manifest = validate_manifest(result.manifest)
    assert len(manifest) == len(GOOD)
    assert result.dropped.empty
    by_stem = manifest.set_index("subject")
    assert by_stem.loc["100001-0", "gender"] == "male"
    assert by_stem.loc["100002-0", "gender"] == "female"
    assert by_stem.loc["100006-0", "age"] == 72.0
    assert sorted(manifest["age"].unique()) == [15.0, 23.0, 40.0, 72.0]
    assert manifest["gender"].value_counts().to_dict() == {"male": 3, "female": 3}
    assert (manifest["source"] == "afad").all() and manifest["age_exact"].all()
    assert manifest["age_group"].isna().all()
    assert all(afad_root.joinpath(a, c, n).resolve().as_posix() in set(manifest["path"]) for a, c, n in GOOD)
    assert result.notes["ignored_root_files"] == ["README.md"]


def test_registry_reads_afad_from_the_release_folder_or_its_parent(afad_root):
    assert len(read_dataset("afad", afad_root).manifest) == len(GOOD)
    assert read(afad_root.parent).manifest["path"].tolist() == read(afad_root).manifest["path"].tolist()


def test_bad_folders_and_files_are_dropped_with_reasons(afad_root):
    write_jpeg(afad_root / "abc" / "111" / "bad-age.jpg", size=32)
    write_jpeg(afad_root / "30" / "113" / "bad-code.jpg", size=32)
    write_jpeg(afad_root / "30" / "loose.jpg", size=32)
    write_jpeg(afad_root / "30" / "111" / "deeper" / "nested.jpg", size=32)
    (afad_root / "30" / "111" / "Thumbs.db").write_bytes(b"\0" * 8)
    result = read(afad_root)
    assert len(result.manifest) == len(GOOD)
    assert result.dropped_counts() == {
        "age folder 'abc' is not a number": 1,
        "gender folder '113' is not 111 (male) or 112 (female)": 1,
        "image nested below the gender folder": 1,
        "image outside a 111/112 gender folder": 1,
        "not a JPEG file": 1,
    }
    assert any(item.endswith("bad-code.jpg") for item in result.dropped["item"])


def test_missing_root_and_empty_folder_raise_naming_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*<age>/<111|112>"):
        read(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*no images"):
        read(tmp_path / "empty")


def test_reading_is_deterministic(afad_root):
    pd.testing.assert_frame_equal(read(afad_root).manifest, read(afad_root).manifest)
