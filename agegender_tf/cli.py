"""The ``agegender`` command: ``data`` (info, summarize, audit, make-split), ``papers``, ``run``, ``report``.

Each group lives beside the code it drives and adds its own sub-parser; this module only
dispatches. Loading the groups imports no TensorFlow, so ``agegender --help``, ``papers`` and the
``data`` commands stay fast; a command that needs TensorFlow says so with
``set_defaults(uses_tensorflow=True)`` and ``main`` imports it with its C++ start-up logs silenced.

A user's mistake (an unknown name, a bad value, a missing path) is raised as
``agegender_tf.errors.UsageError`` and printed as one line on stderr with exit status 2;
``--debug`` shows the traceback (and TensorFlow's logs) instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from agegender_tf import import_tensorflow_quietly
from agegender_tf.errors import EXIT_USAGE, UsageError

# (module, function adding the sub-commands) for each command group.
_COMMAND_GROUPS = (
    ("agegender_tf.data.cli", "add_commands"),
    ("agegender_tf.experiments.cli", "add_commands"),
    ("agegender_tf.serving.cli", "add_commands"),
    ("agegender_tf.experiments.results_table", "add_commands"),
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are ``UsageError`` (one line, exit 2) instead of usage + exit."""

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="agegender",
        description="Replicate age and gender classification papers with Keras 3 / TensorFlow.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="on an error show the Python traceback, and show TensorFlow's logs "
                             "(accepted anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name, function_name in _COMMAND_GROUPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # group not built yet
        getattr(module, function_name)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args([a for a in argv if a != "--debug"])
        args.debug = debug
        if getattr(args, "uses_tensorflow", False) and not debug:
            import_tensorflow_quietly()
        result = args.func(args)
    except UsageError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
