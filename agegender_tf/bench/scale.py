"""Memory and speed as the dataset grows (``pipelines/stream.py``).

``python -m agegender_tf.bench scale --faces 20000,200000 [--preset P] [--profile cpu] [--steps S] [--json]``
builds, per size N, a folder of N faces in UTKFace's layout: links to the real UTKFace faces (from
``--data-root``) under distinct names (each link's date field is its number, so names are unique and
labels are the linked face's; decoding is real, every link decoded on its own). In a fresh subprocess
per size it then trains the preset's main network (``bench.train.MainNetwork``: ``plans.network_plan``
and ``plans.make_datasets``, the pipeline a run builds, in the mode a run would pick) on all N faces for
S steps and prints one JSON object: ``faces``, ``mode``, ``peak_rss_mb`` (the whole process:
``ru_maxrss``), ``img_s`` (the steps after ``--warmup``), ``first_step_s`` (from reading the folder to the
end of the first training step: validation or the pack, the cache fill, the model), and the pack. With
several sizes a last object compares the largest with the smallest (goal: memory within 1.3x, img/s at
least 0.8x). The faces are trained on as one training part: the split and its leak check (content
hashes of every file, and every face here has linked twins) are the run's, not the pipeline's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from agegender_tf.bench import machine_load, print_report

COMPLETE = ".complete"


def linked_faces(source: str | Path, faces: int, folder: str | Path) -> Path:
    """A data root holding ``utkface/UTKFace/`` with ``faces`` links to the UTKFace faces of ``source`` (a
    data root or the images folder), named ``[age]_[gender]_[race]_[k].jpg.chip.jpg`` with ``k`` the link's
    number in 17 digits; built once (a marker file says it is complete) and reused."""
    from agegender_tf.data.utkface import FILE_SUFFIX, parse_name, resolve_root

    root = Path(folder) / f"utkface_{faces}"
    images = root / "utkface" / "UTKFace"
    if (root / COMPLETE).is_file():
        return root
    originals = []
    for path in sorted(resolve_root(Path(source) / "utkface" if (Path(source) / "utkface").is_dir() else source)
                       .iterdir()):
        labels, _, _ = parse_name(path.name)
        if labels is not None and labels["race"] is not None:  # the link's name has all three labels
            originals.append((path.resolve(), labels))
    if not originals:
        raise FileNotFoundError(f"no UTKFace faces with age, gender and race labels under {source}")
    images.mkdir(parents=True, exist_ok=True)
    genders = {"male": 0, "female": 1}
    for k in range(faces):
        path, labels = originals[k % len(originals)]
        link = images / f"{labels['age']}_{genders[labels['gender']]}_{labels['race']}_{k:017d}{FILE_SUFFIX}"
        if not link.is_symlink():
            link.symlink_to(path)
    (root / COMPLETE).write_text(f"{faces} links\n")
    return root


def measure(preset, root: str | Path, *, steps: int, warmup: int, seed: int) -> dict:
    """Train ``preset``'s main network ``steps`` steps on every face under ``root`` (this process)."""
    import keras

    from agegender_tf.bench.train import MainNetwork
    from agegender_tf.data.readers import read_dataset
    from agegender_tf.experiments import plans
    from agegender_tf.pipelines import stream
    from agegender_tf.pipelines.targets import usable_rows

    started = time.perf_counter()
    manifest = read_dataset("utkface", Path(root) / "utkface").manifest
    manifest_s = time.perf_counter() - started
    # The linked faces have no detector boxes: the dataset's own crops (a framed run streams whole images).
    preset = dataclasses.replace(preset, dataset="utkface", max_train_images=None, face_crop=None)
    plan = plans.network_plan(preset, preset.task_groups[0])
    usable = usable_rows(manifest, outputs=plan.tasks, binning=plans.preset_binning(preset))[0]
    load_size = plan.augment.sizes(preset.image_size)[0]
    mode = stream.choose_mode((preset.pipeline or {}).get("mode"), len(usable), load_size)
    pack = stream.stream_root() / stream.pack_key(usable["path"].astype(str).tolist(), load_size) \
        if mode == "stream" else None
    existed = pack is not None and (pack / stream.DONE_FILE).is_file()
    network = MainNetwork(preset, root, seed, split={"train": usable})  # validates or packs here
    datasets_s = time.perf_counter() - started
    model = network.build(preset.dtype_policy)
    ends = []
    timer = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    model.fit(network.pipeline(), steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer], shuffle=False)
    timed = ends[max(warmup, 1) - 1:]  # from the end of the warm-up (at least the first step)
    img_s = (len(timed) - 1) * preset.batch_size / (timed[-1] - timed[0])
    return {
        "benchmark": "scale",
        **network.facts(),
        "faces": network.faces["train"],
        "mode": mode,
        "pack": None if pack is None else {**json.loads((pack / stream.DONE_FILE).read_text()),
                                           "folder": str(pack), "reused": existed},
        "load_size": list(load_size),
        "steps": steps,
        "warmup": warmup,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "img_s": round(img_s, 1),
        "manifest_s": round(manifest_s, 1),
        "datasets_s": round(datasets_s, 1),  # reading the folder, then validation (memory) or the pack (stream)
        "first_step_s": round(ends[0] - started, 1),
        **machine_load(),
    }


def compare(reports: list[dict]) -> dict:
    """The largest size against the smallest: memory and speed ratios against the goal."""
    small, large = min(reports, key=lambda r: r["faces"]), max(reports, key=lambda r: r["faces"])
    memory = large["peak_rss_mb"] / small["peak_rss_mb"]
    speed = large["img_s"] / small["img_s"] if large["img_s"] and small["img_s"] else None
    return {"benchmark": "scale_goal", "faces": [small["faces"], large["faces"]],
            "modes": [small["mode"], large["mode"]], "peak_rss_ratio": round(memory, 3),
            "img_s_ratio": None if speed is None else round(speed, 3),
            "goal": "peak_rss_ratio <= 1.3 and img_s_ratio >= 0.8",
            "goal_met": bool(memory <= 1.3 and speed is not None and speed >= 0.8)}


def add_benchmark(sub) -> None:
    bench = sub.add_parser("scale", help="peak memory and img/s of a preset's training at N faces (linked UTKFace)")
    bench.add_argument("--faces", required=True, help="sizes, separated by commas (each in a fresh process)")
    bench.add_argument("--preset", default="adience_cnn")
    bench.add_argument("--profile", default=None, help="the preset's profile, as in agegender run (e.g. cpu)")
    bench.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a preset field, as in agegender run (repeatable)")
    bench.add_argument("--data-root", default=None, help="folder holding utkface/UTKFace (default $AGEGENDER_DATA)")
    bench.add_argument("--work", default=None,
                       help="where the linked folders are built (default <cache>/bench_scale; reused)")
    bench.add_argument("--steps", type=int, default=30)
    bench.add_argument("--warmup", type=int, default=5, help="untimed steps at the start")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--json", action="store_true", help="print only the JSON objects")
    bench.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)  # one size, measured here
    bench.set_defaults(run_scale=run_scale)


def run_scale(args) -> int:
    from agegender_tf.bench.train import resolve_bench_preset
    from agegender_tf.paths import DATA_ENV, cache_home

    sizes = [int(n) for n in str(args.faces).split(",") if n.strip()]
    source = args.data_root or os.environ.get(DATA_ENV)
    if not source or not sizes or min(sizes) < 1 or args.steps < 2 or not 0 <= args.warmup < args.steps - 1:
        raise SystemExit("bench scale: needs --data-root (or $AGEGENDER_DATA), sizes >= 1, --steps >= 2 and "
                         "0 <= --warmup < --steps - 1")
    work = Path(args.work) if args.work else cache_home() / "bench_scale"
    if args.in_process:
        preset = resolve_bench_preset(args.preset, profile=args.profile, overrides=args.overrides)
        root = linked_faces(source, sizes[0], work)
        print(json.dumps(measure(preset, root, steps=args.steps, warmup=args.warmup, seed=args.seed)), flush=True)
        return 0
    resolve_bench_preset(args.preset, profile=args.profile, overrides=args.overrides)  # refuse a bad --set now
    reports = []
    for faces in sizes:
        started = time.perf_counter()
        linked_faces(source, faces, work)
        link_s = time.perf_counter() - started
        command = [sys.executable, "-m", "agegender_tf.bench", "scale", "--in-process", "--faces", str(faces),
                   "--preset", args.preset, "--data-root", str(source), "--work", str(work), "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--seed", str(args.seed), "--json"]
        command += ["--profile", args.profile] if args.profile else []
        command += [part for value in args.overrides for part in ("--set", value)]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        report = json.loads(done.stdout.strip().splitlines()[-1])
        report["link_s"] = round(link_s, 1)
        reports.append(report)
        print_report(report, f"{faces} faces ({report['mode']}): {report['peak_rss_mb']} MB peak, "
                             f"{report['img_s']} img/s, first step after {report['first_step_s']} s", args.json)
    if len(reports) > 1:
        goal = compare(reports)
        print_report(goal, f"memory x{goal['peak_rss_ratio']}, img/s x{goal['img_s_ratio']}: "
                           f"goal {'met' if goal['goal_met'] else 'not met'}", args.json)
    return 0
