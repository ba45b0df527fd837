"""Image files and arrays as RGB: the one loader of the kit's serving path and its problem texts.

A whole file is decoded (a cut-short JPEG is refused, not grey-filled), every colour mode becomes
uint8 RGB, EXIF orientation is applied, and a file that cannot be used raises ``ValueError`` whose
message names the file and the problem in one line.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Files that ``agegender predict`` and the app read as photos or faces (a folder is searched for these).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
# Larger images are refused (OpenCV's own default limit, 2**30 pixels); PIL would refuse at 179 Mpx.
MAX_PIXELS = 1 << 30


_PIL_LIMIT = threading.Lock()


def _open(path: Path) -> Image.Image:
    """``Image.open`` with PIL's decompression-bomb limit raised to ``MAX_PIXELS`` (a 12000x9000 photo
    is 108 Mpx: PIL warns above 89 Mpx and refuses above 179 Mpx)."""
    with _PIL_LIMIT:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2  # PIL warns above the limit, refuses above twice it
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def image_size(path) -> tuple[int, int]:
    """(width, height) of an image file as shown (EXIF orientation applied), from its header."""
    path = Path(path)
    try:
        with _open(path) as image:
            width, height = image.size
            if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 or 270 degrees
                width, height = height, width
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{path}: {problem(path, exc)}") from None
    return width, height


def problem(path: Path, exc: Exception) -> str:
    """What is wrong with the image file ``path``, given the exception reading it raised (one line)."""
    if not path.exists():
        return "file not found"
    if path.is_dir():
        return "is a folder, not an image"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (unknown format)"
    if isinstance(exc, Image.DecompressionBombError):
        return f"too large ({exc})"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"corrupt or cut-short image ({text})"


def load_rgb(path, max_side: int | None = None) -> np.ndarray:
    """uint8 RGB array of the image file ``path``; ValueError naming the file when it cannot be used.

    The whole file is decoded (a cut-short JPEG is refused, not grey-filled); grayscale, palette,
    CMYK and 16-bit images convert to RGB, transparency is laid on white, an animation gives its
    first frame, EXIF orientation is applied. ``max_side``: a JPEG larger than that is decoded at a
    reduced DCT scale (1/2, 1/4 or 1/8) whose longest side is still at least ``max_side``.
    """
    path = Path(path)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on: cut-short images would load grey-filled")
    try:
        with _open(path) as image:
            if max_side and image.format == "JPEG" and max(image.size) > max_side:
                ratio = max_side / max(image.size)
                image.draft("RGB", (int(np.ceil(image.size[0] * ratio)), int(np.ceil(image.size[1] * ratio))))
            image.load()
            if image.getexif().get(0x0112, 1) != 1:  # EXIF orientation: show it as viewers do
                image = ImageOps.exif_transpose(image)
            return _pil_to_rgb(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{path}: {problem(path, exc)}") from None


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
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


