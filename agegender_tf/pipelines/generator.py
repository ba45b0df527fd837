"""Backend 1: Keras' ``ImageDataGenerator`` over a manifest (paper 003 sec. 3.3, Fig. 4.1-4.2).

Keras 3 keeps ``ImageDataGenerator`` only at ``tf.keras.preprocessing.image`` (deprecated). It
draws and applies the rotation/shift/zoom/flip/brightness of the spec; the resize-then-crop,
noise and value mapping it lacks are applied by ``GeneratorPipeline`` with the same code paths as
the tf.data backend (``preprocess.apply_preprocess``). Labels are encoded first
(``targets.encode_targets``) and passed as ``class_mode="raw"`` columns.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from agegender_tf.pipelines.checks import require_readable
from agegender_tf.pipelines.preprocess import apply_preprocess
from agegender_tf.pipelines.spec import AugmentSpec
from agegender_tf.pipelines.targets import encode_targets


def image_data_generator(spec: AugmentSpec, training: bool) -> tf.keras.preprocessing.image.ImageDataGenerator:
    """The ``ImageDataGenerator`` paper 003 would write for ``spec`` (no augmentation unless training)."""
    options = dict(validation_split=spec.validation_split, dtype="float32")
    if training:
        options.update(
            rotation_range=spec.rotation_range, width_shift_range=spec.width_shift_range,
            height_shift_range=spec.height_shift_range, zoom_range=list(spec.zoom_range),
            brightness_range=None if spec.brightness_range is None else list(spec.brightness_range),
            horizontal_flip=spec.horizontal_flip, fill_mode=spec.fill_mode,
        )
    return tf.keras.preprocessing.image.ImageDataGenerator(**options)


class GeneratorPipeline(keras.utils.PyDataset):
    """Batches from a ``DataFrameIterator``, cropped, noised and preprocessed like tf.data's.

    IDG gets no seed of its own (it would reseed per batch count); seeded runs reseed NumPy's global
    generator per (epoch, batch) before IDG draws, so the sequence is reproducible; use with
    ``workers=1`` (the default).
    """

    def __init__(self, iterator, spec: AugmentSpec, out_size, outputs, training: bool, seed: int | None):
        super().__init__()
        self.iterator = iterator
        self.spec = spec
        self.out_size = tuple(out_size)
        self.outputs = tuple(outputs)
        self.training = training
        self.seed = seed
        self.epoch = 0
        self._reshuffle()

    def __len__(self):
        return len(self.iterator)

    def _rng(self, index):
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([self.seed, self.epoch, index + 1])

    def __getitem__(self, index):
        rng = self._rng(index)
        if self.seed is not None:
            np.random.seed(int(rng.integers(2**32)))
        images, raw = self.iterator[index]
        images = crop_images(images, self.out_size, random=self.training and self.spec.random_crop, rng=rng)
        if self.training and self.spec.noise_std:
            images = np.clip(images + rng.normal(0.0, self.spec.noise_std, images.shape), 0, 255).astype(np.float32)
        images = apply_preprocess(images, self.spec.preprocess)
        return images, self._labels(raw)

    def _labels(self, raw):
        raw = np.asarray(raw)
        if raw.ndim == 1:
            raw = raw[:, None]
        labels = {name: raw[:, i].astype(np.float32 if name == "age" else np.int32)
                  for i, name in enumerate(self.outputs)}
        return labels[self.outputs[0]] if len(self.outputs) == 1 else labels

    def _reshuffle(self):
        # IDG draws the epoch's order from NumPy's global generator: seed it per epoch.
        if self.seed is not None:
            np.random.seed(int(self._rng(-1).integers(2**32)))
        self.iterator.on_epoch_end()

    def on_epoch_end(self):
        self.epoch += 1
        self._reshuffle()


def crop_images(images: np.ndarray, out_size, random: bool, rng: np.random.Generator) -> np.ndarray:
    """Centre crop, or one random window per image, of [B, H, W, C] to ``out_size``."""
    out_h, out_w = out_size
    height, width = images.shape[1:3]
    if (height, width) == (out_h, out_w):
        return images
    if not random:
        top, left = (height - out_h) // 2, (width - out_w) // 2
        return images[:, top:top + out_h, left:left + out_w]
    tops = rng.integers(0, height - out_h + 1, len(images))
    lefts = rng.integers(0, width - out_w + 1, len(images))
    return np.stack([img[top:top + out_h, left:left + out_w] for img, top, left in zip(images, tops, lefts)])


def make_generator(
    manifest: pd.DataFrame,
    spec: AugmentSpec,
    *,
    image_size,
    batch_size: int,
    outputs=("gender",),
    binning=None,
    training: bool,
    seed: int | None = None,
    subset: str | None = None,
    validate: bool = True,
) -> GeneratorPipeline:
    """A ``keras.utils.PyDataset`` of (float32 images, labels) built on ``flow_from_dataframe``.

    Same arguments, label encoding and value range as ``tfdata.make_dataset``. ``subset`` is
    IDG's "training"/"validation" split by ``spec.validation_split`` (paper 003: 0.3).
    Unreadable files stop the build with their names (IDG would drop missing ones with a warning).
    """
    if len(manifest) == 0:
        raise ValueError("manifest has no rows")
    if subset is not None and not spec.validation_split:
        raise ValueError("subset needs a spec with validation_split > 0")
    targets = encode_targets(manifest, outputs, binning)
    frame = pd.DataFrame({"path": manifest["path"].astype(str).to_numpy()})
    columns = []
    for name, values in targets.items():
        frame[f"target_{name}"] = values
        columns.append(f"target_{name}")
    if validate:
        require_readable(frame["path"])
    load_size, out_size = spec.sizes(image_size)
    iterator = image_data_generator(spec, training).flow_from_dataframe(
        frame, x_col="path", y_col=columns[0] if len(columns) == 1 else columns,
        target_size=load_size, color_mode="rgb", class_mode="raw", batch_size=batch_size,
        shuffle=training, seed=None, subset=subset, interpolation="bilinear", validate_filenames=False,
    )
    return GeneratorPipeline(iterator, spec, out_size, tuple(targets), training, seed)
