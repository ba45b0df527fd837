"""Label encoding shared by both pipelines and by training (stable contract).

Outputs are named ``"gender"`` (class index, 0 female / 1 male per ``GENDER_CLASSES``),
``"age_group"`` (class index of an ``AgeBinning``, via ``binning.age_classes``) and ``"age"``
(years, float32). Class targets are sparse integer indices (use sparse categorical losses).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from agegender_tf.binning import AgeBinning, age_classes
from agegender_tf.data.manifest import GENDER_CLASSES

# The task names are defined in agegender_tf.tasks; the names are kept importable from here.
from agegender_tf.tasks import CLASSIFICATION_TASKS, REGRESSION_TASKS, TASKS, check_tasks  # noqa: F401


def task_labels(tasks, binning: AgeBinning | None) -> dict[str, list[str] | None]:
    """Class labels of each task (``GENDER_CLASSES``, the binning's labels; None for the age regression)."""
    labels: dict[str, list[str] | None] = {}
    for task in check_tasks(tasks):
        if task == "gender":
            labels[task] = list(GENDER_CLASSES)
        elif task == "age_group":
            if binning is None:
                raise ValueError("task 'age_group' needs a binning")
            labels[task] = list(binning.labels)
        else:
            labels[task] = None
    return labels


def _check_outputs(outputs, binning):
    outputs = check_tasks(outputs)
    if "age_group" in outputs and binning is None:
        raise ValueError("output 'age_group' needs a binning (e.g. agegender_tf.binning.ADIENCE8)")
    return outputs


def encode_targets(manifest: pd.DataFrame, outputs=("gender",),
                   binning: AgeBinning | None = None) -> dict[str, np.ndarray]:
    """Encoded target per output name; raises ValueError if a row lacks a needed label.

    Call ``usable_rows`` first to drop (and count) such rows.
    """
    outputs = _check_outputs(outputs, binning)
    targets: dict[str, np.ndarray] = {}
    if "gender" in outputs:
        index = {g: i for i, g in enumerate(GENDER_CLASSES)}
        genders = manifest["gender"].map(index)
        if genders.isna().any():
            bad = manifest.loc[genders.isna(), "path"].head(3).tolist()
            raise ValueError(f"{int(genders.isna().sum())} rows lack a gender (e.g. {bad}); filter with usable_rows")
        targets["gender"] = genders.to_numpy(dtype=np.int32)
    if "age_group" in outputs:
        classes = np.asarray(age_classes(manifest, binning), dtype=np.int32)
        if (classes < 0).any():
            bad = manifest.loc[classes < 0, "path"].head(3).tolist()
            raise ValueError(f"{int((classes < 0).sum())} rows have no {binning.name} class (e.g. {bad})")
        targets["age_group"] = classes
    if "age" in outputs:
        ages = manifest["age"].to_numpy(dtype=np.float32)
        if np.isnan(ages).any():
            bad = manifest.loc[np.isnan(ages), "path"].head(3).tolist()
            raise ValueError(f"{int(np.isnan(ages).sum())} rows lack an age (e.g. {bad})")
        targets["age"] = ages
    return targets


def usable_rows(manifest: pd.DataFrame, outputs=("gender",),
                binning: AgeBinning | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows that carry every label ``outputs`` need, and the number dropped per reason."""
    outputs = _check_outputs(outputs, binning)
    keep = np.ones(len(manifest), dtype=bool)
    dropped: dict[str, int] = {}
    checks = []
    if "gender" in outputs:
        checks.append(("no gender", manifest["gender"].isin(GENDER_CLASSES).to_numpy()))
    if "age_group" in outputs:
        checks.append((f"no {binning.name} class", np.asarray(age_classes(manifest, binning)) >= 0))
    if "age" in outputs:
        checks.append(("no age", ~np.isnan(manifest["age"].to_numpy(dtype=float))))
    for reason, ok in checks:
        newly = keep & ~ok
        if newly.any():
            dropped[reason] = int(newly.sum())
        keep &= ok
    return manifest.loc[keep].reset_index(drop=True), dropped


CLASS_WEIGHTINGS = ("balanced",)


def class_weights(manifest: pd.DataFrame, outputs, binning: AgeBinning | None = None,
                  weighting: str = "balanced") -> dict[int, float]:
    """Keras ``class_weight`` of a network with one classification output, from its training rows.

    ``"balanced"``: class c gets n / (k * n_c) (k classes, n rows), so every class weighs as much in the
    loss as in a class-balanced training set (paper 000 sec. IV balances offline). A class without
    training rows gets 1.0. Raises ValueError for several outputs or a regression output.
    """
    outputs = _check_outputs(outputs, binning)
    if weighting not in CLASS_WEIGHTINGS:
        raise ValueError(f"unknown class weighting {weighting!r}; choose one of {CLASS_WEIGHTINGS}")
    if len(outputs) != 1 or outputs[0] not in CLASSIFICATION_TASKS:
        raise ValueError(f"class weights need a network with one classification output, got {outputs}")
    task = outputs[0]
    k = len(task_labels(outputs, binning)[task])
    counts = np.bincount(encode_targets(manifest, outputs, binning)[task], minlength=k)
    n = int(counts.sum())
    return {c: (n / (k * int(count)) if count else 1.0) for c, count in enumerate(counts)}


def split_subset(manifest: pd.DataFrame, validation_split: float, subset: str | None) -> pd.DataFrame:
    """Rows of ``subset`` under ``ImageDataGenerator``'s own rule (paper 003).

    Keras' DataFrameIterator gives "validation" the first ``validation_split`` fraction of the
    rows and "training" the rest; shuffle the manifest first (with a seed) for a random split.
    """
    if subset is None:
        return manifest
    if subset not in ("training", "validation"):
        raise ValueError(f"subset must be 'training', 'validation' or None, got {subset!r}")
    if not validation_split:
        raise ValueError("subset needs a spec with validation_split > 0")
    cut = int(validation_split * len(manifest))
    part = manifest.iloc[:cut] if subset == "validation" else manifest.iloc[cut:]
    return part.reset_index(drop=True)
