"""Faces drawn on their photo: each box, its number and (for ``agegender predict --annotate``) its labels.

The app and the CLI draw with this one function. Tags stay inside the image: a face at the right or
top edge gets its tag moved in, never cut off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BOX_COLOUR = (255, 64, 0)


def face_label(face: dict) -> str:
    """The short label of a face: gender, then age in years (or its age group), e.g. ``female 27y``."""
    parts = []
    if "gender" in face:
        parts.append(face["gender"]["label"])
    if face.get("age") is not None:
        parts.append(f"{face['age']:.0f}y")
    elif "age_group" in face:
        parts.append(face["age_group"]["label"])
    return " ".join(parts)


def draw_faces(image: np.ndarray, found: list[dict], scale: float = 1.0, max_width: int | None = None,
               labels: bool = False) -> Image.Image:
    """``image`` (RGB uint8; ``scale`` times the size of the file the boxes are given in), shrunk to at
    most ``max_width``, with each face's box and a tag: its number, and its ``face_label`` when
    ``labels``. Faces are numbered in the order given (the predictor's reading order)."""
    photo = Image.fromarray(np.ascontiguousarray(image))
    shrink = min(1.0, max_width / photo.width) if max_width else 1.0
    if shrink < 1.0:
        photo = photo.resize((max(1, round(photo.width * shrink)), max(1, round(photo.height * shrink))))
    draw = ImageDraw.Draw(photo)
    line = max(2, round(min(photo.size) / 150))
    font = ImageFont.load_default(size=max(12, round(min(photo.size) / (30 if labels else 18))))
    for number, face in enumerate(found, start=1):
        x, y, w, h = (v * scale * shrink for v in face["box"])
        draw.rectangle((x, y, x + w, y + h), outline=BOX_COLOUR, width=line)
        text = f"{number} {face_label(face)}".strip() if labels else str(number)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tag_w, tag_h = right - left + 2 * line, bottom - top + 2 * line
        tag_x = min(max(0.0, x), max(0.0, photo.width - tag_w))
        tag_y = y - tag_h if y >= tag_h else min(max(0.0, y), max(0.0, photo.height - tag_h))
        draw.rectangle((tag_x, tag_y, tag_x + tag_w - 1, tag_y + tag_h - 1), fill=BOX_COLOUR)  # ends included
        draw.text((tag_x + line - left, tag_y + line - top), text, fill=(255, 255, 255), font=font)
    return photo


def annotated_path(path, out_dir, used: set) -> Path:
    """``out_dir/<stem>.jpg``, numbered ``<stem>_2.jpg`` ... when another input of this run took it."""
    out_dir = Path(out_dir)
    target, count = out_dir / f"{Path(path).stem}.jpg", 1
    while target in used:
        count += 1
        target = out_dir / f"{Path(path).stem}_{count}.jpg"
    used.add(target)
    return target
