"""``agegender detect-boxes DATASET``: run the predictor's detector once over a dataset's images and keep
the boxes beside its manifest (``data.face_boxes``), so training can cut faces as prediction does."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agegender_tf.data.face_boxes import boxes_path, boxes_table
from agegender_tf.imaging import load_rgb
from agegender_tf.paths import write_text_atomic
from agegender_tf.serving import faces

CHUNK = 256


def detect_dataset(paths, detector: str, progress=None) -> list[list[faces.FaceBox]]:
    """The boxes ``faces.detect_faces`` finds in each image file of ``paths``, in order; the next chunk is
    decoded while the detector runs on this one."""
    paths = [str(p) for p in paths]
    chunks = [paths[i:i + CHUNK] for i in range(0, len(paths), CHUNK)]
    found: list[list[faces.FaceBox]] = []
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = pool.map(load_rgb, chunks[0]) if chunks else iter(())
        for number, chunk in enumerate(chunks):
            images = list(pending)
            if number + 1 < len(chunks):
                pending = pool.map(load_rgb, chunks[number + 1])
            found.extend(faces.detect_many(images, detector))
            if progress:
                rate = len(found) / (time.perf_counter() - started)
                progress(f"{len(found)}/{len(paths)} images, {rate:.1f}/s")
    return found


def write_dataset_boxes(dataset: str, root, detector: str, out=None, limit: int | None = None) -> dict:
    """Detect faces in every image of ``dataset`` under ``root`` and write the boxes file (atomically)."""
    from agegender_tf.data.readers import read_dataset

    manifest = read_dataset(dataset, root).manifest.sort_values("path")
    if limit:
        manifest = manifest.head(limit)
    faces.require_detector(detector)
    found = detect_dataset(manifest["path"].tolist(), detector,
                           progress=lambda text: print(f"\r{text}", end="", file=sys.stderr, flush=True))
    print(file=sys.stderr)
    table = boxes_table([Path(p).name for p in manifest["path"]], found)
    target = Path(out) if out else boxes_path(dataset, detector)
    write_text_atomic(target, table.to_csv(index=False))
    missed = int((table["faces"] == 0).sum())
    return {"dataset": dataset, "detector": detector, "images": len(table), "no_face_found": missed,
            "several_faces": int((table["faces"] > 1).sum()), "out": str(target)}
