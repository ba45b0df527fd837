"""Image files and arrays as RGB: the one loader of the kit's serving path and its problem texts.

A whole file is decoded (a cut-short JPEG is refused, not grey-filled), every colour mode becomes
uint8 RGB, EXIF orientation is applied, and a file that cannot be used raises ``ValueError`` whose
message names the file and the problem in one line.
"""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Files that ``agegender predict`` and the app read as photos or faces (a folder is searched for these).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
# Files whose header claims more pixels are refused unread (OpenCV's own default limit, 2**30 pixels).
MAX_PIXELS = 1 << 30
# No image is decoded to more pixels than this (a JPEG is decoded at a reduced DCT scale to fit): an
# RGBA image of this size takes about 0.5 GB while it converts, so a hostile file stays far under 1.5 GB.
MAX_DECODED_PIXELS = 40_000_000


_PIL_LIMIT = threading.Lock()


class ImageProblem(ValueError):
    """An image file or array that cannot be used; ``str()`` is one line naming it and the problem."""


def _regular_file(path: Path) -> None:
    """Refuse anything but a regular file before opening it (a FIFO would block the read forever)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        kind = "broken link" if path.is_symlink() else "file not found"
        raise ImageProblem(f"{path}: {kind}") from None
    except OSError as exc:
        raise ImageProblem(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise ImageProblem(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(mode):
        raise ImageProblem(f"{path}: not a regular file ({special_kind(mode)})")
    if path.stat().st_size == 0:
        raise ImageProblem(f"{path}: empty file (0 bytes)")


def special_kind(mode: int) -> str:
    """What a file that is not a regular file is (``os.stat``'s ``st_mode``), in words."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _open(path: Path) -> Image.Image:
    """``Image.open`` of a regular file, the size in its header checked against ``MAX_PIXELS`` here
    (PIL's own bomb check warns on stderr and raises an error that is not an ``OSError``)."""
    _regular_file(path)
    with _PIL_LIMIT:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # the header is read, nothing decoded yet: checked below
        try:
            image = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise ImageProblem(f"{path}: too large ({width}x{height} pixels, {width * height / 1e6:.0f} Mpx; "
                           f"at most {MAX_PIXELS / 1e6:.0f} Mpx)")
    return image


def image_size(path) -> tuple[int, int]:
    """(width, height) of an image file as shown (EXIF orientation applied), from its header. A file too
    large to decode is refused here too: PIL finds a PNG's EXIF by decoding the whole image."""
    path = Path(path)
    try:
        with _open(path) as image:
            width, height = image.size
            _check_decodable(path, image)
            if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 or 270 degrees
                width, height = height, width
    except ImageProblem:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(f"{path}: {problem(path, exc)}") from None
    return width, height


def problem(path: Path, exc: Exception) -> str:
    """What is wrong with the image file ``path``, given the exception reading it raised (one line)."""
    if not path.exists():
        return "file not found"
    if path.is_dir():
        return "is a folder, not an image"
    if not path.is_file():
        return f"not a regular file ({special_kind(path.stat().st_mode)})"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    if isinstance(exc, Image.DecompressionBombError):
        return f"too large ({exc})"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (unknown format)"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"corrupt or cut-short image ({text})"


def load_rgb(path, max_side: int | None = None) -> np.ndarray:
    """uint8 RGB array of the image file ``path``; ``ImageProblem`` (a ValueError) naming the file when
    it cannot be used.

    The whole file is decoded (a cut-short JPEG is refused, not grey-filled); grayscale, palette,
    CMYK, 16-bit and float images convert to RGB, transparency is laid on white, an animation gives
    its first frame, EXIF orientation is applied. ``max_side``: a JPEG larger than that is decoded at
    a reduced DCT scale (1/2, 1/4 or 1/8), any other format is reduced by a whole factor after
    decoding, the longest side staying at least ``max_side``. Memory stays bounded: a file whose
    header claims more than ``MAX_PIXELS`` is refused, and one that would still decode to more than
    ``MAX_DECODED_PIXELS`` (after the reduced JPEG scale) is refused before decoding.
    """
    path = Path(path)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on: cut-short images would load grey-filled")
    try:
        with _open(path) as image:
            if image.format == "JPEG":
                _check_jpeg_length(path, image.size)
                scale = _jpeg_scale(image.size, max_side)
                if scale > 1:
                    image.draft("RGB", (-(-image.size[0] // scale), -(-image.size[1] // scale)))
            _check_decodable(path, image)
            image.load()
            if max_side and image.format != "JPEG" and max(image.size) >= 2 * max_side:
                image = image.reduce(max(image.size) // max_side)
            if image.getexif().get(0x0112, 1) != 1:  # EXIF orientation: show it as viewers do
                image = ImageOps.exif_transpose(image)
            return _pil_to_rgb(image)
    except ImageProblem:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageProblem(f"{path}: {problem(path, exc)}") from None


def _check_decodable(path: Path, image: Image.Image) -> None:
    """Refuse an image that would decode to more than ``MAX_DECODED_PIXELS`` (a JPEG: at its reduced
    DCT scale, set by ``draft``)."""
    width, height = image.size
    if image.format == "JPEG":
        scale = _jpeg_scale(image.size, None)
        width, height = -(-width // scale), -(-height // scale)
    if width * height > MAX_DECODED_PIXELS:
        raise ImageProblem(f"{path}: too large to decode ({width}x{height} pixels {image.format or ''}, "
                           f"{width * height / 1e6:.0f} Mpx; at most {MAX_DECODED_PIXELS / 1e6:.0f} Mpx "
                           "unless a JPEG)")


def _jpeg_scale(size: tuple[int, int], max_side: int | None) -> int:
    """The DCT scale (1, 2, 4 or 8) to decode a JPEG of ``size`` at: the most reduction that keeps the
    longest side at least ``max_side``, and at least the reduction that fits ``MAX_DECODED_PIXELS``."""
    width, height = size
    scales = (1, 2, 4, 8)
    fits = next((s for s in scales if -(-width // s) * -(-height // s) <= MAX_DECODED_PIXELS), 8)
    keeps = max((s for s in scales if max_side and max(width, height) / s >= max_side), default=1)
    return max(fits, keeps)


def _check_jpeg_length(path: Path, size: tuple[int, int]) -> None:
    """Refuse a JPEG too short for the size its header claims: every 8x8 block costs at least one bit
    of entropy-coded data, even in a progressive file, so fewer bytes than a quarter of that cannot
    be a whole image (libjpeg would grey-fill the missing rows and say nothing)."""
    width, height = size
    least = width * height // (64 * 8 * 4)
    length = path.stat().st_size
    if length < least:
        raise ImageProblem(f"{path}: JPEG data too short for its {width}x{height} header ({length} bytes; "
                           f"a whole image needs at least {least})")


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode == "F":  # float TIFF: values 0..1 (as as_rgb_uint8 reads float arrays) or 0..255
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        scale = 255.0 if values.max(initial=0) <= 1.0 else 1.0
        return as_rgb_uint8(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8))
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float64)
        scale = 257.0 if values.max(initial=0) > 255 else 1.0
        return as_rgb_uint8(np.clip(np.rint(values / scale), 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def as_rgb_uint8(image, name: str = "image") -> np.ndarray:
    """``image`` as uint8 RGB [H, W, 3]: uint8 or float 0..1 arrays, grayscale (2-D or one channel),
    RGB or RGBA (alpha laid on white). Anything else is a ValueError saying why."""
    array = np.asarray(image)
    if array.size == 0 or array.ndim < 2:
        raise ValueError(f"{name}: empty image array (shape {array.shape})")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name}: expected an image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], "
                         f"got shape {array.shape}")
    if array.dtype == np.bool_:
        raise ValueError(f"{name}: boolean array, not an image")
    if np.issubdtype(array.dtype, np.floating):
        if np.isnan(array).any():
            raise ValueError(f"{name}: float image holds NaN values")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(f"{name}: float image values must lie in 0..1 (got {low:.3g}..{high:.3g}); "
                             "pass uint8 for 0..255")
        array = np.rint(array * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(f"{name}: integer image values must lie in 0..255 "
                             f"(got {low}..{high}, dtype {array.dtype})")
        array = array.astype(np.uint8)
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.shape[2] == 4:
        alpha = array[..., 3:].astype(np.float32) / 255.0
        return np.rint(array[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return array


