"""Where datasets live (the ``AGEGENDER_DATA`` environment variable, per-dataset roots), where the kit's
committed facts about them live (``data_manifests/``: splits, folds, near-duplicate pairs), and how the
kit writes files: through a temporary file in the same folder, renamed, so no file is half-written."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

DATA_ENV = "AGEGENDER_DATA"
# data_manifests/ sits beside the package in the checkout: one folder per dataset.
MANIFESTS_DIR = Path(__file__).resolve().parents[1] / "data_manifests"


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


def manifests_dir() -> Path:
    """The ``data_manifests/`` folder: per dataset, its committed split, folds and near-duplicate pairs."""
    return MANIFESTS_DIR


@contextmanager
def replace_atomic(path: str | Path):
    """Yield a temporary path in ``path``'s folder to write to; on success it is renamed to ``path``
    (``os.replace``), on any error it is removed. A reader never sees ``path`` half-written."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
