"""Helpers that write small fixtures in a dataset's published layout (real JPEG files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_jpeg(path: str | Path, size: int | tuple[int, int] = 64, seed: int = 0, mode: str = "RGB") -> Path:
    """Write a real, decodable JPEG of random smooth content; return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.BILINEAR)
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, format="JPEG", quality=90)
    return path


def truncate(path: str | Path, keep_fraction: float = 0.5) -> Path:
    """Cut a file short, as an interrupted download does."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep_fraction))])
    return path
