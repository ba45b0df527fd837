"""Image file checks shared by the audit and the pipelines: full decode, and a thread pool to run them.

Hashes of image files (content hash, average hash) are in ``hashing.py``.

DESIGN.md, "Known facts": PIL ``.verify()`` misses a truncated file; only a full decode
(``.load()``) catches it, so every check here decodes the whole image once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from agegender_tf.imaging import problem

_FORMAT_OF_SUFFIX = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
_MODE_INFO = {"L": "grayscale", "LA": "grayscale with alpha", "CMYK": "CMYK", "P": "palette",
              "RGBA": "RGB with alpha", "I": "32-bit grayscale", "I;16": "16-bit grayscale", "1": "1-bit"}


@dataclass(frozen=True)
class ImageCheck:
    """Outcome of fully decoding one file.

    ``problem`` is set when the file cannot be used (missing, empty, truncated, corrupt);
    ``info`` notes usable oddities a pipeline must convert (grayscale, CMYK, PNG data in a .jpg).
    """

    path: str
    problem: str | None = None
    info: str | None = None
    size: tuple[int, int] | None = None  # (width, height)

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_image(path: str | Path, on_decoded: Callable[[Image.Image], None] | None = None) -> ImageCheck:
    """Fully decode ``path`` and say what, if anything, is wrong with it. ``on_decoded`` is called with
    the decoded image (the audit hashes it there instead of decoding the file a second time)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return ImageCheck(str(path), problem=problem(path, FileNotFoundError()))
    try:
        with Image.open(path) as image:
            image.load()
            image_format, mode, size = image.format, image.mode, image.size
            if on_decoded is not None:
                on_decoded(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return ImageCheck(str(path), problem=problem(path, exc))
    notes = []
    expected_format = _FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if expected_format and image_format != expected_format:
        notes.append(f"{image_format} data in a {path.suffix} file")
    if mode != "RGB":
        notes.append(_MODE_INFO.get(mode, f"mode {mode}"))
    return ImageCheck(str(path), info="; ".join(notes) or None, size=size)


def decode_check(path: str | Path) -> str | None:
    """The problem that makes ``path`` unusable (missing, empty, truncated, corrupt), or None."""
    return check_image(path).problem


def pool_map(function: Callable, items: Iterable, workers: int | None = None) -> list:
    """``[function(x) for x in items]`` on a thread pool of ``workers`` (default one per core; PIL
    decoding and hashing release the GIL), in a few chunks per thread: one pool task per item costs
    about as much as hashing a small JPEG."""
    items = list(items)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(items) < 64:
        return [function(item) for item in items]
    size = -(-len(items) // (workers * 8))
    chunks = [items[start:start + size] for start in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [result for part in pool.map(lambda chunk: [function(item) for item in chunk], chunks)
                for result in part]
