"""Adience reader on published-layout fixtures and on the real fold files (when present)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from agegender_tf.binning import ADIENCE8
from agegender_tf.data import read_dataset, validate_manifest
from agegender_tf.data.adience import map_age_label, read
from agegender_tf.paths import DatasetNotFoundError
from tests.fixtures import write_adience, write_jpeg


def test_age_label_policy():
    assert map_age_label("(25, 32)") == ("(25, 32)", 28.5, False, "official")
    assert map_age_label("(38, 42)") == ("(38, 43)", 40.5, False, "off_grid_range")
    assert map_age_label("(27, 32)")[0] == "(25, 32)"
    assert map_age_label("35") == ("(38, 43)", 35.0, True, "bare_number")
    assert map_age_label("13")[0] == "(8, 12)"
    group, age, _, kind = map_age_label("None")
    assert group is None and math.isnan(age) and kind == "none"
    assert map_age_label("old")[3] == "unparseable"


@pytest.mark.parametrize("variant", ["faces", "aligned"])
def test_reader_maps_labels_marks_images_and_drops_unlabelled_rows(tmp_path, variant):
    result = read(write_adience(tmp_path, variant))
    manifest = validate_manifest(result.manifest).set_index("original_image")
    assert len(manifest) == 8 and result.dropped_counts() == {"no usable age or gender label": 1}
    assert "d_o.jpg" not in manifest.index
    assert manifest.loc["b_o.jpg", "age_group"] == "(38, 43)" and manifest.loc["b_o.jpg", "gender"] == "male"
    assert pd.isna(manifest.loc["c_o.jpg", "gender"]) and manifest.loc["c_o.jpg", "age"] == 35.0
    assert pd.isna(manifest.loc["e_o.jpg", "age_group"]) and manifest.loc["e_o.jpg", "fold"] == 1
    assert set(manifest["age_group"].dropna()) <= set(ADIENCE8.labels)
    assert sorted(manifest.index[manifest["image_found"]]) == ["a_o.jpg", "b_o.jpg", "g_o.jpg"]
    prefix = "coarse_tilt_aligned_face" if variant == "faces" else "landmark_aligned_face"
    assert manifest.loc["a_o.jpg", "path"].endswith(f"{variant}/111@N01/{prefix}.1.a_o.jpg")
    assert (manifest["subject"] == manifest["user_id"]).all()
    notes = result.notes
    assert (notes["variant"], notes["fold_rows"], notes["images_found"], notes["images_missing"]) == (
        variant, 9, 3, 5)
    assert notes["age_labels"] == {"bare_number": 1, "none": 2, "off_grid_range": 1, "official": 5}
    assert notes["gender_labels"] == {"blank": 2, "f": 3, "m": 3, "u": 1}
    assert {"label": "(38, 42)", "group": "(38, 43)", "rows": 1} in notes["age_mappings"]


def test_unreferenced_crops_and_stray_files_are_named(tmp_path):
    write_adience(tmp_path)
    write_jpeg(tmp_path / "faces" / "111@N01" / "coarse_tilt_aligned_face.9.zz_o.jpg", size=16)
    (tmp_path / "faces" / "111@N01" / "landmarks.1.a_o.txt").write_text("0 0")
    (tmp_path / "faces" / "111@N01" / "Thumbs.db").write_bytes(b"x")
    notes = read(tmp_path).notes
    assert notes["name_warnings"] == {
        "111@N01/coarse_tilt_aligned_face.9.zz_o.jpg": "crop not referenced by any fold row",
        "111@N01/Thumbs.db": "unexpected file in faces/"}
    assert notes["images_unreferenced"] == 1


def test_bad_fold_line_is_dropped_with_its_line_number_or_raises_when_strict(tmp_path):
    write_adience(tmp_path, extra_line="999@N09\tbroken_line")
    result = read(tmp_path)
    assert result.dropped_counts()["malformed fold line (2 fields, expected 12)"] == 1
    assert any(item.endswith("fold_0_data.txt line 6") for item in result.dropped["item"])
    with pytest.raises(ValueError, match="fold_0_data.txt line 6: malformed"):
        read(tmp_path, strict=True)


def test_missing_column_missing_fold_and_missing_root_raise(tmp_path):
    write_adience(tmp_path)
    fold = tmp_path / "fold_3_data.txt"
    fold.write_text(fold.read_text().replace("\tgender\t", "\tsex\t", 1))
    with pytest.raises(ValueError, match=r"fold_3_data.txt: header lacks column\(s\) \['gender'\]"):
        read(tmp_path)
    fold.write_text("")
    with pytest.raises(ValueError, match="fold_3_data.txt: empty fold file"):
        read(tmp_path)
    fold.unlink()
    with pytest.raises(DatasetNotFoundError, match="lacks \\['fold_3_data.txt'\\]"):
        read(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        read(tmp_path / "nowhere")


def test_real_adience_keeps_every_fold_row_or_names_why(adience_root):
    result = read_dataset("adience", adience_root)
    manifest = validate_manifest(result.manifest)
    lines = sum(len((adience_root / f"fold_{k}_data.txt").read_text().splitlines()) - 1 for k in range(5))
    assert result.notes["fold_rows"] == lines == len(manifest) + len(result.dropped)
    assert set(manifest["age_group"].dropna()) <= set(ADIENCE8.labels)
    assert (manifest.groupby("subject")["fold"].nunique() == 1).all()  # official folds are subject-exclusive
    crops = list((adience_root / "faces").glob("*/coarse_tilt_aligned_face.*"))
    assert result.notes["images_found"] == int(manifest["image_found"].sum()) == len(crops)
    assert result.notes["images_missing"] == len(manifest) - len(crops)
    assert manifest["age_group"].notna().sum() + manifest["gender"].notna().sum() >= len(manifest)


def test_real_folds_match_the_committed_fold_table(adience_root):
    from agegender_tf.paths import manifests_dir

    committed = pd.read_csv(manifests_dir() / "adience" / "folds.csv", dtype={"user_id": str})
    result = read(adience_root)
    kept = result.manifest.groupby("user_id")["fold"].first()
    joined = committed.set_index("user_id").loc[kept.index]
    assert (joined["fold"] == kept).all()
    assert int(committed["rows"].sum()) == result.notes["fold_rows"]
