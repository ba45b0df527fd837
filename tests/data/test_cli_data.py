"""``agegender data summarize|audit|make-split|info``: JSON fields, exit codes, messages."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from agegender_tf.binning import ADIENCE8
from agegender_tf.cli import main
from agegender_tf.data.adience import read as read_adience
from agegender_tf.paths import DATA_ENV
from tests.fixtures import truncate, write_adience, write_jpeg

NAMES = {"23_0_1_20170116174525125.jpg.chip.jpg": ("male", 23), "5_1_0_20170116174525126.jpg.chip.jpg": ("female", 5),
         "67_1_2_20170116174525127.jpg.chip.jpg": ("female", 67), "31_0_3_20170116174525128.jpg.chip.jpg": ("male", 31)}


@pytest.fixture()
def utkface_parent(tmp_path):
    for seed, name in enumerate(NAMES):
        write_jpeg(tmp_path / "UTKFace" / name, size=32, seed=seed)
    return tmp_path


def run_json(capsys, *argv) -> tuple[int, dict]:
    code = main(["data", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("sub", ["", "UTKFace"])
def test_summarize_utkface_json_from_parent_or_image_folder(utkface_parent, capsys, sub):
    code, summary = run_json(capsys, "summarize", "utkface", "--root", str(utkface_parent / sub))
    assert code == 0
    assert summary["rows"] == len(NAMES) and summary["dropped"] == {}
    assert summary["gender"] == {"male": 2, "female": 2, "unknown": 0}
    assert summary["age_groups"] == {"0-9": 1, "20-29": 1, "30-39": 1, "60-69": 1}
    assert (summary["images_found"], summary["images_missing"]) == (4, 0)
    assert summary["duplicates"] == {"groups": 0, "files": 0, "conflicting_groups": 0}
    # UTKFace names nobody: no subject count equal to the file count, but a note saying why
    assert summary["subjects"] is None and "no subject ids" in summary["subjects_note"]


def test_summarize_adience_json_counts_fold_rows_and_missing_images(tmp_path, capsys):
    result = read_adience(write_adience(tmp_path))
    code, summary = run_json(capsys, "summarize", "adience", "--root", str(tmp_path))
    assert code == 0 and summary["rows"] == len(result.manifest)
    assert summary["dropped"] == result.dropped_counts()
    assert summary["images_found"] == result.notes["images_found"]
    assert summary["images_missing"] == result.notes["images_missing"]
    folds = result.manifest["fold"].value_counts().sort_index()
    assert summary["folds"] == {str(k): int(n) for k, n in folds.items()}
    assert list(summary["age_groups"]) == [g for g in ADIENCE8.labels if g in summary["age_groups"]]


def test_summarize_works_for_another_registered_reader(tmp_path, capsys):
    for seed, name in enumerate(["001A02.JPG", "001A10.JPG", "002A33.JPG"]):
        write_jpeg(tmp_path / "images" / name, size=24, seed=seed)
    code, summary = run_json(capsys, "summarize", "fgnet", "--root", str(tmp_path))
    assert code == 0 and summary["rows"] == 3 and summary["subjects"] == 2


def test_summarize_table_without_json(utkface_parent, capsys):
    assert main(["data", "summarize", "utkface", "--root", str(utkface_parent)]) == 0
    out = capsys.readouterr().out
    assert "rows" in out and "male: 2, female: 2" in out


def test_missing_root_prints_how_to_obtain_and_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert main(["data", "summarize", "adience"]) == 2
    err = capsys.readouterr().err
    assert "talhassner.github.io" in err and "fold_{0..4}_data.txt" in err and "licence" in err
    monkeypatch.setenv(DATA_ENV, str(tmp_path))  # set, but without an adience/ folder
    assert main(["data", "audit", "adience"]) == 2
    assert main(["data", "summarize", "utkface", "--root", str(tmp_path / "nowhere")]) == 2
    assert "susanqq.github.io" in capsys.readouterr().err


def test_invalid_root_exits_2_naming_the_problem(tmp_path, capsys):
    write_adience(tmp_path)
    (tmp_path / "fold_2_data.txt").write_text("user_id\tface_id\n")
    assert main(["data", "summarize", "adience", "--root", str(tmp_path)]) == 2
    assert "fold_2_data.txt: header lacks column(s)" in capsys.readouterr().err


def test_audit_fails_naming_truncated_and_unlabeled_files(utkface_parent, capsys):
    assert main(["data", "audit", "utkface", "--root", str(utkface_parent)]) == 0
    assert "audit passed" in capsys.readouterr().out
    truncate(utkface_parent / "UTKFace" / "23_0_1_20170116174525125.jpg.chip.jpg")
    write_jpeg(utkface_parent / "UTKFace" / "portrait.jpg", size=32)
    assert main(["data", "audit", "utkface", "--root", str(utkface_parent)]) == 1
    out = capsys.readouterr().out
    assert "BAD" in out and "23_0_1_20170116174525125.jpg.chip.jpg: corrupt or cut-short image" in out
    assert "portrait.jpg: file name has no age_gender labels" in out and "audit FAILED" in out
    code, report = run_json(capsys, "audit", "utkface", "--root", str(utkface_parent))
    assert code == 1 and report["ok"] is False and len(report["bad"]) == 2


def test_make_split_writes_a_split_file(utkface_parent, tmp_path, capsys):
    out = tmp_path / "split.csv"
    assert main(["data", "make-split", "utkface", "--root", str(utkface_parent), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert sorted(table["file"]) == sorted(NAMES) and set(table["split"]) <= {"train", "val", "test"}
    assert "wrote" in capsys.readouterr().out


def test_info_lists_every_registered_dataset(capsys):
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    for name in ("utkface", "adience", "imdb_wiki", "celeba", "fgnet", "afad"):
        assert f"[{name}]" in out


def test_info_says_whether_each_dataset_is_found(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    for seed, name in enumerate(NAMES):
        write_jpeg(tmp_path / "utkface" / "UTKFace" / name, size=16, seed=seed)
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert f"here:    found: ${DATA_ENV}/utkface ({len(NAMES)} image files)" in out
    assert f"here:    not found: ${DATA_ENV}/afad does not exist" in out
    monkeypatch.delenv(DATA_ENV)
    assert main(["data", "info", "fgnet"]) == 0
    assert f"here:    not found: ${DATA_ENV} is unset" in capsys.readouterr().out


def test_real_summaries_match_the_readers(utkface_root, adience_root, capsys):
    from agegender_tf.data import read_dataset

    for name, root in (("utkface", utkface_root), ("adience", adience_root)):
        result = read_dataset(name, root)
        code, summary = run_json(capsys, "summarize", name, "--root", str(root))
        assert code == 0 and summary["rows"] == len(result.manifest)
        assert summary["gender"]["male"] == int((result.manifest["gender"] == "male").sum())
        assert summary["dropped"] == result.dropped_counts()
    adience_fold_lines = sum(len((adience_root / f"fold_{k}_data.txt").read_text().splitlines()) - 1
                             for k in range(5))
    assert summary["notes"]["fold_rows"] == adience_fold_lines
    assert main(["data", "audit", "adience", "--root", str(adience_root)]) == 0
