"""The streaming mode of the tf.data pipeline: memory that does not grow with the dataset.

The in-memory mode of ``tfdata.make_dataset`` keeps every decoded face in RAM (its cache), shuffles over
the whole set and fully decodes every file up front (``checks.require_readable``): right for UTKFace's
23,708 faces, tens of GB and an hour of decoding on two cores for IMDB-WIKI's ~460,000. ``choose_mode``
picks the stream above ``STREAM_ABOVE_FACES`` faces, or where the decoded faces would take more than
``MEMORY_BUDGET_BYTES``; a preset forces either with ``pipeline={"mode": "memory" | "stream" | "auto"}``.

- **Packed once.** Every file is decoded as the in-memory path decodes it (``tfdata.decode_file``, resized
  to the load size; with ``face_crop`` the whole image at its own size, as the memory path caches it,
  the face being cut after the read) and written as a uint8 tensor (``tf.io.serialize_tensor``) into
  sharded TFRecord files under ``<cache>/stream/<key>/`` (``cache`` is ``$AGEGENDER_CACHE``, else
  ``~/.cache/agegender-tf``). ``key`` hashes every path with its size and modification time, the load
  size and the pack format, so the same manifest at the same load size reuses the pack and any changed,
  added or removed file packs anew. Row ``r`` of the manifest goes to shard ``r % S``: every shard is a
  stride sample of the whole set (a manifest sorted by age still gives shards of every age).
- **Validated once.** The pack is the validation (one decode per file): a file TensorFlow cannot decode
  is left out (``ignore_errors``), then explained by ``data.images.decode_check``, and the build stops
  with ``ImageFileError`` naming every such file, as ``require_readable`` does; no pack is kept. A
  finished pack (its ``done.json``, written last) is therefore the memo that each file, at that size
  and modification time, decodes: a second run stats the files and starts.
- **Read** with ``Dataset.interleave`` over the shards (parallel reads, deterministic order). Training
  shuffles the shard order (seeded, anew each epoch), reads ``READ_CYCLE`` shards at a time and shuffles
  in a buffer of ``STREAM_SHUFFLE_BUFFER`` faces; otherwise all shards in turn, which is the manifest's
  order again. Each record's row index looks its labels (and box) up in the manifest, so one pack
  serves every task, binning and label encoding.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from agegender_tf.data.images import decode_check
from agegender_tf.paths import cache_home, write_text_atomic
from agegender_tf.pipelines.checks import ImageFileError

MODES = ("memory", "stream", "auto")
# ``auto`` streams above this many faces (IMDB-WIKI's ~460k), or where the decoded faces would pass the budget.
STREAM_ABOVE_FACES = 50_000
MEMORY_BUDGET_BYTES = 8 * 2 ** 30  # UTKFace's 16,579 training faces at a 256 px load size take 3.3 GB
STREAM_SHUFFLE_BUFFER = 10_000
READ_CYCLE = 8  # shards read at a time when training
SHARD_BYTES = 128 * 2 ** 20
MAX_SHARDS = 64
PACK_FORMAT = 1  # raise it when the packed pixels change (the decode, the resize)
DONE_FILE = "done.json"
AUTOTUNE = tf.data.AUTOTUNE


def choose_mode(mode: str | None, faces: int, load_size) -> str:
    """``"memory"`` or ``"stream"`` for ``faces`` faces loaded at ``load_size`` (H, W): ``mode`` itself
    unless it is ``"auto"`` (or None), which streams above ``STREAM_ABOVE_FACES`` faces or where the
    decoded faces (``faces * H * W * 3`` bytes) would pass ``MEMORY_BUDGET_BYTES``. The rule depends
    only on the data and the preset, never on the machine, so a run always makes the same choice."""
    mode = mode or "auto"
    if mode not in MODES:
        raise ValueError(f"pipeline mode {mode!r}: choose from {', '.join(MODES)}")
    if mode != "auto":
        return mode
    decoded = int(faces) * int(load_size[0]) * int(load_size[1]) * 3
    return "stream" if faces > STREAM_ABOVE_FACES or decoded > MEMORY_BUDGET_BYTES else "memory"


def stream_root() -> Path:
    """Where packs live: ``<cache>/stream`` (``paths.cache_home``)."""
    return cache_home() / "stream"


def pack_key(paths, load_size) -> str:
    """The pack's name: a hash of each path with its size and modification time, of ``load_size`` (None:
    whole images) and of the format. A file that cannot be stat'ed stops here with ``ImageFileError``."""
    digest = hashlib.sha256(json.dumps({"format": PACK_FORMAT, "tensorflow": tf.__version__,
                                        "load_size": None if load_size is None else list(load_size)}).encode())
    problems = {}
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            problems[path] = decode_check(path)
            continue
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    if problems:
        raise ImageFileError(problems)
    return digest.hexdigest()[:32]


def shard_name(index: int, count: int) -> str:
    return f"faces-{index:05d}-of-{count:05d}.tfrecord"


def ensure_pack(paths, decode, load_size, folder: str | Path | None = None) -> tuple[Path, dict]:
    """The pack of ``paths`` (folder and ``done.json``), written first where none is finished.

    ``decode(path) -> uint8 [H, W, 3]`` is the in-memory path's decode; ``load_size`` (H, W), or None for
    whole images, names the pack and sizes its shards. ``folder``: the packs' folder (``stream_root()``).
    """
    paths = [str(p) for p in paths]
    root = Path(folder) if folder is not None else stream_root()
    target = root / pack_key(paths, load_size)
    done = target / DONE_FILE
    if done.is_file():
        meta = json.loads(done.read_text())
        if meta.get("faces") == len(paths):
            return target, {**meta, "reused": True}
    root.mkdir(parents=True, exist_ok=True)
    temporary = root / f".{target.name}.{os.getpid()}.partial"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        meta = _write_pack(paths, decode, load_size, temporary)
        write_text_atomic(temporary / DONE_FILE, json.dumps(meta, indent=1))
        try:
            temporary.rename(target)
        except OSError:  # another process finished the same pack first: use it
            if not (target / DONE_FILE).is_file():
                shutil.rmtree(target, ignore_errors=True)
                temporary.rename(target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target, {**meta, "reused": False}


def _write_pack(paths: list[str], decode, load_size, folder: Path) -> dict:
    started = time.perf_counter()
    count = len(paths)
    height, width = load_size if load_size is not None else (256, 256)  # whole images: a guess, for shards
    shards = max(1, min(MAX_SHARDS, count, math.ceil(count * height * width * 3 / SHARD_BYTES)))
    rows = tf.data.Dataset.from_tensor_slices((np.arange(count, dtype=np.int64), paths))
    rows = rows.map(lambda i, p: (i, tf.io.serialize_tensor(decode(p))), num_parallel_calls=AUTOTUNE,
                    deterministic=True)
    rows = rows.ignore_errors().batch(256).prefetch(2)  # a bad file is found by its missing row below
    written = np.zeros(count, dtype=bool)
    size = 0
    writers = [tf.io.TFRecordWriter(str(folder / shard_name(s, shards))) for s in range(shards)]
    try:
        for indices, records in rows.as_numpy_iterator():
            for index, record in zip(indices, records):
                writers[index % shards].write(record)
                size += len(record)
            written[indices] = True
    finally:
        for writer in writers:
            writer.close()
    missing = np.flatnonzero(~written)
    if len(missing):
        raise ImageFileError({paths[i]: decode_check(paths[i]) or "TensorFlow cannot decode it (PIL can)"
                              for i in missing})
    return {"format": PACK_FORMAT, "faces": count, "shards": shards, "bytes": size,
            "load_size": None if load_size is None else list(load_size),
            "pack_seconds": round(time.perf_counter() - started, 1)}


def read_pack(folder: str | Path, meta: dict, *, training: bool, seed: int | None = None,
              cycle: int = READ_CYCLE) -> tf.data.Dataset:
    """(row index int64, uint8 image) of every face of the pack in ``folder``: in the manifest's order, or
    (``training``) from ``cycle`` shards at a time in a seeded shard order drawn anew each epoch."""
    folder = Path(folder)
    shards = int(meta["shards"])
    files = [str(folder / shard_name(s, shards)) for s in range(shards)]
    order = tf.data.Dataset.from_tensor_slices((np.arange(shards, dtype=np.int64), files))
    if training:
        order = order.shuffle(shards, seed=seed, reshuffle_each_iteration=True)
    width = min(shards, cycle) if training else shards  # all in turn: row r is record r // S of shard r % S

    def records(shard, file):
        return tf.data.TFRecordDataset(file, buffer_size=1 << 20).enumerate().map(
            lambda k, record: (shard + shards * k, record))

    rows = order.interleave(records, cycle_length=width, block_length=1, num_parallel_calls=min(width, cycle),
                            deterministic=True)
    size = meta.get("load_size")

    def parse(index, record):
        image = tf.io.parse_tensor(record, tf.uint8)
        image.set_shape([None, None, 3] if size is None else [size[0], size[1], 3])
        return index, image

    return rows.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True)
