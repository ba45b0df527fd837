"""Face detection with OpenCV's Haar cascade (seed 003 sec. 2 and 4, [4]: Viola-Jones), crop with
a margin, optional eye-based alignment. The cascades ship inside opencv (``cv2.data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

FACE_CASCADE = "haarcascade_frontalface_default.xml"
EYE_CASCADE = "haarcascade_eye.xml"


class FaceNotFound(LookupError):
    """No face was found; the message says where and with which settings."""


@dataclass(frozen=True)
class FaceBox:
    x: int
    y: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return self.width * self.height


@lru_cache(maxsize=None)
def _cascade(name: str):
    if not hasattr(cv2, "CascadeClassifier"):
        raise ImportError(f"OpenCV {cv2.__version__} has no Haar cascades (removed in OpenCV 5); "
                          "install opencv-python-headless>=4.10,<5")
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise FileNotFoundError(f"OpenCV cascade {path} missing or unreadable")
    return cascade


def load_rgb(path) -> np.ndarray:
    """uint8 RGB image of ``path``; ValueError naming the file when it cannot be read."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot read image (missing, empty or corrupt)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _gray(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.uint8)
    return cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2GRAY)


def detect_faces(image, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 30,
                 pad: float = 0.25) -> list[FaceBox]:
    """Faces in an RGB image (array or path), largest first, clipped to the image; [] when none.

    ``pad`` adds a border (fraction of the size, edge pixels repeated) before detecting, so a
    tightly cropped face (UTKFace, Adience crops) still fits the cascade's window with context.
    """
    if not isinstance(image, np.ndarray):
        image = load_rgb(image)
    gray = cv2.equalizeHist(_gray(image))
    py, px = int(gray.shape[0] * pad), int(gray.shape[1] * pad)
    padded = cv2.copyMakeBorder(gray, py, py, px, px, cv2.BORDER_REPLICATE)
    found = _cascade(FACE_CASCADE).detectMultiScale(
        padded, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size))
    boxes = []
    for x, y, w, h in (found if len(found) else []):
        left, top = max(0, int(x) - px), max(0, int(y) - py)
        right, bottom = min(gray.shape[1], int(x + w) - px), min(gray.shape[0], int(y + h) - py)
        if right > left and bottom > top:
            boxes.append(FaceBox(left, top, right - left, bottom - top))
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def crop_face(image: np.ndarray, box: FaceBox, margin: float = 0.2) -> np.ndarray:
    """The box grown by ``margin`` of its size on every side, clipped to the image."""
    dx, dy = int(round(box.width * margin)), int(round(box.height * margin))
    top, left = max(0, box.y - dy), max(0, box.x - dx)
    bottom = min(image.shape[0], box.y + box.height + dy)
    right = min(image.shape[1], box.x + box.width + dx)
    return image[top:bottom, left:right]


def align_by_eyes(image: np.ndarray, box: FaceBox) -> tuple[np.ndarray, float | None]:
    """Rotate the image so the eyes in ``box`` lie level; (image, angle) or (image, None) when
    the eye cascade does not find two eyes in the upper half of the face."""
    face = _gray(image)[box.y:box.y + box.height // 2 + box.height // 8, box.x:box.x + box.width]
    eyes = _cascade(EYE_CASCADE).detectMultiScale(face, scaleFactor=1.1, minNeighbors=5,
                                                  minSize=(box.width // 10, box.width // 10))
    if len(eyes) < 2:
        return image, None
    eyes = sorted(eyes, key=lambda e: e[2] * e[3], reverse=True)[:2]
    (x1, y1), (x2, y2) = sorted((box.x + x + w / 2, box.y + y + h / 2) for x, y, w, h in eyes)
    angle = float(np.degrees(np.arctan2(y2 - y1, x2 - x1)))
    centre = ((x1 + x2) / 2, (y1 + y2) / 2)
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    aligned = cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    return aligned, angle


def largest_face(image, margin: float = 0.2, align: bool = False, **detect_options) -> np.ndarray:
    """Crop of the largest face; ``FaceNotFound`` (with the reason) when there is none."""
    source = image if isinstance(image, np.ndarray) else load_rgb(image)
    boxes = detect_faces(source, **detect_options)
    if not boxes:
        where = "image" if isinstance(image, np.ndarray) else str(image)
        raise FaceNotFound(f"{where}: Haar cascade {FACE_CASCADE} found no face "
                           f"(options {detect_options or 'default'})")
    if align:
        source, _ = align_by_eyes(source, boxes[0])
    return crop_face(source, boxes[0], margin)
