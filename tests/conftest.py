"""Shared fixtures: the real datasets (through AGEGENDER_DATA), the five source documents, a UTKFace-layout
data root and one finished smoke run trained once per session, the notebook smoke runs started in the
background, and a quiet, CPU-only TensorFlow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

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


# ------------------------------------------------------------------------------------ notebook smoke runs
NOTEBOOK_SMOKE_TEST = "test_notebook_runs_in_smoke_mode_and_draws_its_figures"  # in test_notebooks.py


def pytest_collection_modifyitems(session, config, items):
    """The notebook smoke runs are checked last: they run in the background meanwhile (``notebook_smoke_runs``)."""
    items.sort(key=lambda item: getattr(item, "originalname", None) == NOTEBOOK_SMOKE_TEST)  # stable: order kept


class NotebookRuns:
    """``notebooks/execute.py NAME --run-dir run --out executed.ipynb`` for each name, one after another on a
    background thread, each in ``root/NAME`` and its own process group (so that a Ctrl-C reaches pytest alone;
    the session, and with it the scheduler's autogroup, stays pytest's). The kernel, in a session of its own,
    exits within a second of the script: ipykernel's parent poller. ``futures[name].result()`` is
    ``(folder, subprocess.CompletedProcess)``; ``stop`` kills what still runs and starts nothing more."""

    def __init__(self, names, root: Path, env: dict, timeout: float = 3600):
        self._lock = threading.Lock()
        self._process = None
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notebooks")
        self.futures = {name: self._pool.submit(self._run, name, root / name, env, timeout) for name in names}

    def _run(self, name, folder: Path, env: dict, timeout: float):
        # The cell timeout only catches a hang: a busy machine must not fail a notebook.
        args = [sys.executable, str(REPO_ROOT / "notebooks" / "execute.py"), name, "--run-dir", "run",
                "--out", "executed.ipynb", "--timeout", str(int(timeout))]
        with self._lock:  # so that ``stop`` either sees this process or keeps it from starting
            if self._stopped:
                raise RuntimeError("the test session ended before this notebook ran")
            folder.mkdir()
            process = self._process = subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.PIPE,
                                                       stderr=subprocess.PIPE, text=True, process_group=0)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(process)
            process.communicate()
            raise
        return folder, subprocess.CompletedProcess(args, process.returncode, out, err)

    @staticmethod
    def _kill(process):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:  # already ended
            pass

    def stop(self):
        with self._lock:
            self._stopped = True
            for future in self.futures.values():
                future.cancel()
            if self._process is not None and self._process.returncode is None:
                self._kill(self._process)
        self._pool.shutdown(wait=True)  # the thread reaps the killed process


@pytest.fixture(scope="session", autouse=True)
def notebook_smoke_runs(request, tmp_path_factory):
    """The notebook smoke runs this session selected, started at its first test on the real UTKFace
    (``NotebookRuns``): ``{name: future}``, empty when none is selected or UTKFace is absent.

    Most of a smoke run is one thread of Python (importing TensorFlow, tracing the graphs, saving the
    models, drawing the figures), and so is most of what the other tests do in this process: a 2-core
    CPU runs the two at once, and the notebook tests, sorted last, only read the finished notebooks."""
    names = [item.callspec.params["name"] for item in request.session.items
             if getattr(item, "originalname", None) == NOTEBOOK_SMOKE_TEST]
    root = dataset_root("utkface")
    if not names or root is None:
        yield {}
        return
    runs = NotebookRuns(names, tmp_path_factory.mktemp("notebooks"), {**os.environ, "AGEGENDER_DATA": str(root.parent)})
    try:
        yield runs.futures
    finally:
        runs.stop()
