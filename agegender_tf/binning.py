"""Age binnings as values (DESIGN.md, "Age binnings"): each knows its labels and maps an age to a class.

- ``adience8``: the eight Adience groups (paper 000 sec. VI, paper 002): 0-2, 4-6, 8-12, 15-20,
  25-32, 38-43, 48-53, 60+. Exact ages that fall in a gap of the official grid go to the nearest
  group (policy below); Adience's off-grid range labels are mapped by ``adience_label_to_group``
  in ``agegender_tf.data.adience``.
- ``life_stages``: paper 003's four stages: Child <=9, Adolescence 10-19, Adult 20-59, Senior 60+.
- ``decades``: 0-9, 10-19, ..., 90+ (ten classes).

Exact age is not a binning: the ``age`` task regresses it (``pipelines/targets.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class AgeBinning:
    """Ordered age classes. ``edges[i]`` is the lowest age of class ``i`` (class 0 starts at 0)."""

    name: str
    labels: tuple[str, ...]
    edges: tuple[float, ...]
    description: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def to_class(self, age) -> np.ndarray | int:
        """Class index of an age or array of ages (NaN -> -1)."""
        ages = np.asarray(age, dtype=float)
        classes = np.searchsorted(np.asarray(self.edges[1:], dtype=float), ages, side="right")
        classes = np.where(np.isnan(ages), -1, classes)
        return int(classes) if classes.ndim == 0 else classes.astype(int)

    def to_label(self, age):
        """Label of an age or array of ages (NaN -> None)."""
        classes = np.atleast_1d(self.to_class(age))
        labels = [self.labels[c] if c >= 0 else None for c in classes]
        return labels[0] if np.ndim(age) == 0 else labels


# Adience's eight official groups. An exact age in a gap between groups (3, 7, 13-14, 21-24, 33-37,
# 44-47, 54-59) goes to the group whose range is nearest, ties to the older group; the edges below
# encode that: e.g. 3 -> (4, 6), 13 -> (8, 12)... see ADIENCE_GAP_POLICY.
ADIENCE8 = AgeBinning(
    name="adience8",
    labels=("(0, 2)", "(4, 6)", "(8, 12)", "(15, 20)", "(25, 32)", "(38, 43)", "(48, 53)", "(60, 100)"),
    edges=(0, 3, 7, 14, 23, 35, 46, 57),
    description="Adience's 8 age groups; ages in a gap go to the nearest group (ties to the older).",
)
ADIENCE_GAP_POLICY = (
    "Exact ages between Adience groups go to the nearest group, ties to the older one: "
    "3->(4, 6), 7->(8, 12), 13->(8, 12), 14->(15, 20), 21-22->(15, 20), 23-24->(25, 32), "
    "33-34->(25, 32), 35-37->(38, 43), 44-45->(38, 43), 46-47->(48, 53), 54-56->(48, 53), "
    "57-59->(60, 100)."
)

LIFE_STAGES = AgeBinning(
    name="life_stages",
    labels=("Child", "Adolescence", "Adult", "Senior"),
    edges=(0, 10, 20, 60),
    description="Paper 003: Child <=9, Adolescence 10-19, Adult 20-59, Senior 60+.",
)

DECADES = AgeBinning(
    name="decades",
    labels=tuple(f"{d}-{d + 9}" for d in range(0, 90, 10)) + ("90+",),
    edges=tuple(range(0, 100, 10)),
    description="Ten-year bins, 90+ last.",
)

BINNINGS: dict[str, AgeBinning] = {b.name: b for b in (ADIENCE8, LIFE_STAGES, DECADES)}


def get_binning(name: str) -> AgeBinning:
    """Look a binning up by name (``adience8``, ``life_stages``, ``decades``)."""
    try:
        return BINNINGS[name]
    except KeyError:
        raise KeyError(f"unknown binning {name!r}; choose one of {sorted(BINNINGS)}") from None


def age_classes(manifest: pd.DataFrame, binning: AgeBinning) -> np.ndarray:
    """Class index per manifest row (-1 where the age is unknown).

    Rows that carry the binning's own label in ``age_group`` (Adience with ``adience8``) use it;
    other rows bin their ``age``.
    """
    from_age = np.atleast_1d(binning.to_class(manifest["age"].to_numpy(dtype=float)))
    if "age_group" not in manifest:
        return from_age
    groups = manifest["age_group"].to_numpy(dtype=object)
    known = np.array([g in binning.labels for g in groups], dtype=bool)
    from_group = np.array([binning.labels.index(g) if k else -1 for g, k in zip(groups, known)])
    return np.where(known, from_group, from_age).astype(int)
