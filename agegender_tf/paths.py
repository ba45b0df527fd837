"""Where datasets live (the ``AGEGENDER_DATA`` environment variable, per-dataset roots), where the kit's
committed facts about them live (``data_manifests/``: splits, folds, near-duplicate pairs), and how the
kit writes files: through a temporary file in the same folder, renamed, so no file is half-written."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from agegender_tf.errors import DiskFull

DATA_ENV = "AGEGENDER_DATA"
# Where the kit keeps what it can rebuild (the streaming pipeline's packed faces): $AGEGENDER_CACHE, else
# ~/.cache/agegender-tf.
CACHE_ENV = "AGEGENDER_CACHE"
# data_manifests/ sits beside the package in the checkout (one folder per dataset); a wheel carries a copy of
# its split files inside the package (setup.py copies them at build time).
CHECKOUT_MANIFESTS_DIR = Path(__file__).resolve().parents[1] / "data_manifests"
PACKAGED_MANIFESTS_DIR = Path(__file__).resolve().parent / "_manifests"
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# How TensorFlow's own file writers (not Python's OSError) say the same.
NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded")


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


def cache_home() -> Path:
    """The folder named by ``AGEGENDER_CACHE``, else ``~/.cache/agegender-tf`` (not created here)."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "agegender-tf"


def manifests_dir() -> Path:
    """The ``data_manifests/`` folder: per dataset, its committed split, folds and near-duplicate pairs.

    The checkout's own folder when the kit runs from a clone (``pip install -e .``, ``PYTHONPATH``), so a
    regenerated split is read at once; else the copy packaged in the wheel (``agegender_tf/_manifests/``)."""
    checkout = CHECKOUT_MANIFESTS_DIR
    if (checkout / "README.md").is_file() and (checkout.parent / "pyproject.toml").is_file():
        return checkout
    return PACKAGED_MANIFESTS_DIR


@contextmanager
def replace_atomic(path: str | Path, suffix: str = ".tmp"):
    """Yield a temporary path in ``path``'s folder to write to; on success it is renamed to ``path``
    (``os.replace``), on any error it is removed. A reader never sees ``path`` half-written.

    The temporary name is ``.<name>.<random><suffix>``: pass the suffix a writer insists on
    (``.keras`` for ``model.save``, ``.weights.h5`` for ``save_weights``)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; keep the permissions open() would give
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replace_atomic(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
    return path


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (an ``OSError``, or TensorFlow's or h5py's error for a file it wrote) says the disk or
    quota is full."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
        return True
    return any(text in str(exc) for text in NO_SPACE_TEXTS)  # h5py's OSError carries errno 28 in its text


def size_text(size: float) -> str:
    """``size`` bytes for a person: ``512 B``, ``3.4 KB``, ``12.1 MB``, ``1.2 GB``."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


def disk_full_error(folder: str | Path, needed: int | None = None, what: str = "", then: str = "") -> DiskFull:
    """The one-line ``DiskFull`` for a write into ``folder`` that ran out of space: the folder, the space free
    now, ``needed`` bytes (an estimate: the size of the file being written, ``what``) and ``then`` (what to do
    after freeing it)."""
    folder = Path(folder)
    try:
        free = f"{size_text(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = "free space unknown"
    need = f"; free at least {size_text(needed)}{f' ({what})' if what else ''}" if needed else "; free some space"
    return DiskFull(f"no space left on the disk holding {folder} ({free}){need}{f' and {then}' if then else ''}")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def jsonable(value):
    """``value`` as plain JSON values: NumPy scalars as numbers, tuples and sets as lists, keys and any
    other object (a path) as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return value.item()
    return str(value)
