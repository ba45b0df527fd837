"""TensorFlow starts without its C++ start-up lines wherever the kit starts it (the benchmarks, the app), and
``agegender predict`` with nothing to predict never starts it. Each check runs a fresh Python, since a
process imports TensorFlow only once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from agegender_tf.serving import predictor
from tests.fixtures import write_jpeg

ROOT = Path(__file__).resolve().parents[1]
START_UP_LINES = ("cuInit", "oneDNN", "cpu_feature_guard", "cudart_stub", "absl::InitializeLog")


def fresh_python(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # TensorFlow's default verbosity
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT)


def assert_quiet(stderr: str) -> None:
    shown = [line for line in stderr.splitlines() if any(word in line for word in START_UP_LINES)]
    assert not shown, shown


def test_the_benchmarks_start_tensorflow_quietly(tmp_path):
    write_jpeg(tmp_path / "UTKFace" / "25_1_0_20170103175619551.jpg.chip.jpg", size=64)
    completed = fresh_python("""
        import sys
        from agegender_tf.bench.cli import main
        main(["predict", "--root", sys.argv[1], "--faces", "1", "--batch-size", "1", "--repeats", "1", "--json"])
        print("tensorflow loaded:", "tensorflow" in sys.modules)
    """, str(tmp_path))
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert '"faces_per_s"' in completed.stdout and "tensorflow loaded: True" in completed.stdout
    assert_quiet(completed.stderr)


def test_the_app_starts_tensorflow_quietly():
    """The app's ``main`` as streamlit runs it (here bare: no server, no uploads) with the bundled model: the
    model loads, and the log holds no TensorFlow start-up line."""
    completed = fresh_python("""
        import sys
        from agegender_tf.serving import app
        app.main([])
        print("keras model loaded:", "keras.src.models" in sys.modules)
    """)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "keras model loaded: True" in completed.stdout
    assert_quiet(completed.stderr)


def test_predict_with_no_usable_path_says_so_in_one_line_without_tensorflow(tmp_path):
    assert (predictor.BUNDLED_DIR / "best.keras").is_file()  # the default model is committed
    completed = fresh_python("""
        import sys
        from agegender_tf.cli import main
        status = main(["predict", sys.argv[1]])
        print("tensorflow loaded:", "tensorflow" in sys.modules, "status:", status)
    """, str(tmp_path / "nonexistent"))
    assert completed.stdout.strip() == "tensorflow loaded: False status: 1", completed.stderr[-2000:]
    assert completed.stderr.strip().splitlines() == [f"error: {tmp_path / 'nonexistent'}: file not found"]


def test_predict_names_each_bad_path_before_the_model_loads(tmp_path):
    (tmp_path / "empty").mkdir()
    completed = fresh_python("""
        import sys
        from agegender_tf.cli import main
        status = main(["predict", *sys.argv[1:], "--json"])
        print("tensorflow loaded:", "tensorflow" in sys.modules, "status:", status)
    """, str(tmp_path / "empty"), str(tmp_path / "gone.jpg"))
    assert completed.stdout.strip() == "tensorflow loaded: False status: 1"
    assert completed.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'empty'}: folder holds no image files (.jpg, .jpeg, .png, .gif, .bmp, .webp, .tif, "
        ".tiff)", f"error: {tmp_path / 'gone.jpg'}: file not found"]
