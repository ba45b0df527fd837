"""Shared fixtures: the real datasets (through AGEGENDER_DATA) and a quiet, CPU-only TensorFlow."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

from agegender_tf.paths import data_home, dataset_root


@pytest.fixture(scope="session")
def real_data_home():
    home = data_home()
    if home is None:
        pytest.skip("AGEGENDER_DATA is not set to a folder with the real datasets")
    return home


@pytest.fixture(scope="session")
def utkface_root():
    root = dataset_root("utkface")
    if root is None:
        pytest.skip("real UTKFace not found under AGEGENDER_DATA")
    return root


@pytest.fixture(scope="session")
def adience_root():
    root = dataset_root("adience")
    if root is None:
        pytest.skip("real Adience not found under AGEGENDER_DATA")
    return root
