"""Shared fixtures: the real datasets (through AGEGENDER_DATA), the five source documents, a UTKFace-layout
data root and one finished smoke run trained once per session, and a quiet, CPU-only TensorFlow."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

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


PAPERS_ENV = "AGEGENDER_PAPERS"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def paper_documents() -> Path:
    """The folder of the five source documents (``000_....txt`` ... ``004_....txt``): ``$AGEGENDER_PAPERS``,
    else ``shared/seeds`` beside the repository, else ``seeds`` beside ``$AGEGENDER_DATA``."""
    candidates = [Path(os.environ[PAPERS_ENV])] if os.environ.get(PAPERS_ENV) else []
    candidates.append(REPO_ROOT.parent / "shared" / "seeds")
    if data_home() is not None:
        candidates.append(data_home().parent / "seeds")
    for folder in candidates:
        if sorted(folder.glob("00[0-4]_*.txt")):
            return folder
    pytest.skip(f"source documents (000_*.txt ... 004_*.txt) not found in {', '.join(map(str, candidates))}; "
                f"set {PAPERS_ENV} to their folder")


@pytest.fixture(scope="session")
def utkface_layout_root(tmp_path_factory) -> Path:
    """A data root holding ``utkface/UTKFace/`` with 120 small real JPEGs named as UTKFace names them."""
    from tests.fixtures import write_utkface_layout

    root = tmp_path_factory.mktemp("utkface_layout")
    write_utkface_layout(root / "utkface" / "UTKFace")
    return root


@pytest.fixture(scope="session")
def gra_net_smoke_run(utkface_layout_root, tmp_path_factory) -> Path:
    """``agegender run gra_net`` with ``fixtures.SMOKE_RUN_ARGS`` on ``utkface_layout_root``, trained once per session.

    Tests read it; a test that changes a run folder works on a copy (``shutil.copytree``)."""
    from agegender_tf.cli import main
    from tests.fixtures import SMOKE_RUN_ARGS

    out = tmp_path_factory.mktemp("gra_net_smoke") / "run"
    assert main(["run", "gra_net", "--data-root", str(utkface_layout_root), "--out", str(out), *SMOKE_RUN_ARGS]) == 0
    return out
