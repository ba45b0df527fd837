"""Pixel copies: the same photo that the average hash does not see (re-encoded, recoloured, re-cropped, rotated).

The 16x16 average hash (``near_duplicates.py``) keeps one bit per pixel, above or below the mean: a
recoloured or slightly re-cropped copy flips many bits and escapes it. This module compares the photos
themselves: 32x32 grey thumbnails (``hashing.thumbnail``: box-resized, 1,024 uint8 values), and calls
two photos *pixel copies* when their mean absolute difference (MAD) is under ``PIXEL_COPY_MAD`` of 255.

The threshold was set by eye on UTKFace's committed split (``data_manifests/utkface/README.md``): an
earlier look at the nearest training face of each test face found the same photo under 6 throughout
and for 9 of 10 pairs between 6.8 and 10.2; under 10 there are 23 test faces with a training copy and
3 with a validation copy, all 26 the same photo side by side. The average hash finds 4 of them.

Comparing every test face with every training face is 4,748 x 16,579 pairs of 1,024 values on UTKFace.
``cross_copies`` does it exactly but in stages, with integer sums: the sum of absolute differences of
block sums (4x4 blocks of 8x8 pixels, then 8x8, 16x16) is never above the pixels' own, so a pair whose
coarse sum already reaches the threshold is dropped before the finer one is computed. Only the first,
coarsest stage is dense (16 values per face); the rest run on the pairs left.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from agegender_tf.data.hashing import THUMBNAIL_SIZE, thumbnails
from agegender_tf.paths import manifests_dir

PIXEL_COPY_MAD = 10.0  # of 255, mean absolute difference of the 32x32 grey thumbnails; see the module docstring
PIXELS = THUMBNAIL_SIZE * THUMBNAIL_SIZE
_LEVELS = (4, 8, 16, 32)  # block grids, coarse to fine


def _limit(max_mad: float) -> int:
    """The pixel-sum bound of ``max_mad``: a pair is a copy when its sum of absolute differences is below it."""
    return int(np.ceil(max_mad * PIXELS))


def pyramid(thumbs: np.ndarray) -> dict[int, np.ndarray]:
    """Block sums of ``(n, 1024)`` uint8 thumbnails per grid size in ``_LEVELS``: ``(n, grid * grid)`` int32."""
    images = thumbs.reshape(len(thumbs), THUMBNAIL_SIZE, THUMBNAIL_SIZE).astype(np.int32)
    levels = {}
    for grid in _LEVELS:
        block = THUMBNAIL_SIZE // grid
        levels[grid] = images.reshape(len(images), grid, block, grid, block).sum(axis=(2, 4)).reshape(len(images), -1)
    return levels


def _dense_candidates(first: np.ndarray, second_by_dim: np.ndarray, limit: int, upper: bool,
                      offset: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of ``first`` ([m, d]) x ``second_by_dim`` ([d, n]) pairs whose L1 distance is under ``limit``;
    with ``upper`` (``second_by_dim`` starting at ``first``'s own first row), only ``cols > rows``: pairs within
    one set, each once. Rows come back counted from ``offset``."""
    total = np.zeros((len(first), second_by_dim.shape[1]), dtype=np.int32)
    scratch = np.empty_like(total)
    for dim in range(first.shape[1]):
        np.subtract(first[:, dim, None], second_by_dim[dim][None, :], out=scratch)
        np.abs(scratch, out=scratch)
        total += scratch
    rows, cols = np.nonzero(total < limit)
    if upper:
        keep = cols > rows
        rows, cols = rows[keep], cols[keep]
    return rows + offset, cols


def _refine(first: dict, second: dict, rows: np.ndarray, cols: np.ndarray, limit: int,
            chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate pairs that stay under ``limit`` at every finer level, with their pixel sums."""
    for grid in _LEVELS[1:]:
        sums = np.empty(len(rows), dtype=np.int64)
        for start in range(0, len(rows), chunk):
            a = first[grid][rows[start:start + chunk]]
            b = second[grid][cols[start:start + chunk]]
            sums[start:start + chunk] = np.abs(a - b).sum(axis=1)
        keep = sums < limit
        rows, cols, sums = rows[keep], cols[keep], sums[keep]
    return rows, cols, sums


def _pairs(first: np.ndarray, second: np.ndarray | None, max_mad: float, chunk: int) -> np.ndarray:
    limit = _limit(max_mad)
    within = second is None
    a = pyramid(first)
    b = a if within else pyramid(second)
    coarse = np.ascontiguousarray(b[_LEVELS[0]].T)
    found = []
    for start in range(0, len(first), chunk):
        block = a[_LEVELS[0]][start:start + chunk]
        rows, cols = _dense_candidates(block, coarse[:, start:] if within else coarse, limit, within, start)
        if within:
            cols = cols + start
        rows, cols, sums = _refine(a, b, rows, cols, limit)
        found.append(np.stack([rows, cols, sums], axis=1))
    table = np.concatenate(found) if found else np.zeros((0, 3), dtype=np.int64)
    return table.astype(np.int64)


def cross_copies(first: np.ndarray, second: np.ndarray, max_mad: float = PIXEL_COPY_MAD,
                 chunk: int = 256) -> pd.DataFrame:
    """``i, j, mad``: thumbnails ``first[i]`` and ``second[j]`` whose mean absolute difference is under ``max_mad``."""
    table = _pairs(first, second, max_mad, chunk)
    return pd.DataFrame({"i": table[:, 0], "j": table[:, 1], "mad": table[:, 2] / PIXELS})


def close_copies(thumbs: np.ndarray, max_mad: float = PIXEL_COPY_MAD, chunk: int = 256) -> pd.DataFrame:
    """``i, j, mad`` with ``i < j``: the pairs of ``thumbs`` whose mean absolute difference is under ``max_mad``."""
    table = _pairs(thumbs, None, max_mad, chunk)
    return pd.DataFrame({"i": table[:, 0], "j": table[:, 1], "mad": table[:, 2] / PIXELS})


def nearest(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per ``i`` of a ``cross_copies`` table: its closest ``j`` (ties: the lower ``j``)."""
    ordered = pairs.sort_values(["i", "mad", "j"], kind="stable")
    return ordered.drop_duplicates("i").reset_index(drop=True)


def pixel_leaks(train: pd.DataFrame, test: pd.DataFrame, max_mad: float = PIXEL_COPY_MAD,
                workers: int | None = None) -> pd.DataFrame:
    """``test_path, train_path, mad`` of each test face under ``max_mad`` from a training face (its nearest)."""
    pairs = nearest(cross_copies(thumbnails(test["path"], workers), thumbnails(train["path"], workers), max_mad))
    return pd.DataFrame({"test_path": test["path"].to_numpy()[pairs["i"].to_numpy()],
                         "train_path": train["path"].to_numpy()[pairs["j"].to_numpy()],
                         "mad": pairs["mad"].to_numpy()})


PAIRS_COLUMNS = ("test_file", "train_file", "train_split", "mad", "test_age", "test_gender", "train_age",
                 "train_gender")


def test_copies(parts: dict[str, pd.DataFrame], key: str = "file", max_mad: float = PIXEL_COPY_MAD,
                workers: int | None = None) -> pd.DataFrame:
    """Each test face that is a pixel copy of a training or validation face, with its nearest such face:
    ``PAIRS_COLUMNS`` (``train_split`` says which part the partner is in; faces named by ``key``)."""
    test = parts.get("test")
    found = []
    if test is not None and not test.empty:
        test_thumbs = thumbnails(test["path"], workers)
        for name in ("train", "val"):
            other = parts.get(name)
            if other is None or other.empty:
                continue
            pairs = cross_copies(test_thumbs, thumbnails(other["path"], workers), max_mad)
            a, b = test.iloc[pairs["i"].to_numpy()], other.iloc[pairs["j"].to_numpy()]
            found.append(pd.DataFrame({
                "test_file": a[key].astype(str).to_numpy(), "train_file": b[key].astype(str).to_numpy(),
                "train_split": name, "mad": pairs["mad"].to_numpy(),
                "test_age": a["age"].to_numpy() if "age" in a else None,
                "test_gender": a["gender"].to_numpy() if "gender" in a else None,
                "train_age": b["age"].to_numpy() if "age" in b else None,
                "train_gender": b["gender"].to_numpy() if "gender" in b else None}))
    if not found:
        return pd.DataFrame(columns=list(PAIRS_COLUMNS))
    table = pd.concat(found, ignore_index=True).sort_values(["test_file", "mad", "train_split", "train_file"])
    return table.drop_duplicates("test_file").reset_index(drop=True)[list(PAIRS_COLUMNS)]


def exclusion_reason(row) -> str:
    """The ``reason`` a split file gives a test face excluded as a pixel copy."""
    return f"pixel copy of {row['train_split']} face {row['train_file']} (mad {float(row['mad']):.1f})"


def committed_pairs_path(dataset: str) -> Path:
    """``data_manifests/<dataset>/pixel_copies.csv``: the test faces a committed split excludes as pixel copies."""
    return manifests_dir() / dataset / "pixel_copies.csv"


def read_pairs(path) -> pd.DataFrame:
    """A committed ``pixel_copies.csv`` (``PAIRS_COLUMNS``); a malformed file is named."""
    table = pd.read_csv(path, dtype={"test_file": str, "train_file": str, "train_split": str})
    if list(table.columns) != list(PAIRS_COLUMNS):
        raise ValueError(f"{path}: expected columns {list(PAIRS_COLUMNS)}, found {list(table.columns)}")
    return table
