"""Output heads shared by the builders: named after their task, float32 under mixed precision.

Contract (all helpers): ``"gender"`` softmax over 2 classes (0 female, 1 male), ``"age_group"``
softmax over a binning's classes, ``"age"`` one linear unit in years.
"""

from __future__ import annotations

import keras

from agegender_tf.tasks import REGRESSION_TASKS, TASKS

# Adience's eight age groups (paper 000 sec. VI, paper 002): the age-group default of the paper 000 models.
ADIENCE_GROUPS = 8


def head_units(task: str, num_classes: int | None, default_age_groups: int | None = None) -> int:
    """Units of a task's output layer; checks the task name and the class count.

    ``num_classes=None`` means the task's default: 2 genders, one age, ``default_age_groups`` groups.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if task == "age":
        if num_classes not in (None, 1):
            raise ValueError(f"task 'age' is a regression with one output, got num_classes={num_classes}")
        return 1
    if task == "gender":
        num_classes = 2 if num_classes is None else num_classes
        if num_classes != 2:
            raise ValueError(f"task 'gender' has 2 classes (female, male), got num_classes={num_classes}")
        return 2
    num_classes = default_age_groups if num_classes is None else num_classes
    if num_classes is None or num_classes < 2:
        raise ValueError(f"task 'age_group' needs num_classes >= 2 (the binning's class count), got {num_classes}")
    return int(num_classes)


def task_head(
    features, task: str, num_classes: int | None = None, kernel_initializer="glorot_uniform", default_age_groups=None
):
    """Dense output layer named ``task``: softmax for classes, linear for ``"age"``; dtype float32."""
    units = head_units(task, num_classes, default_age_groups)
    return keras.layers.Dense(
        units,
        activation="linear" if task in REGRESSION_TASKS else "softmax",
        kernel_initializer=kernel_initializer,
        dtype="float32",
        name=task,
    )(features)


def losses_and_metrics(tasks):
    """Keras ``loss`` and ``metrics`` for heads ``tasks``: sparse categorical cross-entropy and accuracy
    for the softmax heads (targets are class indices), MSE and MAE for the age regression. A single
    task gives plain values, several a dict keyed by output name."""
    tasks = tuple(tasks)
    loss = {t: ("mse" if t in REGRESSION_TASKS else "sparse_categorical_crossentropy") for t in tasks}
    metrics = {t: (["mae"] if t in REGRESSION_TASKS else ["accuracy"]) for t in tasks}
    if len(tasks) == 1:
        return loss[tasks[0]], metrics[tasks[0]]
    return loss, metrics
