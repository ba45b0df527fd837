"""Image file checks shared by the audit and the pipelines: full decode and content hash.

DESIGN.md, "Known facts": PIL ``.verify()`` misses a truncated file; only a full decode
(``.load()``) catches it, so every check here decodes the whole image once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
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


def check_image(path: str | Path) -> ImageCheck:
    """Fully decode ``path`` and say what, if anything, is wrong with it."""
    path = Path(path)
    if not path.is_file():
        return ImageCheck(str(path), problem="file not found")
    if path.stat().st_size == 0:
        return ImageCheck(str(path), problem="empty file (0 bytes)")
    try:
        with Image.open(path) as image:
            image.load()
            image_format, mode, size = image.format, image.mode, image.size
    except UnidentifiedImageError:
        return ImageCheck(str(path), problem="not a readable image (unknown format)")
    except (OSError, SyntaxError, ValueError) as exc:
        return ImageCheck(str(path), problem=f"cannot decode: {exc}")
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


def content_hash(path: str | Path) -> str:
    """SHA-1 of the file's bytes: equal hashes mean byte-identical copies."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
