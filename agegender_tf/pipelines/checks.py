"""Up-front image validation for both pipelines: never a silent shrink of an epoch.

``tf.data`` decode errors do not name the file, and ``flow_from_dataframe`` drops missing files
with a warning; so both backends fully decode every file once (DESIGN.md, "Known facts": PIL's
``verify()`` misses truncation, a full decode does not) and stop with an error naming each bad
file and its problem (``data.images.decode_check``). PNG, grayscale, palette and CMYK files are
readable: both backends convert them to RGB. Results are remembered per (path, size, mtime) for the life of the process.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from agegender_tf.data.images import decode_check

_CHECKED: dict[tuple[str, int, int], str | None] = {}


class ImageFileError(ValueError):
    """One or more image files cannot be read; ``problems`` maps path -> problem."""

    def __init__(self, problems: dict[str, str]):
        self.problems = dict(problems)
        shown = "\n".join(f"  {path}: {problem}" for path, problem in list(self.problems.items())[:20])
        more = len(self.problems) - 20
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{len(self.problems)} unreadable image file(s):\n{shown}{tail}")


def image_problem(path: str) -> str | None:
    """Why ``path`` cannot be used as an image, or None when it decodes fully (remembered)."""
    try:
        stat = os.stat(path)
    except OSError:
        return decode_check(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKED:
        _CHECKED[key] = decode_check(path)
    return _CHECKED[key]


def find_unreadable(paths, workers: int | None = None) -> dict[str, str]:
    """Path -> problem for every path that fails a full decode (decoding runs in threads)."""
    paths = [str(p) for p in paths]
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = list(pool.map(image_problem, paths, chunksize=64))
    return {p: problem for p, problem in zip(paths, problems) if problem is not None}


def require_readable(paths, workers: int | None = None) -> None:
    """Raise ``ImageFileError`` naming every unreadable file."""
    problems = find_unreadable(paths, workers)
    if problems:
        raise ImageFileError(problems)
