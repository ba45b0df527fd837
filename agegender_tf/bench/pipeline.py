"""``python -m agegender_tf.bench pipeline --root DIR [--json] [--images N]``: paper 003's augmentation
(``transfer_vgg16_resnet50`` preset: rotation 30, shifts 0.2, flip, VGG16 preprocess_input) at 224x224
on the same N UTKFace images through ImageDataGenerator and tf.data in one process, alternating; prints
the median images/second of each. Goal: tf.data >= 5x.
"""

from __future__ import annotations

import time

from agegender_tf.bench import machine


def _consume(batches) -> tuple[int, float]:
    start = time.perf_counter()
    seen = 0
    for images, _ in batches:
        seen += int(images.shape[0])
    return seen, time.perf_counter() - start


def bench_pipeline(root, images: int = 512, batch_size: int = 32, image_size: int = 224, seed: int = 0,
                   repeats: int = 3) -> dict:
    """Median images/second over ``repeats`` epochs of both backends on the first ``images``
    UTKFace faces (warm-up excluded). tf.data is timed decoding every epoch (``tfdata_img_s``,
    the like-for-like number) and from its cache of decoded images (``tfdata_cached_img_s``)."""
    import numpy as np

    from agegender_tf.data.readers import read_dataset
    from agegender_tf.experiments.presets import AUGMENT_PRESETS
    from agegender_tf.pipelines.checks import require_readable
    from agegender_tf.pipelines.generator import make_generator
    from agegender_tf.pipelines.tfdata import make_dataset

    result = read_dataset("utkface", root)
    manifest = result.manifest.sort_values("path").head(images).reset_index(drop=True)
    if len(manifest) < images:
        raise ValueError(f"asked for {images} images, {root} has {len(manifest)} usable UTKFace faces")
    spec = AUGMENT_PRESETS["transfer_vgg16_resnet50"]
    start = time.perf_counter()
    require_readable(manifest["path"])
    validate_s = time.perf_counter() - start
    options = dict(image_size=image_size, batch_size=batch_size, outputs=("gender",), training=True, seed=seed,
                   validate=False)

    generator = make_generator(manifest, spec, **options)
    generator[0]  # warm-up: imports SciPy, first PIL decode
    uncached = make_dataset(manifest, spec, cache=False, **options)
    cached = make_dataset(manifest, spec, cache=True, **options)
    for dataset in (uncached, cached):
        for _ in dataset.take(1):  # warm-up: traces the map functions
            pass
    _consume(cached)  # fills the cache
    idg, tfdata, tfdata_cached = [], [], []
    # Rounds alternate the backends so a load change on a shared machine hits both alike.
    for _ in range(repeats):
        generator.on_epoch_end()
        n, s = _consume(generator[i] for i in range(len(generator)))
        idg.append(n / s)
        n, s = _consume(uncached)
        tfdata.append(n / s)
        n, s = _consume(cached)
        tfdata_cached.append(n / s)
    idg_img_s, tfdata_img_s, cached_img_s = (float(np.median(v)) for v in (idg, tfdata, tfdata_cached))
    return {
        "images": int(len(manifest)),
        "image_size": image_size,
        "batch_size": batch_size,
        "preset": "transfer_vgg16_resnet50",
        "repeats": repeats,
        "idg_img_s": round(idg_img_s, 1),
        "tfdata_img_s": round(tfdata_img_s, 1),
        "tfdata_cached_img_s": round(cached_img_s, 1),
        "ratio": round(tfdata_img_s / idg_img_s, 2),
        "ratio_cached": round(cached_img_s / idg_img_s, 2),
        "validate_s": round(validate_s, 2),
        **machine(),
    }
