"""The manifest: one row per face image, the only thing the rest of the kit knows of a dataset.

Columns every reader fills (DESIGN.md, "Readers"):

- ``path``      absolute path of the image file (str)
- ``age``       age in years (float). Exact where the dataset gives it; for Adience's ranges the
                midpoint of the range, with ``age_exact`` False. NaN when unknown.
- ``age_group`` the dataset's own group label where it has one (Adience: ``"(25, 32)"``), else None
- ``gender``    ``"male"``, ``"female"`` or None (unknown)
- ``subject``   identity of the person or photographer account (str); splits keep it on one side
- ``source``    dataset name (``"utkface"``, ``"adience"``, ...)

Readers may add more (``age_exact``, ``race``, ``fold``, ``face_id``, ``split``, ``face_score``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

MANIFEST_COLUMNS = ("path", "age", "age_group", "gender", "subject", "source")
GENDERS = ("male", "female")
# Class index of each gender in every model and pipeline: alphabetical, the order Keras'
# flow_from_directory gives paper 003's Female/Male folders. 0 = female, 1 = male.
GENDER_CLASSES = ("female", "male")
DROPPED_COLUMNS = ("item", "reason")


@dataclass
class ReadResult:
    """What a reader returns: the kept rows, and every dropped row with its reason.

    ``policy_reasons`` names the drop reasons that are a selection policy applied to valid input
    (IMDB-WIKI's "no face detected", a face-score threshold...): they are counted like every drop,
    but an audit does not call those files bad.
    """

    manifest: pd.DataFrame
    dropped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(DROPPED_COLUMNS)))
    notes: dict = field(default_factory=dict)
    policy_reasons: frozenset = frozenset()

    def dropped_counts(self) -> dict[str, int]:
        """Reason -> number of dropped rows."""
        if self.dropped.empty:
            return {}
        return {str(k): int(v) for k, v in self.dropped["reason"].value_counts().sort_index().items()}


def validate_manifest(manifest: pd.DataFrame) -> pd.DataFrame:
    """Raise ValueError naming the missing columns or bad gender values; return the manifest."""
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise ValueError(f"manifest lacks columns {missing}; has {list(manifest.columns)}")
    bad = set(manifest["gender"].dropna().unique()) - set(GENDERS)
    if bad:
        raise ValueError(f"manifest gender must be one of {GENDERS} or None, found {sorted(bad)}")
    return manifest


def present_mask(manifest: pd.DataFrame) -> pd.Series:
    """Rows whose image file is on disk (the ``image_found`` column where a reader sets it)."""
    if "image_found" in manifest:
        return manifest["image_found"].astype(bool)
    return manifest["path"].map(lambda p: Path(p).is_file()).astype(bool)
