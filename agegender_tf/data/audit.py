"""Audit a dataset: decode every image once, check every name, find duplicates and split leaks.

Nothing is skipped silently. A *bad* file (the audit fails)
is one that cannot be decoded, or that the reader dropped for its name (e.g. a UTKFace file
without ``age_gender`` labels), or a malformed metadata line. Usable oddities (irregular names
the reader could still parse, grayscale/CMYK images, duplicate copies with conflicting labels)
are reported as warnings. Images a manifest references but that are not on disk (Adience ships
in parts) are counted, not failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from agegender_tf.data import near_duplicates, pixel_copies
from agegender_tf.data.hashing import add_content_hashes, remember_average_hash, thumbnails
from agegender_tf.data.images import ImageCheck, check_image, pool_map
from agegender_tf.data.manifest import ReadResult, present_mask
from agegender_tf.data.readers import read_dataset
from agegender_tf.data.splits import PIXEL_COPIES_ALLOWED, check_no_leak, committed_split_path, load_committed_split

LABEL_COLUMNS = ("age", "age_group", "gender")


def _check_and_hash(path: str | Path) -> ImageCheck:
    return check_image(path, on_decoded=lambda image: remember_average_hash(path, image))


def decode_all(paths: Iterable[str | Path], workers: int | None = None) -> list[ImageCheck]:
    """Fully decode every image (thread pool of ``workers``, default one per core), and take its
    near-duplicate hash and pixel thumbnail from the same decode."""
    return pool_map(_check_and_hash, paths, workers)


def duplicate_groups(manifest: pd.DataFrame) -> list[pd.DataFrame]:
    """Rows sharing a ``content_hash`` (byte-identical files), one frame per group of 2+ files."""
    hashed = manifest[manifest["content_hash"].notna()]
    repeated = hashed[hashed.duplicated("content_hash", keep=False)]
    return [group for _, group in repeated.groupby("content_hash", sort=True)]


def _labels_disagree(group: pd.DataFrame) -> bool:
    columns = [c for c in LABEL_COLUMNS if c in group]
    return any(group[c].astype(object).where(group[c].notna(), None).nunique(dropna=False) > 1 for c in columns)


def duplicate_report(manifest: pd.DataFrame) -> dict:
    """``{groups, files, conflicting_groups, conflicts}``: duplicate groups, the files in them, and
    the groups whose copies disagree on age, age group or gender (``conflicts`` lists their files)."""
    groups = duplicate_groups(manifest)
    conflicting = [g for g in groups if _labels_disagree(g)]
    return {
        "groups": len(groups),
        "files": int(sum(len(g) for g in groups)),
        "conflicting_groups": len(conflicting),
        "conflicts": [
            [{"path": row.path, **{c: _plain(getattr(row, c)) for c in LABEL_COLUMNS if c in g}}
             for row in g.itertuples()]
            for g in conflicting
        ],
    }


def _plain(value):
    return None if pd.isna(value) else value


@dataclass
class AuditReport:
    """What ``audit`` found; ``ok`` is False when any file is bad."""

    dataset: str
    rows: int
    images_checked: int
    images_missing: int
    bad: list[tuple[str, str]] = field(default_factory=list)  # (file or line, problem)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    image_info: dict[str, int] = field(default_factory=dict)  # e.g. "grayscale" -> count
    duplicates: dict = field(default_factory=dict)
    leaks: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.bad

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset, "ok": self.ok, "rows": self.rows, "images_checked": self.images_checked,
            "images_missing": self.images_missing, "bad": [{"item": i, "problem": p} for i, p in self.bad],
            "warnings": [{"item": i, "problem": p} for i, p in self.warnings], "image_info": self.image_info,
            "duplicates": self.duplicates, "leaks": self.leaks,
        }


def bad_dropped_items(result: ReadResult) -> list[tuple[str, str]]:
    """Dropped rows that are bad input: files dropped for their name, and malformed metadata lines.

    Drops by the reader's selection policy (``ReadResult.policy_reasons``) are counted, not bad.
    """
    bad = []
    for item, reason in zip(result.dropped["item"], result.dropped["reason"]):
        if str(reason) in result.policy_reasons:
            continue
        if Path(str(item)).is_file() or str(reason).startswith("malformed"):
            bad.append((str(item), str(reason)))
    return bad


def audit_result(name: str, result: ReadResult, workers: int | None = None) -> AuditReport:
    """Audit a reader's result: decode every present image, hash it, check duplicates and leaks."""
    manifest = result.manifest
    present = present_mask(manifest)
    checks = decode_all(manifest.loc[present, "path"], workers)
    bad = bad_dropped_items(result) + [(c.path, c.problem) for c in checks if c.problem]
    image_info: dict[str, int] = {}
    for check in checks:
        for note in (check.info or "").split("; "):
            if note:
                image_info[note] = image_info.get(note, 0) + 1
    warnings = [(f, w) for f, w in (result.notes.get("name_warnings") or {}).items()]
    decodable = manifest.loc[present].loc[[c.problem is None for c in checks]]
    hashed = add_content_hashes(decodable, workers)
    duplicates = duplicate_report(hashed)
    pairs = near_duplicates.pairs_table(hashed, key="path", workers=workers)
    hashed = near_duplicates.add_groups(hashed, pairs, key="path")
    groups = hashed[near_duplicates.GROUP_COLUMN].dropna()
    duplicates["near_duplicates"] = {"max_distance": near_duplicates.NEAR_DUPLICATE_DISTANCE,
                                     "pairs": int(len(pairs)), "groups": int(groups.nunique()),
                                     "files": int(len(groups))}
    copies = pixel_copies.close_copies(thumbnails(hashed["path"], workers))
    paths = hashed["path"].astype(str).to_numpy()
    copy_pairs = pd.DataFrame({"first": paths[copies["i"].to_numpy()], "second": paths[copies["j"].to_numpy()],
                               "mad": copies["mad"].to_numpy()})
    duplicates["pixel_copies"] = {"max_mad": pixel_copies.PIXEL_COPY_MAD, "pairs": int(len(copy_pairs)),
                                  "files": int(len(set(copy_pairs["first"]) | set(copy_pairs["second"])))}
    for group in duplicates["conflicts"]:
        warnings.append((group[0]["path"], f"{len(group)} identical copies disagree on labels: "
                         + ", ".join(Path(r["path"]).name for r in group)))
    leaks = split_leaks(name, hashed, copy_pairs)
    for boundary, pairs in leaks.pop("allowed_pixel_copies", {}).items():
        warnings.extend((a, f"pixel copy of {b} (mad {mad:.1f}) across {boundary} (counted, not failed: "
                         "it makes validation optimistic, not the test score)") for a, b, mad in pairs)
    for boundary, shared in leaks.items():
        bad.extend((str(value), f"{column} on both sides of {boundary}")
                   for column, values in shared.items() for value in values)
    return AuditReport(
        dataset=name, rows=len(manifest), images_checked=len(checks), images_missing=int((~present).sum()),
        bad=bad, warnings=warnings, image_info=dict(sorted(image_info.items())), duplicates=duplicates,
        leaks=leaks,
    )


def split_leaks(name: str, manifest: pd.DataFrame, copies: pd.DataFrame | None = None) -> dict:
    """Subjects or duplicate copies shared across the dataset's official/committed split boundary.

    Adience: across the five folds. UTKFace: between train/val/test of the committed split, where the
    pixel copies of ``copies`` (``first, second, mad`` by path) count too: those across train / val are
    under ``"allowed_pixel_copies"`` (``splits.PIXEL_COPIES_ALLOWED``), the rest under ``"pixel_copy"``.
    Other datasets: ``{}`` (no split to check). Leaks are bad: ``audit`` reports them as failures.
    """
    if "fold" in manifest:
        parts = {f"fold {k}": manifest[manifest["fold"] == k] for k in sorted(manifest["fold"].unique())}
    elif committed_split_path(name) is not None and not manifest.empty:
        joined = load_committed_split(manifest, name, warn=False)
        parts = {s: joined[joined["split"] == s] for s in ("train", "val", "test")}
        side = dict(zip(joined["path"].astype(str), joined["split"]))
    else:
        return {}
    if copies is None or "fold" in manifest:  # pixel copies across Adience's official folds are its own
        copies, side = pd.DataFrame(columns=["first", "second", "mad"]), {}
    leaks = {}
    keys = list(parts)
    for i, first in enumerate(keys):
        for second in keys[i + 1:]:
            shared = check_no_leak(parts[first], parts[second],
                                   by=("subject", "content_hash", near_duplicates.GROUP_COLUMN))
            crossing = [(a, b, float(mad)) for a, b, mad in zip(copies["first"], copies["second"], copies["mad"])
                        if {side.get(a), side.get(b)} == {first, second}]
            if crossing and f"{first}/{second}" in PIXEL_COPIES_ALLOWED:
                leaks.setdefault("allowed_pixel_copies", {})[f"{first} / {second}"] = crossing
            elif crossing:
                shared["pixel_copy"] = sorted(a if side.get(a) == second else b for a, b, _ in crossing)
            if any(shared.values()):
                leaks[f"{first} / {second}"] = shared
    return leaks


def audit(name: str, root: str | Path, workers: int | None = None) -> AuditReport:
    """Read dataset ``name`` at ``root`` and audit it (see ``audit_result``)."""
    return audit_result(name, read_dataset(name, root), workers)
