"""Splits that keep subjects, byte copies, near-duplicate photos and pixel copies on one side.

- ``adience_folds``: Adience's five official subject-exclusive folds (paper 000 sec. VI, paper 002).
- ``stratified_holdout``: a seeded stratified train/test split (paper 003's 70:30), group-aware.
- ``leave_one_subject_out``: FG-NET's protocol (paper 004 sec. 5.1).
- The committed UTKFace split ``data_manifests/utkface/split.csv`` (file -> train/val/test/excluded,
  and a ``reason`` for each excluded face), made once by ``make_utkface_split`` (``agegender data
  make-split utkface``) and joined by ``load_committed_split`` so every user tests on the same faces.
  Its version 2 keeps version 1's train and val faces and excludes the test faces that are pixel
  copies of a training or validation face (``pixel_copies.py``): an excluded face is in no part.
- ``split_manifest``: a preset's ``split`` setting (committed or holdout) -> train/val/test, and
  ``limit_parts`` for runs capped at ``max_train_images``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from agegender_tf.binning import LIFE_STAGES, AgeBinning
from agegender_tf.data import pixel_copies
from agegender_tf.data.hashing import add_content_hashes, hash_images, thumbnails
from agegender_tf.data.near_duplicates import (
    GROUP_COLUMN,
    NEAR_DUPLICATE_DISTANCE,
    add_near_duplicate_groups,
    cross_pairs,
)
from agegender_tf.paths import manifests_dir

# dataset -> (split file under data_manifests/<dataset>/, manifest column it is keyed by)
COMMITTED_SPLITS = {"utkface": ("split.csv", "file")}
UTKFACE_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}
UTKFACE_SEED = 42
SPLIT_NAMES = ("train", "val", "test")
EXCLUDED = "excluded"  # a committed split's rows that are in no part (with a ``reason``)
SPLIT_VALUES = (*SPLIT_NAMES, EXCLUDED)


def adience_folds(manifest: pd.DataFrame) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(train, test) per official fold k = 0..4: test is fold k, train the other four."""
    if "fold" not in manifest:
        raise ValueError("manifest has no 'fold' column; adience_folds needs the Adience reader's manifest")
    return [(manifest[manifest["fold"] != k], manifest[manifest["fold"] == k])
            for k in sorted(manifest["fold"].unique())]


def connected_groups(manifest: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Group id per row: rows sharing a value in any of ``columns`` (missing values never link)."""
    parent = list(range(len(manifest)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for column in columns:
        first_row: dict = {}
        for row, value in enumerate(manifest[column].to_numpy(dtype=object)):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            if value in first_row:
                parent[find(row)] = find(first_row[value])
            else:
                first_row[value] = row
    return np.array([find(i) for i in range(len(manifest))])


def strata(manifest: pd.DataFrame, stratify: str | Sequence[str] | None) -> pd.Series:
    """One stratum label per row joining the ``stratify`` columns (missing -> "unknown")."""
    if stratify is None:
        return pd.Series("all", index=manifest.index)
    columns = [stratify] if isinstance(stratify, str) else list(stratify)
    missing = [c for c in columns if c not in manifest]
    if missing:
        raise ValueError(f"cannot stratify by {missing}: not manifest columns")
    parts = [manifest[c].astype(object).where(manifest[c].notna(), "unknown").astype(str) for c in columns]
    return parts[0].str.cat(parts[1:], sep="|") if len(parts) > 1 else parts[0]


def _default_groups(manifest: pd.DataFrame) -> list[str]:
    return [c for c in ("subject", "content_hash", "near_duplicate_group") if c in manifest]


def stratified_holdout(
    manifest: pd.DataFrame,
    test_size: float = 0.3,
    stratify: str | Sequence[str] | None = ("age_group", "gender"),
    seed: int = 0,
    group: str | Sequence[str] | None = "auto",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded (train, test) split, stratified, never splitting a group (paper 003's 70:30).

    ``group="auto"`` links rows sharing a ``subject``, a ``content_hash`` (byte copies) or a
    ``near_duplicate_group`` (re-encoded copies, ``near_duplicates.py``);
    ``None`` treats rows independently. Whole groups are split, stratified by each group's most
    common stratum; strata with a single group are pooled together.
    """
    if manifest.empty:
        raise ValueError("cannot split an empty manifest")
    columns = _default_groups(manifest) if group == "auto" else ([] if group is None else
                                                                  [group] if isinstance(group, str) else list(group))
    group_ids = connected_groups(manifest, columns) if columns else np.arange(len(manifest))
    row_strata = strata(manifest, stratify).to_numpy()
    frame = pd.DataFrame({"group": group_ids, "stratum": row_strata})
    sizes = frame.groupby(["group", "stratum"]).size().reset_index(name="rows")
    sizes = sizes.sort_values(["group", "rows", "stratum"], ascending=[True, False, True])
    group_stratum = sizes.drop_duplicates("group").set_index("group")["stratum"]  # most common, ties by name
    # strata with a single group pool into one; a lone group left over stays in train
    group_stratum = group_stratum.where(group_stratum.map(group_stratum.value_counts()) >= 2, "(rare strata)")
    splittable = group_stratum[group_stratum.map(group_stratum.value_counts()) >= 2]
    n_strata = splittable.nunique()
    # sklearn needs at least one group per stratum on each side.
    n_test = min(max(int(round(test_size * len(group_stratum))), n_strata), len(splittable) - n_strata)
    if n_test < max(n_strata, 1):
        raise ValueError(f"too few groups to split: {len(group_stratum)} groups in {n_strata} strata")
    _, test_groups = train_test_split(splittable.index.to_numpy(), test_size=n_test,
                                      stratify=splittable.to_numpy(), random_state=seed)
    test_mask = np.isin(group_ids, test_groups)
    return manifest[~test_mask], manifest[test_mask]


def leave_one_subject_out(manifest: pd.DataFrame, subject: str = "subject"
                          ) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(subject, train, test) for each subject in sorted order: test is that subject's rows."""
    for value in sorted(manifest[subject].dropna().unique()):
        mask = (manifest[subject] == value).to_numpy()
        yield value, manifest[~mask], manifest[mask]


def check_no_leak(train: pd.DataFrame, test: pd.DataFrame,
                  by: Sequence[str] = ("subject", "content_hash")) -> dict[str, list]:
    """Values of each ``by`` column found on both sides (empty lists when clean; absent columns skipped)."""
    shared = {}
    for column in by:
        if column in train and column in test:
            both = set(train[column].dropna()) & set(test[column].dropna())
            shared[column] = sorted(both, key=str)
    return shared


def committed_split_path(dataset: str) -> Path | None:
    """``data_manifests/<dataset>/<split file>`` when the kit commits one for ``dataset``."""
    if dataset not in COMMITTED_SPLITS:
        return None
    path = manifests_dir() / dataset / COMMITTED_SPLITS[dataset][0]
    return path if path.is_file() else None


def make_utkface_split(manifest: pd.DataFrame, seed: int = UTKFACE_SEED, workers: int | None = None) -> pd.DataFrame:
    """``file, split, reason`` for UTKFace: 70/10/20 train/val/test, stratified by life stage x gender,
    byte copies (same ``content_hash``) and near-duplicates (same ``near_duplicate_group``,
    ``data/near_duplicates.py``) kept on one side (needs both columns); then each test face that is a
    pixel copy of a training or validation face (``pixel_copies.test_copies``, from the images at
    ``path``) is ``excluded``, its ``reason`` naming the copy. The pairs are in ``result.attrs["pixel_copies"]``."""
    missing = [c for c in ("content_hash", GROUP_COLUMN) if c not in manifest]
    if missing:
        raise ValueError(f"make_utkface_split needs the columns {missing}: hashing.add_content_hashes and "
                         "near_duplicates.add_near_duplicate_groups add them")
    frame = manifest.assign(life_stage=LIFE_STAGES.to_label(manifest["age"].to_numpy(dtype=float)))
    stratify, group = ("life_stage", "gender"), ("content_hash", GROUP_COLUMN)
    rest, test = stratified_holdout(frame, UTKFACE_FRACTIONS["test"], stratify, seed, group)
    val_share = UTKFACE_FRACTIONS["val"] / (1 - UTKFACE_FRACTIONS["test"])
    train, val = stratified_holdout(rest, val_share, stratify, seed, group)
    copies = pixel_copies.test_copies({"train": train, "val": val, "test": test}, key="file", workers=workers)
    parts = [pd.DataFrame({"file": part["file"], "split": name})
             for name, part in (("train", train), ("val", val), ("test", test))]
    split = pd.concat(parts).sort_values("file").reset_index(drop=True)
    reasons = dict(zip(copies["test_file"], copies.apply(pixel_copies.exclusion_reason, axis=1)))
    split["reason"] = split["file"].map(reasons).fillna("")
    split.loc[split["reason"] != "", "split"] = EXCLUDED
    split.attrs["pixel_copies"] = copies
    return split


def load_committed_split(manifest: pd.DataFrame, dataset: str, path: str | Path | None = None,
                         warn: bool = True) -> pd.DataFrame:
    """A copy of ``manifest`` with the committed ``split`` column (None where a row is not listed).

    The file is ``<key>,split`` (version 1) or ``<key>,split,reason`` (version 2: ``excluded`` rows, each
    with its reason, are in no part). Unlisted rows are counted in ``result.attrs["split_unlisted"]`` and,
    with ``warn``, reported in a warning naming the first few; excluded rows in ``attrs["split_excluded"]``.
    """
    if dataset not in COMMITTED_SPLITS:
        raise ValueError(f"no committed split for {dataset!r}; committed: {sorted(COMMITTED_SPLITS)}")
    path = Path(path) if path is not None else committed_split_path(dataset)
    if path is None or not path.is_file():
        raise FileNotFoundError(f"committed split for {dataset} not found at {path or manifests_dir() / dataset}")
    key = COMMITTED_SPLITS[dataset][1]
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(table.columns) not in ([key, "split"], [key, "split", "reason"]):
        raise ValueError(f"{path}: expected columns [{key!r}, 'split'] or [{key!r}, 'split', 'reason'], "
                         f"found {list(table.columns)}")
    unknown = sorted(set(table["split"]) - set(SPLIT_VALUES))
    if unknown:
        raise ValueError(f"{path}: unknown split names {unknown}")
    result = manifest.copy()
    result["split"] = result[key].map(dict(zip(table[key], table["split"]))).astype(object)
    unlisted = result.loc[result["split"].isna(), key].tolist()
    result.loc[result["split"].isna(), "split"] = None
    result.attrs["split_unlisted"] = len(unlisted)
    result.attrs["split_excluded"] = int((result["split"] == EXCLUDED).sum())
    if unlisted and warn:
        warnings.warn(f"{len(unlisted)} {dataset} rows are not in {path} (split None), e.g. {unlisted[:5]}",
                      stacklevel=2)
    return result



def split_manifest(manifest: pd.DataFrame, split: dict, dataset: str, binning: AgeBinning | None,
                   seed: int) -> dict[str, pd.DataFrame]:
    """train/val/test manifests by a preset's ``split`` setting.

    ``{"kind": "committed"}``: the split file under ``data_manifests/<dataset>/`` (same test faces for
    every user). ``{"kind": "holdout", "test_size": 0.3, "val_size": 0.1}``: a seeded
    ``stratified_holdout`` (paper 003's 70:30) stratified by gender x ``binning`` class, duplicate
    copies and near-duplicates kept on one side (and subjects, where the dataset has them), then
    ``val_size`` of the training part for validation, split the same way; then the test faces that are
    pixel copies of a training or validation face are dropped (``exclude_pixel_copies``), as the
    committed split excludes them.
    """
    kind = split.get("kind", "committed")
    if kind == "committed":
        joined = load_committed_split(manifest, dataset)
        return {name: joined[joined["split"] == name].reset_index(drop=True) for name in SPLIT_NAMES}
    if kind != "holdout":
        raise ValueError(f"unknown split kind {kind!r} (committed or holdout)")
    frame = add_near_duplicate_groups(add_content_hashes(manifest), key="path")
    frame["stratum"] = frame["gender"].astype(str)
    if binning is not None:
        classes = np.asarray(binning.to_class(frame["age"].to_numpy(float)))
        frame["stratum"] += "_" + pd.Series(classes, index=frame.index).astype(str)
    train, test = stratified_holdout(frame, test_size=float(split.get("test_size", 0.3)), stratify="stratum", seed=seed)
    train, val = stratified_holdout(train, test_size=float(split.get("val_size", 0.1)), stratify="stratum", seed=seed)
    parts = {name: part.drop(columns="stratum").reset_index(drop=True)
             for name, part in zip(SPLIT_NAMES, (train, val, test))}
    return exclude_pixel_copies(parts)


def exclude_pixel_copies(parts: dict[str, pd.DataFrame], workers: int | None = None) -> dict[str, pd.DataFrame]:
    """``parts`` without the test faces that are pixel copies of a training or validation face; the pairs
    dropped are in ``result["test"].attrs["pixel_copies"]``."""
    copies = pixel_copies.test_copies(parts, key="path", workers=workers)
    test = parts["test"][~parts["test"]["path"].astype(str).isin(set(copies["test_file"]))].reset_index(drop=True)
    test.attrs["pixel_copies"] = copies
    return {**parts, "test": test}


def limit_parts(parts: dict[str, pd.DataFrame], max_train: int | None, seed: int) -> dict[str, pd.DataFrame]:
    """Seeded random subsets: ``max_train`` training faces, a quarter of that for validation (at least
    16) and half of it for test (at least 32); ``max_train`` None or 0 keeps everything."""
    if not max_train:
        return parts
    caps = {"train": int(max_train), "val": max(int(max_train) // 4, 16), "test": max(int(max_train) // 2, 32)}
    return {name: frame.sample(n=min(len(frame), caps[name]), random_state=seed).reset_index(drop=True)
            for name, frame in parts.items()}


# Boundaries where pixel copies are counted but do not fail the check: validation faces that copy a training
# face make validation optimistic, not the test score, and moving them would change every trained run.
PIXEL_COPIES_ALLOWED = ("train/val",)


def leak_check(parts: dict[str, pd.DataFrame], workers: int | None = None) -> dict:
    """Check that no subject, byte copy, near-duplicate photo or pixel copy spans two parts of a split.

    Every pair of parts (train/val, train/test, val/test) is checked on the images themselves:
    shared ``subject`` values, shared content hashes (SHA-1 of the file), faces within
    ``NEAR_DUPLICATE_DISTANCE`` bits of average hash and faces whose 32x32 grey thumbnails differ by
    less than ``PIXEL_COPY_MAD`` (mean absolute difference, ``pixel_copies.py``). Returns ``{"ok",
    "max_distance", "max_mad", "boundaries": {"train/test": {"subject": n, "content_hash": n,
    "near_duplicate": n, "pixel_copy": n, "examples": [...], "pixel_examples": [...]}}}`` where each count
    is the number of faces of the second part that have a partner in the first. Pixel copies across
    ``PIXEL_COPIES_ALLOWED`` (train/val) are counted but do not make ``ok`` False.
    """
    hashed = {name: add_content_hashes(frame, workers) for name, frame in parts.items() if not frame.empty}
    names = [name for name in SPLIT_NAMES if name in hashed]
    perceptual = {name: hash_images(hashed[name]["path"], workers) for name in names}
    thumbs = {name: thumbnails(hashed[name]["path"], workers) for name in names}
    boundaries = {}
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            a, b = hashed[first], hashed[second]
            shared = check_no_leak(a, b, by=("subject", "content_hash"))
            counts = {column: int(b[column].isin(values).sum()) if values else 0 for column, values in shared.items()}
            near = cross_pairs(perceptual[second], perceptual[first])
            counts["near_duplicate"] = int(len(np.unique(near[:, 0])))
            counts["examples"] = [[Path(b["path"].iloc[j]).name, Path(a["path"].iloc[k]).name, int(d)]
                                  for j, k, d in near[:5]]
            copies = pixel_copies.nearest(pixel_copies.cross_copies(thumbs[second], thumbs[first]))
            counts["pixel_copy"] = int(len(copies))
            counts["pixel_examples"] = [[Path(b["path"].iloc[j]).name, Path(a["path"].iloc[k]).name, round(float(d), 2)]
                                        for j, k, d in zip(copies["i"][:5], copies["j"][:5], copies["mad"][:5])]
            boundaries[f"{first}/{second}"] = counts
    ok = not any(v for boundary, counts in boundaries.items() for k, v in counts.items()
                 if k not in ("examples", "pixel_examples")
                 and not (k == "pixel_copy" and boundary in PIXEL_COPIES_ALLOWED))
    return {"ok": ok, "max_distance": NEAR_DUPLICATE_DISTANCE, "max_mad": pixel_copies.PIXEL_COPY_MAD,
            "boundaries": boundaries}
