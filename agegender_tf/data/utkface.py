"""UTKFace reader: labels live in the file name ``[age]_[gender]_[race]_[date&time].jpg.chip.jpg``.

Publisher's coding: gender 0 = male, 1 = female; race 0-4 = White, Black, Asian, Indian, Others.
The set has irregular names (paper 001 and 003 train on it as shipped), so every name is parsed
on its own, never by assuming four fields:

- a name whose leading ``age_gender`` fields parse is kept; a missing or out-of-range race field
  gives ``race`` NaN, a malformed date/suffix part is kept as is. Each such name is recorded in
  ``ReadResult.notes["name_warnings"]`` (file name -> what is odd) and counted.
- a name without ``age_gender`` fields, with a gender code other than 0/1, or an age outside
  0-120, is dropped with that reason; so is any file that is not a .jpg/.jpeg/.png image.

UTKFace has no identity labels: ``subject`` is the file name without its ``.jpg.chip.jpg``
suffix, i.e. one subject per image. Byte-identical repeated photos are found by content hash
(``read(..., with_hashes=True)`` or ``agegender_tf.data.audit``) and kept on one side of a split.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from agegender_tf.data.hashing import content_hash
from agegender_tf.data.manifest import DROPPED_COLUMNS, MANIFEST_COLUMNS, ReadResult
from agegender_tf.imaging import IMAGE_SUFFIXES
from agegender_tf.paths import DatasetNotFoundError

NAME = "utkface"
IMAGE_FOLDER = "UTKFace"
GENDER_CODES = {"0": "male", "1": "female"}
RACES = ("White", "Black", "Asian", "Indian", "Others")
MAX_AGE = 120
FILE_SUFFIX = ".jpg.chip.jpg"

_LABELS = re.compile(r"^(?P<age>\d+)_(?P<gender>\d+)_(?:(?P<race>\d+)_)?(?P<rest>.*)$")
_REGULAR_REST = re.compile(r"^\d{17}" + re.escape(FILE_SUFFIX) + "$")


def resolve_root(root: str | Path) -> Path:
    """The folder of images: ``root`` itself, or ``root/UTKFace`` when the archive's parent is given."""
    root = Path(root).expanduser()
    if (root / IMAGE_FOLDER).is_dir():
        return root / IMAGE_FOLDER
    if root.is_dir():
        return root
    raise DatasetNotFoundError(f"UTKFace root {root} does not exist: {_how_to_obtain()}")


def _how_to_obtain() -> str:
    from agegender_tf.data.info import how_to_obtain

    return how_to_obtain(NAME)


def parse_name(name: str) -> tuple[dict | None, str | None, str | None]:
    """Parse one file name -> (labels, drop reason, warning).

    ``labels`` has ``age`` (int), ``gender`` ("male"/"female"), ``race`` (int or None);
    it is None exactly when the name is dropped, ``reason`` then says why.
    """
    match = _LABELS.match(name)
    if match is None:
        return None, "file name has no age_gender labels", None
    age, gender_code = int(match["age"]), match["gender"]
    if gender_code not in GENDER_CODES:
        return None, f"gender code {gender_code} is not 0 (male) or 1 (female)", None
    if age > MAX_AGE:
        return None, f"age {age} outside 0-{MAX_AGE}", None
    warnings = []
    race = match["race"]
    if race is None:
        warnings.append("no race field")
    elif int(race) >= len(RACES):
        warnings.append(f"race code {race} outside 0-{len(RACES) - 1}")
        race = None
    if not _REGULAR_REST.match(match["rest"]):
        warnings.append(f"irregular date/suffix part {match['rest']!r}")
    labels = {"age": age, "gender": GENDER_CODES[gender_code], "race": None if race is None else int(race)}
    return labels, None, "; ".join(warnings) or None


def subject_of(name: str) -> str:
    """One subject per image: the file name without its ``.jpg.chip.jpg`` (or last) suffix."""
    return name[: -len(FILE_SUFFIX)] if name.endswith(FILE_SUFFIX) else Path(name).stem


def read(root: str | Path, with_hashes: bool = False) -> ReadResult:
    """Read a UTKFace folder (the images folder or its parent holding ``UTKFace/``).

    ``with_hashes`` adds a ``content_hash`` column (SHA-1 of each file) for duplicate grouping.
    """
    folder = resolve_root(root)
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    files = [p for p in entries if p.is_file()]
    if not files:
        raise DatasetNotFoundError(f"UTKFace folder {folder} holds no files: {_how_to_obtain()}")
    rows, dropped, warnings = [], [], {}
    for path in files:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            dropped.append((str(path), "not an image file (.jpg/.jpeg/.png)"))
            continue
        labels, reason, warning = parse_name(path.name)
        if labels is None:
            dropped.append((str(path), reason))
            continue
        if warning:
            warnings[path.name] = warning
        rows.append({
            "path": str(path), "age": float(labels["age"]), "age_group": None, "gender": labels["gender"],
            "subject": subject_of(path.name), "source": NAME, "file": path.name,
            "race": np.nan if labels["race"] is None else float(labels["race"]), "age_exact": True,
        })
    columns = list(MANIFEST_COLUMNS) + ["file", "race", "age_exact"]
    manifest = pd.DataFrame(rows, columns=columns)
    manifest["age_group"] = manifest["age_group"].astype(object)
    if with_hashes:
        manifest["content_hash"] = [content_hash(p) for p in manifest["path"]]
    notes = {
        "folder": str(folder),
        "files_seen": len(files),
        "subfolders_ignored": sum(1 for p in entries if p.is_dir()),
        "name_warnings": warnings,
        "name_warning_counts": _warning_counts(warnings),
    }
    return ReadResult(manifest, pd.DataFrame(dropped, columns=list(DROPPED_COLUMNS)), notes)


def _warning_counts(warnings: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for text in warnings.values():
        for part in text.split("; "):
            kind = part.split(" '")[0] if part.startswith("irregular") else part
            kind = f"race code outside 0-{len(RACES) - 1}" if kind.startswith("race code") else kind
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))
