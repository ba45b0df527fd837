"""``agegender app``: start the Streamlit web app (paper 003 sec. 4.5, the deployment).

Runs ``streamlit run agegender_tf/app.py`` in a subprocess; the app reads its own arguments
(``--model``, ``--detector``) after ``--``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from agegender_tf.errors import UsageError

APP_SCRIPT = Path(__file__).with_name("app.py")


def add_commands(subparsers) -> None:
    app = subparsers.add_parser("app", help="start the web app: upload photos, see each face's predictions")
    app.add_argument("--model", default=None,
                     help="run folder or .keras file with model_card.json beside it (default: the bundled model)")
    app.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    app.add_argument("--address", default="localhost",
                     help="address to listen on (default localhost; 0.0.0.0 serves other machines)")
    app.add_argument("--detector", default="mtcnn", choices=("mtcnn", "haar"), help="the page's default detector")
    app.set_defaults(func=_app)


def streamlit_command(model: str | None, port: int, address: str = "localhost", detector: str = "mtcnn") -> list[str]:
    """The ``streamlit run`` command line that serves the app."""
    command = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
               "--server.port", str(port), "--server.address", address, "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
               "--", "--detector", detector]
    if model is not None:
        command += ["--model", str(Path(model).resolve())]
    return command


def _app(args) -> int:
    if importlib.util.find_spec("streamlit") is None:
        raise UsageError("the web app needs streamlit: pip install 'streamlit>=1.53,<2'")
    if args.model is not None and not Path(args.model).exists():
        raise UsageError(f"{args.model}: no such model file or run folder")
    print(f"serving the app at http://{args.address}:{args.port} (Ctrl+C stops it)", flush=True)
    try:
        return subprocess.call(streamlit_command(args.model, args.port, args.address, args.detector))
    except KeyboardInterrupt:
        return 0

