"""``results/README.md`` and ``results/run_all.sh``, generated from the committed run folders of a results
folder (the caller names it: the command line's ``--results``, default ``./results``).

The numbers come from each run folder's own files, read and checked by ``results_check``. Only two
things are written by hand: the text of ``results/README.md`` outside the generated markers, and
``results/gaps.json``, which says per folder why each paper-vs-kit gap remains (``reason``, or ``rows``
keyed ``model/task/metric``, ``model/task`` or ``model``) and gives a short ``note`` shown under the
folder's heading.

``agegender results readme`` (or ``python -m agegender_tf.experiments.results_table``), run from the
repository root, rewrites both files; ``--check`` only says whether they are up to date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agegender_tf.experiments.presets import paper_label_of
from agegender_tf.experiments.results_check import (
    AGE_GROUP_F1_BAR,
    AGE_GROUP_MARGIN,
    AGE_MAE_RATIO,
    COMMAND_FILE,
    GENDER_BAR,
    ONE_CLASS_SHARE,
    RunFolder,
    epochs_run,
    model_rows,
    model_verdicts,
    read_run,
    run_folders,
)

DEFAULT_RESULTS = "results"  # the command line's default: ./results, the repository's when run from its root
README_FILE = "README.md"
RUN_ALL_FILE = "run_all.sh"
GAPS_FILE = "gaps.json"

BEGIN = ("<!-- BEGIN GENERATED TABLES: `agegender results readme` writes everything down to END; "
         "edit results/gaps.json or the text outside -->")
END = "<!-- END GENERATED TABLES -->"
NO_REASON = "no reason given in results/gaps.json"


# --------------------------------------------------------------------------------------- rendering
def _number(value, digits: int = 3, signed: bool = False) -> str:
    return "-" if value is None else f"{value:{'+' if signed else ''},.{digits}f}"


def _metric(metric: str, value, signed: bool = False) -> str:
    return _number(value, 2 if metric in ("mae", "mse", "rmse") else 3, signed)


def _count(value) -> str:
    return "-" if value is None else f"{int(value):,}"


def _duration(seconds) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:,.0f} s ({seconds / 60:.0f} min)" if seconds >= 120 else f"{seconds:,.0f} s"


def read_gaps(results_dir: str | Path) -> dict:
    """``results/gaps.json`` (folder -> {"note", "reason", "rows"}); empty when there is none."""
    path = Path(results_dir) / GAPS_FILE
    if not path.is_file():
        return {}
    try:
        gaps = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    if not isinstance(gaps, dict) or not all(isinstance(v, dict) for k, v in gaps.items() if not k.startswith("_")):
        raise ValueError(f"{path}: expected {{folder: {{'note', 'reason', 'rows'}}}}")
    return {k: v for k, v in gaps.items() if not k.startswith("_")}


def gap_reason(gaps: dict, folder: str, row: dict) -> str:
    """Why a paper-vs-kit row's gap remains: the most specific of the folder's ``rows`` entries
    (``model/task/metric``, ``model/task``, ``model``), else its ``reason``, else ``NO_REASON``."""
    entry = gaps.get(folder, {})
    rows = entry.get("rows", {})
    for key in (f"{row['model']}/{row['task']}/{row['metric']}", f"{row['model']}/{row['task']}", row["model"]):
        if rows.get(key):
            return rows[key]
    return entry.get("reason") or NO_REASON


def _split_text(protocol: dict) -> str:
    split = protocol.get("split") or {}
    if split.get("kind", "committed") == "committed":
        return "committed split (data_manifests/)"
    shares = ", ".join(f"{k} {v}" for k, v in split.items() if k != "kind")
    return f"seeded {split.get('kind')} ({shares}), seed {protocol.get('seed')}"


def _leak_text(counts: dict) -> str:
    check = counts.get("leak_check")
    if check is None:
        return "not recorded"
    if not check.get("ok"):
        return f"**FAILED** ({check.get('boundaries')})"
    boundaries = check.get("boundaries") or {}
    allowed = {name: row["pixel_copy"] for name, row in boundaries.items() if row.get("pixel_copy")}
    return "ok" + (" (pixel copies counted, not failing: " + ", ".join(f"{k} {v}" for k, v in allowed.items()) + ")"
                   if allowed else "")


def _excluded_text(report: dict) -> list[str]:
    """The line saying which predicted test faces a later split excludes (``report["split_v2"]``), if any."""
    v2 = report.get("split_v2")
    if not v2:
        return []
    where = f" (listed in `{v2['pairs_file']}`)" if v2.get("pairs_file") else ""
    return [f"- Re-scored from `predictions.csv` without {v2['excluded_test_faces']} predicted test faces"
            f"{where}: {v2['reason']}."]


def out_of_domain_text(report: dict) -> str:
    """The run's scores on the Adience faces on disk (``report.json``'s ``out_of_domain``), one network
    after another, or "not measured" for a folder made before runs recorded them."""
    scores = report.get("out_of_domain")
    if not scores:
        return "not measured"
    parts = []
    for name, row in scores.get("networks", {}).items():
        values = [f"gender {_number(row.get('gender_accuracy'))}" if "gender_accuracy" in row else None,
                  f"groups exact {_number(row.get('age_group_exact'))}, 1-off {_number(row.get('age_group_one_off'))}"
                  if "age_group_exact" in row else None]
        where = f" ({row.get('faces')} faces, {row.get('path')})"
        parts.append(f"{name}: " + ", ".join(v for v in values if v) + where)
    return "; ".join(parts) or "not measured"


def overview(runs: list[RunFolder]) -> list[str]:
    lines = ["| folder | preset | profile | train / val / test faces | fit time | run time | models meeting the bar | "
             "out of domain (Adience on disk) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        report, protocol = run.report, run.report["protocol"]
        counts = protocol.get("counts", {})
        verdicts = model_verdicts(model_rows(run))
        judged = {m: v for m, v in verdicts.items() if v is not None}
        passing = [m for m, v in judged.items() if v]
        bar = f"{len(passing)} of {len(judged)}" + (f" ({', '.join(passing)})" if passing else "")
        fitted = [s for s in run.network_seconds.values() if s is not None]
        paper = paper_label_of(report.get("seed_document"))
        lines.append(f"| [{run.name}]({run.name}/) | {report['preset']} ({paper}) | "
                     f"{protocol.get('profile') or 'none'} | {_count(counts.get('train'))} / "
                     f"{_count(counts.get('val'))} / {_count(counts.get('test'))} | "
                     f"{_duration(sum(fitted)) if fitted else '-'} | {_duration(protocol.get('seconds'))} | {bar} | "
                     f"{out_of_domain_text(report)} |")
    return lines


def run_section(run: RunFolder, gaps: dict) -> list[str]:
    report, protocol = run.report, run.report["protocol"]
    counts = protocol.get("counts", {})
    optimizer = protocol.get("optimizer") or {}
    before = counts.get("split_sizes_before_limit") or {}
    preset = "" if run.name == report["preset"] else f"preset {report['preset']}, "
    paper = paper_label_of(report.get("seed_document"))
    lines = [f"### {run.name} ({preset}{paper})", "", f"*{report.get('title', '')}*", ""]
    note = gaps.get(run.name, {}).get("note")
    if note:
        lines += [note, ""]
    lines += [
        f"- Command ([`{run.name}/{COMMAND_FILE}`]({run.name}/{COMMAND_FILE})): "
        + (f"`{run.command}`" if run.command else "**missing**"),
        f"- Data: {report.get('dataset_used')}, {_split_text(protocol)}: {_count(counts.get('train'))} train / "
        f"{_count(counts.get('val'))} val / {_count(counts.get('test'))} test faces"
        + (f" (split sizes before `max_train_images` {protocol['max_train_images']}: "
           f"{' / '.join(_count(before.get(k)) for k in ('train', 'val', 'test'))})"
           if protocol.get("max_train_images") else "")
        + f"; leak check {_leak_text(counts)}.",
        f"- Settings: profile {protocol.get('profile') or 'none'}, {protocol.get('image_size')} px, batch "
        f"{protocol.get('batch_size')}, {optimizer.get('name')} {optimizer.get('learning_rate')}, at most "
        f"{protocol.get('epochs')} epochs, seed {protocol.get('seed')}.",
        f"- Run time: {_duration(protocol.get('seconds'))} (`protocol.seconds`).",
        f"- Out of domain (the Adience faces on disk, through the predictor's path): {out_of_domain_text(report)}.",
        *_excluded_text(report),
    ]
    for network in epochs_run(run):
        trained = f", fit in {_duration(network['seconds'])}" if network["seconds"] is not None else ""
        lines.append(f"  - `{network['network']}`: {network['epochs']} of {network['cap']} epochs, best val_loss at "
                     f"epoch {network['best_epoch']}, stopped by {network['stopped_by']}{trained}.")
    rows = model_rows(run)
    lines += ["", "| model | task | test faces | accuracy | macro F1 | 1-off | MAE (years) | baseline | learning bar |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        metrics, base = row["metrics"], row["baseline"]
        baseline = (f"median guess MAE {_number(base['median_mae'], 2)}" if row["task"] == "age"
                    else f"majority {_number(base['majority'])}")
        verdict = ("-" if row["passed"] is None else "pass" if row["passed"] else "**fail**") + f" ({row['rule']})"
        if row["one_class"]:
            verdict += f"; predicts one class for {base['top_prediction_share']:.0%} of the faces"
        lines.append(f"| {row['model']} | {row['task']} | {_count(metrics.get('n'))} | "
                     f"{_number(metrics.get('accuracy'))} | {_number(metrics.get('f1'))} | "
                     f"{_number(metrics.get('one_off_accuracy'))} | {_number(metrics.get('mae'), 2)} | {baseline} | "
                     f"{verdict} |")
    verdicts = model_verdicts(rows)
    lines += ["", "Learning bar: " + "; ".join(
        f"{model} {'baseline (not judged)' if v is None else 'meets it' if v else '**misses it**'}"
        for model, v in verdicts.items()) + "."]
    stuck = sorted({row["model"] for row in rows if row["one_class"]})
    if stuck:
        lines.append(f"Stayed at one class on some task: {', '.join(stuck)}.")
    lines += folds_lines(report)
    comparison = report.get("comparison") or []
    if comparison:
        lines += ["", "| model | task | metric | paper | kit | gap | paper's source | why the gap remains |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for row in comparison:
            gap = "" if row.get("gap") is None else _metric(row["metric"], row["gap"], signed=True)
            kit = "not measured" if row.get("kit") is None else _metric(row["metric"], row["kit"])
            lines.append(f"| {row['model']} | {row['task']} | {row['metric']} | {row['paper']} | {kit} | {gap} | "
                         f"{row.get('source', '')} | {gap_reason(gaps, run.name, row)} |")
    else:
        lines += ["", "The paper reports no numbers of its own for this protocol, so there is no paper-vs-kit table."]
    return lines + [""]


def folds_lines(report: dict) -> list[str]:
    """One line per task of a fold protocol in ``report.extra`` (e.g. Adience's folds): mean +- std over folds."""
    lines = []
    for name, summary in (report.get("extra") or {}).items():
        if not name.endswith("_folds"):
            continue
        protocol = name[: -len("_folds")]
        if not summary.get("available"):
            lines.append(f"{protocol} folds: not run ({summary.get('reason', 'not available')}).")
            continue
        parts = []
        for task, scores in summary.get("tasks", {}).items():
            metric = "mae" if "mae" in scores else "accuracy"
            if metric in scores:
                parts.append(f"{task} {metric} {_metric(metric, scores[metric]['mean'])} "
                             f"± {_metric(metric, scores[metric]['std'])} over {scores['folds']} fold(s)")
        lines.append(f"{protocol} folds ({summary.get('faces_with_images')} faces with images; networks trained "
                     f"above, tested on each fold): " + "; ".join(parts) + ".")
    return [""] + lines if lines else []


def render_tables(results_dir: str | Path) -> str:
    """The generated part of ``results/README.md`` (between the markers)."""
    runs = [read_run(folder) for folder in run_folders(results_dir)]
    gaps = read_gaps(results_dir)
    lines = ["## All runs", ""] + overview(runs) + [""]
    lines += [f"Learning bar, per model and task on the test faces: gender accuracy >= {GENDER_BAR:.2f}; "
              f"age-group accuracy >= the majority class + {AGE_GROUP_MARGIN:.2f} and macro F1 >= "
              f"{AGE_GROUP_F1_BAR:.2f}; age MAE <= {AGE_MAE_RATIO} x the MAE of always predicting the test median "
              f"age. Baselines come from each folder's `predictions.csv`. A classifier that gives one class to at "
              f"least {ONE_CLASS_SHARE:.0%} of the test faces is flagged. Paper 000's SVM and K-Means are "
              f"baselines, reported as they come. Run time is `report.json`'s `protocol.seconds` (the folder's last "
              f"`agegender run`: reading, leak check, training of the networks not finished before, evaluation); "
              f"fit time is the networks' training time from their `done.json` (`protocol.training_seconds`). "
              f"What stopped a network is read from "
              f"`history.csv`: its epoch cap; early stopping when it ended exactly `patience` epochs after its best "
              f"val_loss; otherwise the time limit, when one was set.", ""]
    for run in runs:
        lines += run_section(run, gaps)
    return "\n".join(lines).rstrip() + "\n"


def render_readme(results_dir: str | Path, current: str | None = None) -> str:
    """``results/README.md`` with its generated part replaced; the text outside the markers is kept."""
    path = Path(results_dir) / README_FILE
    if current is None:
        current = path.read_text() if path.is_file() else f"# Results\n\n{BEGIN}\n{END}\n"
    if current.count(BEGIN) != 1 or current.count(END) != 1 or current.index(BEGIN) > current.index(END):
        raise ValueError(f"{path}: needs one line {BEGIN!r} and, after it, one line {END!r} around the generated "
                         "tables")
    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{render_tables(results_dir)}\n{END}{tail}"


def render_run_all(results_dir: str | Path) -> str:
    """``results/run_all.sh``: every folder's ``COMMAND.txt``, in folder order, each logged to its ``train.log``."""
    lines = ["#!/usr/bin/env bash",
             f"# Generated by `agegender results readme` from results/*/{COMMAND_FILE}: the exact command that made",
             "# each folder, one after the other. $AGEGENDER_DATA is the folder holding the datasets.",
             "set -eu",
             'cd "$(dirname "$0")/.."',
             ': "${AGEGENDER_DATA:?set AGEGENDER_DATA to the folder holding the datasets}"']
    for folder in run_folders(results_dir):
        command_file = folder / COMMAND_FILE
        if not command_file.is_file():
            raise ValueError(f"{command_file} is missing: every results folder needs the command that made it")
        command = command_file.read_text().strip()
        lines += ["", f"# results/{folder.name}/", f"{command} > results/{folder.name}/train.log 2>&1"]
    return "\n".join(lines) + "\n"


def stale_files(results_dir: str | Path) -> list[Path]:
    """The generated files of ``results_dir`` that differ from what the generator writes now."""
    results_dir = Path(results_dir)
    wanted = {results_dir / README_FILE: render_readme(results_dir),
              results_dir / RUN_ALL_FILE: render_run_all(results_dir)}
    return [path for path, text in wanted.items() if not path.is_file() or path.read_text() != text]


def write(results_dir: str | Path) -> list[Path]:
    """Write ``README.md`` and ``run_all.sh`` of ``results_dir``; return their paths."""
    from agegender_tf.experiments.rundir import write_text_atomic

    results_dir = Path(results_dir)
    readme, run_all = render_readme(results_dir), render_run_all(results_dir)
    paths = [write_text_atomic(results_dir / README_FILE, readme),
             write_text_atomic(results_dir / RUN_ALL_FILE, run_all)]
    paths[1].chmod(0o755)
    return paths


# ----------------------------------------------------------------------------------------------- CLI
def _add_readme_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default=DEFAULT_RESULTS,
                        help="the results folder (default: ./results, the repository's when run from its root)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")


def add_commands(subparsers) -> None:
    results = subparsers.add_parser("results", help="the committed results/ folder")
    commands = results.add_subparsers(dest="results_command", required=True)
    readme = commands.add_parser("readme", help="write results/README.md's tables and results/run_all.sh from the "
                                                "run folders' reports")
    _add_readme_arguments(readme)
    readme.set_defaults(func=_readme)
    rescore = commands.add_parser("rescore", help="re-score every run folder on the current split from its "
                                                  "predictions.csv (drops test faces the split now excludes)")
    rescore.add_argument("--results", default=DEFAULT_RESULTS, help="the results folder (default: ./results)")
    rescore.add_argument("--data-root", default=None, help="folder holding the datasets (default $AGEGENDER_DATA)")
    rescore.set_defaults(func=_rescore)


def _rescore(args) -> int:
    import os

    from agegender_tf.errors import UsageError
    from agegender_tf.experiments.rescore import rescore_results
    from agegender_tf.paths import DATA_ENV

    folder, data_root = Path(args.results), args.data_root or os.environ.get(DATA_ENV)
    if not folder.is_dir():
        raise UsageError(f"--results {folder} is not a folder")
    if not data_root or not Path(data_root).is_dir():
        raise UsageError(f"rescoring needs the images: set {DATA_ENV} or pass --data-root")
    for row in rescore_results(folder, data_root):
        print(f"{row['folder']}: {row['test']} test faces, {row['excluded']} predicted faces excluded")
    print(f"now run: agegender results readme --results {folder}")
    return 0


def _readme(args) -> int:
    from agegender_tf.errors import UsageError

    folder = Path(args.results)
    if not folder.is_dir():
        raise UsageError(f"--results {folder} is not a folder")
    try:
        if args.check:
            stale = stale_files(folder)
            for path in stale:
                print(f"{path} is out of date: run agegender results readme --results {folder}")
            return 1 if stale else 0
        for path in write(folder):
            print(f"wrote {path}")
    except ValueError as error:
        raise UsageError(str(error)) from None
    return 0


def main(argv=None) -> int:
    """``python -m agegender_tf.experiments.results_table [--results FOLDER] [--check]``."""
    from agegender_tf.errors import UsageError

    parser = argparse.ArgumentParser(prog="python -m agegender_tf.experiments.results_table",
                                     description="write results/README.md's tables and results/run_all.sh")
    _add_readme_arguments(parser)
    try:
        return _readme(parser.parse_args(sys.argv[1:] if argv is None else argv))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
