"""Benchmarks of using a trained model: ``python -m agegender_tf.bench predict | faces-memory | framing``.

``predict --root UTKFACE_ROOT [--model M] [--faces N] [--batch-size B] [--json]``: aligned faces per
second of ``Predictor.predict_files`` end to end (decode, resize, network, face dicts), median of
``--repeats`` passes over the same N UTKFace files after a warm-up pass. Goal: >= 300 on a 2-core CPU.

``faces-memory [--detector haar|mtcnn] [--width 12000 --height 9000]``: writes a photo of that size
(a real UTKFace face laid on it when ``--root`` is given) and runs ``faces.detect_faces`` on it in a
fresh process; prints that process's peak memory (``ru_maxrss``) and that of a process that imports
the same modules and loads the photo without detecting. Goal: peak under 1.5 GB.

``box-jitter [--detector D] [--faces N]``: how far the detector's box moves between near-identical
copies of a face (JPEG re-encoded, moved 2 px, scaled 0.95): the jitter framed training applies.

``framing --root DATASET_ROOT [--faces N]``: re-measures ``faces.TRAINING_FRAMING`` (where training
faces sit around each detector's box) on the first N faces and prints it beside the committed values.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agegender_tf.bench import machine_load

PREDICT_GOAL = 300.0
MEMORY_GOAL_MB = 1536.0


def _utkface_files(root, count: int) -> list[str]:
    files = sorted(str(p) for p in (Path(root) / "UTKFace").glob("*.jpg"))
    if len(files) < count:
        raise SystemExit(f"asked for {count} faces, {Path(root) / 'UTKFace'} has {len(files)} .jpg files")
    return files[:count]


def bench_predict(root, model=None, faces: int = 1024, batch_size: int = 64, repeats: int = 3,
                  mirror: bool | None = None) -> dict:
    """Median aligned faces/second of ``predict_files`` over ``repeats`` passes (after one warm-up);
    ``mirror`` as for ``predict.load`` (None: the card's choice)."""
    import numpy as np

    from agegender_tf.serving import predictor as predict

    files = _utkface_files(root, faces)
    started = time.perf_counter()
    predictor = predict.load(model, batch_size=batch_size, mirror=mirror)
    load_s = time.perf_counter() - started
    list(predictor.predict_files(files[: batch_size * 2]))  # warm-up: traces the graphs
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        results = list(predictor.predict_files(files))
        rates.append(len(results) / (time.perf_counter() - start))
    errors = [error for _, _, error in results if error]
    return {
        "faces": len(files),
        "errors": len(errors),
        "batch_size": batch_size,
        "model": predictor.source,
        "builder": predictor.card["builder"],
        "input_size": predictor.card["input_size"],
        "mirror": predictor.mirror,
        "compute_dtype": predictor.compute_dtype,
        "repeats": repeats,
        "faces_per_s": round(float(np.median(rates)), 1),
        "all_faces_per_s": [round(r, 1) for r in rates],
        "goal_faces_per_s": PREDICT_GOAL,
        "load_s": round(load_s, 2),
        **machine_load(),
    }


def write_big_photo(path, width: int, height: int, face_file=None) -> Path:
    """A ``width`` x ``height`` JPEG of smooth colour, with ``face_file`` scaled to a fifth of the
    height pasted in the middle when given."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.integers(0, 256, size=(9, 12, 3), dtype=np.uint8))
    photo = coarse.resize((width, height), Image.BILINEAR)
    if face_file:
        side = height // 5
        face = Image.open(face_file).convert("RGB").resize((side, side), Image.BILINEAR)
        photo.paste(face, ((width - side) // 2, (height - side) // 2))
    Image.MAX_IMAGE_PIXELS = None  # our own photo, written here
    photo.save(path, format="JPEG", quality=85)
    return Path(path)


_MEMORY_SCRIPT = """
import json, resource, sys
from agegender_tf import imaging
from agegender_tf.serving import faces
path, detector, detect = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
faces.require_detector(detector)
if detect:
    boxes = faces.detect_faces(path, detector)
else:
    boxes = None
    image = imaging.load_rgb(path, max_side=faces.DETECT_SIDE)
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "boxes": None if boxes is None else [[b.x, b.y, b.width, b.height] for b in boxes]}))
"""


def _child_peak(path, detector: str, detect: bool) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(path), detector, "1" if detect else "0"],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode
        raise SystemExit(f"memory check failed: {reason}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_faces_memory(width: int = 12000, height: int = 9000, detector: str = "haar", root=None) -> dict:
    """Peak memory of ``detect_faces`` on a ``width`` x ``height`` photo, in a fresh process."""
    face_file = _utkface_files(root, 4)[3] if root else None  # a face both detectors find (tests/serving/test_faces.py)
    with tempfile.TemporaryDirectory() as folder:
        path = write_big_photo(Path(folder) / "big.jpg", width, height, face_file)
        baseline = _child_peak(path, detector, detect=False)
        start = time.perf_counter()
        detected = _child_peak(path, detector, detect=True)
        seconds = time.perf_counter() - start
    return {
        "width": width,
        "height": height,
        "detector": detector,
        "face_pasted": face_file is not None,
        "boxes": detected["boxes"],
        "peak_mb": round(detected["peak_mb"], 1),
        "baseline_peak_mb": round(baseline["peak_mb"], 1),
        "goal_peak_mb": MEMORY_GOAL_MB,
        "seconds_with_start_up": round(seconds, 1),
    }


def bench_framing(root, faces: int = 200) -> dict:
    """``faces.measure_framing`` for each detector on the first ``faces`` UTKFace files."""
    from agegender_tf.model_card import TRAINING_FRAMING
    from agegender_tf.serving import DETECTORS
    from agegender_tf.serving.faces import measure_framing

    files = _utkface_files(root, faces)
    measured = {d: measure_framing(files, d).to_dict() for d in DETECTORS}
    committed = {d: f.to_dict() for d, f in TRAINING_FRAMING.get("utkface", {}).items()}
    return {"faces": faces, "measured": measured, "committed_utkface": committed}


def add_benchmarks(subparsers) -> None:
    """Add ``predict``, ``faces-memory`` and ``framing`` to ``python -m agegender_tf.bench``."""
    from agegender_tf.paths import DATA_ENV
    from agegender_tf.serving import DETECTORS

    default_root = os.path.join(os.environ[DATA_ENV], "utkface") if os.environ.get(DATA_ENV) else None
    bench = subparsers.add_parser("predict", help="aligned faces per second of the predictor (goal >= 300)")
    bench.add_argument("--root", default=default_root, help=f"UTKFace root (default ${DATA_ENV}/utkface)")
    bench.add_argument("--model", default=None, help="run folder or .keras file (default: the bundled model)")
    bench.add_argument("--faces", type=int, default=1024)
    bench.add_argument("--batch-size", type=int, default=64)
    bench.add_argument("--repeats", type=int, default=3)
    bench.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                       help="average each face with its mirror (default: as the model card says)")
    bench.add_argument("--detector", action="append", default=None, metavar="NAME",
                       help="time face detection instead: photos of several sizes (500, 1000, 2000 px) holding 12 "
                            "real faces and the Adience crops on disk, photos/s and faces found for each detector "
                            "named (repeatable or comma-separated, e.g. blazeface,mtcnn); as `bench detectors`")
    bench.add_argument("--adience", type=int, default=None, help="with --detector: only the first N Adience crops")
    bench.add_argument("--json", action="store_true", help="print only the JSON object")
    bench.set_defaults(run_benchmark=_run_predict)

    memory = subparsers.add_parser("faces-memory", help="peak memory of face detection on a huge photo (goal < 1.5 GB)")
    memory.add_argument("--width", type=int, default=12000)
    memory.add_argument("--height", type=int, default=9000)
    memory.add_argument("--detector", default="haar", choices=DETECTORS)
    memory.add_argument("--root", default=default_root, help="UTKFace root: paste a real face into the photo")
    memory.add_argument("--json", action="store_true", help="print only the JSON object")
    memory.set_defaults(run_benchmark=_run_memory)

    framing = subparsers.add_parser("framing", help="re-measure how UTKFace faces sit around each detector's box")
    framing.add_argument("--root", default=default_root, help=f"UTKFace root (default ${DATA_ENV}/utkface)")
    framing.add_argument("--faces", type=int, default=200)
    framing.add_argument("--json", action="store_true", help="print only the JSON object")
    framing.set_defaults(run_benchmark=_run_framing)

    jitter = subparsers.add_parser("box-jitter", help="how much a detector's box moves between near-identical photos")
    jitter.add_argument("--root", default=default_root, help=f"UTKFace root (default ${DATA_ENV}/utkface)")
    jitter.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS)
    jitter.add_argument("--faces", type=int, default=200)
    jitter.add_argument("--json", action="store_true", help="print only the JSON object")
    jitter.set_defaults(run_benchmark=_run_box_jitter)


def _need_root(args):
    if not args.root:
        raise SystemExit("no --root given and AGEGENDER_DATA is unset")


def _run_predict(args):
    _need_root(args)
    if args.detector:
        from agegender_tf.bench.detectors import bench_detectors, summary
        from agegender_tf.serving import DETECTORS

        names = [name.strip() for given in args.detector for name in given.split(",") if name.strip()]
        unknown = [name for name in names if name not in DETECTORS]
        if unknown:
            raise SystemExit(f"--detector: unknown {unknown}; choose from {','.join(DETECTORS)}")
        report = bench_detectors(Path(args.root).parent, names, adience=args.adience, repeats=args.repeats)
        return report, summary(report)
    report = bench_predict(args.root, args.model, args.faces, args.batch_size, args.repeats, args.mirror)
    mirrored = ", each with its mirror" if report["mirror"] else ""
    return report, f"{report['faces_per_s']} aligned faces/s{mirrored} (goal >= {PREDICT_GOAL:.0f})"


def _run_memory(args):
    report = bench_faces_memory(args.width, args.height, args.detector, args.root)
    return report, (f"detect_faces ({args.detector}) on {args.width}x{args.height}: peak {report['peak_mb']} MB "
                    f"(loading alone {report['baseline_peak_mb']} MB); goal < {MEMORY_GOAL_MB:.0f} MB")


def _run_framing(args):
    _need_root(args)
    report = bench_framing(args.root, args.faces)
    return report, json.dumps(report["measured"])


def bench_box_jitter(root, detector: str = "mtcnn", faces: int = 200) -> dict:
    """How much ``detector``'s box moves between near-identical copies of the same face: each of the first
    ``faces`` UTKFace faces is detected as it is, re-encoded as JPEG at quality 85, moved by 2 pixels and
    scaled by 0.95. Per copy: the standard deviation of log(side ratio), and of the centre's move as a
    fraction of the side (x and y pooled), over faces found in both; rotation is read from the eyes'
    landmarks where the detector gives them (MTCNN)."""
    import io

    import numpy as np
    from PIL import Image

    from agegender_tf.imaging import load_rgb
    from agegender_tf.serving import faces as face_module

    face_module.require_detector(detector)

    def variants(image):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=85)
        shifted = np.pad(image, ((2, 0), (2, 0), (0, 0)), mode="edge")[:image.shape[0], :image.shape[1]]
        size = (round(image.shape[1] * 0.95), round(image.shape[0] * 0.95))
        scaled = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        return {"jpeg85": (np.asarray(Image.open(buffer).convert("RGB")), 1.0, 0),
                "shift2px": (shifted, 1.0, 2), "scale095": (scaled, 0.95, 0)}

    log_scale, moves, found = {}, {}, 0
    for path in _utkface_files(root, faces):
        image = load_rgb(path)
        base = face_module.detect_faces(image, detector)
        if not base:
            continue
        found += 1
        b = base[0]
        side = max(b.width, b.height)
        for name, (copy, scale, offset) in variants(image).items():
            other = face_module.detect_faces(copy, detector)
            if not other:
                continue
            o = other[0]
            o_side = max(o.width, o.height) / scale
            log_scale.setdefault(name, []).append(float(np.log(o_side / side)))
            cx = (o.x + o.width / 2) / scale - offset - (b.x + b.width / 2)
            cy = (o.y + o.height / 2) / scale - offset - (b.y + b.height / 2)
            moves.setdefault(name, []).extend([cx / side, cy / side])
    per_copy = {name: {"faces": len(log_scale[name]), "scale_std": round(float(np.std(log_scale[name])), 4),
                       "shift_std": round(float(np.std(moves[name])), 4)} for name in log_scale}
    return {"detector": detector, "faces": faces, "found": found, "copies": per_copy,
            "scale_std": round(max(r["scale_std"] for r in per_copy.values()), 4),
            "shift_std": round(max(r["shift_std"] for r in per_copy.values()), 4)}


def _run_box_jitter(args):
    _need_root(args)
    report = bench_box_jitter(args.root, args.detector, args.faces)
    return report, (f"{args.detector}: box scale std {report['scale_std']} (log), centre shift std "
                    f"{report['shift_std']} of the side, over {report['found']} faces")
