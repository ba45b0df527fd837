"""The one exception type for a user's mistake on the command line or in a library call.

Library code raises :class:`UsageError` with a message that says what is wrong and what to do;
``agegender_tf.cli.main`` prints it as one line on stderr and exits with status 2 (``--debug``
shows the traceback instead). It is a ``ValueError``, so library callers may catch either.
"""

from __future__ import annotations

EXIT_USAGE = 2


class UsageError(ValueError):
    """A mistake the user can fix (a name, a value, a path); ``str()`` is the one-line message."""

    def __str__(self) -> str:
        return " ".join(str(self.args[0]).split()) if self.args else ""


class UnknownNameError(UsageError, KeyError):
    """An unknown name (preset, dataset): a ``UsageError`` that is also a ``KeyError`` for old callers."""


class SplitLeakError(UsageError):
    """A split whose parts share a subject, a byte copy or a near-duplicate photo (no numbers are made on it)."""


class DiskFull(UsageError):
    """A write stopped on a full disk (ENOSPC) or quota (EDQUOT): one line naming the folder and the space needed;
    nothing half-written is left under a final name (``paths.replace_atomic``)."""


def install_hint(extra: str) -> str:
    """How to install one of the kit's optional extras (pyproject.toml ``[project.optional-dependencies]``):
    ``pip install 'agegender-tf[app]'``. A command that needs an extra names it in its one-line error."""
    return f"pip install 'agegender-tf[{extra}]'"


class MissingExtra(UsageError):
    """A command needs an optional package that is not installed: one line naming the package and the extra
    that brings it (``UsageError``: exit status 2)."""

    def __init__(self, needs: str, extra: str):
        super().__init__(f"{needs}: {install_hint(extra)}")
        self.extra = extra
