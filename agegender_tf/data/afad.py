"""AFAD reader (Asian Face Age Dataset, Niu et al., CVPR 2016; used by paper 004 sec. 5.2).

Published layout of AFAD-Full and AFAD-Lite, labels in the folder names::

    <root>/<age>/<111|112>/<image>.jpg        111 = male, 112 = female

The dataset has no identities, so ``subject`` is the file stem (one photo, one subject).
Images in a folder that is not a number, under a gender code other than 111/112, directly
under an age folder, or with a non-JPEG name are dropped with their reason.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from agegender_tf.data.manifest import DROPPED_COLUMNS, MANIFEST_COLUMNS, ReadResult

SOURCE = "afad"
GENDER_CODES = {"111": "male", "112": "female"}
IMAGE_SUFFIXES = (".jpg", ".jpeg")
RELEASE_FOLDERS = ("AFAD-Full", "AFAD-Lite")  # root may be the folder holding one of these
LAYOUT = "<root>/<age>/<111|112>/<image>.jpg (111 = male, 112 = female)"


def read(root: str | Path) -> ReadResult:
    """Read AFAD-Full or AFAD-Lite unpacked at ``root`` into a manifest."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"AFAD root {root} does not exist; expected layout {LAYOUT}")
    root = next((root / name for name in RELEASE_FOLDERS if (root / name).is_dir()), root)
    rows, dropped, ignored = [], [], []
    for age_dir in sorted(root.iterdir()):
        if not age_dir.is_dir():
            ignored.append(age_dir.name)  # README, file lists shipped beside the folders
            continue
        age = int(age_dir.name) if age_dir.name.isdigit() else None
        for entry in sorted(age_dir.iterdir()):
            files = sorted(p for p in entry.rglob("*") if p.is_file()) if entry.is_dir() else [entry]
            for path in files:
                reason = _drop_reason(age, age_dir.name, entry, path)
                if reason:
                    dropped.append((str(path.resolve()), reason))
                    continue
                rows.append(
                    {
                        "path": str(path.resolve()),
                        "age": float(age),
                        "age_group": None,
                        "gender": GENDER_CODES[entry.name],
                        "subject": path.stem,
                        "source": SOURCE,
                        "age_exact": True,
                    }
                )
    if not rows and not dropped:
        raise ValueError(f"AFAD root {root} holds no images; expected layout {LAYOUT}")
    manifest = pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, "age_exact"])
    return ReadResult(
        manifest=manifest,
        dropped=pd.DataFrame(dropped, columns=list(DROPPED_COLUMNS)),
        notes={"root": str(root), "ignored_root_files": ignored},
    )


def _drop_reason(age: int | None, age_name: str, entry: Path, path: Path) -> str | None:
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return "not a JPEG file"
    if age is None:
        return f"age folder {age_name!r} is not a number"
    if not entry.is_dir():
        return "image outside a 111/112 gender folder"
    if entry.name not in GENDER_CODES:
        return f"gender folder {entry.name!r} is not 111 (male) or 112 (female)"
    if path.parent != entry:
        return "image nested below the gender folder"
    return None
