"""The web app (paper 003 sec. 4.5, the deployment) end to end: ``agegender app`` serves the Streamlit
page on a free local port and headless Debian chromium, driven by Playwright, uploads a photo of two
real UTKFace faces, a photo with no face and a text file; the page must show both faces' predictions
(the same as the Python predictor's) and a message for each bad upload. The per-upload analysis is
also checked without a browser.

Set ``AGEGENDER_APP_SCREENSHOT=docs/app.png`` to save the page (the README's screenshot).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from agegender_tf import model_card
from agegender_tf.serving import DETECTORS
from agegender_tf.serving import predictor as predict
from agegender_tf.serving.app import MAX_UPLOAD_MB, analyse_upload, face_summary

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")  # Debian's package; .ci/run installs it
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Two real UTKFace faces (a woman and a man, both 25) that MTCNN and the Haar cascade each find
# when the two are laid side by side with a margin.
UTKFACE_PAIR = ("25_1_0_20170103175619551.jpg.chip.jpg", "25_0_0_20170104004153743.jpg.chip.jpg")
SCREENSHOT_ENV = "AGEGENDER_APP_SCREENSHOT"
WAIT_MS = 240_000  # loading TensorFlow, the model and MTCNN on a busy 2-core CPU


@pytest.fixture(scope="module")
def model_arg(request):
    """``--model`` for the app: None (the bundled model) when this install has it, else the session's
    smoke run of GRA_Net (conftest ``gra_net_smoke_run``: only the plumbing is under test then)."""
    if (predict.BUNDLED_DIR / model_card.MODEL_NAME).is_file():
        return None
    return str(request.getfixturevalue("gra_net_smoke_run"))


@pytest.fixture(scope="module")
def predictor(model_arg):
    return predict.load(model_arg)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, utkface_root):
    """A photo of two real faces side by side, a photo with no face, and a text file."""
    folder = tmp_path_factory.mktemp("uploads")
    missing = [name for name in UTKFACE_PAIR if not (utkface_root / "UTKFace" / name).is_file()]
    if missing:
        pytest.skip(f"UTKFace faces {missing} not found under {utkface_root / 'UTKFace'}")
    left, right = (np.asarray(Image.open(utkface_root / "UTKFace" / name).convert("RGB")) for name in UTKFACE_PAIR)
    canvas = np.full((360, 640, 3), 225, np.uint8)  # 200x200 faces, 80 px margins, 120 px apart
    canvas[80:280, 80:280], canvas[80:280, 400:600] = left, right
    Image.fromarray(canvas).save(folder / "two_faces.jpg", quality=95)
    Image.new("RGB", (320, 240), (128, 140, 150)).save(folder / "no_face.png")
    (folder / "notes.txt").write_text("a shopping list, not a photo\n")
    return {name: folder / name for name in ("two_faces.jpg", "no_face.png", "notes.txt")}


def test_each_upload_gets_its_faces_or_one_message(predictor, photos):
    two = analyse_upload("two_faces.jpg", photos["two_faces.jpg"].read_bytes(), predictor, "mtcnn", False)
    assert two.error is None and two.warning is None
    assert len(two.faces) == 2
    assert two.faces == predictor.predict_photo(photos["two_faces.jpg"], detector="mtcnn")["faces"]
    for face in two.faces:
        assert set(face["gender"]["p"]) == {"female", "male"}
        assert abs(sum(face["gender"]["p"].values()) - 1) < 1e-4

    empty = analyse_upload("no_face.png", photos["no_face.png"].read_bytes(), predictor, "haar", False)
    assert empty.error is None and empty.faces == []
    assert empty.warning.startswith("no_face.png: no face found by the haar detector")

    for name, data, problem in [
        ("notes.txt", photos["notes.txt"].read_bytes(), "not an image"),
        ("empty.jpg", b"", "empty file"),
        ("cut.jpg", photos["two_faces.jpg"].read_bytes()[:2000], "corrupt or cut-short image"),
        ("huge.jpg", bytes(MAX_UPLOAD_MB * 2**20 + 1), f"larger than the {MAX_UPLOAD_MB} MB limit"),
    ]:
        result = analyse_upload(name, data, predictor, "mtcnn", False)
        assert result.faces == [] and result.image is None
        assert result.error.startswith(f"{name}: ") and problem in result.error, result.error
        assert "\n" not in result.error and "agegender-app-" not in result.error  # one line, no temp path


def test_app_command_refuses_a_missing_model_in_one_line(tmp_path, capsys):
    from agegender_tf.cli import main

    assert main(["app", "--model", str(tmp_path / "nope.keras")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.keras'}: no such model file or run folder"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"agegender app exited with status {server.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} not healthy after {seconds:.0f} s")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it: "
                                             "apt-get install -y chromium)")
def test_app_in_chromium_shows_each_face_and_each_bad_upload(model_arg, predictor, photos, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    expected = predictor.predict_photo(photos["two_faces.jpg"], detector=DETECTORS[0])["faces"]  # the page's default
    assert len(expected) == 2
    port = _free_port()
    command = [sys.executable, "-m", "agegender_tf", "app", "--port", str(port), "--address", "127.0.0.1"]
    if model_arg is not None:
        command += ["--model", model_arg]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                              env={**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", server, WAIT_MS / 1000)
        with playwright.sync_playwright() as driver, tempfile.TemporaryDirectory() as profile:
            browser = driver.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
                viewport={"width": 1280, "height": 2400})  # tall: the whole page in view
            try:
                page = browser.new_page()
                page.set_default_timeout(WAIT_MS)
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_text("paper 003 (sec. 4.5)").wait_for()
                page.locator('input[type="file"]').set_input_files([str(p) for p in photos.values()])
                for number, face in enumerate(expected, start=1):
                    page.get_by_text(face_summary(number, face), exact=True).wait_for()
                page.get_by_text("2 faces found").wait_for()
                errors = page.locator('[data-testid="stAlert"]')
                errors.filter(has_text="notes.txt: not an image").wait_for()
                errors.filter(has_text="no_face.png: no face found").wait_for()
                page.locator('[data-testid="stVegaLiteChart"]').nth(2 * len(expected) - 1).wait_for()
                page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached")
                main_text = page.locator('[data-testid="stMain"]').inner_text()
                assert "Traceback" not in main_text
                assert "Face 3" not in main_text
                if os.environ.get(SCREENSHOT_ENV):  # down to the last message
                    last = errors.filter(has_text="notes.txt").bounding_box()
                    page.screenshot(path=os.environ[SCREENSHOT_ENV],
                                    clip={"x": 0, "y": 0, "width": 1280, "height": last["y"] + last["height"] + 32})
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()
        print((tmp_path / "server.log").read_text()[-4000:])  # shown by pytest when the test fails
