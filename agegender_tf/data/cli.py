"""``agegender data summarize|audit|make-split|info``: the data commands, their exit codes and JSON output.

Exit codes: 0 ok, 1 the audit found bad files, 2 the dataset root is missing, unreadable or invalid.
Without ``--root`` a command uses ``$AGEGENDER_DATA/<dataset>``; when neither exists it prints
how to obtain the dataset and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agegender_tf.data.readers import available
from agegender_tf.errors import UsageError
from agegender_tf.paths import dataset_root

EXIT_OK, EXIT_BAD_FILES, EXIT_NO_DATA = 0, 1, 2


def add_commands(subparsers) -> None:
    data = subparsers.add_parser("data", help="read, summarize, audit and split the datasets")
    commands = data.add_subparsers(dest="data_command", required=True)

    def dataset_command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("dataset", choices=available())
        parser.add_argument("--root", type=Path, help="where the publisher's archive unpacks "
                            "(default: $AGEGENDER_DATA/<dataset>)")
        parser.add_argument("--workers", type=int, default=None, help="decode/hash threads (default: cores)")
        parser.set_defaults(func=func)
        return parser

    dataset_command("summarize", "counts: rows, dropped, gender, age groups, images, duplicates",
                    _summarize).add_argument("--json", action="store_true", help="print JSON")
    dataset_command("audit", "decode every image, check every name, duplicates and split leaks; "
                    "exit 1 when any file is bad", _audit).add_argument("--json", action="store_true")
    make_split = commands.add_parser("make-split", help="write the committed UTKFace split "
                                     "(data_manifests/utkface/split.csv, near_duplicates.csv, pixel_copies.csv)")
    make_split.add_argument("dataset", choices=["utkface"])
    make_split.add_argument("--root", type=Path)
    make_split.add_argument("--seed", type=int, default=None, help="default 42")
    make_split.add_argument("--out", type=Path, default=None)
    make_split.add_argument("--workers", type=int, default=None)
    make_split.set_defaults(func=_make_split)
    info = commands.add_parser("info", help="where to obtain a dataset, its licence, layout and counts")
    info.add_argument("dataset", nargs="?", choices=available())
    info.set_defaults(func=_info)


def _root_or_none(args) -> Path | None:
    root = args.root if args.root is not None else dataset_root(args.dataset)
    if root is None:
        from agegender_tf.data.info import how_to_obtain

        print(f"No {args.dataset} data: pass --root or set AGEGENDER_DATA. To obtain it:\n"
              f"{how_to_obtain(args.dataset)}", file=sys.stderr)
    return root


def _read(args):
    """The reader's result, or None after printing why the root is unusable."""
    from agegender_tf.data.info import how_to_obtain
    from agegender_tf.data.readers import read_dataset

    root = _root_or_none(args)
    if root is None:
        return None
    try:
        return read_dataset(args.dataset, root)
    except PermissionError as exc:
        raise UsageError(f"cannot read {exc.filename or root}: permission denied (check its permissions)") from None
    except (FileNotFoundError, ValueError) as exc:
        message = str(exc)
        if "page:" not in message:
            message += f"\nTo obtain {args.dataset}:\n{how_to_obtain(args.dataset)}"
        print(f"error: {message}", file=sys.stderr)
        return None


def _summarize(args) -> int:
    from agegender_tf.data.summary import summarize_result

    result = _read(args)
    if result is None:
        return EXIT_NO_DATA
    summary = summarize_result(args.dataset, result, args.workers)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_table(summary)
    return EXIT_OK


def _print_table(summary: dict, indent: str = "") -> None:
    width = max((len(k) for k in summary), default=0)
    for key, value in summary.items():
        if isinstance(value, dict) and value and any(isinstance(v, (dict, list)) for v in value.values()):
            print(f"{indent}{key}:")
            _print_table(value, indent + "  ")
        elif isinstance(value, dict):
            print(f"{indent}{key:<{width}}  " + (", ".join(f"{k}: {v}" for k, v in value.items()) or "none"))
        else:
            print(f"{indent}{key:<{width}}  {'none' if value is None else value}")


def _audit(args) -> int:
    from agegender_tf.data.audit import audit_result

    result = _read(args)
    if result is None:
        return EXIT_NO_DATA
    report = audit_result(args.dataset, result, args.workers)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        for item, problem in report.bad:
            print(f"BAD  {item}: {problem}")
        for item, problem in report.warnings:
            print(f"WARN {item}: {problem}")
        duplicates = report.duplicates
        near = duplicates["near_duplicates"]
        print(f"{args.dataset}: {report.rows} rows, {report.images_checked} images decoded, "
              f"{report.images_missing} referenced images not on disk, {len(report.bad)} bad, "
              f"{len(report.warnings)} warnings; duplicates: {duplicates['groups']} groups, "
              f"{duplicates['files']} files, {duplicates['conflicting_groups']} with conflicting labels; "
              f"near-duplicates (<= {near['max_distance']} of 256 hash bits): {near['groups']} groups, "
              f"{near['files']} files; pixel copies (mean absolute difference under "
              f"{duplicates['pixel_copies']['max_mad']:g} of 255): {duplicates['pixel_copies']['pairs']} pairs; "
              f"image notes: {report.image_info or 'none'}; split leaks: {len(report.leaks)}")
        print("audit " + ("passed" if report.ok else "FAILED"))
    return EXIT_OK if report.ok else EXIT_BAD_FILES


def _make_split(args) -> int:
    from agegender_tf.data import near_duplicates, pixel_copies
    from agegender_tf.data.hashing import add_content_hashes
    from agegender_tf.data.splits import COMMITTED_SPLITS, SPLIT_VALUES, UTKFACE_SEED, make_utkface_split
    from agegender_tf.paths import manifests_dir

    result = _read(args)
    if result is None:
        return EXIT_NO_DATA
    manifest = add_content_hashes(result.manifest, args.workers)
    pairs = near_duplicates.pairs_table(manifest, workers=args.workers)
    manifest = near_duplicates.add_groups(manifest, pairs)
    split = make_utkface_split(manifest, seed=UTKFACE_SEED if args.seed is None else args.seed, workers=args.workers)
    out = args.out or manifests_dir() / args.dataset / COMMITTED_SPLITS[args.dataset][0]
    out.parent.mkdir(parents=True, exist_ok=True)
    copies = split.attrs["pixel_copies"]
    split.to_csv(out, index=False)
    pairs_out = out.with_name(near_duplicates.committed_pairs_path(args.dataset).name)
    pairs.to_csv(pairs_out, index=False)
    print(f"wrote {pairs_out}: {len(pairs)} near-duplicate pairs within {near_duplicates.NEAR_DUPLICATE_DISTANCE} "
          f"bits, {manifest[near_duplicates.GROUP_COLUMN].nunique()} groups")
    copies_out = out.with_name(pixel_copies.committed_pairs_path(args.dataset).name)
    copies.to_csv(copies_out, index=False)
    print(f"wrote {copies_out}: {len(copies)} test faces that are pixel copies (mean absolute difference under "
          f"{pixel_copies.PIXEL_COPY_MAD:g} of 255) of a training or validation face")
    counts = split["split"].value_counts().to_dict()
    print(f"wrote {out}: {len(split)} files, " + ", ".join(f"{k} {counts.get(k, 0)}" for k in SPLIT_VALUES))
    return EXIT_OK


def _info(args) -> int:
    from agegender_tf.data.info import how_to_obtain, local_status

    for name in [args.dataset] if args.dataset else available():
        title, _, rest = how_to_obtain(name).partition("\n")
        print(f"[{name}] {title}\n  here:    {local_status(name)}\n{rest}\n")
    return EXIT_OK
