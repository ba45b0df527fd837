"""Prediction tables: one row per test face, ``model, path, <task>_true, <task>_pred``.

``predict_table`` scores a model on a dataset built from a manifest (in order); ``oversample_table``
scores it with paper 000 sec. VII's 10-crop over-sampling; ``ensemble_member_tables`` scores each
member of an ensemble alone (paper 001); ``test_tables`` does what a preset asks of one trained
network. ``combine_tables`` joins the tables of a model's single-task networks into one row per face.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from agegender_tf.binning import AgeBinning
from agegender_tf.pipelines.spec import AugmentSpec
from agegender_tf.pipelines.targets import encode_targets
from agegender_tf.tasks import REGRESSION_TASKS


@dataclass(frozen=True)
class TrainedNetwork:
    """One trained network of a run and how to feed it: its tasks, evaluation spec and input size."""

    name: str
    tasks: tuple[str, ...]
    model: object
    spec: AugmentSpec
    image_size: int


def predictions_frame(raw, model, frame: pd.DataFrame, tasks, binning: AgeBinning | None,
                      model_name: str) -> pd.DataFrame:
    """``model``'s raw outputs on ``frame`` (in order) as rows ``model, path, <task>_true, <task>_pred``.

    Class outputs become their argmax, the age regression its value in years (float64).
    """
    if not isinstance(raw, dict):
        raw = dict(zip(model.output_names, raw if isinstance(raw, (list, tuple)) else [raw]))
    truth = encode_targets(frame, outputs=tuple(tasks), binning=binning)
    table = pd.DataFrame({"model": model_name, "path": frame["path"].to_numpy()})
    for task in tasks:
        output = np.asarray(raw[task])
        table[f"{task}_true"] = truth[task]
        # Ages as float64: predictions.csv then holds every digit the report was scored on (a float32 column is
        # written rounded to float32, and the metrics would no longer recompute from the file exactly).
        table[f"{task}_pred"] = (output.reshape(-1).astype(np.float64) if task in REGRESSION_TASKS
                                 else output.argmax(axis=-1))
    return table


def predict_table(model, dataset, frame: pd.DataFrame, tasks, binning: AgeBinning | None,
                  model_name: str) -> pd.DataFrame:
    """Predictions of ``model`` on ``dataset`` (built from ``frame`` in order) as a predictions table."""
    raw = model.predict(dataset, verbose=0)
    return predictions_frame(raw, model, frame, tasks, binning, model_name)


def oversample_table(model, frame: pd.DataFrame, tasks, spec: AugmentSpec, image_size, binning: AgeBinning | None,
                     model_name: str, batch_size: int, seed: int) -> pd.DataFrame:
    """Predictions with paper 000 sec. VII's over-sampling: 4 corner + centre crops and their mirrors, averaged.

    ``spec`` carries the model's resize-then-crop geometry: the test faces are loaded at the load size
    ``spec.sizes(image_size)`` gives (e.g. 256 for 227) and each of the ten views is an
    ``image_size`` crop. Reported as model ``<model_name>+oversample``.
    """
    from agegender_tf.pipelines.tfdata import make_dataset
    from agegender_tf.pipelines.tta import predict_tta

    if spec.crop_size is None:
        raise ValueError(f"{model_name}: over-sampling needs a model that resizes then crops (its preprocessing "
                         "facts have no resize_to/crop_size)")
    load_size, (crop, _) = spec.sizes(image_size)
    uncropped = spec.disabled().replace(resize_to=None, crop_size=None)
    dataset = make_dataset(frame, uncropped, image_size=load_size, batch_size=batch_size, outputs=tuple(tasks),
                           binning=binning, training=False, seed=seed, validate=False)
    images = np.concatenate([np.asarray(x) for x, _ in dataset])
    raw = predict_tta(model, images, crop=crop, mode="oversample", batch_size=batch_size)
    return predictions_frame(raw, model, frame, tasks, binning, f"{model_name}+oversample")


def ensemble_member_tables(model, dataset, frame: pd.DataFrame, tasks, binning: AgeBinning | None
                           ) -> list[pd.DataFrame]:
    """Each member of an ensemble scored alone (paper 001: the ensemble compared with its members)."""
    import keras

    return [predict_table(layer, dataset, frame, tasks, binning, layer.name)
            for layer in model.layers if isinstance(layer, keras.Model)]


def test_tables(network: TrainedNetwork, dataset, frame: pd.DataFrame, binning: AgeBinning | None, *,
                members: bool, oversample: bool, batch_size: int, seed: int) -> list[pd.DataFrame]:
    """``network``'s predictions on the test ``dataset`` (built from ``frame``), plus each ensemble member's
    (``members``) and the 10-crop over-sampled ones (``oversample``)."""
    model, tasks = network.model, network.tasks
    tables = [predict_table(model, dataset, frame, tasks, binning, network.name)]
    if members:
        tables += ensemble_member_tables(model, dataset, frame, tasks, binning)
    if oversample:
        tables.append(oversample_table(model, frame, tasks, network.spec, network.image_size, binning, network.name,
                                       batch_size, seed))
    return tables


def relative_paths(paths: pd.Series, data_root) -> pd.Series:
    """Image paths relative to ``data_root`` (e.g. ``utkface/UTKFace/x.jpg``), so ``predictions.csv`` names
    no machine path; ``report.face_paths`` joins them back. A path outside ``data_root`` is refused."""
    root = Path(os.path.abspath(data_root))  # not resolve(): a symlinked dataset folder stays under the root

    def relative(path) -> str:
        try:
            return Path(os.path.abspath(path)).relative_to(root).as_posix()
        except ValueError:
            raise ValueError(f"image {path} is not under the data root {root}") from None

    return paths.map(relative)


def combine_tables(tables) -> pd.DataFrame:
    """One predictions table: the tables of one model (e.g. its gender and age-group networks) joined
    face by face, models stacked in order of appearance."""
    merged: dict[str, pd.DataFrame] = {}
    for table in tables:
        for name, rows in table.groupby("model", sort=False):
            merged[name] = rows if name not in merged else merged[name].merge(rows, on=["model", "path"], how="outer")
    return pd.concat(merged.values(), ignore_index=True)
