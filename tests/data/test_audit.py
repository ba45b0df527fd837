"""Audit: full decode, bad names, duplicates by content hash, split leaks (fixtures and real data)."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import pandas as pd
import pytest
from PIL import Image

from agegender_tf.data.audit import audit, duplicate_report
from agegender_tf.data.hashing import content_hash
from agegender_tf.data.images import check_image, decode_check
from tests.fixtures import truncate, write_jpeg

GOOD = ["20_0_0_20170116174525125.jpg.chip.jpg", "35_1_2_20170116174525126.jpg.chip.jpg",
        "8_0_3_20170116174525127.jpg.chip.jpg"]


@pytest.fixture()
def damaged_utkface(tmp_path):
    folder = tmp_path / "UTKFace"
    for seed, name in enumerate(GOOD):
        write_jpeg(folder / name, size=48, seed=seed)
    truncate(write_jpeg(folder / "41_1_0_20170116174525128.jpg.chip.jpg", size=48, seed=7))
    (folder / "50_0_1_20170116174525129.jpg.chip.jpg").write_bytes(b"")
    write_jpeg(folder / "unlabeled_face.jpg", size=48, seed=8)
    write_jpeg(folder / "60_1_0_20170116174525130.jpg.chip.jpg", size=48, seed=9, mode="L")
    # the same photo twice with different ages: a conflicting duplicate group
    (folder / "21_0_0_20170116174525131.jpg.chip.jpg").write_bytes((folder / GOOD[0]).read_bytes())
    return tmp_path


def test_check_image_catches_damage_and_notes_oddities(tmp_path):
    good = write_jpeg(tmp_path / "good.jpg", size=32)
    assert decode_check(good) is None and check_image(good).size == (32, 32)
    cut = truncate(write_jpeg(tmp_path / "cut.jpg", size=64), 0.6)
    assert decode_check(cut).startswith("corrupt or cut-short image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert decode_check(tmp_path / "empty.jpg") == "empty file (0 bytes)"
    assert decode_check(tmp_path / "absent.jpg") == "file not found"
    (tmp_path / "text.jpg").write_text("hello")
    assert decode_check(tmp_path / "text.jpg") == "not an image (unknown format)"
    Image.new("RGB", (8, 8)).save(tmp_path / "png.jpg", format="PNG")
    assert check_image(tmp_path / "png.jpg").info == "PNG data in a .jpg file"
    Image.new("CMYK", (8, 8)).save(tmp_path / "cmyk.jpg", format="JPEG")
    assert check_image(tmp_path / "cmyk.jpg").info == "CMYK"
    assert content_hash(good) == hashlib.sha1(good.read_bytes()).hexdigest()


def test_audit_names_every_bad_file_and_reports_duplicates(damaged_utkface):
    report = audit("utkface", damaged_utkface, workers=2)
    assert not report.ok
    bad = {item.rsplit("/", 1)[-1]: problem for item, problem in report.bad}
    assert set(bad) == {"41_1_0_20170116174525128.jpg.chip.jpg", "50_0_1_20170116174525129.jpg.chip.jpg",
                        "unlabeled_face.jpg"}
    assert bad["41_1_0_20170116174525128.jpg.chip.jpg"].startswith("corrupt or cut-short image")
    assert bad["50_0_1_20170116174525129.jpg.chip.jpg"] == "empty file (0 bytes)"
    assert bad["unlabeled_face.jpg"] == "file name has no age_gender labels"
    assert report.image_info == {"grayscale": 1}
    assert {k: report.duplicates[k] for k in ("groups", "files", "conflicting_groups")} == {
        "groups": 1, "files": 2, "conflicting_groups": 1}
    assert any("disagree on labels" in problem for _, problem in report.warnings)
    assert report.images_checked == 7 and report.leaks == {}


def test_audit_passes_a_clean_folder(tmp_path):
    for seed, name in enumerate(GOOD):
        write_jpeg(tmp_path / name, size=32, seed=seed)
    report = audit("utkface", tmp_path)
    assert report.ok and report.images_checked == 3 and report.duplicates["groups"] == 0


@pytest.fixture(scope="module")
def real_utkface_audit(utkface_root):
    return audit("utkface", utkface_root)


def test_real_utkface_audit_passes_and_its_duplicates_match_an_independent_count(real_utkface_audit,
                                                                                 utkface_root):
    report = real_utkface_audit
    assert report.ok, report.bad[:10]
    files = [p for p in (utkface_root / "UTKFace").iterdir() if p.is_file()]
    assert report.images_checked == len(files) and report.images_missing == 0
    by_hash = defaultdict(list)
    for path in files:
        by_hash[hashlib.sha1(path.read_bytes()).hexdigest()].append(path.name)
    groups = [names for names in by_hash.values() if len(names) > 1]
    assert report.duplicates["groups"] == len(groups)
    assert report.duplicates["files"] == sum(len(g) for g in groups)
    # a group conflicts when its names disagree on the age or gender fields
    conflicting = [g for g in groups if len({tuple(n.split("_")[:2]) for n in g}) > 1]
    assert report.duplicates["conflicting_groups"] == len(conflicting)
    assert report.leaks == {}  # the committed split keeps duplicate copies on one side
    # Pixel copies: the committed split (version 2) excludes the test faces that copy a training or validation
    # face; the validation faces that copy a training face are warnings (moving them would change training).
    copies = report.duplicates["pixel_copies"]
    assert copies["pairs"] > 0 and copies["max_mad"] == 10.0
    # 6 pairs: 5 validation faces, one of them with two training partners (the leak check counts 5 faces)
    assert sum("pixel copy of" in problem and "train / val" in problem for _, problem in report.warnings) == 6


def test_real_adience_audit_passes_and_counts_missing_images(adience_root):
    report = audit("adience", adience_root)
    assert report.ok, report.bad[:10]
    on_disk = list((adience_root / "faces").glob("*/coarse_tilt_aligned_face.*"))
    assert report.images_checked == len(on_disk)
    assert report.images_checked + report.images_missing == report.rows
    assert report.leaks == {}  # official folds are subject-exclusive


def test_duplicate_report_ignores_rows_without_hash():
    manifest = pd.DataFrame({"path": ["a", "b", "c", "d"], "age": [1.0, 1.0, 2.0, 2.0],
                             "gender": ["male", "male", None, None], "content_hash": ["h", "h", None, None]})
    assert duplicate_report(manifest) == {"groups": 1, "files": 2, "conflicting_groups": 0, "conflicts": []}
