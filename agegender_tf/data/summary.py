"""``summarize``: the counts of a dataset as its reader sees it (``agegender data summarize --json``).

JSON fields relied on by others: ``rows`` (manifest rows kept; for Adience the fold rows kept),
``dropped`` (reason -> count), ``gender`` (``{"male", "female", "unknown"}``), ``age_groups``
(the dataset's own groups, or decades of ``age``), ``subjects`` (distinct people; null with a
``subjects_note`` for a dataset without subject ids, e.g. UTKFace), ``images_found`` /
``images_missing`` and ``duplicates`` (``{groups, files, conflicting_groups}``, by content hash of
the images on disk).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from agegender_tf.binning import ADIENCE8, DECADES
from agegender_tf.data.audit import duplicate_report
from agegender_tf.data.hashing import add_content_hashes
from agegender_tf.data.info import has_subject_ids
from agegender_tf.data.manifest import ReadResult, present_mask
from agegender_tf.data.readers import read_dataset
from agegender_tf.paths import jsonable


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().sort_index().items()}


def _in_order(counts: dict[str, int], labels: tuple[str, ...]) -> dict[str, int]:
    """``counts`` in the binning's order when every key is one of its labels."""
    if not set(counts) <= set(labels):
        return counts
    return {label: counts[label] for label in labels if label in counts}


def summarize_result(name: str, result: ReadResult, workers: int | None = None) -> dict:
    """The summary of a reader's result (hashes every image on disk for the duplicate count)."""
    manifest = result.manifest
    present = present_mask(manifest)
    ages = manifest["age"].astype(float)
    if manifest["age_group"].notna().any():
        age_groups = _in_order(_counts(manifest["age_group"].dropna()), ADIENCE8.labels)
        age_group_source = "dataset groups"
    else:
        decades = pd.Series(DECADES.to_label(ages.dropna().to_numpy()), dtype=object)
        age_groups = _in_order(_counts(decades), DECADES.labels)
        age_group_source = "decades of age"
    summary = {
        "dataset": name,
        "rows": len(manifest),
        "dropped": result.dropped_counts(),
        "dropped_total": len(result.dropped),
        "gender": {"male": int((manifest["gender"] == "male").sum()),
                   "female": int((manifest["gender"] == "female").sum()),
                   "unknown": int(manifest["gender"].isna().sum())},
        "age": {"known": int(ages.notna().sum()), "unknown": int(ages.isna().sum()),
                "min": _plain(ages.min()), "max": _plain(ages.max()), "mean": _plain(round(ages.mean(), 2))},
        "age_groups": age_groups,
        "age_groups_from": age_group_source,
        **_subjects(name, result),
        "images_found": int(present.sum()),
        "images_missing": int((~present).sum()),
        "duplicates": {k: v for k, v in duplicate_report(add_content_hashes(manifest, workers)).items()
                       if k != "conflicts"},
    }
    for column in ("fold", "split"):
        if column in manifest:
            summary[f"{column}s"] = _counts(manifest[column].dropna())
    notes = {k: v for k, v in result.notes.items() if k != "name_warnings"}
    summary["notes"] = jsonable(notes)
    return summary


def _subjects(name: str, result: ReadResult) -> dict:
    """``subjects``: distinct people, or None plus a ``subjects_note`` when the dataset names nobody."""
    if has_subject_ids(name, result.notes):
        return {"subjects": int(result.manifest["subject"].nunique())}
    return {"subjects": None,
            "subjects_note": f"{name} has no subject ids (each file is its own subject), so a person with "
                             "several photos can be on both sides of a split"}


def _plain(value):
    return None if pd.isna(value) else float(value)


def summarize(name: str, root: str | Path, workers: int | None = None) -> dict:
    """Read dataset ``name`` at ``root`` and summarize it (see module docstring for the fields)."""
    return summarize_result(name, read_dataset(name, root), workers)
