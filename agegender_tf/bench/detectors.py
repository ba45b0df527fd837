"""The face detectors side by side: ``python -m agegender_tf.bench detectors``.

``detectors [--data-root AGEGENDER_DATA] [--detectors mtcnn,haar,blazeface] [--sizes 500,1000,2000]
[--faces-per-photo 12] [--adience N] [--repeats 3] [--json]``: on photos of several real UTKFace faces
pasted on a canvas of each width (``several_faces_photo``), prints each detector's photos/s (median
of ``--repeats`` timed calls of ``faces.detect_faces`` on the decoded photo, after one untimed call),
how many boxes it returned and how many of the pasted faces it found (a box overlapping one by at
least ``MATCH_IOU``); on the Adience face crops on disk, how many crops it finds a face in (and in how
many it finds more than one); and, in a fresh process, the seconds from import to its first answer
on the smallest photo. Goal: the fastest detector >= 4x MTCNN's photos/s, finding as many faces.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from agegender_tf.bench import machine_load

SIZES = (500, 1000, 2000)
FACES_PER_PHOTO = 12
MATCH_IOU = 0.3
SPEED_GOAL = 4.0


def several_faces_photo(face_files, width: int, per_row: int = 4, seed: int = 0):
    """(RGB photo ``width`` x ``3/4 width``, pasted squares (left, top, side)): the faces of
    ``face_files`` in rows of ``per_row`` on smooth colour, each between 60% and 100% of its cell."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    height = width * 3 // 4
    photo = Image.fromarray(rng.integers(0, 256, size=(9, 12, 3), dtype=np.uint8)).resize((width, height),
                                                                                          Image.BILINEAR)
    rows = -(-len(face_files) // per_row)
    cell = min(width // per_row, height // rows)
    squares = []
    for k, path in enumerate(face_files):
        side = int(cell * rng.uniform(0.6, 1.0))
        row, col = divmod(k, per_row)
        left = col * (width // per_row) + (width // per_row - side) // 2
        top = row * (height // rows) + (height // rows - side) // 2
        photo.paste(Image.open(path).convert("RGB").resize((side, side), Image.BILINEAR), (left, top))
        squares.append((left, top, side))
    return np.asarray(photo), squares


def overlap(box, square) -> float:
    """Intersection over union of a ``FaceBox`` with a square (left, top, side)."""
    left, top, side = square
    ix = max(0, min(box.x + box.width, left + side) - max(box.x, left))
    iy = max(0, min(box.y + box.height, top + side) - max(box.y, top))
    inter = ix * iy
    return inter / (box.area + side * side - inter)


def faces_matched(boxes, squares) -> int:
    """How many pasted squares some box overlaps by at least ``MATCH_IOU``."""
    return sum(any(overlap(b, s) >= MATCH_IOU for b in boxes) for s in squares)


_FIRST_SCRIPT = """
import sys, time
start = time.perf_counter()
from agegender_tf.serving import faces
boxes = faces.detect_faces(sys.argv[1], sys.argv[2])
print(time.perf_counter() - start, len(boxes))
"""


def first_answer_s(path, detector: str) -> float:
    """Seconds from a fresh interpreter's import of ``faces`` to ``detector``'s boxes on ``path``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", _FIRST_SCRIPT, str(path), detector], capture_output=True,
                          text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{detector} first answer failed: {done.stderr.strip().splitlines()[-1:]}")
    return round(float(done.stdout.split()[0]), 2)


def bench_detectors(data_root, detectors, sizes=SIZES, faces_per_photo: int = FACES_PER_PHOTO,
                    adience: int | None = None, repeats: int = 3, first_answer: bool = True) -> dict:
    import tempfile

    from PIL import Image

    from agegender_tf.imaging import load_rgb
    from agegender_tf.serving import faces

    data_root = Path(data_root)
    utk = sorted(str(p) for p in (data_root / "utkface" / "UTKFace").glob("*.jpg"))[:faces_per_photo]
    if len(utk) < faces_per_photo:
        raise SystemExit(f"{data_root / 'utkface' / 'UTKFace'} has {len(utk)} .jpg files, {faces_per_photo} needed")
    crops = sorted((data_root / "adience" / "faces").glob("*/*.jpg"))[:adience]
    photos = {width: several_faces_photo(utk, width) for width in sizes}
    report = {"faces_per_photo": faces_per_photo, "sizes": list(sizes), "repeats": repeats,
              "adience_crops": len(crops), "detectors": {}, **machine_load()}
    crop_images = [load_rgb(p) for p in crops]
    with tempfile.TemporaryDirectory() as folder:
        first_photo = Path(folder) / "first.jpg"
        Image.fromarray(photos[min(sizes)][0]).save(first_photo, quality=90)
        for detector in detectors:
            row = {"first_answer_s": first_answer_s(first_photo, detector) if first_answer else None}
            faces.require_detector(detector)
            for width, (photo, squares) in photos.items():
                boxes = faces.detect_faces(photo, detector)  # untimed: warms the detector at this size
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    boxes = faces.detect_faces(photo, detector)
                    times.append(time.perf_counter() - start)
                row[str(width)] = {"photos_per_s": round(1 / float(np.median(times)), 2), "boxes": len(boxes),
                                   "faces_found": faces_matched(boxes, squares), "faces_pasted": len(squares)}
            start = time.perf_counter()
            counts = [len(faces.detect_faces(image, detector)) for image in crop_images]
            seconds = time.perf_counter() - start
            row["adience"] = {"with_face": sum(c > 0 for c in counts), "with_several": sum(c > 1 for c in counts),
                              "crops": len(counts), "crops_per_s": round(len(counts) / max(seconds, 1e-9), 2)}
            report["detectors"][detector] = row
    if "mtcnn" in report["detectors"]:
        base = report["detectors"]["mtcnn"]
        for row in report["detectors"].values():
            row["speed_vs_mtcnn"] = {str(w): round(row[str(w)]["photos_per_s"] / base[str(w)]["photos_per_s"], 1)
                                     for w in sizes}
    return report


def summary(report: dict) -> str:
    lines = []
    for name, row in report["detectors"].items():
        sizes = ", ".join(f"{w} px {row[str(w)]['photos_per_s']}/s {row[str(w)]['faces_found']}/"
                          f"{row[str(w)]['faces_pasted']}" for w in report["sizes"])
        adience = row["adience"]
        lines.append(f"{name}: {sizes}; Adience {adience['with_face']}/{adience['crops']} "
                     f"({adience['with_several']} with several); first answer {row['first_answer_s']} s")
    return "\n".join(lines)


def add_benchmark(subparsers) -> None:
    """Add ``detectors`` to ``python -m agegender_tf.bench``."""
    from agegender_tf.paths import DATA_ENV
    from agegender_tf.serving import DETECTORS

    bench = subparsers.add_parser("detectors", help="photos/s and faces found of each face detector")
    bench.add_argument("--data-root", default=os.environ.get(DATA_ENV),
                       help=f"folder holding utkface/ and adience/ (default ${DATA_ENV})")
    bench.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated detector names")
    bench.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated photo widths")
    bench.add_argument("--faces-per-photo", type=int, default=FACES_PER_PHOTO)
    bench.add_argument("--adience", type=int, default=None, help="only the first N Adience crops (default all)")
    bench.add_argument("--repeats", type=int, default=3)
    bench.add_argument("--no-first-answer", action="store_true", help="skip the fresh-process start-up timing")
    bench.add_argument("--json", action="store_true", help="print only the JSON object")
    bench.set_defaults(run_benchmark=_run)


def _run(args):
    from agegender_tf.serving import DETECTORS

    if not args.data_root:
        raise SystemExit("no --data-root given and AGEGENDER_DATA is unset")
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown or not detectors:
        raise SystemExit(f"--detectors: unknown {unknown}; choose from {','.join(DETECTORS)}")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    report = bench_detectors(args.data_root, detectors, sizes, args.faces_per_photo, args.adience, args.repeats,
                             not args.no_first_answer)
    return report, summary(report) + f"\ngoal: >= {SPEED_GOAL:.0f}x MTCNN's photos/s, as many faces found"
