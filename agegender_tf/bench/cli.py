"""The benchmarks' command line, ``python -m agegender_tf.bench VERB`` (see ``agegender_tf.bench``)."""

from __future__ import annotations

import argparse
import os

from agegender_tf import import_tensorflow_quietly
from agegender_tf.bench import detectors, hostile, print_report, release_models, scale
from agegender_tf.bench.pipeline import bench_pipeline
from agegender_tf.bench.predict import add_benchmarks
from agegender_tf.bench.train import PRECISION_SETTINGS, bench_precision, bench_train, resolve_bench_preset
from agegender_tf.paths import DATA_ENV


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agegender_tf.bench", description="the kit's benchmarks")
    sub = parser.add_subparsers(dest="which", required=True)
    pipe = sub.add_parser("pipeline", help="ImageDataGenerator vs tf.data throughput on UTKFace")
    pipe.add_argument("--root", required=True, help="UTKFace root (the folder holding UTKFace/)")
    pipe.add_argument("--images", type=int, default=512)
    pipe.add_argument("--batch-size", type=int, default=32)
    pipe.add_argument("--image-size", type=int, default=224)
    pipe.add_argument("--seed", type=int, default=0)
    pipe.add_argument("--repeats", type=int, default=3, help="alternating rounds; medians reported")
    pipe.add_argument("--json", action="store_true", help="print only the JSON object")
    for which, help_text in (("train", "in-memory batch vs the kit's pipeline feeding a preset's main network"),
                             ("precision", "float32 / XLA / mixed_bfloat16 training speed of a preset's main network")):
        bench = sub.add_parser(which, help=help_text)
        bench.add_argument("--preset", required=True, help="a preset, several separated by commas, or all")
        bench.add_argument("--data-root", default=os.environ.get(DATA_ENV),
                           help=f"folder holding the datasets (default ${DATA_ENV})")
        bench.add_argument("--profile", default=None, help="the preset's profile, as in agegender run (e.g. cpu)")
        bench.add_argument("--smoke", action="store_true", help="the preset's smoke sizes")
        bench.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                           help="override a preset field, as in agegender run (repeatable)")
        bench.add_argument("--steps", type=int, default=20, help="timed steps per round")
        bench.add_argument("--warmup", type=int, default=5, help="untimed steps at the start of each block")
        bench.add_argument("--repeats", type=int, default=2, help="timed rounds per block; medians reported")
        bench.add_argument("--seed", type=int, default=0)
        bench.add_argument("--json", action="store_true", help="print only the JSON object")
        if which == "precision":
            bench.add_argument("--accuracy-steps", type=int, default=0,
                               help="also train each setting this many steps on the real pipeline and score it")
            bench.add_argument("--val-images", type=int, default=1024, help="validation faces scored (accuracy check)")
            bench.add_argument("--settings", default=",".join(PRECISION_SETTINGS),
                               help=f"comma-separated subset of {','.join(PRECISION_SETTINGS)}")
            bench.add_argument("--passes", type=int, default=2,
                               help="passes over the settings, alternating forward and reverse order")
    add_benchmarks(sub)  # predict, faces-memory, framing
    hostile.add_benchmark(sub)
    detectors.add_benchmark(sub)
    scale.add_benchmark(sub)
    args = parser.parse_args(argv)
    if getattr(args, "run_scale", None):  # one JSON object per size, each measured in a fresh process
        return args.run_scale(args)
    import_tensorflow_quietly()  # every verb times or describes TensorFlow: start it without its start-up lines
    if getattr(args, "run_benchmark", None):  # predict, faces-memory, framing, hostile-memory, detectors
        report, summary = args.run_benchmark(args)
        print_report(report, summary, args.json)
        return 0
    if args.which == "pipeline":
        report = bench_pipeline(args.root, args.images, args.batch_size, args.image_size, args.seed, args.repeats)
        summary = (f"tf.data / ImageDataGenerator: {report['ratio']}x (cached epoch: {report['ratio_cached']}x); "
                   "goal >= 5x")
        print_report(report, summary, args.json)
        return 0
    if not args.data_root:
        parser.error(f"no --data-root given and ${DATA_ENV} is unset")
    if args.steps < 1 or args.warmup < 1 or args.repeats < 1 or getattr(args, "passes", 1) < 1:
        parser.error("--steps, --warmup, --repeats and --passes must be >= 1")
    settings = tuple(s.strip() for s in getattr(args, "settings", "").split(",") if s.strip())
    unknown = [s for s in settings if s not in PRECISION_SETTINGS]
    if args.which == "precision" and (unknown or not settings):
        parser.error(f"--settings: unknown {unknown}; choose from {','.join(PRECISION_SETTINGS)}")
    from agegender_tf.experiments.presets import PRESETS

    names = list(PRESETS) if args.preset == "all" else [n.strip() for n in args.preset.split(",") if n.strip()]
    common = dict(steps=args.steps, warmup=args.warmup, repeats=args.repeats, seed=args.seed)
    for name in names:  # one process: the file check and the manifest are shared between presets
        preset = resolve_bench_preset(name, smoke=args.smoke, profile=args.profile, overrides=args.overrides)
        if args.which == "train":
            report = bench_train(preset, args.data_root, **common)
            summary = (f"{report['preset']} ({report['network']}): pipeline {report['pipeline_img_s']} img/s / "
                       f"in-memory {report['in_memory_img_s']} img/s = {report['ratio']}; goal >= 0.9")
        else:
            report = bench_precision(preset, args.data_root, accuracy_steps=args.accuracy_steps,
                                     val_images=args.val_images, settings=settings, passes=args.passes, **common)
            summary = f"{report['preset']} ({report['network']}): " + "; ".join(
                f"{setting} {row['img_s']} img/s (speed-up by CPU time {row.get('speedup_cpu')})"
                if "img_s" in row else f"{setting} {row.get('error')}" for setting, row in report["settings"].items())
        print_report(report, summary, args.json)
        release_models()
    return 0

