"""Both backends (ImageDataGenerator, tf.data) on UTKFace-layout fixtures and real UTKFace:
same labels, same pixels with augmentation off, matching augmentation distributions, seeds."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from agegender_tf.binning import LIFE_STAGES
from agegender_tf.data.readers import read_dataset
from agegender_tf.experiments.presets import get_augment_preset
from agegender_tf.pipelines.generator import make_generator
from agegender_tf.pipelines.spec import AugmentSpec
from agegender_tf.pipelines.tfdata import make_dataset
from tests.fixtures import write_jpeg


@pytest.fixture(scope="module")
def utk_fixture(tmp_path_factory):
    """Twelve 48x48 JPEGs named and laid out like UTKFace/ (age_gender_race_date.jpg.chip.jpg)."""
    root = tmp_path_factory.mktemp("utk")
    for i in range(12):
        write_jpeg(root / "UTKFace" / f"{5 + 7 * i}_{i % 2}_{i % 5}_2017011{i:02d}.jpg.chip.jpg", size=48, seed=i)
    return read_dataset("utkface", root).manifest


def _first(pipeline):
    return next(iter(pipeline)) if not hasattr(pipeline, "iterator") else pipeline[0]


def _np(labels):
    return {k: np.asarray(v) for k, v in labels.items()} if isinstance(labels, dict) else np.asarray(labels)


@pytest.mark.parametrize("outputs", [("gender",), ("gender", "age_group", "age")])
def test_no_augmentation_gives_same_pixels_and_labels(utk_fixture, outputs):
    spec = get_augment_preset("transfer_vgg16_resnet50").disabled()
    kw = dict(image_size=48, batch_size=12, outputs=outputs, binning=LIFE_STAGES, training=False)
    x_tf, y_tf = _first(make_dataset(utk_fixture, spec, **kw))
    x_idg, y_idg = _first(make_generator(utk_fixture, spec, **kw))
    np.testing.assert_array_equal(np.asarray(x_tf), x_idg)
    y_tf, y_idg = _np(y_tf), _np(y_idg)
    if len(outputs) == 1:
        np.testing.assert_array_equal(y_tf, y_idg)
        np.testing.assert_array_equal(y_tf, (utk_fixture["gender"] == "male").astype(int))
    else:
        assert set(y_tf) == set(y_idg) == set(outputs)
        for name in outputs:
            np.testing.assert_array_equal(y_tf[name], y_idg[name])
        np.testing.assert_allclose(y_tf["age"], utk_fixture["age"])


@pytest.mark.parametrize("preset", ["cnn_lstm", "gra_net", "cnn_rnn_ensemble"])
def test_resize_and_crop_agree_within_one_level(utk_fixture, preset):
    spec = get_augment_preset(preset).disabled()
    kw = dict(image_size=32, batch_size=12, training=False)
    x_tf, _ = _first(make_dataset(utk_fixture, spec, **kw))
    x_idg, _ = _first(make_generator(utk_fixture, spec, **kw))
    assert x_tf.shape == x_idg.shape == (12, 32, 32, 3)
    diff = np.abs(np.asarray(x_tf) - x_idg) * 255  # rescale mode: back to pixel levels
    assert diff.max() <= 1.01 and diff.mean() < 0.5
    assert 0.0 <= x_idg.min() and x_idg.max() <= 1.0


def test_validation_split_subsets_match(utk_fixture):
    spec = get_augment_preset("transfer_vgg16_resnet50")
    for subset, rows in (("validation", 3), ("training", 9)):
        kw = dict(image_size=48, batch_size=16, training=False, subset=subset)
        _, y_tf = _first(make_dataset(utk_fixture, spec, **kw))
        _, y_idg = _first(make_generator(utk_fixture, spec, **kw))
        assert len(y_idg) == rows
        np.testing.assert_array_equal(np.asarray(y_tf), y_idg)


def test_seeded_runs_repeat_and_epochs_differ(utk_fixture):
    spec = get_augment_preset("transfer_vgg16_resnet50")
    kw = dict(image_size=48, batch_size=6, training=True, seed=3)
    a = [np.asarray(x) for x, _ in make_dataset(utk_fixture, spec, **kw)]
    ds = make_dataset(utk_fixture, spec, **kw)
    b = [np.asarray(x) for x, _ in ds]
    c = [np.asarray(x) for x, _ in ds]
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(b[0], c[0])
    g1, g2 = make_generator(utk_fixture, spec, **kw), make_generator(utk_fixture, spec, **kw)
    np.testing.assert_array_equal(g1[1][0], g2[1][0])
    g1.on_epoch_end()
    assert not np.array_equal(g1[1][0], g2[1][0])


def _bar_manifest(tmp_path, n=48):
    """Grey squares with a centred horizontal bar, left half darker: orientation and flips measurable."""
    image = np.full((64, 64, 3), 60, np.uint8)
    image[:, 32:] = 120
    image[30:34, 16:48] = 255
    paths = []
    for i in range(n):
        path = tmp_path / f"bar_{i}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return pd.DataFrame({"path": paths, "age": 30.0, "age_group": None, "gender": "male", "subject": "s",
                         "source": "synthetic"})


def _bar_angle(img):
    """Absolute angle (degrees) of the bright bar from second moments of its pixels."""
    ys, xs = np.nonzero(img[..., 0] > 200)
    cov = np.cov(np.stack([xs, ys]))
    return abs(np.degrees(0.5 * np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1])))


def _augmented(manifest, spec, backend, seed):
    kw = dict(image_size=64, batch_size=len(manifest), training=True, seed=seed)
    if backend == "tfdata":
        return np.concatenate([np.asarray(x) for x, _ in make_dataset(manifest, spec, **kw)])
    return make_generator(manifest, spec, **kw)[0][0]


def test_augmentation_distributions_agree(tmp_path):
    manifest = _bar_manifest(tmp_path, 64)
    rescale = dict(preprocess="rescale")
    flip = AugmentSpec(horizontal_flip=True, **rescale)
    rotate = AugmentSpec(rotation_range=30.0, **rescale)
    bright = AugmentSpec(brightness_range=(0.5, 1.0), **rescale)
    stats = {}
    for backend in ("tfdata", "idg"):
        flipped = _augmented(manifest, flip, backend, 1)
        flip_rate = float(np.mean(flipped[:, 5, 5, 0] > flipped[:, 5, 58, 0]))
        angles = np.array([_bar_angle(x * 255) for x in _augmented(manifest, rotate, backend, 2)])
        means = _augmented(manifest, bright, backend, 3).mean(axis=(1, 2, 3))
        stats[backend] = (flip_rate, angles, means)
    for backend, (flip_rate, angles, means) in stats.items():
        assert 0.3 < flip_rate < 0.7, backend
        assert angles.max() <= 31.5 and angles.max() > 20, backend
        assert 10 < angles.mean() < 20, backend  # |U(-30, 30)| has mean 15
    t_angles, i_angles = stats["tfdata"][1], stats["idg"][1]
    assert abs(t_angles.mean() - i_angles.mean()) < 5
    t_means, i_means = stats["tfdata"][2], stats["idg"][2]
    assert abs(t_means.mean() - i_means.mean()) < 0.04 and abs(t_means.std() - i_means.std()) < 0.03


def test_tf_warp_matches_opencv_warp(tmp_path):
    manifest = _bar_manifest(tmp_path, 8)
    spec = AugmentSpec(rotation_range=30.0, width_shift_range=0.1, zoom_range=(0.9, 1.1))
    kw = dict(image_size=64, batch_size=8, training=True, seed=5)
    x_cv = next(iter(make_dataset(manifest, spec, warp="opencv", **kw)))[0].numpy()
    x_tf = next(iter(make_dataset(manifest, spec, warp="tf", **kw)))[0].numpy()
    assert np.mean(np.abs(x_cv - x_tf) * 255 > 8) < 0.02  # same transforms; only edge pixels differ


def test_real_utkface_through_both_backends(utkface_root):
    manifest = read_dataset("utkface", utkface_root).manifest.head(8)
    spec = get_augment_preset("transfer_vgg16_resnet50")
    kw = dict(image_size=224, batch_size=8, outputs=("gender", "age"), training=True, seed=0)
    x_tf, y_tf = _first(make_dataset(manifest, spec, **kw))
    x_idg, y_idg = _first(make_generator(manifest, spec, **kw))
    assert x_tf.shape == x_idg.shape == (8, 224, 224, 3)
    for x in (np.asarray(x_tf), x_idg):  # VGG16 caffe range
        assert -124 <= x.min() and x.max() <= 152
    assert sorted(np.asarray(y_tf["age"])) == sorted(y_idg["age"])
