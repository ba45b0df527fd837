"""SVM and K-Means baselines of paper 000 Table I on tiny generated faces-like images."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from agegender_tf.models.baselines import KMeansClassifier, PixelFeatures, kmeans_baseline, svm_baseline


def _two_class_images(count=60, size=24, seed=0):
    """Class 0: bright top half; class 1: bright bottom half; plus noise (0..255 uint8)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=count)
    images = rng.integers(0, 60, size=(count, size, size, 3)).astype(np.int32)
    half = size // 2
    for image, label in zip(images, labels):
        rows = slice(0, half) if label == 0 else slice(half, size)
        image[rows] += 150
    return images.clip(0, 255).astype(np.uint8), labels


def test_pixel_features_resize_flatten_and_scale():
    images, _ = _two_class_images(count=3)
    features = PixelFeatures(size=(8, 6)).fit_transform(images)
    assert features.shape == (3, 8 * 6 * 3)
    assert 0.0 <= features.min() and features.max() <= 1.0
    assert PixelFeatures(size=(8, 6), grayscale=True).fit_transform(images).shape == (3, 48)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        PixelFeatures().fit_transform(np.zeros((3, 8, 8)))


def test_svm_on_pixels_separates_held_out_images():
    images, labels = _two_class_images(count=80)
    model = svm_baseline(size=(12, 12), seed=0).fit(images[:60], labels[:60])
    predicted = model.predict(images[60:])
    assert accuracy_score(labels[60:], predicted) >= 0.9


def test_principal_components_shrink_the_features_and_keep_the_classes_apart():
    images, labels = _two_class_images(count=80)
    model = svm_baseline(size=(12, 12), seed=0, components=10).fit(images[:60], labels[:60])
    assert model.named_steps["components"].transform(np.zeros((2, 12 * 12 * 3))).shape == (2, 10)
    assert accuracy_score(labels[60:], model.predict(images[60:])) >= 0.9
    # Fewer samples than components: as many components as samples.
    few = kmeans_baseline(n_clusters=2, size=(12, 12), seed=0, components=100).fit(images[:6], labels[:6])
    assert few.named_steps["components"].pca_.n_components_ == 6


def test_kmeans_maps_clusters_to_majority_labels():
    features = np.array([[0.0], [0.1], [0.2], [10.0], [10.1], [10.2], [10.3]])
    labels = np.array(["female", "female", "male", "male", "male", "male", "female"])
    classifier = KMeansClassifier(n_clusters=2, seed=0).fit(features, labels)
    assert sorted(classifier.cluster_labels_) == ["female", "male"]
    np.testing.assert_array_equal(classifier.predict(np.array([[0.05], [10.05]])), ["female", "male"])
    with pytest.raises(ValueError, match="at least"):
        KMeansClassifier(n_clusters=5).fit(features[:3], labels[:3])


def test_kmeans_baseline_is_scored_like_a_classifier_and_deterministic():
    images, labels = _two_class_images(count=60, seed=1)
    first = kmeans_baseline(n_clusters=4, size=(12, 12), seed=0).fit(images, labels).predict(images)
    second = kmeans_baseline(n_clusters=4, size=(12, 12), seed=0).fit(images, labels).predict(images)
    np.testing.assert_array_equal(first, second)
    assert f1_score(labels, first, average="macro") >= 0.9


def test_baselines_on_cnn_features():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="gender")(x))
    images, labels = _two_class_images(count=40, seed=2)
    scaled = images.astype(np.float32) / 255.0
    svm = svm_baseline(features="cnn", model=model, seed=0).fit(scaled, labels)
    assert svm.named_steps["features"].transform(scaled[:2]).shape == (2, 4)
    assert set(svm.predict(scaled)) <= {0, 1}
    kmeans = kmeans_baseline(n_clusters=2, features="cnn", model=model, layer="features", seed=0).fit(scaled, labels)
    assert len(kmeans.predict(scaled)) == 40
    with pytest.raises(ValueError, match="needs a Keras model"):
        svm_baseline(features="cnn")
    with pytest.raises(ValueError, match="'pixels' or 'cnn'"):
        kmeans_baseline(features="hog")
