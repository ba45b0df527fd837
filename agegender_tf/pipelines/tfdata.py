"""Backend 2: a ``tf.data`` pipeline for an ``AugmentSpec`` (DESIGN.md, "Augmentation").

Parallel decode (PNG, grayscale and CMYK convert to RGB), resize to the load size, an optional
cache of the decoded uint8 images, seeded shuffle, batching, then augmentation mapped on the
batched dataset (not inside the model) and prefetch. Every file is validated up front
(``checks.py``): a bad file stops the build with its name; nothing is skipped. Above a size the
decoded faces stream from a pack on disk instead, through a bounded shuffle buffer (``stream.py``).
"""

from __future__ import annotations

import pandas as pd
import tensorflow as tf

from agegender_tf.pipelines.augment_tf import finish_batch
from agegender_tf.pipelines.checks import require_readable
from agegender_tf.pipelines.framing import FaceCrop, box_array, framed_face, photo_degrade
from agegender_tf.pipelines.spec import AugmentSpec
from agegender_tf.pipelines.stream import STREAM_SHUFFLE_BUFFER, choose_mode, ensure_pack, read_pack
from agegender_tf.pipelines.targets import encode_targets, split_subset

AUTOTUNE = tf.data.AUTOTUNE


def decode_file(path, load_size):
    """Read and decode one image file to uint8 RGB at ``load_size`` (H, W; None: its own size).

    JPEGs decode with the accurate integer DCT, which gives PIL's (hence the generator's) pixels.
    """
    data = tf.io.read_file(path)
    tf.debugging.Assert(tf.strings.length(data) > 0, ["empty image file:", path])
    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8),
    )
    image.set_shape([None, None, 3])
    return image if load_size is None else resize_to_load_size(image, load_size)


def resize_to_load_size(image, load_size):
    """uint8 RGB [H, W, 3], or a batch [N, H, W, 3] of one size, resized to ``load_size`` (H, W) as
    training loads it (``agegender_tf.serving.predictor`` resizes face crops with it too)."""
    shape = tf.shape(image)
    height, width = shape[-3], shape[-2]

    def resize(antialias):
        # PIL's bilinear (the generator's) filters when shrinking; TF's antialias kernel matches it
        # but is ~10x slower, so growing images (UTKFace 200 -> 224) take the plain bilinear path.
        resized = tf.image.resize(image, load_size, method="bilinear", antialias=antialias)
        return tf.saturate_cast(resized + 0.5, tf.uint8)  # round half up, as PIL does

    same = tf.logical_and(tf.equal(height, load_size[0]), tf.equal(width, load_size[1]))
    shrinks = tf.logical_or(height > load_size[0], width > load_size[1])
    resized = tf.cond(same, lambda: image, lambda: tf.cond(shrinks, lambda: resize(True), lambda: resize(False)))
    resized.set_shape(image.shape[:-3].concatenate([load_size[0], load_size[1], 3]))
    return resized


def _in_memory(paths, labels, boxes, load_size, shuffle, seed, buffer, cache):
    """(image, labels) of every row, decoded; with ``cache`` kept in memory (or in that file) and then
    shuffled over ``buffer`` faces (the whole set by default: an exact shuffle)."""
    framed = boxes is not None
    ds = tf.data.Dataset.from_tensor_slices((paths, boxes, labels) if framed else (paths, labels))
    if shuffle and not cache:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if framed:  # the whole image is kept: the face is cut after the cache, jittered anew each epoch
        ds = ds.map(lambda p, b, y: ((decode_file(p, None), b), y), num_parallel_calls=AUTOTUNE, deterministic=True)
    else:
        ds = ds.map(lambda p, y: (decode_file(p, load_size), y), num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache() if cache is True else ds.cache(str(cache))
        if shuffle:
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return ds


def _streamed(paths, labels, boxes, load_size, shuffle, seed, buffer, stream_dir):
    """The same elements as ``_in_memory`` read from the pack of ``paths`` (written first where there is
    none, ``stream.ensure_pack``); training shuffles over ``buffer`` faces."""
    framed = boxes is not None
    size = None if framed else load_size
    folder, meta = ensure_pack(paths, lambda p: decode_file(p, size), size, stream_dir)
    ds = read_pack(folder, meta, training=shuffle, seed=seed)
    if shuffle:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    table = tf.nest.map_structure(tf.constant, labels)
    box_table = tf.constant(boxes) if framed else None

    def rejoin(index, image):
        y = tf.nest.map_structure(lambda column: tf.gather(column, index), table)
        return ((image, tf.gather(box_table, index)) if framed else image), y

    return ds.map(rejoin, num_parallel_calls=AUTOTUNE, deterministic=True)


def make_dataset(
    manifest: pd.DataFrame,
    spec: AugmentSpec,
    *,
    image_size,
    batch_size: int,
    outputs=("gender",),
    binning=None,
    training: bool,
    seed: int | None = None,
    cache: bool | str = True,
    drop_remainder: bool = False,
    subset: str | None = None,
    shuffle_buffer: int | None = None,
    validate: bool = True,
    warp: str = "opencv",
    face_crop: FaceCrop | None = None,
    shard: tuple[int, int] | None = None,
    mode: str | None = None,
    stream_dir=None,
) -> tf.data.Dataset:
    """Batches of (float32 images [B, H, W, 3] preprocessed by ``spec``, labels).

    Labels are an array for one output, else a dict keyed by output name (``targets.py``).
    ``training`` turns on augmentation, random crops and shuffling. ``cache``: True keeps the
    decoded uint8 images in memory (load size, before augmentation), a string caches to that
    file, False decodes every epoch. ``shuffle_buffer`` defaults to the whole set (an exact
    shuffle; with the cache it holds a second copy of the images, so lower it for big sets).
    ``subset`` takes paper 003's "training"/"validation" rows (``split_subset``). ``validate=False``
    skips the up-front decode check; only for manifests already checked in this process.
    ``warp``: "opencv" (fast) or "tf" (pure graph) for rotation/shift/zoom (``augment_tf``).
    ``face_crop``: cut each face from the detector's box in ``manifest`` (``framing.py``) as the
    predictor does, jittered at training; the decoded images are then cached at their own size.
    A spec's photo degradations (``AugmentSpec.photo_augments``) run per training image before batching.
    ``shard=(i, n)``: only every n-th file from the i-th (worker i of n, ``experiments.workers``), taken
    before decoding; ``batch_size`` stays the global batch, which tf.distribute splits over the replicas.
    ``mode``: "memory" (the above), "stream" (``stream.py``: the decoded faces packed once on disk under
    ``stream_dir``, default ``stream.stream_root()``, read back through a shuffle buffer of
    ``shuffle_buffer`` faces, default ``STREAM_SHUFFLE_BUFFER``; the pack is the validation) or "auto"
    (None: ``stream.choose_mode`` by the number of faces). Only ``cache=True`` streams.
    """
    manifest = split_subset(manifest, spec.validation_split, subset)
    if len(manifest) == 0:
        raise ValueError("manifest has no rows")
    targets = encode_targets(manifest, outputs, binning)
    paths = manifest["path"].astype(str).tolist()
    labels = targets[outputs[0]] if len(targets) == 1 else targets
    load_size, out_size = spec.sizes(image_size)
    framed = face_crop is not None
    boxes = box_array(manifest) if framed else None
    if shard is not None:  # this worker's files: every n-th from the i-th, before anything is decoded
        index, count = shard
        paths = paths[index::count]
        labels = tf.nest.map_structure(lambda column: column[index::count], labels)
        boxes = None if boxes is None else boxes[index::count]
    if cache is True and choose_mode(mode, len(paths), load_size) == "stream":
        ds = _streamed(paths, labels, boxes, load_size, training, seed,
                       shuffle_buffer or STREAM_SHUFFLE_BUFFER, stream_dir)
    else:
        if validate:
            require_readable(paths)
        ds = _in_memory(paths, labels, boxes, load_size, training, seed, shuffle_buffer or len(paths), cache)
    degrade = training and spec.photo_augments
    if framed or degrade:
        image_seeds = tf.data.Dataset.random(seed=None if seed is None else seed + 1,
                                             rerandomize_each_iteration=True).batch(2)

        def per_image(x, y, image_seed):
            image = resize_to_load_size(framed_face(x[0], x[1], face_crop, training, image_seed), load_size) \
                if framed else x
            return (photo_degrade(image, spec, image_seed) if degrade else image), y

        ds = tf.data.Dataset.zip((ds, image_seeds)).map(lambda xy, s: per_image(xy[0], xy[1], s),
                                                        num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, batch_seeds))

    def finish(batch, batch_seed):
        images, y = batch
        images = finish_batch(images, spec, out_size, training, batch_seed, warp)
        return images, y

    ds = ds.map(finish, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE)
