"""FG-NET Aging reader (paper 004 sec. 5.1: 1,002 images of 82 subjects, ages 0-69).

Published layout: ``FGNET/images/<SSS>A<AA>[x].JPG`` (``points/`` beside it holds landmarks),
subject ``SSS`` and age ``AA`` in the name; a trailing letter tells apart two photos of one
subject at one age (``001A43a.JPG``, ``001A43b.JPG``). Gender is not part of FG-NET.
``root`` may be the ``FGNET`` folder or its ``images`` folder. A name that does not follow the
pattern is dropped with its reason, or raises ``ValueError`` when ``strict=True``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from agegender_tf.data.manifest import DROPPED_COLUMNS, MANIFEST_COLUMNS, ReadResult

SOURCE = "fgnet"
NAME_PATTERN = re.compile(r"^(?P<subject>\d{3})A(?P<age>\d{2})(?P<copy>[a-z]?)\.jpe?g$", re.IGNORECASE)
PUBLISHED_IMAGES = 1002
PUBLISHED_SUBJECTS = 82
LAYOUT = "<root>/images/<SSS>A<AA>[a-z].JPG, e.g. images/001A02.JPG (subject 001, age 2)"


def read(root: str | Path, strict: bool = False) -> ReadResult:
    """Read FG-NET at ``root``; ``strict`` turns a badly named file into a ``ValueError``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"FG-NET root {root} does not exist; expected layout {LAYOUT}")
    images_dir = root / "images" if (root / "images").is_dir() else root
    files = sorted(p for p in images_dir.iterdir() if p.is_file())
    if not files:
        raise ValueError(f"FG-NET folder {images_dir} holds no files; expected layout {LAYOUT}")
    rows, dropped = [], []
    for path in files:
        match = NAME_PATTERN.match(path.name)
        if match is None:
            if strict:
                raise ValueError(f"{path}: name does not match FG-NET's <SSS>A<AA>[a-z].JPG pattern")
            dropped.append((str(path.resolve()), "name not <SSS>A<AA>[a-z].JPG"))
            continue
        rows.append(
            {
                "path": str(path.resolve()),
                "age": float(match["age"]),
                "age_group": None,
                "gender": None,
                "subject": match["subject"],
                "source": SOURCE,
                "age_exact": True,
            }
        )
    manifest = pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, "age_exact"])
    notes = {
        "root": str(images_dir),
        "images": len(manifest),
        "subjects": int(manifest["subject"].nunique()),
        "published_images": PUBLISHED_IMAGES,
        "published_subjects": PUBLISHED_SUBJECTS,
    }
    return ReadResult(manifest=manifest, dropped=pd.DataFrame(dropped, columns=list(DROPPED_COLUMNS)), notes=notes)
