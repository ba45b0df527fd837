"""Shared fixtures: the real datasets (through AGEGENDER_DATA), the five source documents, a UTKFace-layout
data root and one finished smoke run trained once per session, the subprocess runs started in the background
(a mirrored run, a killed run, the notebook smoke runs), a quiet, CPU-only TensorFlow and a cache folder
of the session ($AGEGENDER_CACHE: the streaming pipeline's packs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

from agegender_tf.paths import CACHE_ENV, data_home, dataset_root

# The streaming pipeline's packs go to a folder of this session (and its subprocesses), never ~/.cache.
os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="agegender-test-cache-")
atexit.register(shutil.rmtree, os.environ[CACHE_ENV], True)


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


# ----------------------------------------------------------------------------------------- background runs
# A test that reads a background run says which with ``@pytest.mark.background_run(NAME)``: "mirrored",
# "killed", or "notebook" (one smoke run per notebook, named by the test's ``name`` parameter).
NOTEBOOK_RUNS = "notebook"
# The notebook smoke runs by their time here (60, 60, 45, 35 and 25 s): the last ones are short, so that
# when the tests are done the runs still to come split well over the two cores (``BackgroundRuns.widen``).
NOTEBOOKS_LONGEST_FIRST = ("transfer_vgg16_resnet50", "gra_net", "cnn_lstm", "adience_cnn", "cnn_rnn_ensemble")


def background_run_of(item) -> str | None:
    """The background run a collected test reads (its ``background_run`` marker), or None."""
    marker = item.get_closest_marker("background_run")
    return marker.args[0] if marker else None


REAL_DATA_FIXTURES = ("real_data_home", "utkface_root", "adience_root")


def pytest_collection_modifyitems(session, config, items):
    """Tests that read the real datasets are marked ``realdata`` (by the fixtures they use); the notebook
    smoke runs are checked last: they run in the background meanwhile (``background_runs``)."""
    for item in items:
        if set(REAL_DATA_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realdata)
    items.sort(key=lambda item: background_run_of(item) == NOTEBOOK_RUNS)  # stable: order kept


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say how many tests that need the real datasets were skipped, so a data-less run cannot pass unnoticed."""
    skipped = [report for report in terminalreporter.stats.get("skipped", []) if "realdata" in report.keywords]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} tests marked realdata were skipped: the real datasets are not "
                                    "under $AGEGENDER_DATA (see README.md, Datasets)", yellow=True)


class BackgroundRuns:
    """Commands run on background threads, in order, each in its own folder and process group (so that a
    Ctrl-C reaches pytest alone; the session, and with it the scheduler's autogroup, stays pytest's), its
    output in ``stdout.txt`` / ``stderr.txt`` there. One runs at a time while the tests run beside them;
    ``widen`` lets two run at once, for when the tests only wait for them. ``jobs`` maps a name to
    ``(args, folder, env, kill_when)``: ``kill_when(folder)``, when given, is polled and kills the process
    once true. ``futures[name].result()`` is ``(folder, subprocess.CompletedProcess)`` (a killed one:
    returncode -SIGKILL); ``stop`` kills what still runs and cancels the rest. A notebook's kernel, in a
    session of its own, exits within a second of its script: ipykernel's parent poller."""

    MOST_AT_ONCE = 2  # the CPU's cores, when nothing else runs

    def __init__(self, jobs: dict, timeout: float = 3600):
        self._condition = threading.Condition()
        self._pending = deque(jobs.items())
        self._allowed, self._running, self._processes, self._stopped = 1, 0, set(), False
        self._timeout = timeout
        self.futures = {name: Future() for name in jobs}
        self._threads = [threading.Thread(target=self._work, name=f"background-runs-{index}", daemon=True)
                         for index in range(self.MOST_AT_ONCE)]
        for thread in self._threads:
            thread.start()

    def widen(self):
        """From now on, run ``MOST_AT_ONCE`` commands at a time."""
        with self._condition:
            self._allowed = self.MOST_AT_ONCE
            self._condition.notify_all()

    def _work(self):
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._stopped or not self._pending or self._running < self._allowed)
                if self._stopped or not self._pending:
                    return
                name, job = self._pending.popleft()
                self._running += 1
            future = self.futures[name]
            try:
                if future.set_running_or_notify_cancel():
                    future.set_result(self._run(*job))
            except BaseException as error:  # the test that reads this future reports it
                future.set_exception(error)
            finally:
                with self._condition:
                    self._running -= 1
                    self._condition.notify_all()

    def _run(self, args, folder: Path, env: dict, kill_when):
        with self._condition:  # so that ``stop`` either sees this process or keeps it from starting
            if self._stopped:
                raise RuntimeError("the test session ended before this command ran")
            folder.mkdir(parents=True)
            with open(folder / "stdout.txt", "w") as out, open(folder / "stderr.txt", "w") as err:
                process = subprocess.Popen(args, cwd=folder, env=env, stdout=out, stderr=err, text=True,
                                           process_group=0)
            self._processes.add(process)
        try:
            deadline = time.monotonic() + self._timeout
            while process.poll() is None:
                if kill_when is not None and kill_when(folder):
                    self._kill(process)
                elif time.monotonic() > deadline:
                    self._kill(process)
                    process.wait()
                    raise subprocess.TimeoutExpired(args, self._timeout)
                time.sleep(0.05)
        finally:
            with self._condition:
                self._processes.discard(process)
        texts = [(folder / name).read_text() for name in ("stdout.txt", "stderr.txt")]
        return folder, subprocess.CompletedProcess(args, process.returncode, *texts)

    @staticmethod
    def _kill(process):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:  # already ended
            pass

    def stop(self):
        with self._condition:
            self._stopped = True
            for name, _ in self._pending:
                self.futures[name].cancel()
            for process in self._processes:
                self._kill(process)
            self._condition.notify_all()
        for thread in self._threads:
            thread.join()  # each thread reaps the process it ran


@pytest.fixture(scope="session", autouse=True)
def background_runs(request, tmp_path_factory):
    """The subprocess runs this session selected, started at its first test (``BackgroundRuns``), in order:
    ``"mirrored"`` (``agegender run fixtures.PLUMBING_PRESET`` on two CPU replicas, ``fixtures.MIRRORED_RUN_ARGS``),
    ``"killed"`` (``fixtures.KILLED_RUN_ARGS``, killed once its history holds 2 epochs) and ``"notebook:NAME"`` for each
    notebook smoke run on the real UTKFace; the ``BackgroundRuns`` (``.futures[name]``).

    Most of such a run is one thread of Python (importing TensorFlow, tracing the graphs, saving the
    models, drawing the figures), and so is most of what the other tests do in this process: a 2-core
    CPU runs the two at once, and the tests that check them only read the finished runs."""
    from tests.fixtures import KILLED_RUN_ARGS, KILLED_RUN_HISTORY, MIRRORED_RUN_ARGS, PLUMBING_PRESET, csv_rows

    selected = [(background_run_of(item), getattr(item, "callspec", None)) for item in request.session.items]
    jobs, root = {}, tmp_path_factory.mktemp("background")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    for job, args, kill_when in (
            ("mirrored", MIRRORED_RUN_ARGS, None),
            ("killed", KILLED_RUN_ARGS, lambda folder: csv_rows(folder / KILLED_RUN_HISTORY) >= 2)):
        if any(name == job for name, _ in selected):
            data = request.getfixturevalue("utkface_layout_root")
            jobs[job] = ([sys.executable, "-m", "agegender_tf.cli", "run", PLUMBING_PRESET, "--data-root", str(data),
                          "--out", str(root / job / "run"), *args], root / job, env, kill_when)
    notebooks = sorted((spec.params["name"] for name, spec in selected if name == NOTEBOOK_RUNS),
                       key=lambda name: NOTEBOOKS_LONGEST_FIRST.index(name) if name in NOTEBOOKS_LONGEST_FIRST else 99)
    utkface = dataset_root("utkface")
    if notebooks and utkface is not None:
        env = {**os.environ, "AGEGENDER_DATA": str(utkface.parent)}
        for name in notebooks:
            # The cell timeout only catches a hang: a busy machine must not fail a notebook.
            jobs[f"notebook:{name}"] = ([sys.executable, str(REPO_ROOT / "notebooks" / "execute.py"), name,
                                         "--run-dir", "run", "--out", "executed.ipynb", "--timeout", "3600"],
                                        root / "notebooks" / name, env, None)
    runs = BackgroundRuns(jobs)
    try:
        yield runs
    finally:
        runs.stop()


@pytest.fixture(scope="session")
def notebook_smoke_runs(background_runs):
    """``{name: future}`` of the notebook smoke runs (``background_runs``); empty without the real UTKFace.

    The notebook checks come last (``pytest_collection_modifyitems``): from the first of them on, the tests
    only wait, so the runs still to come go two at a time."""
    background_runs.widen()
    return {key.split(":", 1)[1]: future for key, future in background_runs.futures.items()
            if key.startswith("notebook:")}
