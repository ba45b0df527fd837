"""Task (output) names and the classical baselines, defined once (shared ground: imports nothing from the kit).

Outputs are named ``"gender"`` and ``"age_group"`` (classification heads) and ``"age"`` (years, a
regression head). Heads, builders, label encoding, evaluation, reports and the preset schema import
these names from here.
"""

from __future__ import annotations

TASKS = ("gender", "age_group", "age")
CLASSIFICATION_TASKS = ("gender", "age_group")
REGRESSION_TASKS = ("age",)

# Paper 000's classical baselines (``models.baselines`` trains them): a preset lists them in ``comparisons``.
BASELINES = ("svm", "kmeans")


def check_tasks(tasks) -> tuple[str, ...]:
    """``tasks`` as a tuple; raises ValueError unless it is a non-empty subset of ``TASKS``."""
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {tasks}")
    return tasks
