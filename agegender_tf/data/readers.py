"""Reader registry: dataset name -> ``read(root) -> ReadResult`` (DESIGN.md, "Readers").

Each reader lives in its own module and is imported only when asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from agegender_tf.data.manifest import ReadResult

# name -> module holding ``read(root, **options) -> ReadResult``.
READER_MODULES = {
    "utkface": "agegender_tf.data.utkface",
    "adience": "agegender_tf.data.adience",
    "imdb_wiki": "agegender_tf.data.imdb_wiki",
    "celeba": "agegender_tf.data.celeba",
    "fgnet": "agegender_tf.data.fgnet",
    "afad": "agegender_tf.data.afad",
}


def available() -> list[str]:
    return sorted(READER_MODULES)


def read_dataset(name: str, root: str | Path, **options) -> ReadResult:
    """Read dataset ``name`` unpacked at ``root`` into a manifest plus its dropped rows."""
    try:
        module_name = READER_MODULES[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; choose one of {available()}") from None
    return importlib.import_module(module_name).read(root, **options)
