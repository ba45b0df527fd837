"""The ``agegender`` command: ``data`` (summarize, audit), ``papers``, ``run``, ``report``.

Each group lives beside the code it drives and adds its own sub-parser; this module only
dispatches, so ``agegender --help`` stays fast (TensorFlow is imported only by commands that train).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, function adding the sub-commands) for each command group.
_COMMAND_GROUPS = (
    ("agegender_tf.data.cli", "add_commands"),
    ("agegender_tf.experiments.cli", "add_commands"),
    ("agegender_tf.app_cli", "add_commands"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agegender",
        description="Replicate age and gender classification papers with Keras 3 / TensorFlow.",
    )
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
    parser = build_parser()
    args = parser.parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
