"""Non-deep baselines of paper 000 sec. VII (Table I): SVM and K-Means, as scikit-learn pipelines.

Both take images as an array ``(N, H, W, 3)`` and features either from raw pixels
(``PixelFeatures``: resized, flattened, 0..255 scaled to [0, 1]) or from a Keras model's penultimate layer
(``KerasFeatures``). K-Means is unsupervised, so ``KMeansClassifier`` maps every cluster to the
majority training label inside it; it can then be scored with accuracy, precision, recall and F1
like the other models of Table I. ``baseline_predictions`` trains both on a run's train split and
scores its test split (``agegender run cnn_lstm``).

The paper names neither the features nor their size. Both pipelines standardise the features and can
project them on their first principal components (``components``; "eigenfaces"): an RBF SVM on all
3,072 pixels of 16,579 training faces takes tens of minutes per task on two cores, on 100 components
about a minute. ``baseline_predictions`` uses 100, and fits on one BLAS / OpenMP thread: while TensorFlow or
another process keeps the other cores busy, OpenBLAS's threads wait on each other (a QR decomposition of the
PCA's 3,072 x 110 sketch took 1.7 s on two threads of a busy 2-core CPU, 0.02 s on one).
"""

from __future__ import annotations

import cv2
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from agegender_tf.tasks import BASELINES  # the baselines by name, defined beside the task names


def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images of shape (N, H, W, 3), got {images.shape}")
    return images


class PixelFeatures(TransformerMixin, BaseEstimator):
    """Raw pixels as features: each 0..255 image resized to ``size`` (H, W), flattened, divided by 255."""

    def __init__(self, size=(32, 32), grayscale=False):
        self.size = size
        self.grayscale = grayscale

    def fit(self, images, y=None):
        _check_images(images)
        return self

    def transform(self, images):
        images = _check_images(images)
        height, width = self.size
        rows = []
        for image in images:
            image = np.asarray(image, dtype=np.float32)
            resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            if self.grayscale:
                resized = cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY)
            rows.append(resized.reshape(-1))
        return np.stack(rows) / 255.0


class KerasFeatures(TransformerMixin, BaseEstimator):
    """Features from a Keras model's layer (default: the penultimate layer's output), flattened.

    Images must already be preprocessed for ``model`` (see ``agegender_tf.models.preprocessing``).
    """

    def __init__(self, model, layer=None, batch_size=64):
        self.model = model
        self.layer = layer
        self.batch_size = batch_size

    def _extractor(self):
        import keras

        layer = self.model.get_layer(self.layer) if self.layer else self.model.layers[-2]
        return keras.Model(self.model.inputs, layer.output, name=f"{self.model.name}_features")

    def fit(self, images, y=None):
        _check_images(images)
        return self

    def transform(self, images):
        images = _check_images(images).astype(np.float32)
        features = self._extractor().predict(images, batch_size=self.batch_size, verbose=0)
        return np.asarray(features, dtype=np.float32).reshape(len(images), -1)


class KMeansClassifier(ClassifierMixin, BaseEstimator):
    """K-Means whose clusters vote: each cluster predicts the majority training label of its members."""

    def __init__(self, n_clusters=8, seed=None):
        self.n_clusters = n_clusters
        self.seed = seed

    def fit(self, features, y):
        y = np.asarray(y)
        if len(y) != len(features):
            raise ValueError(f"{len(features)} samples but {len(y)} labels")
        if len(y) < self.n_clusters:
            raise ValueError(f"K-Means with {self.n_clusters} clusters needs at least as many samples, got {len(y)}")
        self.classes_ = np.unique(y)
        self.kmeans_ = KMeans(n_clusters=self.n_clusters, n_init=10, random_state=self.seed).fit(features)
        overall_majority = self.classes_[np.argmax([(y == c).sum() for c in self.classes_])]
        self.cluster_labels_ = np.full(self.n_clusters, overall_majority, dtype=y.dtype)
        for cluster in range(self.n_clusters):
            members = y[self.kmeans_.labels_ == cluster]
            if len(members):
                values, counts = np.unique(members, return_counts=True)
                self.cluster_labels_[cluster] = values[np.argmax(counts)]
        return self

    def predict(self, features):
        return self.cluster_labels_[self.kmeans_.predict(features)]


def _features(features, size, model, layer):
    if features == "pixels":
        return PixelFeatures(size=size)
    if features == "cnn":
        if model is None:
            raise ValueError("features='cnn' needs a Keras model (its penultimate layer gives the features)")
        return KerasFeatures(model, layer=layer)
    raise ValueError(f"features must be 'pixels' or 'cnn', got {features!r}")


class Components(TransformerMixin, BaseEstimator):
    """The first ``n_components`` principal components (fewer when there are fewer samples or features)."""

    def __init__(self, n_components=100, seed=None):
        self.n_components = n_components
        self.seed = seed

    def fit(self, features, y=None):
        features = np.asarray(features)
        count = max(1, min(self.n_components, *features.shape))
        self.pca_ = PCA(n_components=count, random_state=self.seed).fit(features)
        return self

    def transform(self, features):
        return self.pca_.transform(np.asarray(features))


def _steps(features, size, model, layer, components, seed):
    steps = [("features", _features(features, size, model, layer)), ("scale", StandardScaler())]
    if components:
        steps.append(("components", Components(components, seed=seed)))
    return steps


def svm_baseline(features="pixels", size=(32, 32), model=None, layer=None, kernel="rbf", C=1.0, seed=None,
                 components=None):
    """SVM baseline of paper 000 Table I: features -> standardisation [-> principal components] -> ``SVC``."""
    return Pipeline(_steps(features, size, model, layer, components, seed)
                    + [("svm", SVC(kernel=kernel, C=C, random_state=seed))])


def kmeans_baseline(n_clusters=8, features="pixels", size=(32, 32), model=None, layer=None, seed=None,
                    components=None):
    """K-Means baseline of paper 000 Table I: features -> standardisation [-> principal components] -> K-Means."""
    return Pipeline(_steps(features, size, model, layer, components, seed)
                    + [("kmeans", KMeansClassifier(n_clusters=n_clusters, seed=seed))])


def _pixels_and_labels(frame, task, binning, size, seed):
    """Images of ``frame`` loaded at ``size`` x ``size`` as 0..255 floats, and the task's class indices."""
    from agegender_tf.pipelines.spec import AugmentSpec
    from agegender_tf.pipelines.tfdata import make_dataset

    dataset = make_dataset(frame, AugmentSpec(preprocess="rescale"), image_size=size, batch_size=64, outputs=(task,),
                           binning=binning, training=False, seed=seed)
    batches = [(np.asarray(x), np.asarray(y)) for x, y in dataset]
    images = np.concatenate([x for x, _ in batches]) * np.float32(255.0)  # PixelFeatures takes 0..255 pixels
    return images, np.concatenate([y for _, y in batches])


def baseline_predictions(parts: dict, tasks, binning, seed: int, names=BASELINES, size: int = 32,
                         components: int = 100):
    """Paper 000 Table I's SVM and K-Means on the first ``components`` principal components of
    ``size`` x ``size`` pixels, one per classification task.

    Each is fitted on ``parts["train"]`` and predicts ``parts["test"]``; returns a predictions table
    (``model, path, <task>_true, <task>_pred``, ``experiments.predictions``). ``parts`` hold the rows
    usable for each task; rows lacking a task's label are left out of that task (``usable_rows``).
    """
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {BASELINES}")
    with threadpool_limits(limits=1):  # see the module docstring
        return _baseline_predictions(parts, tasks, binning, seed, names, size, components)


def _baseline_predictions(parts, tasks, binning, seed, names, size, components):
    import pandas as pd

    from agegender_tf.pipelines.targets import task_labels, usable_rows
    from agegender_tf.tasks import CLASSIFICATION_TASKS

    tables = []
    for name in names:
        merged = None
        for task in (t for t in tasks if t in CLASSIFICATION_TASKS):
            frames = {k: usable_rows(parts[k], outputs=(task,), binning=binning)[0] for k in ("train", "test")}
            data = {k: _pixels_and_labels(f, task, binning, size, seed) for k, f in frames.items()}
            classes = len(task_labels((task,), binning)[task])
            estimator = (svm_baseline(size=(size, size), seed=seed, components=components) if name == "svm"
                         else kmeans_baseline(n_clusters=max(classes * 4, 8), size=(size, size), seed=seed,
                                              components=components))
            estimator.fit(*data["train"])
            table = pd.DataFrame({"model": name, "path": frames["test"]["path"].to_numpy(),
                                  f"{task}_true": data["test"][1], f"{task}_pred": estimator.predict(data["test"][0])})
            merged = table if merged is None else merged.merge(table, on=["model", "path"], how="outer")
        if merged is None:
            raise ValueError(f"baseline {name} needs a classification task, got tasks {tuple(tasks)}")
        tables.append(merged)
    return pd.concat(tables, ignore_index=True)
