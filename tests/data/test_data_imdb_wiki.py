"""IMDB-WIKI reader on fixtures laid out as imdb_crop.tar / wiki_crop.tar are published: a real
MATLAB v5 .mat (1x1 struct of 1xN fields and cells, written with scipy.io.savemat) beside NN/ folders."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
import scipy.io

from agegender_tf.data import read_dataset, validate_manifest
from agegender_tf.data.imdb_wiki import dex_age, matlab_datenum_to_date, read
from tests.fixtures import write_jpeg


def datenum(year: int, month: int, day: int) -> float:
    """MATLAB serial date number of a date (as in the published dob field)."""
    return float(date(year, month, day).toordinal() + 366)


def cell(items) -> np.ndarray:
    array = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        array[0, i] = item
    return array


def write_mat(path, struct_name, rows, celeb_names=None):
    """Write ``rows`` (dicts) as the published struct: numeric 1xN rows, cells for text and boxes."""
    fields = {
        "dob": np.array([[r["dob"] for r in rows]]),
        "photo_taken": np.array([[r["photo_taken"] for r in rows]], dtype=np.uint16),
        "full_path": cell([r["full_path"] for r in rows]),
        "gender": np.array([[r["gender"] for r in rows]]),
        "name": cell([r["name"] for r in rows]),
        "face_location": cell([np.array([[10.0, 12.0, 90.0, 95.0]]) for _ in rows]),
        "face_score": np.array([[r["face_score"] for r in rows]]),
        "second_face_score": np.array([[r["second_face_score"] for r in rows]]),
    }
    if celeb_names is not None:
        fields["celeb_names"] = cell(celeb_names)
        fields["celeb_id"] = np.array([[r["celeb_id"] for r in rows]], dtype=np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {struct_name: fields})
    return path


def imdb_row(folder, name_id, celeb_id, dob, taken, gender=1.0, face=3.5, second=math.nan, name="Fred Astaire"):
    return {
        "full_path": f"{folder}/nm{name_id:07d}_rm{celeb_id}_{dob.isoformat()}_{taken}.jpg",
        "dob": datenum(dob.year, dob.month, dob.day),
        "photo_taken": taken,
        "gender": gender,
        "name": name,
        "face_score": face,
        "second_face_score": second,
        "celeb_id": celeb_id,
    }


CELEBS = ["Fred Astaire", "Lauren Bacall", "Lucille Ball"]
IMDB_ROWS = [
    imdb_row("01", 1, 1, date(1899, 5, 10), 1968),  # kept: 69 (born before July 1st)
    imdb_row("01", 1, 1, date(1899, 5, 10), 1970, face=-math.inf),  # no face
    imdb_row("02", 2, 2, date(1924, 9, 16), 2004, gender=0.0, name="Lauren Bacall"),  # kept: 79 (after July 1st)
    imdb_row("02", 2, 2, date(1924, 9, 16), 1990, gender=0.0, face=0.5, name="Lauren Bacall"),  # low score
    imdb_row("03", 3, 3, date(1911, 8, 6), 1950, gender=0.0, second=2.1, name="Lucille Ball"),  # second face
    imdb_row("03", 3, 3, date(1911, 8, 6), 2015, gender=0.0, name="Lucille Ball"),  # age 103
    imdb_row("03", 3, 3, date(1911, 8, 6), 1951, gender=math.nan, name="Lucille Ball"),  # kept, gender None: 39
    imdb_row("04", 3, 3, date(1911, 8, 6), 1952, gender=0.0, name="Lucille Ball"),  # image not on disk
]
KEPT_IMDB = {0: 69, 2: 79, 6: 39}

WIKI_ROWS = [
    {"full_path": "17/10000217_1981-05-05_2009.jpg", "dob": datenum(1981, 5, 5), "photo_taken": 2009, "gender": 1.0,
     "name": "Sami Jauhojärvi", "face_score": 4.3, "second_face_score": math.nan},
    {"full_path": "48/10000548_1925-04-04_1964.jpg", "dob": datenum(1925, 4, 4), "photo_taken": 1964, "gender": 1.0,
     "name": "", "face_score": 2.6, "second_face_score": math.nan},
    {"full_path": "12/100012_1948-07-03_2008.jpg", "dob": 0.0, "photo_taken": 2008, "gender": 1.0,
     "name": "Bad Dob", "face_score": 2.0, "second_face_score": math.nan},
]


@pytest.fixture
def imdb_wiki_root(tmp_path):
    root = tmp_path / "imdb-wiki"
    write_mat(root / "imdb_crop" / "imdb.mat", "imdb", IMDB_ROWS, celeb_names=CELEBS)
    for seed, row in enumerate(IMDB_ROWS[:-1]):
        write_jpeg(root / "imdb_crop" / row["full_path"], size=32, seed=seed)
    write_mat(root / "wiki_crop" / "wiki.mat", "wiki", WIKI_ROWS)
    for seed, row in enumerate(WIKI_ROWS):
        write_jpeg(root / "wiki_crop" / row["full_path"], size=32, seed=seed)
    return root


def test_dex_age_takes_the_photo_as_shot_on_july_first():
    assert dex_age(1968, date(1899, 5, 10)) == 69
    assert dex_age(1968, date(1899, 7, 1)) == 69
    assert dex_age(1968, date(1899, 7, 2)) == 68
    assert matlab_datenum_to_date(datenum(1981, 5, 5)) == date(1981, 5, 5)
    assert matlab_datenum_to_date(732313.5) == date(2005, 1, 1)  # MATLAB datenum(2005,1,1,12,0,0)
    assert matlab_datenum_to_date(0.0) is None and matlab_datenum_to_date(math.nan) is None


def test_reads_both_subsets_with_counted_drops(imdb_wiki_root):
    result = read(imdb_wiki_root)
    manifest = validate_manifest(result.manifest)
    assert result.dropped_counts() == {
        "age outside [0, 100]": 1,
        "face_score below 1.0": 1,
        "invalid date of birth": 1,
        "missing image file": 1,
        "no face detected": 1,
        "second face present": 1,
    }
    assert len(manifest) + len(result.dropped) == len(IMDB_ROWS) + len(WIKI_ROWS)
    imdb = manifest[manifest["subset"] == "imdb"]
    for index, age in KEPT_IMDB.items():
        row = imdb[imdb["path"].str.endswith(IMDB_ROWS[index]["full_path"])].iloc[0]
        assert row["age"] == age
    genders = imdb.set_index("subject")["gender"]
    assert genders["Fred Astaire"] == "male" and genders["Lauren Bacall"] == "female"
    assert pd.isna(genders["Lucille Ball"])  # unknown gender kept, its age still a label
    wiki = manifest[manifest["subset"] == "wiki"].set_index("subject")
    assert wiki.loc["Sami Jauhojärvi", "age"] == 28 and wiki.loc["Sami Jauhojärvi", "gender"] == "male"
    assert wiki.loc["wiki-page-10000548", "age"] == 39
    assert (manifest["source"] == "imdb_wiki").all() and manifest["age_exact"].all()
    assert result.notes["rows_in_mat"] == {"imdb": len(IMDB_ROWS), "wiki": len(WIKI_ROWS)}
    assert sorted(imdb["celeb_id"]) == [1.0, 2.0, 3.0] and wiki["celeb_id"].isna().all()


def test_options_change_what_is_kept(imdb_wiki_root):
    default = len(read(imdb_wiki_root, subset="imdb").manifest)
    assert len(read(imdb_wiki_root, subset="imdb", min_face_score=None).manifest) == default + 1
    assert len(read(imdb_wiki_root, subset="imdb", allow_second_face=True).manifest) == default + 1
    assert len(read(imdb_wiki_root, subset="imdb", age_range=(0, 120)).manifest) == default + 1
    strict = read(imdb_wiki_root, subset="imdb", drop_unknown_gender=True)
    assert len(strict.manifest) == default - 1 and strict.dropped_counts()["unknown gender"] == 1
    unchecked = read(imdb_wiki_root, subset="imdb", check_files=False)
    assert len(unchecked.manifest) == default + 1 and "missing image file" not in unchecked.dropped_counts()


def test_root_may_be_a_crop_folder_and_registry_reads_it(imdb_wiki_root):
    wiki = read_dataset("imdb_wiki", imdb_wiki_root / "wiki_crop")
    assert set(wiki.manifest["subset"]) == {"wiki"} and len(wiki.manifest) == 2
    assert len(read(imdb_wiki_root, subset="wiki").manifest) == 2


def test_corrupt_mat_raises_naming_the_file(imdb_wiki_root):
    mat = imdb_wiki_root / "imdb_crop" / "imdb.mat"
    mat.write_bytes(mat.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"imdb\.mat: not a readable MATLAB"):
        read(imdb_wiki_root, subset="imdb")
    mat.write_text("this is not a mat file at all, just text\n" * 10)
    with pytest.raises(ValueError, match=r"imdb\.mat: not a readable MATLAB"):
        read(imdb_wiki_root, subset="imdb")


def test_missing_struct_and_fields_raise_naming_the_file(tmp_path):
    (tmp_path / "a").mkdir()
    scipy.io.savemat(tmp_path / "a" / "wiki.mat", {"imdb": {"dob": np.array([[1.0]])}})
    with pytest.raises(ValueError, match=r"wiki\.mat: no struct 'wiki' \(found \['imdb'\]\)"):
        read(tmp_path / "a")
    rows = [dict(IMDB_ROWS[0])]
    path = write_mat(tmp_path / "b" / "imdb.mat", "imdb", rows)  # celeb_names/celeb_id left out
    with pytest.raises(ValueError, match=r"imdb\.mat: struct 'imdb' lacks fields \['celeb_names', 'celeb_id'\]"):
        read(path.parent)
    write_mat(tmp_path / "c" / "wiki.mat", "wiki", WIKI_ROWS)
    data = scipy.io.loadmat(tmp_path / "c" / "wiki.mat")["wiki"][0, 0]
    fields = {n: data[n] for n in data.dtype.names}
    fields["gender"] = np.array([[1.0, 0.0]])
    scipy.io.savemat(tmp_path / "c" / "wiki.mat", {"wiki": fields})
    with pytest.raises(ValueError, match=r"wiki\.mat: fields of 'wiki' differ in length"):
        read(tmp_path / "c")


def test_missing_root_and_folder_without_mat_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*imdb_crop/imdb.mat"):
        read(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty holds no imdb.mat or wiki.mat"):
        read(tmp_path / "empty")
    with pytest.raises(ValueError, match="subset must be"):
        read(tmp_path / "empty", subset="celeba")


def test_reading_is_deterministic(imdb_wiki_root):
    first, second = read(imdb_wiki_root), read(imdb_wiki_root)
    pd.testing.assert_frame_equal(first.manifest, second.manifest)
    pd.testing.assert_frame_equal(first.dropped, second.dropped)


def test_audit_counts_policy_drops_but_fails_only_on_bad_labels(imdb_wiki_root):
    from agegender_tf.data.audit import bad_dropped_items

    result = read(imdb_wiki_root)
    bad = dict((reason, item) for item, reason in bad_dropped_items(result))
    # No face, low face score, second face and age range are a selection policy on valid files.
    assert "no face detected" in result.policy_reasons and "face_score below 1.0" in result.policy_reasons
    assert set(bad) == {"invalid date of birth"}
    assert bad["invalid date of birth"].endswith(".jpg")
