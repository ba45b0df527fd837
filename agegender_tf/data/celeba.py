"""CelebA gender reader (Liu et al., ICCV 2015; paper 003 sec. 3.1 and 4.2.1).

Two published layouts, told apart automatically (``layout="auto"``):

- ``"folders"``: Kaggle's "Gender Classification 200k Images | CelebA" as paper 003 uses it,
  ``<root>/{Train,Validate,Test}/{Female,Male}/*.jpg`` (also ``Validation``/``Valid``/``Val``,
  ``Training``, ``Testing``, any letter case; ``root`` may be the folder holding ``Dataset/``).
  ``split`` comes from the folder. A root holding ``Female/`` and ``Male/`` alone reads with no split.
- ``"official"``: ``list_attr_celeba.txt`` (line 1 the image count, line 2 the 40 attribute names,
  then ``000001.jpg -1 1 ...``; ``Male`` is 1 or -1) with images in ``img_align_celeba/``, and
  optional ``list_eval_partition.txt`` (0 train, 1 validation, 2 test). The ``Anno/``, ``Eval/``,
  ``Img/`` folders of the Google Drive release and the ``.csv`` files of Kaggle's
  "celeba-dataset" are found too.

CelebA has no ages: ``age`` is NaN. ``subject`` is the identity from ``identity_CelebA.txt`` where
that file is present (or passed as ``identity_file``), else the file stem.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from agegender_tf.data.manifest import DROPPED_COLUMNS, MANIFEST_COLUMNS, ReadResult

SOURCE = "celeba"
SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "validate": "validation",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "test": "test",
    "testing": "test",
}
GENDER_FOLDERS = {"female": "female", "male": "male"}
PARTITIONS = {"0": "train", "1": "validation", "2": "test"}
IMAGE_SUFFIXES = (".jpg", ".jpeg")
ATTRIBUTE_FILES = ("list_attr_celeba.txt", "Anno/list_attr_celeba.txt", "list_attr_celeba.csv")
PARTITION_FILES = ("list_eval_partition.txt", "Eval/list_eval_partition.txt", "list_eval_partition.csv")
IDENTITY_FILES = ("identity_CelebA.txt", "Anno/identity_CelebA.txt")
IMAGE_FOLDERS = ("img_align_celeba/img_align_celeba", "img_align_celeba", "Img/img_align_celeba")
LAYOUTS = (
    "<root>/{Train,Validate,Test}/{Female,Male}/*.jpg (paper 003), or "
    "<root>/list_attr_celeba.txt with <root>/img_align_celeba/*.jpg (official)"
)
COLUMNS = [*MANIFEST_COLUMNS, "age_exact", "split"]


def read(root: str | Path, layout: str = "auto", identity_file: str | Path | None = None) -> ReadResult:
    """Read CelebA gender labels at ``root``; ``layout`` is ``"auto"``, ``"folders"`` or ``"official"``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"CelebA root {root} does not exist; expected {LAYOUTS}")
    if layout not in ("auto", "folders", "official"):
        raise ValueError(f"layout must be 'auto', 'folders' or 'official', got {layout!r}")
    attribute_file = _first_existing(root, ATTRIBUTE_FILES)
    if layout == "official" or (layout == "auto" and attribute_file is not None):
        if attribute_file is None:
            raise FileNotFoundError(f"CelebA root {root} has none of {list(ATTRIBUTE_FILES)}; expected {LAYOUTS}")
        identities = _read_identities(identity_file, root)
        return _read_official(root, attribute_file, identities)
    return _read_folders(root, _read_identities(identity_file, root))


def _read_folders(root: Path, identities: dict[str, str]) -> ReadResult:
    base, has_splits = _find_folder_base(root)
    groups = []  # (split or None, gender folder)
    ignored = []
    if has_splits:
        for split_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            split = SPLIT_FOLDERS.get(split_dir.name.lower())
            if split is None:
                ignored.append(split_dir.name)
            else:
                groups.append((split, split_dir))
    else:
        groups.append((None, base))
    rows, dropped = [], []
    for split, folder in groups:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            gender_folder = path.relative_to(folder).parts[0]
            gender = GENDER_FOLDERS.get(gender_folder.lower())
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                reason = "not a JPEG file"
            elif gender is None:
                reason = "image outside a Female/Male folder"
            elif path.parent.name != gender_folder:
                reason = "image nested below the Female/Male folder"
            else:
                rows.append(_row(path, gender, identities.get(path.name, path.stem), split))
                continue
            dropped.append((str(path.resolve()), reason))
    if not rows and not dropped:
        raise ValueError(f"CelebA folders under {base} hold no images; expected {LAYOUTS}")
    notes = {"layout": "folders", "root": str(base), "ignored_folders": ignored, "identities": bool(identities)}
    return _result(rows, dropped, notes)


def _find_folder_base(root: Path) -> tuple[Path, bool]:
    """The folder holding the split folders (True) or the Female/Male folders (False)."""
    for candidate in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        names = {p.name.lower() for p in candidate.iterdir() if p.is_dir()}
        if names & set(SPLIT_FOLDERS):
            return candidate, True
        if set(GENDER_FOLDERS) <= names:
            return candidate, False
    raise FileNotFoundError(f"CelebA root {root} has no Train/Validate/Test or Female/Male folders; expected {LAYOUTS}")


def _read_official(root: Path, attribute_file: Path, identities: dict[str, str]) -> ReadResult:
    images_dir = _first_existing(root, IMAGE_FOLDERS)
    if images_dir is None:
        raise FileNotFoundError(f"CelebA root {root} has none of the image folders {list(IMAGE_FOLDERS)}")
    partition_file = _first_existing(root, PARTITION_FILES)
    partitions = _read_partitions(partition_file) if partition_file else {}
    rows, dropped = [], []
    for name, is_male in _read_attributes(attribute_file):
        path = images_dir / name
        if not path.is_file():
            dropped.append((str(path.resolve()), "missing image file"))
            continue
        gender = "male" if is_male else "female"
        rows.append(_row(path, gender, identities.get(name, Path(name).stem), partitions.get(name)))
    notes = {
        "layout": "official",
        "attribute_file": str(attribute_file),
        "partition_file": str(partition_file) if partition_file else None,
        "rows_without_partition": sum(1 for r in rows if r["split"] is None),
        "identities": bool(identities),
    }
    return _result(rows, dropped, notes)


def _read_attributes(path: Path) -> list[tuple[str, bool]]:
    """(image name, is male) per row of ``list_attr_celeba.txt`` or its Kaggle ``.csv`` form."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix.lower() == ".csv":
        header_line, first_row_line, declared = 0, 1, None
        names = [n.strip() for n in lines[0].split(",")[1:]] if lines else []
        separator = ","
    else:
        if not lines:
            raise ValueError(f"{path} is empty; expected the CelebA attribute list")
        if not lines[0].strip().isdigit():
            raise ValueError(f"{path} line 1: expected the number of images, found {lines[0][:40]!r}")
        if len(lines) < 2:
            raise ValueError(f"{path} line 2: missing the attribute names")
        header_line, first_row_line, declared = 1, 2, int(lines[0])
        names = lines[1].split()
        separator = None
    if "Male" not in names:
        raise ValueError(f"{path} line {header_line + 1}: attribute names lack 'Male'; found {names[:5]}...")
    male_index = names.index("Male") + 1
    result = []
    for number, line in enumerate(lines[first_row_line:], start=first_row_line + 1):
        if not line.strip():
            continue
        tokens = [t.strip() for t in line.split(separator)]
        if len(tokens) != len(names) + 1:
            raise ValueError(
                f"{path} line {number}: expected an image name and {len(names)} attribute values, "
                f"found {len(tokens) - 1} values"
            )
        if tokens[male_index] not in ("1", "-1"):
            raise ValueError(f"{path} line {number}: Male must be 1 or -1, found {tokens[male_index]!r}")
        result.append((tokens[0], tokens[male_index] == "1"))
    if declared is not None and declared != len(result):
        raise ValueError(f"{path} line 1: declares {declared} images but lists {len(result)}")
    return result


def _read_two_columns(path: Path) -> list[tuple[int, str, str]]:
    """(line number, image name, value) per row of a two-column CelebA list (.txt or .csv)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    is_csv = path.suffix.lower() == ".csv"
    rows = []
    for number, line in enumerate(lines[1:] if is_csv else lines, start=2 if is_csv else 1):
        if not line.strip():
            continue
        tokens = [t.strip() for t in line.split("," if is_csv else None)]
        if len(tokens) != 2:
            raise ValueError(f"{path} line {number}: expected '<image> <value>', found {line[:60]!r}")
        rows.append((number, tokens[0], tokens[1]))
    return rows


def _read_partitions(path: Path) -> dict[str, str]:
    partitions = {}
    for number, name, value in _read_two_columns(path):
        if value not in PARTITIONS:
            raise ValueError(f"{path} line {number}: partition must be 0, 1 or 2, found {value!r}")
        partitions[name] = PARTITIONS[value]
    return partitions


def _read_identities(identity_file: str | Path | None, root: Path) -> dict[str, str]:
    path = Path(identity_file).expanduser() if identity_file else _first_existing(root, IDENTITY_FILES)
    if path is None:
        return {}
    if not path.is_file():
        raise FileNotFoundError(f"CelebA identity file {path} does not exist")
    identities = {}
    for number, name, value in _read_two_columns(path):
        if not value.isdigit():
            raise ValueError(f"{path} line {number}: identity must be a number, found {value!r}")
        identities[name] = value
    return identities


def _first_existing(root: Path, candidates: tuple[str, ...]) -> Path | None:
    return next((root / c for c in candidates if (root / c).exists()), None)


def _row(path: Path, gender: str, subject: str, split: str | None) -> dict:
    return {
        "path": str(path.resolve()),
        "age": math.nan,
        "age_group": None,
        "gender": gender,
        "subject": subject,
        "source": SOURCE,
        "age_exact": False,
        "split": split,
    }


def _result(rows: list[dict], dropped: list[tuple[str, str]], notes: dict) -> ReadResult:
    return ReadResult(
        manifest=pd.DataFrame(rows, columns=COLUMNS),
        dropped=pd.DataFrame(dropped, columns=list(DROPPED_COLUMNS)),
        notes=notes,
    )
