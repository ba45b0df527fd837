"""Value mapping applied last, shared by both backends and by inference.

Modes (the ``preprocess`` field of ``AugmentSpec`` and of a model's preprocessing dict):
``rescale`` x/255 -> [0, 1] (paper 003's test generator, papers 000/001/002/004);
``vgg16`` / ``resnet50`` Keras' ``preprocess_input`` (caffe mode: RGB->BGR, minus the ImageNet
mean; paper 003); ``standardize`` per-image zero mean, unit variance.
"""

from __future__ import annotations

import numpy as np

# keras.applications.imagenet_utils caffe-mode means, BGR order.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


def apply_preprocess(images, mode: str):
    """Map float images in 0..255 (HWC or NHWC; numpy array or tf tensor) by ``mode``."""
    if isinstance(images, np.ndarray):
        return _numpy(images.astype(np.float32, copy=False), mode)
    import tensorflow as tf

    return _tensorflow(tf.cast(images, tf.float32), mode)


def _numpy(x: np.ndarray, mode: str) -> np.ndarray:
    if mode == "rescale":
        return x / np.float32(255.0)
    if mode in ("vgg16", "resnet50"):
        return x[..., ::-1] - np.asarray(IMAGENET_BGR_MEAN, dtype=np.float32)
    if mode == "standardize":
        axes = tuple(range(x.ndim - 3, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        std = np.maximum(x.std(axis=axes, keepdims=True), 1.0 / np.sqrt(x[..., 0].size * 3))
        return ((x - mean) / std).astype(np.float32)
    raise ValueError(f"unknown preprocess mode {mode!r}")


def _tensorflow(x, mode: str):
    import tensorflow as tf

    if mode == "rescale":
        return x / 255.0
    if mode in ("vgg16", "resnet50"):
        return tf.reverse(x, axis=[-1]) - tf.constant(IMAGENET_BGR_MEAN, dtype=tf.float32)
    if mode == "standardize":
        axes = [-3, -2, -1]
        mean = tf.reduce_mean(x, axis=axes, keepdims=True)
        pixels = tf.cast(tf.reduce_prod(tf.shape(x)[-3:]), tf.float32)
        std = tf.maximum(tf.math.reduce_std(x, axis=axes, keepdims=True), 1.0 / tf.sqrt(pixels))
        return (x - mean) / std
    raise ValueError(f"unknown preprocess mode {mode!r}")
