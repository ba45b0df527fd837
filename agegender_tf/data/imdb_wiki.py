"""IMDB-WIKI reader (Rothe, Timofte, Van Gool, "DEX", ICCV-W 2015; papers 000, 001, 004 sec. 5.3).

Published layout: ``imdb_crop/imdb.mat`` (struct ``imdb``) and ``wiki_crop/wiki.mat`` (struct
``wiki``) beside the ``NN/`` image folders. Each struct holds 1xN fields: ``dob`` (MATLAB serial
date number), ``photo_taken`` (year), ``full_path`` (cell, relative to the ``.mat`` folder),
``gender`` (1 male, 0 female, NaN unknown), ``name``, ``face_location``, ``face_score`` (-inf when
no face was found), ``second_face_score`` (NaN when there is none) and, for IMDb only,
``celeb_names`` and ``celeb_id``.

Age follows DEX: the photo is taken as shot on July 1st of ``photo_taken``, so the age is the
number of birthdays had by that day: ``photo_taken - birth year``, minus one when the birthday
falls after July 1st.

Each row is kept or dropped for the first of these reasons, in this order: empty ``full_path``;
no face (``face_score`` -inf or NaN); ``face_score`` below ``min_face_score`` (1.0, common
practice, None keeps all); a second face found (unless ``allow_second_face``); invalid date of
birth or ``photo_taken``; age outside ``age_range`` (0-100); a gender code other than 0/1/NaN;
unknown gender, only with ``drop_unknown_gender`` (by default kept with gender None, since its age
is still a label); missing image file (``check_files``).

``subject`` is the celebrity's name in both subsets (IMDb: ``celeb_names[celeb_id]``), so a
person found in both IMDb and Wikipedia stays on one side of a split; a Wikipedia row with no
name falls back to its Wikipedia page id (the number that starts its file name).
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from agegender_tf.data.manifest import DROPPED_COLUMNS, MANIFEST_COLUMNS, ReadResult

SOURCE = "imdb_wiki"
SUBSETS = ("imdb", "wiki")
REQUIRED_FIELDS = ("dob", "photo_taken", "full_path", "gender", "name", "face_score", "second_face_score")
IMDB_FIELDS = ("celeb_names", "celeb_id")
PUBLISHED_IMAGES = {"imdb": 460_723, "wiki": 62_328}
MATLAB_YEAR_ZERO_DAYS = 366  # MATLAB datenum 1 is 1 Jan of year 0 (a leap year); Python ordinal 1 is 1 Jan of year 1
LAYOUT = "<root>/imdb_crop/imdb.mat and/or <root>/wiki_crop/wiki.mat, images in the NN/ folders beside each"
COLUMNS = [*MANIFEST_COLUMNS, "age_exact", "subset", "celeb_id", "face_score", "second_face_score", "photo_taken"]


def read(
    root: str | Path,
    subset: str | None = None,
    min_face_score: float | None = 1.0,
    allow_second_face: bool = False,
    age_range: tuple[float, float] = (0, 100),
    drop_unknown_gender: bool = False,
    check_files: bool = True,
) -> ReadResult:
    """Read IMDB-WIKI at ``root`` (a folder holding ``imdb_crop``/``wiki_crop``, or one crop folder).

    ``subset`` picks ``"imdb"`` or ``"wiki"``; None reads every subset found.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"IMDB-WIKI root {root} does not exist; expected {LAYOUT}")
    if subset not in (None, *SUBSETS):
        raise ValueError(f"subset must be one of {SUBSETS} or None, got {subset!r}")
    mat_files = {name: _find_mat(root, name) for name in ((subset,) if subset else SUBSETS)}
    mat_files = {name: path for name, path in mat_files.items() if path is not None}
    if not mat_files:
        wanted = f"{subset}.mat" if subset else "imdb.mat or wiki.mat"
        raise FileNotFoundError(f"IMDB-WIKI root {root} holds no {wanted}; expected {LAYOUT}")
    rows, dropped, notes = [], [], {"mat_files": {}, "rows_in_mat": {}, "published_images": {}}
    for name, mat_path in mat_files.items():
        fields = load_mat(mat_path, name)
        notes["mat_files"][name] = str(mat_path)
        notes["rows_in_mat"][name] = len(fields["full_path"])
        notes["published_images"][name] = PUBLISHED_IMAGES[name]
        options = dict(
            min_face_score=min_face_score,
            allow_second_face=allow_second_face,
            age_range=age_range,
            drop_unknown_gender=drop_unknown_gender,
            check_files=check_files,
        )
        _read_rows(name, mat_path.parent, fields, rows, dropped, **options)
    manifest = pd.DataFrame(rows, columns=COLUMNS).sort_values("path", kind="stable", ignore_index=True)
    low, high = age_range
    policy = {"no face detected", f"face_score below {min_face_score}", "second face present",
              f"age outside [{low}, {high}]", "unknown gender"}
    return ReadResult(manifest=manifest, dropped=pd.DataFrame(dropped, columns=list(DROPPED_COLUMNS)), notes=notes,
                      policy_reasons=frozenset(policy))


def _find_mat(root: Path, name: str) -> Path | None:
    for candidate in (root / f"{name}_crop" / f"{name}.mat", root / name / f"{name}.mat", root / f"{name}.mat"):
        if candidate.is_file():
            return candidate
    return None


def load_mat(path: str | Path, name: str) -> dict[str, np.ndarray]:
    """The 1xN fields of struct ``name`` in ``path`` as flat arrays (cells as lists of str or arrays).

    Raises ValueError naming the file when it is not a readable MATLAB file, lacks the struct or a
    field, or its fields differ in length.
    """
    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5) files
        raise ValueError(f"{path}: MATLAB v7.3 files are not supported, the published files are v5 ({exc})") from exc
    except (ValueError, TypeError, OSError, scipy.io.matlab.MatReadError) as exc:
        raise ValueError(f"{path}: not a readable MATLAB .mat file ({exc})") from exc
    if name not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path}: no struct {name!r} (found {found}); expected the published IMDB-WIKI metadata")
    struct = mat[name]
    if struct.dtype.names is None or struct.size != 1:
        raise ValueError(f"{path}: {name!r} is not a 1x1 struct")
    struct = struct.reshape(-1)[0]
    required = REQUIRED_FIELDS + (IMDB_FIELDS if name == "imdb" else ())
    missing = [f for f in required if f not in struct.dtype.names]
    if missing:
        raise ValueError(f"{path}: struct {name!r} lacks fields {missing}; has {list(struct.dtype.names)}")
    fields = {}
    for field in struct.dtype.names:
        values = np.asarray(struct[field]).reshape(-1)
        if values.dtype == object:
            fields[field] = [_cell_text(v) if field != "face_location" else v for v in values]
        else:
            fields[field] = values.astype(np.float64)
    lengths = {f: len(fields[f]) for f in required if f != "celeb_names"}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{path}: fields of {name!r} differ in length: {lengths}")
    return fields


def _cell_text(value) -> str:
    value = np.asarray(value).reshape(-1)
    return str(value[0]) if value.size else ""


def matlab_datenum_to_date(datenum: float) -> date | None:
    """The calendar date of a MATLAB serial date number, or None when it is not a valid date."""
    if not math.isfinite(datenum) or datenum < MATLAB_YEAR_ZERO_DAYS + 1:
        return None
    try:
        return date.fromordinal(int(datenum) - MATLAB_YEAR_ZERO_DAYS)
    except (ValueError, OverflowError):
        return None


def dex_age(photo_taken: float, birth: date) -> int:
    """Age on July 1st of ``photo_taken`` (DEX: the photo is taken as shot mid-year)."""
    return int(photo_taken) - birth.year - (1 if (birth.month, birth.day) > (7, 1) else 0)


def _read_rows(name, folder, fields, rows, dropped, *, min_face_score, allow_second_face, age_range,
               drop_unknown_gender, check_files):
    celeb_names = fields.get("celeb_names", [])
    low, high = age_range
    for i, relative in enumerate(fields["full_path"]):
        path = (folder / relative).resolve() if relative else None
        face_score = fields["face_score"][i]
        second_face = fields["second_face_score"][i]
        birth = matlab_datenum_to_date(fields["dob"][i])
        taken = fields["photo_taken"][i]
        gender_code = fields["gender"][i]
        age = dex_age(taken, birth) if birth is not None and math.isfinite(taken) else None
        if path is None:
            reason = "empty full_path"
        elif not face_score > -math.inf:  # -inf (no face) or NaN
            reason = "no face detected"
        elif min_face_score is not None and face_score < min_face_score:
            reason = f"face_score below {min_face_score}"
        elif not allow_second_face and not math.isnan(second_face):
            reason = "second face present"
        elif birth is None:
            reason = "invalid date of birth"
        elif not math.isfinite(taken):
            reason = "invalid photo_taken"
        elif not low <= age <= high:
            reason = f"age outside [{low}, {high}]"
        elif not (math.isnan(gender_code) or gender_code in (0, 1)):
            reason = "gender code not 0, 1 or NaN"
        elif drop_unknown_gender and math.isnan(gender_code):
            reason = "unknown gender"
        elif check_files and not path.is_file():
            reason = "missing image file"
        else:
            reason = None
        if reason:
            dropped.append((str(path) if path else f"{name}.mat row {i + 1}", reason))
            continue
        celeb_id = fields["celeb_id"][i] if "celeb_id" in fields else math.nan
        rows.append(
            {
                "path": str(path),
                "age": float(age),
                "age_group": None,
                "gender": None if math.isnan(gender_code) else ("male" if gender_code == 1 else "female"),
                "subject": _subject(name, fields["name"][i], celeb_id, celeb_names, relative),
                "source": SOURCE,
                "age_exact": True,
                "subset": name,
                "celeb_id": celeb_id,
                "face_score": float(face_score),
                "second_face_score": float(second_face),
                "photo_taken": int(taken),
            }
        )


def _subject(subset: str, name: str, celeb_id: float, celeb_names: list[str], relative: str) -> str:
    if subset == "imdb" and math.isfinite(celeb_id) and 1 <= celeb_id <= len(celeb_names):
        name = celeb_names[int(celeb_id) - 1] or name
    if name:
        return name
    if subset == "imdb" and math.isfinite(celeb_id):
        return f"imdb-celeb-{int(celeb_id)}"
    return f"{subset}-page-{Path(relative).name.split('_')[0]}"
