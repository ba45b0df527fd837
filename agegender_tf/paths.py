"""Where datasets live: the ``AGEGENDER_DATA`` environment variable and per-dataset roots, and where the
kit's committed facts about them live: ``data_manifests/`` (splits, folds, near-duplicate pairs)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "AGEGENDER_DATA"
# data_manifests/ sits beside the package in the checkout: one folder per dataset.
MANIFESTS_DIR = Path(__file__).resolve().parents[1] / "data_manifests"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset root is missing; the message says how to obtain the dataset."""


def data_home() -> Path | None:
    """The folder named by ``AGEGENDER_DATA``, or None when unset or missing."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_dir() else None


def dataset_root(name: str) -> Path | None:
    """``$AGEGENDER_DATA/<name>`` when it exists (e.g. ``utkface``, ``adience``), else None."""
    home = data_home()
    if home is None:
        return None
    path = home / name
    return path if path.is_dir() else None


def manifests_dir() -> Path:
    """The ``data_manifests/`` folder: per dataset, its committed split, folds and near-duplicate pairs."""
    return MANIFESTS_DIR
