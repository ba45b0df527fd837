"""Near-duplicate photos: the same picture re-encoded or re-cropped under another name.

UTKFace holds byte-identical copies (grouped by ``content_hash``) and, beyond them, the same photo
saved again with other JPEG settings, another crop or a colour change. Those escape a content hash
but not a perceptual one. This module compares 16x16 *average hashes* (``hashing.average_hash``: the
image in grey, box-resized to 16x16 pixels, each bit = pixel above the mean: 256 bits) and calls two
photos near-duplicates when their hashes differ in at most ``NEAR_DUPLICATE_DISTANCE`` bits.

The threshold was set by eye on UTKFace (``data_manifests/utkface/README.md``): of 16 random pairs
per distance band, 14 at 5-7 bits, 10 at 8-9 and 6 at 10 are the same photo; at 11-12 most are
different people with similar lighting. A false pair costs nothing (two unrelated photos stay on one
side of a split) while a missed pair leaks a test face into training, so the threshold is generous:
10 bits, where groups stay small (at most 6 files on UTKFace; at 12 bits chains reach 19).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from agegender_tf.data.hashing import hash_images
from agegender_tf.paths import manifests_dir

NEAR_DUPLICATE_DISTANCE = 10  # bits of 256; see the module docstring
GROUP_COLUMN = "near_duplicate_group"


def _distances(block: np.ndarray, others_by_word: np.ndarray) -> np.ndarray:
    """Hamming distances [len(block), n] between ``block`` ([m, words]) and ``others_by_word`` ([words, n]),
    one 64-bit word at a time: 2-D temporaries of m x n, no reduction over a length-4 axis."""
    total = np.zeros((len(block), others_by_word.shape[1]), dtype=np.uint16)
    for word in range(block.shape[1]):
        total += np.bitwise_count(block[:, word, None] ^ others_by_word[word][None, :])
    return total


def close_pairs(hashes: np.ndarray, max_distance: int = NEAR_DUPLICATE_DISTANCE,
                chunk: int = 512) -> np.ndarray:
    """Rows ``(i, j, distance)`` with ``i < j`` of all hash pairs within ``max_distance`` bits."""
    by_word = np.ascontiguousarray(hashes.T)
    found = []
    for start in range(0, len(hashes), chunk):
        # Only the columns from ``start`` on: pairs with j < start were found from j's block.
        distances = _distances(hashes[start:start + chunk], by_word[:, start:])
        rows, cols = np.nonzero(distances <= max_distance)
        keep = cols > rows
        rows, cols = rows[keep], cols[keep]
        found.append(np.stack([rows + start, cols + start, distances[rows, cols]], axis=1))
    return np.concatenate(found).astype(np.int64) if found else np.zeros((0, 3), dtype=np.int64)


def cross_pairs(first: np.ndarray, second: np.ndarray, max_distance: int = NEAR_DUPLICATE_DISTANCE,
                chunk: int = 512) -> np.ndarray:
    """Rows ``(i, j, distance)``: ``first[i]`` and ``second[j]`` within ``max_distance`` bits."""
    by_word = np.ascontiguousarray(second.T)
    found = []
    for start in range(0, len(first), chunk):
        distances = _distances(first[start:start + chunk], by_word)
        rows, cols = np.nonzero(distances <= max_distance)
        found.append(np.stack([rows + start, cols, distances[rows, cols]], axis=1))
    return np.concatenate(found).astype(np.int64) if found else np.zeros((0, 3), dtype=np.int64)


def group_ids(names: list[str], pairs: np.ndarray) -> list[str | None]:
    """Per name, its near-duplicate group (the group's first name in sorted order), None when alone."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(names)
    if n == 0:
        return []
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    first: dict[int, str] = {}
    for name, label in zip(names, labels):
        if label not in first or name < first[label]:
            first[label] = name
    return [first[label] if sizes[label] > 1 else None for label in labels]


def pairs_table(manifest: pd.DataFrame, key: str = "file", max_distance: int = NEAR_DUPLICATE_DISTANCE,
                workers: int | None = None) -> pd.DataFrame:
    """``first, second, distance`` for every near-duplicate pair of ``manifest`` (named by ``key``)."""
    hashes = hash_images(manifest["path"], workers)
    pairs = close_pairs(hashes, max_distance)
    names = manifest[key].astype(str).to_numpy()
    table = pd.DataFrame({"first": names[pairs[:, 0]], "second": names[pairs[:, 1]], "distance": pairs[:, 2]})
    swap = table["first"] > table["second"]
    table.loc[swap, ["first", "second"]] = table.loc[swap, ["second", "first"]].to_numpy()
    return table.sort_values(["first", "second"]).reset_index(drop=True)


def add_groups(manifest: pd.DataFrame, pairs: pd.DataFrame, key: str = "file") -> pd.DataFrame:
    """A copy of ``manifest`` with ``near_duplicate_group`` from a pairs table (``first, second`` by ``key``)."""
    names = manifest[key].astype(str).tolist()
    index = {name: i for i, name in enumerate(names)}
    known = pairs[pairs["first"].isin(index) & pairs["second"].isin(index)]
    rows = np.array([[index[a], index[b]] for a, b in zip(known["first"], known["second"])],
                    dtype=np.int64).reshape(-1, 2)
    frame = manifest.copy()
    frame[GROUP_COLUMN] = pd.Series(group_ids(names, rows), index=frame.index, dtype=object)
    return frame


def add_near_duplicate_groups(manifest: pd.DataFrame, key: str = "file",
                              max_distance: int = NEAR_DUPLICATE_DISTANCE, workers: int | None = None) -> pd.DataFrame:
    """A copy of ``manifest`` with ``near_duplicate_group`` computed from the images themselves."""
    if GROUP_COLUMN in manifest:
        return manifest.copy()
    return add_groups(manifest, pairs_table(manifest, key, max_distance, workers), key)


def committed_pairs_path(dataset: str) -> Path:
    """``data_manifests/<dataset>/near_duplicates.csv``, the committed pairs table."""
    return manifests_dir() / dataset / "near_duplicates.csv"


def read_pairs(path: str | Path) -> pd.DataFrame:
    """The committed pairs table ``first, second, distance``; a malformed file is named."""
    table = pd.read_csv(path, dtype={"first": str, "second": str})
    if list(table.columns) != ["first", "second", "distance"]:
        raise ValueError(f"{path}: expected columns ['first', 'second', 'distance'], found {list(table.columns)}")
    return table


def near_leaks(train: pd.DataFrame, test: pd.DataFrame, max_distance: int = NEAR_DUPLICATE_DISTANCE,
               workers: int | None = None) -> pd.DataFrame:
    """``test_path, train_path, distance`` of each test face within ``max_distance`` bits of a training face."""
    train_hashes = hash_images(train["path"], workers)
    test_hashes = hash_images(test["path"], workers)
    pairs = cross_pairs(test_hashes, train_hashes, max_distance)
    return pd.DataFrame({"test_path": test["path"].to_numpy()[pairs[:, 0]],
                         "train_path": train["path"].to_numpy()[pairs[:, 1]], "distance": pairs[:, 2]})
