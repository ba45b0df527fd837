"""``agegender app``: serve the Streamlit web app (paper 003 sec. 4.5, the deployment) on this machine.

The port is checked before anything is printed; the ``streamlit run`` child ends with the command
(signals forwarded, and on Linux the child dies with its parent).
"""

from __future__ import annotations

import errno
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from agegender_tf.errors import MissingExtra, UsageError
from agegender_tf.serving import DETECTORS

APP_SCRIPT = Path(__file__).with_name("app.py")


def add_command(subparsers) -> None:
    app = subparsers.add_parser("app", help="start the web app: upload photos, see each face's predictions")
    app.add_argument("--model", default=None,
                     help="run folder or .keras file with model_card.json beside it (default: the bundled model)")
    app.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    app.add_argument("--address", default="localhost",
                     help="address to listen on (default localhost; 0.0.0.0 serves other machines)")
    app.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS, help="the page's default detector")
    app.set_defaults(func=_app)


def streamlit_command(model: str | None, port: int, address: str = "localhost",
                      detector: str = DETECTORS[0]) -> list[str]:
    """The ``streamlit run`` command line that serves the app (paper 003 sec. 4.5, the deployment); the
    app reads its own arguments (``--model``, ``--detector``) after ``--``."""
    command = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
               "--server.port", str(port), "--server.address", address, "--server.headless", "true",
               "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
               "--", "--detector", detector]
    if model is not None:
        command += ["--model", str(Path(model).resolve())]
    return command


def check_port(address: str, port: int) -> None:
    """Refuse (one line) a port that is out of range, taken on ``address`` or that this user may not listen on,
    and an address that is not this machine's: bind it on every address ``address`` names, as the server will."""
    if not 0 < port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")
    try:
        addresses = {info[:2] + (info[4],) for info in socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)}
    except socket.gaierror as exc:
        raise UsageError(f"--address {address}: not an address of this machine ({exc.strerror})") from None
    for family, kind, where in sorted(addresses, key=str):
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is free
            try:
                probe.bind(where)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise UsageError(f"port {port} on {address} is taken (another program or agegender app "
                                     "serves on it); choose another with --port N") from None
                if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
                    continue  # no IPv6 here: the server skips it too
                raise UsageError(f"cannot listen on {address} port {port}: {exc.strerror}") from None


def _die_with_parent(parent: int) -> None:
    """In the ``streamlit run`` child, before it starts (Linux): get SIGTERM when the parent dies, even by
    SIGKILL (``prctl(PR_SET_PDEATHSIG)``), and stop at once if it is already gone."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def serve(command: list[str], grace: float = 15.0) -> int:
    """Run the server ``command`` in our process group and end it with us: SIGTERM, SIGINT and SIGHUP are passed
    on to it and waited for (``grace`` seconds, then SIGKILL); on Linux it also dies when we are killed outright.
    Returns its exit status, 0 when a signal stopped it."""
    parent = os.getpid()
    preexec = (lambda: _die_with_parent(parent)) if sys.platform.startswith("linux") else None
    child = subprocess.Popen(command, preexec_fn=preexec)
    stopping: list[int] = []

    def forward(number, frame):
        stopping.append(number)
        if child.poll() is None:
            child.send_signal(number)

    previous = {number: signal.signal(number, forward) for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    deadline = None
    try:
        while True:
            try:
                status = child.wait(timeout=0.5)
                return 0 if stopping else status
            except subprocess.TimeoutExpired:
                if stopping:
                    deadline = deadline or time.monotonic() + grace
                    if time.monotonic() > deadline:
                        child.kill()
            except KeyboardInterrupt:  # a SIGINT that arrived before our handler was set
                forward(signal.SIGINT, None)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if child.poll() is None:
            child.kill()
            child.wait()


def _app(args) -> int:
    if importlib.util.find_spec("streamlit") is None:
        raise MissingExtra("the web app needs streamlit", "app")
    if args.model is not None and not Path(args.model).exists():
        raise UsageError(f"{args.model}: no such model file or run folder")
    check_port(args.address, args.port)
    print(f"serving the app at http://{args.address}:{args.port} (Ctrl+C stops it)", flush=True)
    return serve(streamlit_command(args.model, args.port, args.address, args.detector))


