"""Training faces framed as the predictor frames them: cut around a detector's box, not taken whole.

The predictor finds a face with a detector and cuts the square ``imaging.Framing`` describes around
its box (``serving.faces.training_crop``). A network trained on a dataset's own crops (UTKFace's
aligned 200x200 faces) never sees such a face. With a ``FaceCrop`` the tf.data pipeline cuts every
training, validation and test face from the detector's box kept beside the manifest (columns
``box_x, box_y, box_w, box_h`` in file pixels; NaN where the detector found none, and then the whole
image is used, as the predictor uses a whole crop where it finds no face), with the same square and
the same edge-repeating border, then resizes it as the predictor does (``resize_to_load_size``).
At training the square is jittered (scale, shift, rotation) by as much as the detector's own boxes
vary between near-identical photos (``python -m agegender_tf.bench box-jitter``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from agegender_tf.data.face_boxes import BOX_COLUMNS


@dataclass(frozen=True)
class FaceCrop:
    """How training faces are cut: ``margin``/``shift`` as ``imaging.Framing``; at training the side is
    scaled by ``exp(N(0, scale_std))``, the centre moved by ``N(0, shift_std)`` of the side on each
    axis and the square turned by ``N(0, rotation_std)`` degrees (each draw clipped at 2 standard
    deviations)."""

    margin: float
    shift: float = 0.0
    scale_std: float = 0.0
    shift_std: float = 0.0
    rotation_std: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def jitters(self) -> bool:
        return bool(self.scale_std or self.shift_std or self.rotation_std)


def box_array(manifest) -> np.ndarray:
    """[N, 4] float32 boxes (x, y, w, h) of ``manifest``'s rows; NaN rows mean "no face found"."""
    missing = [c for c in BOX_COLUMNS if c not in manifest.columns]
    if missing:
        raise ValueError(f"framed faces need the detector's boxes beside the manifest (columns {missing} missing)")
    return manifest[list(BOX_COLUMNS)].to_numpy(dtype=np.float32)


def _draws(seed, salt):
    return tf.clip_by_value(
        tf.random.stateless_normal([], seed=tf.random.experimental.stateless_fold_in(seed, salt)), -2.0, 2.0)


def framed_face(image, box, crop: FaceCrop, training: bool, seed=None):
    """uint8 [H, W, 3] -> uint8 [n, n, 3]: the square ``crop`` frames around ``box`` (x, y, w, h), with the
    border repeating edge pixels; the whole image, as it is, where ``box`` is NaN (no face found). Without
    jitter the square is ``serving.faces.training_crop``'s to the pixel (its side and corner rounded the
    same way)."""
    found = tf.reduce_all(tf.math.is_finite(box))
    return tf.cond(found, lambda: _square(image, tf.where(found, box, 0.0), crop, training, seed), lambda: image)


def _square(image, box, crop: FaceCrop, training: bool, seed):
    x, y, w, h = tf.unstack(box)
    side = tf.maximum(w, h)
    size = side * (1.0 + 2.0 * float(crop.margin))
    centre_x, centre_y = x + w / 2.0, y + h / 2.0 + float(crop.shift) * side
    angle = tf.constant(0.0)
    if training and crop.jitters:
        size = size * tf.exp(float(crop.scale_std) * _draws(seed, 1))
        centre_x = centre_x + float(crop.shift_std) * side * _draws(seed, 2)
        centre_y = centre_y + float(crop.shift_std) * side * _draws(seed, 3)
        angle = float(crop.rotation_std) * _draws(seed, 4) * (math.pi / 180.0)
    size = tf.maximum(1.0, tf.round(size))
    left, top = tf.round(centre_x - size / 2.0), tf.round(centre_y - size / 2.0)
    # Output (u, v) reads input (left + c + R(u - c, v - c)), c the square's centre: a pure copy at angle 0.
    c = (size - 1.0) / 2.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    a0, a1, b0, b1 = cos, -sin, sin, cos
    a2 = left + c - a0 * c - a1 * c
    b2 = top + c - b0 * c - b1 * c
    transform = tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])[None]
    n = tf.cast(size, tf.int32)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(image[None], tf.float32), transforms=transform, output_shape=tf.stack([n, n]),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")[0]
    return tf.saturate_cast(tf.round(out), tf.uint8)


def _chance(seed, salt, probability: float):
    draw = tf.random.stateless_uniform([], seed=tf.random.experimental.stateless_fold_in(seed, salt))
    return draw < probability


def _between(seed, salt, low: float, high: float):
    return tf.random.stateless_uniform([], seed=tf.random.experimental.stateless_fold_in(seed, salt),
                                       minval=float(low), maxval=float(high))


def _gaussian_blur(image, sigma):
    radius = 4
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-(offsets ** 2) / (2.0 * sigma ** 2))
    kernel = kernel / tf.reduce_sum(kernel)
    padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    rows = tf.nn.depthwise_conv2d(padded, tf.tile(kernel[:, None, None, None], [1, 1, 3, 1]), [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(rows, tf.tile(kernel[None, :, None, None], [1, 1, 3, 1]), [1, 1, 1, 1], "VALID")[0]


def photo_degrade(image, spec, seed):
    """uint8 [H, W, 3] -> uint8 [H, W, 3]: ``spec``'s degradations of photos that are not studio crops
    (``AugmentSpec.blur_prob`` ...), each drawn on its own from ``seed``."""
    size = tf.shape(image)[:2]
    x = tf.cast(image, tf.float32)
    if spec.blur_prob:
        sigma = _between(seed, 11, *spec.blur_sigma)
        x = tf.cond(_chance(seed, 12, spec.blur_prob), lambda: _gaussian_blur(x, sigma), lambda: x)
    if spec.low_res_prob:
        scale = _between(seed, 13, *spec.low_res_scale)

        def low_res():
            small = tf.maximum(1, tf.cast(tf.round(tf.cast(size, tf.float32) * scale), tf.int32))
            return tf.image.resize(tf.image.resize(x, small, antialias=True), size, method="bilinear")

        x = tf.cond(_chance(seed, 14, spec.low_res_prob), low_res, lambda: x)
    if spec.color_jitter:
        j = float(spec.color_jitter)
        x = tf.image.adjust_saturation(x / 255.0, _between(seed, 15, 1 - j, 1 + j))
        x = tf.image.adjust_hue(x, _between(seed, 16, -j / 10, j / 10))
        x = tf.image.adjust_contrast(x, _between(seed, 17, 1 - j, 1 + j)) * 255.0
    if spec.greyscale_prob:
        x = tf.cond(_chance(seed, 18, spec.greyscale_prob),
                    lambda: tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(x)), lambda: x)
    out = tf.saturate_cast(tf.round(x), tf.uint8)
    if spec.jpeg_prob:
        quality = tf.cast(_between(seed, 19, spec.jpeg_quality[0], spec.jpeg_quality[1] + 1), tf.int32)
        out = tf.cond(_chance(seed, 20, spec.jpeg_prob),
                      lambda: tf.reshape(tf.image.adjust_jpeg_quality(out, quality), tf.shape(out)), lambda: out)
    return out
