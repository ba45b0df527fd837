"""Adience reader: the official ``fold_{0..4}_data.txt`` metadata plus the face crops on disk.

Layout (Adience page; paper 000 sec. VI, paper 002): ``<root>/fold_<k>_data.txt`` (tab-separated,
header ``user_id original_image face_id age gender x y dx dy tilt_ang fiducial_yaw_angle
fiducial_score``) and the crops in ``<root>/faces/<user_id>/coarse_tilt_aligned_face.<face_id>.<image>``
or, for the aligned archive, ``<root>/aligned/<user_id>/landmark_aligned_face.<face_id>.<image>``.
One manifest row per fold row; ``image_found`` says whether its crop is on disk (often only part
of the images is), and ``subject`` is the Flickr ``user_id``, the unit the folds keep apart.

Label policy (every case counted in ``ReadResult.notes``):

- age: one of ADIENCE8's eight ranges -> that group, ``age`` = the range midpoint, ``age_exact`` False.
  An off-grid range ("(38, 42)", "(27, 32)", "(38, 48)", "(8, 23)") -> the group containing its
  midpoint, or the nearest group under ``binning.ADIENCE_GAP_POLICY``; ``age`` = that group's
  midpoint, ``age_exact`` False. A bare number ("35") -> ``ADIENCE8.to_label(number)``, ``age`` =
  the number, ``age_exact`` True. "None", blank or anything unparseable -> age unknown (NaN, group None).
- gender: "m" -> male, "f" -> female; "u", blank or anything else -> None (unknown).
- a row with neither a usable age nor a usable gender is dropped with that reason; a line with
  the wrong number of fields or a non-integer face_id is dropped as malformed (``strict`` raises).
  A missing fold file, an empty one or a header without the needed columns raises ``ValueError``.
- crops on disk that no fold row references, and files in a user folder that are neither crops nor
  ``landmarks.*``, are listed in ``notes["name_warnings"]`` (the audit prints them as warnings).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from agegender_tf.binning import ADIENCE8
from agegender_tf.data.manifest import DROPPED_COLUMNS, MANIFEST_COLUMNS, ReadResult
from agegender_tf.paths import DatasetNotFoundError

NAME = "adience"
NUM_FOLDS = 5
FOLD_FILE = "fold_{}_data.txt"
REQUIRED_COLUMNS = ("user_id", "original_image", "face_id", "age", "gender")
# variant -> (folder, crop file prefix)
VARIANTS = {"faces": ("faces", "coarse_tilt_aligned_face"), "aligned": ("aligned", "landmark_aligned_face")}
GENDER_CODES = {"m": "male", "f": "female"}
EXTRA_COLUMNS = ["fold", "user_id", "face_id", "original_image", "image_found", "age_exact"]

_RANGE = re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_NUMBER = re.compile(r"^\d+$")


def _group_midpoint(label: str) -> float:
    low, high = map(int, _RANGE.match(label).groups())
    return (low + high) / 2


def map_age_label(raw: str) -> tuple[str | None, float, bool, str]:
    """One raw age cell -> (ADIENCE8 group or None, age in years or NaN, age_exact, kind).

    ``kind`` is ``"official"``, ``"off_grid_range"``, ``"bare_number"``, ``"none"`` or ``"unparseable"``.
    """
    text = raw.strip()
    if text in ("", "None"):
        return None, np.nan, False, "none"
    if text in ADIENCE8.labels:
        return text, _group_midpoint(text), False, "official"
    match = _RANGE.match(text)
    if match:
        low, high = map(int, match.groups())
        if low > high:
            return None, np.nan, False, "unparseable"
        group = ADIENCE8.to_label((low + high) / 2)
        return group, _group_midpoint(group), False, "off_grid_range"
    if _NUMBER.match(text):
        return ADIENCE8.to_label(float(text)), float(text), True, "bare_number"
    return None, np.nan, False, "unparseable"


def map_gender_label(raw: str) -> str | None:
    return GENDER_CODES.get(raw.strip().lower())


def _image_variant(root: Path, variant: str) -> str:
    if variant != "auto":
        if variant not in VARIANTS:
            raise ValueError(f"Adience image variant {variant!r}; choose auto, {', '.join(VARIANTS)}")
        return variant
    for name, (folder, _) in VARIANTS.items():
        if (root / folder).is_dir():
            return name
    return "faces"


def read_fold_file(path: Path, strict: bool = False) -> tuple[list[dict], list[tuple[str, str]], int]:
    """Rows (raw strings keyed by header) of one fold file, malformed lines, and blank lines."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"{path}: empty fold file, expected a header line naming {list(REQUIRED_COLUMNS)}")
    header = [h.strip() for h in lines[0].split("\t")]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: header lacks column(s) {missing}; found {header}")
    rows, malformed, blank = [], [], 0
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            blank += 1
            continue
        fields = line.split("\t")
        problem = None
        if len(fields) != len(header):
            problem = f"malformed fold line ({len(fields)} fields, expected {len(header)})"
        else:
            row = dict(zip(header, fields))
            if not row["face_id"].strip().isdigit():
                problem = f"malformed fold line (face_id {row['face_id']!r} is not an integer)"
        if problem:
            if strict:
                raise ValueError(f"{path} line {number}: {problem}")
            malformed.append((f"{path} line {number}", problem))
            continue
        row["_line"] = number
        rows.append(row)
    return rows, malformed, blank


def read(root: str | Path, variant: str = "auto", strict: bool = False) -> ReadResult:
    """Read Adience's five folds at ``root``; ``variant`` picks ``faces/`` or ``aligned/`` crops."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"Adience root {root} does not exist: {_how_to_obtain()}")
    fold_paths = [root / FOLD_FILE.format(k) for k in range(NUM_FOLDS)]
    absent = [p.name for p in fold_paths if not p.is_file()]
    if absent:
        raise DatasetNotFoundError(f"Adience root {root} lacks {absent}: {_how_to_obtain()}")
    variant = _image_variant(root, variant)
    folder, prefix = VARIANTS[variant]
    on_disk, unexpected = _crops_on_disk(root / folder, prefix)

    rows, dropped = [], []
    age_kinds, gender_raw, mappings = Counter(), Counter(), Counter()
    blank_lines = 0
    for fold, path in enumerate(fold_paths):
        fold_rows, malformed, blank = read_fold_file(path, strict=strict)
        dropped.extend(malformed)
        blank_lines += blank
        for raw in fold_rows:
            user, image, face_id = raw["user_id"].strip(), raw["original_image"].strip(), int(raw["face_id"])
            group, age, exact, kind = map_age_label(raw["age"])
            gender = map_gender_label(raw["gender"])
            age_kinds[kind] += 1
            gender_raw[raw["gender"].strip() or "blank"] += 1
            if kind in ("off_grid_range", "bare_number"):
                mappings[(raw["age"].strip(), group)] += 1
            if group is None and gender is None:
                dropped.append((f"{path} line {raw['_line']}", "no usable age or gender label"))
                continue
            crop = root / folder / user / f"{prefix}.{face_id}.{image}"
            rows.append({
                "path": str(crop), "age": age, "age_group": group, "gender": gender, "subject": user,
                "source": NAME, "fold": fold, "user_id": user, "face_id": face_id, "original_image": image,
                "image_found": (user, crop.name) in on_disk, "age_exact": exact,
            })
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS) + EXTRA_COLUMNS)
    manifest["age"] = manifest["age"].astype(float)
    referenced = {(u, Path(p).name) for u, p in zip(manifest["user_id"], manifest["path"])}
    found = int(manifest["image_found"].sum())
    name_warnings = {f"{u}/{name}": "crop not referenced by any fold row" for u, name in sorted(on_disk - referenced)}
    name_warnings.update({name: f"unexpected file in {folder}/" for name in unexpected})
    notes = {
        "variant": variant,
        "image_folder": str(root / folder),
        "fold_rows": sum(age_kinds.values()) + len([d for d in dropped if d[1].startswith("malformed")]),
        "images_found": found,
        "images_missing": len(manifest) - found,
        "images_unreferenced": len(on_disk - referenced),
        "name_warnings": name_warnings,
        "blank_lines": blank_lines,
        "age_labels": dict(sorted(age_kinds.items())),
        "age_mappings": [{"label": label, "group": group, "rows": n} for (label, group), n in sorted(mappings.items())],
        "gender_labels": dict(sorted(gender_raw.items())),
    }
    return ReadResult(manifest, pd.DataFrame(dropped, columns=list(DROPPED_COLUMNS)), notes)


def _crops_on_disk(folder: Path, prefix: str) -> tuple[set[tuple[str, str]], list[str]]:
    """(user_id, file name) of every crop under ``folder/<user_id>/``, and the other files there
    that are neither crops nor ``landmarks.*`` files (``<user_id>/<name>``)."""
    crops, others = set(), []
    if not folder.is_dir():
        return crops, others
    for user in sorted(folder.iterdir()):
        if not user.is_dir():
            others.append(user.name)
            continue
        for entry in sorted(user.iterdir()):
            if entry.name.startswith(prefix + ".") and entry.is_file():
                crops.add((user.name, entry.name))
            elif not entry.name.startswith("landmarks."):
                others.append(f"{user.name}/{entry.name}")
    return crops, others


def _how_to_obtain() -> str:
    from agegender_tf.data.info import how_to_obtain

    return how_to_obtain(NAME)
