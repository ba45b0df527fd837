"""``agegender papers | run | report`` (the experiments command group).

``run`` checks everything a user typed (preset, ``--profile``, ``--set`` values, the data root and
its dataset folder, ``--out``) with ``validate_run`` before the runner writes anything; a mistake
is a ``UsageError``, printed by ``agegender_tf.cli.main`` as one line with exit status 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from agegender_tf.errors import UsageError
from agegender_tf.paths import DATA_ENV

SMOKE_NOTE = ("smoke run: these numbers only show that the pipeline runs (a few hundred small images, 1-2 "
              "epochs), not what the model can do")


def add_commands(subparsers) -> None:
    papers = subparsers.add_parser("papers", help="list the paper presets, their titles and profiles")
    papers.add_argument("--json", action="store_true", help="print JSON")
    papers.set_defaults(func=_papers)

    run = subparsers.add_parser("run", help="train and evaluate a paper preset")
    run.add_argument("preset")
    run.add_argument("--data-root", default=os.environ.get(DATA_ENV),
                     help=f"folder holding the datasets (default ${DATA_ENV})")
    run.add_argument("--out", default=None, help="run folder (default runs/PRESET)")
    run.add_argument("--smoke", action="store_true", help="few hundred images, small images, 1-2 epochs")
    run.add_argument("--profile", default=None, metavar="NAME",
                     help="apply a named set of overrides of the preset (e.g. cpu; agegender papers lists them); "
                          "--smoke still wins for sizes, --set wins over both")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a preset field, dotted keys for dict fields (repeatable)")
    run.add_argument("--quiet", action="store_true",
                     help="no training progress (for CI); otherwise a per-step bar with ETA on a terminal, "
                          "one line per epoch in a log")
    run.add_argument("--overwrite", action="store_true",
                     help="start fresh: empty --out (a run folder) first; without it, a rerun with other "
                          "settings than the run in --out is refused")
    run.add_argument("--strategy", default="default", choices=("default", "mirrored", "multiworker", "tpu"),
                     help="tf.distribute strategy; the preset's batch size is per replica (docs/distribute.md)")
    run.add_argument("--cpu-replicas", type=int, default=None, metavar="N",
                     help="split the CPU into N logical devices (with --strategy mirrored: N replicas, no GPU)")
    run.set_defaults(func=_run)

    report = subparsers.add_parser("report", help="redraw a run's figures from its saved history and predictions")
    report.add_argument("preset")
    report.add_argument("--run", required=True, help="the run folder (--out of agegender run)")
    report.set_defaults(func=_report)


def _papers(args) -> int:
    from agegender_tf.experiments.presets import listing

    rows = listing()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        profiles = "".join(f"\n      {name}: " + "; ".join(f"{key} {value}" for key, value in _flat(values))
                           for name, values in row["profiles"].items()) or " none"
        print(f"{row['name']}  [{row['paper']}]  {row['title']}\n"
              f"    dataset used: {row['dataset_used']} (paper: {', '.join(row['paper_datasets'])}); "
              f"model: {row['model']}; tasks: {', '.join(row['tasks'])}\n"
              f"    profiles:{profiles}")
    return 0


def _flat(values: dict, prefix: str = ""):
    """(dotted key, value in words) pairs of a profile: ``callbacks.early_stopping.patience``, ``4``."""
    for key, value in values.items():
        if isinstance(value, dict) and value:
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", _words(value)


def _words(value) -> str:
    """A profile value as a reader writes it: ``none``, ``true``, ``32, 64, 128``, ``0.001``."""
    if value is None or (isinstance(value, (list, tuple, dict)) and not value):
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ", ".join(_words(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ------------------------------------------------------------------------------------------------ run
def _readable_folder(path: Path, what: str, hint: str) -> Path:
    """``path`` when it is a folder this process can list, else a ``UsageError`` naming it."""
    if not path.exists():
        raise UsageError(f"{what} {path} does not exist; {hint}")
    if not path.is_dir():
        raise UsageError(f"{what} {path} is not a folder; {hint}")
    try:
        entries = list(os.scandir(path))
    except PermissionError:
        raise UsageError(f"cannot read {what} {path}: permission denied (check its permissions)") from None
    for entry in entries:  # the reader descends one level (e.g. utkface/UTKFace/)
        if entry.is_dir() and not os.access(entry.path, os.R_OK | os.X_OK):
            raise UsageError(f"cannot read {entry.path}: permission denied (check its permissions)")
    return path


def _check_out(out: Path) -> None:
    """Refuse an ``--out`` that is a file or lies where no folder can be made."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; choose another --out")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--out {out} cannot be created: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out} cannot be written: {parent} is not writable")


def validate_run(name: str, data_root, out, *, smoke: bool = False, profile: str | None = None, overrides=()):
    """The resolved preset, after checking everything ``agegender run`` was given; nothing is written.

    Raises ``UsageError`` for an unknown preset or profile, a bad ``--set`` key or value, a missing,
    unreadable or incomplete data root, or an ``--out`` that cannot be a folder. ``check_model_args``
    (which imports TensorFlow) is separate: call it next, still before the run writes anything.
    """
    from agegender_tf.experiments.presets import resolve

    preset = resolve(name, smoke=smoke, profile=profile, overrides=overrides)
    if not data_root:
        raise UsageError(f"no --data-root given and ${DATA_ENV} is unset: pass --data-root DIR, the folder "
                         f"holding {preset.dataset}/ (agegender data info {preset.dataset} says how to get it)")
    root = _readable_folder(Path(data_root).expanduser(), "data root",
                            f"pass --data-root DIR or set ${DATA_ENV} to the folder holding {preset.dataset}/")
    _readable_folder(root / preset.dataset, f"{preset.name}'s dataset folder",
                     f"--data-root must hold {preset.dataset}/ "
                     f"(agegender data info {preset.dataset} says how to get it)")
    _check_out(Path(out))
    return preset


def _run(args) -> int:
    from agegender_tf.experiments.presets import check_model_args

    out = args.out = args.out or os.path.join("runs", args.preset + ("_smoke" if args.smoke else ""))
    preset = validate_run(args.preset, args.data_root, out, smoke=args.smoke, profile=args.profile,
                          overrides=args.overrides)
    if not args.debug:
        from agegender_tf import import_tensorflow_quietly

        import_tensorflow_quietly()
    check_model_args(preset)
    from agegender_tf.experiments.runner import run
    from agegender_tf.experiments.train import progress_verbosity

    try:
        result = run(preset, args.data_root, out, smoke=args.smoke, seed=args.seed,
                     verbose=progress_verbosity(args.quiet), overwrite=args.overwrite, strategy=args.strategy,
                     cpu_replicas=args.cpu_replicas)
    except UsageError:
        raise
    except Exception as error:  # a full disk while writing a small file (a table, a figure, the report)
        full = _disk_full(error, Path(out))
        if full is None:
            raise
        raise full from None
    if "worker" in result:  # a worker other than the chief (docs/distribute.md): the chief writes the report
        args.chief = False
        print(f"worker {result['worker']} of {result['workers']}: trained; {out}/report.json is the chief's")
        return 0
    print(json.dumps({"out": out, "metrics": {t: {k: v for k, v in m.items() if isinstance(v, (int, float))}
                                                for t, m in result["metrics"].items()}}, indent=2))
    if args.smoke:
        print(f"{SMOKE_NOTE}; the committed full-scale run is results/{args.preset}/ "
              f"(results/README.md compares it with the paper)")
    print(f"wrote {Path(out) / 'report.json'} (figures in {Path(out) / 'figures'})")
    return 0


def _disk_full(error: Exception, out: Path):
    """None, or when ``error`` says the disk is full: the ``DiskFull`` of one line naming the folder written to (``out``
    unless the error names a file) and, as the space needed, the size of the largest checkpoint."""
    from agegender_tf.experiments.checkpoints import RERUN
    from agegender_tf.paths import disk_full_error, is_disk_full

    if not is_disk_full(error):
        return None
    name = getattr(error, "filename", None)
    sizes = [p.stat().st_size for p in out.glob("train/*/best.keras") if p.is_file()]
    return disk_full_error(Path(name).parent if name else out, max(sizes, default=None),
                           "the size of the last checkpoint", RERUN)


# --------------------------------------------------------------------------------------------- report
def _read_json(path: Path, rerun: str) -> dict:
    if not path.is_file():
        raise UsageError(f"{path} is missing: the run did not finish; {rerun}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path} is cut short or not JSON "
                         f"({error.__class__.__name__} at {getattr(error, 'pos', '?')});"
                         f" {rerun}") from None


def _report(args) -> int:
    from agegender_tf.experiments.presets import get_preset

    get_preset(args.preset)
    run_dir = Path(args.run)
    rerun = f"rerun the agegender run command that made {run_dir} to finish it"
    if not run_dir.is_dir():
        raise UsageError(f"run folder {run_dir} does not exist (--run is the --out of agegender run)")
    preset = _read_json(run_dir / "preset.json", rerun).get("name")
    if preset != args.preset:
        raise UsageError(f"{run_dir} holds a run of preset {preset!r}, not {args.preset!r}")
    _read_json(run_dir / "report.json", rerun)
    for needed in ("history.csv", "predictions.csv", "train_ages.csv"):
        if not (run_dir / needed).is_file():
            raise UsageError(f"{run_dir / needed} is missing: the run did not finish; {rerun}")
    from agegender_tf.experiments.report import render_figures
    from agegender_tf.experiments.rundir import check_run_models

    check_run_models(run_dir)  # a damaged best.keras is named, not silently redrawn around
    for path in render_figures(run_dir):
        print(path)
    return 0
