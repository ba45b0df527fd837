"""The web app (paper 003 sec. 4.5, the deployment) end to end: ``agegender app`` serves the Streamlit
page on a free local port and headless Debian chromium, driven by Playwright, uploads a photo of two
real UTKFace faces, a photo with no face and a text file; the page must show both faces' predictions
(the same as the Python predictor's) and a message for each bad upload; uploads named in Markdown show
their names as written. The per-upload analysis is
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
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agegender_tf import model_card
from agegender_tf.serving import DETECTORS
from agegender_tf.serving import app as app_module
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
# Upload names that are Markdown: the page must show them as written (no link, no bold, no red).
MARKDOWN_NAMES = ("[click me](https://example.com/x).png", "**bold** :red[red].png")


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


# ---------------------------------------------------------------------------------- names as plain text
class FakeStreamlit:
    """Records each Streamlit call that renders text: (function name, the text it was given)."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, function):
        def record(*args, **kwargs):
            texts = [a for a in (*args, kwargs.get("caption")) if isinstance(a, str)]
            self.calls.extend((function, text) for text in texts)
            if function == "columns":
                return [self for _ in range(len(args[0]))]
            return None

        return record

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _rendered(markdown: str) -> str:
    """Streamlit's Markdown (CommonMark) as HTML, by markdown-it."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").renderInline(markdown)


@pytest.mark.parametrize("name", [*MARKDOWN_NAMES, "`tick` $x$ <b>b</b> :smile:.jpg"])
def test_an_upload_name_reaches_the_page_only_as_plain_text(name):
    import html

    face = {"box": [2, 2, 8, 8], "gender": {"label": "female", "p": {"female": 0.9, "male": 0.1}}, "age": 30.0}
    shown = [app_module.PhotoResult(name, error=f"{name}: not an image (cannot identify {name})"),
             app_module.PhotoResult(name, image=np.zeros((16, 16, 3), np.uint8), warning=f"{name}: no face found"),
             app_module.PhotoResult(name, image=np.zeros((16, 16, 3), np.uint8), faces=[face])]
    for result in shown:
        st = FakeStreamlit()
        app_module.show_result(st, result)
        texts = [text for function, text in st.calls if function in ("subheader", "error", "warning", "markdown")]
        assert ("subheader", app_module.literal(name)) in st.calls
        shown_name = f"<code>{html.escape(name, quote=False)}</code>"  # the name as written, nothing made of it
        for text in texts:
            page = _rendered(text)
            assert "<a " not in page and "<strong>" not in page.replace("<strong>Face 1", ""), page
            assert html.escape(name, quote=False) not in page.replace(shown_name, ""), page
        named = [_rendered(text) for text in texts if not text.startswith("**Face")]
        assert named and all(shown_name in page for page in named), named
    assert _rendered(app_module.markdown_escaped("**a** [b](c) :red[d]")) == "**a** [b](c) :red[d]"


def test_a_big_png_upload_is_cached_at_the_display_width(predictor, tmp_path):
    ramp = np.linspace(0, 255, 4000, dtype=np.float32).astype(np.uint8)
    big = Image.fromarray(np.repeat(np.repeat(ramp[None, :, None], 1800, axis=0), 3, axis=2))  # 4000 x 1800
    big.save(tmp_path / "big.png")
    assert (tmp_path / "big.png").stat().st_size < MAX_UPLOAD_MB * 2**20
    for aligned in (True, False):
        result = analyse_upload("big.png", (tmp_path / "big.png").read_bytes(), predictor, "haar", aligned)
        assert result.error is None, result.error
        assert result.image.shape[1] <= app_module.DISPLAY_WIDTH and result.image.shape[0] <= 1800
        assert result.scale == pytest.approx(result.image.shape[1] / 4000)


# ------------------------------------------------------------------------------- the server's lifetime
def test_a_port_in_use_is_one_line_before_serving(capsys):
    from agegender_tf.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", "--port", str(port), "--address", "127.0.0.1"]) == 2
    captured = capsys.readouterr()
    assert "serving the app" not in captured.out
    (line,) = captured.err.strip().splitlines()
    assert line == (f"error: port {port} on 127.0.0.1 is taken (another program or agegender app serves on it); "
                    "choose another with --port N")
    assert main(["app", "--port", "70000"]) == 2
    assert "--port must be between 1 and 65535" in capsys.readouterr().err


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_the_server_ends_with_the_app_command(tmp_path, how):
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "agegender_tf", "app", "--port", str(port),
                               "--address", "127.0.0.1"], stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True,
                              env={**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", server, 120)
        (child,) = _children(server.pid)
        os.kill(server.pid, how)  # the command's own pid, not its process group
        server.wait(30)
        deadline = time.monotonic() + 30
        while (_running(child) or _answers(port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _running(child), f"streamlit (pid {child}) outlived agegender app"
        assert not _answers(port), f"port {port} still answers"
        if how == signal.SIGTERM:
            assert server.returncode == 0
    finally:
        if server.poll() is None or _children(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)
        log.close()
        print((tmp_path / "server.log").read_text()[-4000:])


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
                uploads = [{"name": p.name, "mimeType": "application/octet-stream", "buffer": p.read_bytes()}
                           for p in photos.values()]
                uploads += [{"name": name, "mimeType": "image/png", "buffer": photos["no_face.png"].read_bytes()}
                            for name in MARKDOWN_NAMES]  # last: below the screenshot's clip
                page.locator('input[type="file"]').set_input_files(uploads)
                for number, face in enumerate(expected, start=1):
                    page.get_by_text(face_summary(number, face), exact=True).wait_for()
                page.get_by_text("2 faces found").wait_for()
                errors = page.locator('[data-testid="stAlert"]')
                errors.filter(has_text="notes.txt: not an image").wait_for()
                errors.filter(has_text="no_face.png: no face found").wait_for()
                main = page.locator('[data-testid="stMain"]')
                for name in MARKDOWN_NAMES:  # shown as written, in the heading and in the message
                    main.get_by_role("heading").filter(has_text=name).first.wait_for()
                    errors.filter(has_text=f"{name}: no face found").wait_for()
                assert main.locator('a[href*="example.com"]').count() == 0
                assert main.locator("strong", has_text="bold").count() == 0
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
