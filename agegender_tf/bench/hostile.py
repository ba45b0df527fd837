"""Hostile image files and the peak memory of every serving path on them.

``python -m agegender_tf.bench hostile-memory [--model M] [--json]`` writes small files that claim huge
sizes (a 1-bit PNG of 32000x32000 and one of 40000x40000, JPEG headers claiming 30000x30000 and
60000x60000) and runs each through each serving path in a fresh process with the model loaded: a
photo (``predict_photo``), an aligned crop (``predict_photo(aligned=True)``), the app's display copy
and the annotated copy. It prints each run's peak resident memory (``ru_maxrss``), what the path
answered, and the largest peak. Goal: every peak under 1.5 GB.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

MEMORY_GOAL_MB = 1536.0
PATHS = ("photo", "aligned", "display", "annotate")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_bitonal_png(path, width: int, height: int) -> Path:
    """A valid all-black 1-bit PNG of ``width`` x ``height``: about 125 KB at 32000x32000, written row by
    row, so it is never held whole in memory."""
    path = Path(path)
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte "none", then the packed pixels
    packer = zlib.compressobj(9)
    with open(path, "wb") as stream:
        stream.write(b"\x89PNG\r\n\x1a\n")
        stream.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)))
        parts = []
        rows_per_block = max(1, (1 << 22) // len(row))
        for start in range(0, height, rows_per_block):
            parts.append(packer.compress(row * min(rows_per_block, height - start)))
        parts.append(packer.flush())
        stream.write(_chunk(b"IDAT", b"".join(parts)))
        stream.write(_chunk(b"IEND", b""))
    return path


def write_jpeg_claiming(path, width: int, height: int) -> Path:
    """A small real JPEG (64x64) whose frame header claims ``width`` x ``height``: a few KB on disk."""
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    data = bytearray(buffer.getvalue())
    start = data.find(b"\xff\xc0")  # baseline frame header: length(2) precision(1) height(2) width(2)
    data[start + 5:start + 9] = struct.pack(">HH", height, width)
    Path(path).write_bytes(bytes(data))
    return Path(path)


def hostile_files(folder) -> dict[str, Path]:
    """The hostile files of this benchmark (and of the tests), written into ``folder``."""
    folder = Path(folder)
    return {
        "png_1bit_32000": write_bitonal_png(folder / "bitonal_32000.png", 32000, 32000),
        "png_1bit_40000": write_bitonal_png(folder / "bitonal_40000.png", 40000, 40000),
        "jpeg_claims_30000": write_jpeg_claiming(folder / "claims_30000.jpg", 30000, 30000),
        "jpeg_claims_60000": write_jpeg_claiming(folder / "claims_60000.jpg", 60000, 60000),
    }


_CHILD = """
import json, resource, sys
from agegender_tf import imaging
from agegender_tf.serving import predictor as serving_predictor
from agegender_tf.serving.annotate import draw_faces
model, path, which = (None if sys.argv[1] == "-" else sys.argv[1]), sys.argv[2], sys.argv[3]
predictor = serving_predictor.load(model)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
answer = "ok"
try:
    if which == "photo":
        answer = f"{len(predictor.predict_photo(path, detector='haar')['faces'])} faces"
    elif which == "aligned":
        predictor.predict_photo(path, aligned=True)
    elif which == "display":
        imaging.load_rgb(path, max_side=1200)
    else:
        image = imaging.load_rgb(path, max_side=serving_predictor.PHOTO_SIDE)
        draw_faces(image, [], labels=True)
except ValueError as exc:
    answer = str(exc)
print(json.dumps({"model_loaded_mb": before, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "answer": answer}))
"""


def _child(model, path: Path, which: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", _CHILD, model or "-", str(path), which],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"peak_mb": None, "answer": f"crashed: {lines[-1] if lines else done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_hostile_memory(model=None) -> dict:
    """Peak memory of every serving path on every hostile file, each in a fresh process."""
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for name, path in hostile_files(folder).items():
            for which in PATHS:
                row = _child(model, path, which)
                runs.append({"file": name, "bytes": path.stat().st_size, "path": which,
                             "peak_mb": None if row["peak_mb"] is None else round(row["peak_mb"], 1),
                             "model_loaded_mb": round(row.get("model_loaded_mb") or 0, 1),
                             "answer": row["answer"]})
    peaks = [r["peak_mb"] for r in runs if r["peak_mb"] is not None]
    return {"runs": runs, "max_peak_mb": max(peaks) if peaks else None, "goal_peak_mb": MEMORY_GOAL_MB,
            "crashed": sum(r["peak_mb"] is None for r in runs)}


def add_benchmark(subparsers) -> None:
    bench = subparsers.add_parser("hostile-memory", help="peak memory of every serving path on hostile images "
                                                         "(goal < 1.5 GB)")
    bench.add_argument("--model", default=None, help="run folder or .keras file (default: the bundled model)")
    bench.add_argument("--json", action="store_true", help="print only the JSON object")
    bench.set_defaults(run_benchmark=_run)


def _run(args):
    report = bench_hostile_memory(args.model)
    return report, (f"largest peak {report['max_peak_mb']} MB over {len(report['runs'])} runs "
                    f"({report['crashed']} crashed); goal < {MEMORY_GOAL_MB:.0f} MB")
