"""Hashes of image files: the content hash (byte copies), the average hash and the pixel thumbnail
(near-duplicates and pixel copies).

- ``content_hash(path)``: SHA-1 of the file's bytes; equal hashes mean byte-identical copies.
- ``average_hash(path)``: a 16x16 *average hash* (the image in grey, box-resized to 16x16 pixels,
  each bit = pixel above the mean: 256 bits); ``near_duplicates.py`` compares them.
- ``thumbnail(path)``: the image in grey, box-resized to 32x32 pixels (1,024 uint8 values);
  ``pixel_copies.py`` compares them by mean absolute difference.

All are memoised per file and process (``FileMemo``): the audit, the split check and the leak
checks hash the same files, and each file is read once. The average hash and the thumbnail come
from one decode (``image_signature``).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from agegender_tf.data.images import pool_map
from agegender_tf.data.manifest import present_mask

HASH_SIZE = 16  # 16x16 = 256 bits
THUMBNAIL_SIZE = 32  # 32x32 grey pixels


class FileMemo:
    """Per-process results of a function of a file's bytes, keyed by the file's path, size,
    modification time and inode: a file written again is computed again. The audit, the split
    check and the leak checks hash the same files; each file is read once per process."""

    def __init__(self, function: Callable, max_entries: int = 500_000):
        functools.update_wrapper(self, function)
        self._function, self._max_entries, self._values = function, max_entries, {}

    @staticmethod
    def _key(path: str | Path) -> tuple | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return os.fspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino

    def __call__(self, path: str | Path):
        key = self._key(path)
        if key is None:
            return self._function(path)  # the function's own error for a missing file
        if key not in self._values:
            self.put(path, self._function(path), key)
        return self._values[key]

    def put(self, path: str | Path, value, key: tuple | None = None) -> None:
        """Remember ``value`` as the result for ``path`` as it is on disk now."""
        key = key or self._key(path)
        if key is not None:
            if len(self._values) >= self._max_entries:
                self._values.clear()
            self._values[key] = value

    def cache_clear(self) -> None:
        self._values.clear()


@FileMemo
def content_hash(path: str | Path) -> str:
    """SHA-1 of the file's bytes: equal hashes mean byte-identical copies."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha1").hexdigest()


def hash_all(paths: Iterable[str | Path], workers: int | None = None) -> list[str]:
    """``content_hash`` of every path (thread pool of ``workers``, default one per core)."""
    return pool_map(content_hash, paths, workers)


def add_content_hashes(manifest: pd.DataFrame, workers: int | None = None) -> pd.DataFrame:
    """A copy with ``content_hash`` for every row whose image is on disk (None elsewhere)."""
    manifest = manifest.copy()
    if "content_hash" in manifest:
        return manifest
    present = present_mask(manifest)
    hashes = pd.Series([None] * len(manifest), index=manifest.index, dtype=object)
    hashes[present] = hash_all(manifest.loc[present, "path"], workers)
    manifest["content_hash"] = hashes
    return manifest


def _grey(image):
    return image.convert("L")


def average_hash_of(image, size: int = HASH_SIZE) -> np.ndarray:
    """The ``size`` x ``size`` average hash of a decoded PIL image, packed into ``size * size / 8`` bytes."""
    from PIL import Image

    pixels = np.asarray(_grey(image).resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    return np.packbits((pixels > pixels.mean()).reshape(-1))


def thumbnail_of(image, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """The ``size`` x ``size`` grey thumbnail of a decoded PIL image (box-resized), flat uint8."""
    from PIL import Image

    return np.asarray(_grey(image).resize((size, size), Image.Resampling.BOX), dtype=np.uint8).reshape(-1)


def signature_of(image) -> tuple[np.ndarray, np.ndarray]:
    """``(average_hash_of(image), thumbnail_of(image))``: what one decode of a file gives the duplicate checks."""
    return average_hash_of(image), thumbnail_of(image)


@FileMemo
def image_signature(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The average hash and the thumbnail of the image at ``path``, from one decode (once per file and process)."""
    from PIL import Image

    with Image.open(path) as image:
        return signature_of(image)


def average_hash(path: str | Path) -> np.ndarray:
    """The ``HASH_SIZE`` x ``HASH_SIZE`` average hash of the image at ``path`` (``image_signature``)."""
    return image_signature(path)[0]


def thumbnail(path: str | Path) -> np.ndarray:
    """The ``THUMBNAIL_SIZE`` x ``THUMBNAIL_SIZE`` grey thumbnail of the image at ``path`` (``image_signature``)."""
    return image_signature(path)[1]


def remember_average_hash(path: str | Path, image) -> None:
    """Hash ``image``, the decoded file at ``path``, for later ``hash_images`` / ``thumbnails`` calls (the
    audit's one decode)."""
    image_signature.put(path, signature_of(image))


def hash_images(paths: Iterable[str | Path], workers: int | None = None) -> np.ndarray:
    """Average hashes of ``paths`` as an ``(n, 4)`` uint64 array (thread pool; PIL releases the GIL)."""
    paths = list(paths)
    if not paths:
        return np.zeros((0, HASH_SIZE * HASH_SIZE // 64), dtype=np.uint64)
    packed = pool_map(average_hash, paths, workers)
    return np.frombuffer(np.stack(packed).tobytes(), dtype=np.uint64).reshape(len(paths), -1)


def thumbnails(paths: Iterable[str | Path], workers: int | None = None) -> np.ndarray:
    """Grey thumbnails of ``paths`` as an ``(n, THUMBNAIL_SIZE ** 2)`` uint8 array (thread pool)."""
    paths = list(paths)
    if not paths:
        return np.zeros((0, THUMBNAIL_SIZE * THUMBNAIL_SIZE), dtype=np.uint8)
    return np.stack(pool_map(thumbnail, paths, workers))
