"""The tf.data backend's flip and random crop (``augment_tf.crop_batch``): whole-pixel windows at
the drawn offsets, and a flip equal to the warp's mirror (paper 000 sec. VII, paper 002 sec. 6)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from agegender_tf.pipelines import augment_tf
from agegender_tf.pipelines.spec import AugmentSpec

SEED = tf.constant([3, 7], tf.int64)


@pytest.fixture(scope="module")
def images():
    return tf.constant(np.random.default_rng(0).integers(0, 256, (32, 13, 11, 3), dtype=np.uint8))


def _offsets(batch, room_h, room_w):
    """The draws crop_batch makes for the top and left of each window."""
    tops = np.floor(augment_tf._uniform(SEED, [batch], 0.0, float(room_h), 8).numpy()).astype(int)
    lefts = np.floor(augment_tf._uniform(SEED, [batch], 0.0, float(room_w), 9).numpy()).astype(int)
    return tops, lefts


def test_random_windows_are_the_pixels_at_the_drawn_offsets(images):
    out = augment_tf.crop_batch(images, (9, 8), random=True, seed=SEED).numpy()
    tops, lefts = _offsets(32, 5, 4)
    # Windows touching the far edges are plain slices too (no interpolation, no black last row/column).
    assert tops.max() == 4 and lefts.max() == 3, "the draws should reach the far edges"
    source = images.numpy()
    expected = np.stack([source[i, t:t + 9, left:left + 8] for i, (t, left) in enumerate(zip(tops, lefts))])
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("load, crop", [(72, 64), (256, 227), (227, 227)])
def test_mirrored_windows_at_real_sizes_are_exact_to_the_last_pixel(load, crop):
    """The window sizes the presets use: every offset up to the far edge, mirrored or not, is a plain
    slice of the source (crop_and_resize's box arithmetic never rounds past the last pixel)."""
    batch = 2 * (load - crop + 1) if load > crop else 4
    source = np.random.default_rng(1).integers(1, 256, (batch, load, load, 3), dtype=np.uint8)
    flips = tf.constant(np.arange(batch) % 2 == 1)
    out = augment_tf.crop_batch(tf.constant(source), (crop, crop), random=True, seed=SEED, flip=flips).numpy()
    tops, lefts = _offsets(batch, load - crop + 1, load - crop + 1)
    mirrored = np.where(flips.numpy()[:, None, None, None], source[:, :, ::-1], source)
    expected = np.stack([mirrored[i, t:t + crop, left:left + crop] for i, (t, left) in enumerate(zip(tops, lefts))])
    assert out.dtype == np.float32 and out.min() >= 1  # no extrapolated (black) pixel anywhere
    np.testing.assert_array_equal(out, expected)


def test_flip_in_the_crop_copy_is_the_warps_mirror(images):
    warped = augment_tf.warp_batch(images, AugmentSpec(horizontal_flip=True), SEED).numpy()
    flips = augment_tf.flip_draws(SEED, 32)
    assert 0 < int(tf.reduce_sum(tf.cast(flips, tf.int32))) < 32
    mirrored = augment_tf.crop_batch(images, (13, 11), random=False, flip=flips).numpy()
    np.testing.assert_array_equal(mirrored, warped)


def test_flip_then_random_crop_finishes_as_float(images):
    spec = AugmentSpec(horizontal_flip=True, resize_to=13, crop_size=9, random_crop=True, brightness_range=(0.8, 1.2))
    out = augment_tf.finish_batch(images, spec, (9, 9), True, SEED).numpy()
    assert out.shape == (32, 9, 9, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    # Without brightness the values are exactly the mirrored image's windows, rescaled.
    plain = augment_tf.finish_batch(images, spec.replace(brightness_range=None), (9, 9), True, SEED).numpy()
    flips = augment_tf.flip_draws(SEED, 32).numpy()
    tops, lefts = _offsets(32, 5, 3)
    source = images.numpy()
    mirrored = np.where(flips[:, None, None, None], source[:, :, ::-1], source)
    expected = np.stack([mirrored[i, t:t + 9, left:left + 9] for i, (t, left) in enumerate(zip(tops, lefts))])
    np.testing.assert_allclose(plain, expected / 255.0, rtol=0, atol=1e-6)
