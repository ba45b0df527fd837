"""The tf.data backend's flip and random crop (``augment_tf.crop_batch``): whole-pixel windows,
the same pixels by the NumPy and the pure-graph path, and a flip equal to the warp's mirror."""

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


@pytest.mark.parametrize("warp", ["opencv", "tf"])
def test_random_windows_are_the_pixels_at_the_drawn_offsets(images, warp):
    out = augment_tf.crop_batch(images, (9, 8), random=True, seed=SEED, warp=warp).numpy()
    source = images.numpy()
    # The same draws crop_batch makes: every window is a plain slice of its image (no interpolation,
    # no black rows or columns where a window touches the far edge).
    tops = np.floor(augment_tf._uniform(SEED, [32], 0.0, 5.0, 8).numpy()).astype(int)
    lefts = np.floor(augment_tf._uniform(SEED, [32], 0.0, 4.0, 9).numpy()).astype(int)
    assert tops.max() == 4 and lefts.max() == 3, "the draws should reach the far edges"
    expected = np.stack([source[i, t:t + 9, left:left + 8] for i, (t, left) in enumerate(zip(tops, lefts))])
    np.testing.assert_array_equal(out, expected)


def test_flip_in_the_crop_copy_is_the_warps_mirror(images):
    spec = AugmentSpec(horizontal_flip=True)
    warped = augment_tf.warp_batch(images, spec, SEED).numpy()
    flips = augment_tf.flip_draws(SEED, 32)
    assert 0 < int(tf.reduce_sum(tf.cast(flips, tf.int32))) < 32
    for warp in ("opencv", "tf"):
        mirrored = augment_tf.crop_batch(images, (13, 11), random=False, flip=flips, warp=warp).numpy()
        np.testing.assert_array_equal(mirrored, warped)


def test_flip_and_random_crop_agree_between_paths_and_finish_as_float(images):
    spec = AugmentSpec(horizontal_flip=True, resize_to=13, crop_size=9, random_crop=True, brightness_range=(0.8, 1.2))
    out = {warp: augment_tf.finish_batch(images, spec, (9, 9), True, SEED, warp=warp).numpy()
           for warp in ("opencv", "tf")}
    np.testing.assert_array_equal(out["opencv"], out["tf"])
    assert out["opencv"].shape == (32, 9, 9, 3) and out["opencv"].dtype == np.float32
    assert 0.0 <= out["opencv"].min() and out["opencv"].max() <= 1.0
