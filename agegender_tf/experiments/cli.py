"""``agegender papers | run | report`` (the experiments command group)."""

from __future__ import annotations

import json
import os
import sys

from agegender_tf.paths import DATA_ENV


def add_commands(subparsers) -> None:
    papers = subparsers.add_parser("papers", help="list the paper presets")
    papers.add_argument("--json", action="store_true", help="print JSON")
    papers.set_defaults(func=_papers)

    run = subparsers.add_parser("run", help="train and evaluate a paper preset")
    run.add_argument("preset")
    run.add_argument("--data-root", default=os.environ.get(DATA_ENV),
                     help=f"folder holding the datasets (default ${DATA_ENV})")
    run.add_argument("--out", default=None, help="run folder (default runs/PRESET)")
    run.add_argument("--smoke", action="store_true", help="few hundred images, small images, 1-2 epochs")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a preset field, dotted keys for dict fields (repeatable)")
    run.add_argument("--quiet", action="store_true", help="no per-epoch log")
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
    print(f"{'preset':<26}{'seed document':<24}{'dataset used':<14}{'model':<18}tasks")
    for row in rows:
        print(f"{row['name']:<26}{row['seed_document']:<24}{row['dataset_used']:<14}{row['model']:<18}"
              f"{','.join(row['tasks'])}")
    return 0


def _run(args) -> int:
    from agegender_tf.experiments.presets import get_preset

    get_preset(args.preset)  # unknown names fail before TensorFlow loads
    if not args.data_root:
        print(f"no --data-root given and ${DATA_ENV} is unset", file=sys.stderr)
        return 2
    from agegender_tf.experiments.runner import run

    out = args.out or os.path.join("runs", args.preset + ("_smoke" if args.smoke else ""))
    result = run(args.preset, args.data_root, out, smoke=args.smoke, seed=args.seed, overrides=args.overrides,
                 verbose=0 if args.quiet else 2)
    print(json.dumps({"out": out, "metrics": {t: {k: v for k, v in m.items() if isinstance(v, (int, float))}
                                                for t, m in result["metrics"].items()}}, indent=2))
    return 0


def _report(args) -> int:
    from pathlib import Path

    from agegender_tf.experiments.report import render_figures

    run_dir = Path(args.run)
    preset = json.loads((run_dir / "preset.json").read_text())["name"]
    if preset != args.preset:
        print(f"{run_dir} holds a run of preset {preset!r}, not {args.preset!r}", file=sys.stderr)
        return 2
    for path in render_figures(run_dir):
        print(path)
    return 0
