"""Benchmarks (speed targets are measured here, never in timed tests).

``python -m agegender_tf.bench pipeline --root DIR [--json] [--images N]`` runs paper 003's
augmentation (``transfer_vgg16_resnet50`` preset: rotation 30, shifts 0.2, flip, VGG16
preprocess_input) at 224x224 on the same N UTKFace images through ImageDataGenerator and tf.data
in one process, alternating, and prints the median images/second of each. Goal: tf.data >= 5x.

``python -m agegender_tf.bench train --preset P [--profile cpu] [--steps N] [--json]`` trains P's
main network for N steps fed from one in-memory batch repeated (the machine's limit for that
network) and N steps fed by the kit's tf.data pipeline on the real training faces, alternating, and
prints ``in_memory_img_s``, ``pipeline_img_s`` and ``ratio`` (pipeline / in-memory). Goal: >= 0.9.

``python -m agegender_tf.bench precision --preset P [--json]`` trains the same network from the
in-memory batch under float32, float32 + XLA, mixed_bfloat16 and mixed_bfloat16 + XLA (img/s of
each) and, with ``--accuracy-steps``, trains each setting on the real pipeline and compares
validation loss and metrics. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from agegender_tf.paths import DATA_ENV


def _consume(batches) -> tuple[int, float]:
    start = time.perf_counter()
    seen = 0
    for images, _ in batches:
        seen += int(images.shape[0])
    return seen, time.perf_counter() - start


def bench_pipeline(root, images: int = 512, batch_size: int = 32, image_size: int = 224, seed: int = 0,
                   repeats: int = 3) -> dict:
    """Median images/second over ``repeats`` epochs of both backends on the first ``images``
    UTKFace faces (warm-up excluded). tf.data is timed decoding every epoch (``tfdata_img_s``,
    the like-for-like number) and from its cache of decoded images (``tfdata_cached_img_s``)."""
    import numpy as np
    import tensorflow as tf

    from agegender_tf.data.readers import read_dataset
    from agegender_tf.experiments.presets import AUGMENT_PRESETS
    from agegender_tf.pipelines.checks import require_readable
    from agegender_tf.pipelines.generator import make_generator
    from agegender_tf.pipelines.tfdata import make_dataset

    result = read_dataset("utkface", root)
    manifest = result.manifest.sort_values("path").head(images).reset_index(drop=True)
    if len(manifest) < images:
        raise ValueError(f"asked for {images} images, {root} has {len(manifest)} usable UTKFace faces")
    spec = AUGMENT_PRESETS["transfer_vgg16_resnet50"]
    start = time.perf_counter()
    require_readable(manifest["path"])
    validate_s = time.perf_counter() - start
    options = dict(image_size=image_size, batch_size=batch_size, outputs=("gender",), training=True, seed=seed,
                   validate=False)

    generator = make_generator(manifest, spec, **options)
    generator[0]  # warm-up: imports SciPy, first PIL decode
    uncached = make_dataset(manifest, spec, cache=False, **options)
    cached = make_dataset(manifest, spec, cache=True, **options)
    for dataset in (uncached, cached):
        for _ in dataset.take(1):  # warm-up: traces the map functions
            pass
    _consume(cached)  # fills the cache
    idg, tfdata, tfdata_cached = [], [], []
    # Rounds alternate the backends so a load change on a shared machine hits both alike.
    for _ in range(repeats):
        generator.on_epoch_end()
        n, s = _consume(generator[i] for i in range(len(generator)))
        idg.append(n / s)
        n, s = _consume(uncached)
        tfdata.append(n / s)
        n, s = _consume(cached)
        tfdata_cached.append(n / s)
    idg_img_s, tfdata_img_s, cached_img_s = (float(np.median(v)) for v in (idg, tfdata, tfdata_cached))
    return {
        "images": int(len(manifest)),
        "image_size": image_size,
        "batch_size": batch_size,
        "preset": "transfer_vgg16_resnet50",
        "repeats": repeats,
        "idg_img_s": round(idg_img_s, 1),
        "tfdata_img_s": round(tfdata_img_s, 1),
        "tfdata_cached_img_s": round(cached_img_s, 1),
        "ratio": round(tfdata_img_s / idg_img_s, 2),
        "ratio_cached": round(cached_img_s / idg_img_s, 2),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "validate_s": round(validate_s, 2),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.uname().machine,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }


# ------------------------------------------------------------------------------ training throughput
PRECISION_SETTINGS = {
    "float32": ("float32", False),
    "float32_xla": ("float32", True),
    "bf16": ("mixed_bfloat16", False),
    "bf16_xla": ("mixed_bfloat16", True),
}
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def _cpu_features() -> list[str] | None:
    """The matrix-math CPU flags of ``CPU_FEATURES`` this machine has (Linux ``/proc/cpuinfo``), else None."""
    from agegender_tf.predict import cpu_flags

    flags = cpu_flags()
    return None if flags is None else [name for name in CPU_FEATURES if name in flags]


def _machine() -> dict:
    import keras
    import tensorflow as tf

    return {
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_features": _cpu_features(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.uname().machine,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def resolve_bench_preset(name: str, *, smoke: bool = False, profile: str | None = None, overrides=()):
    """The preset as ``agegender run`` resolves it (``--profile``, ``--smoke``, ``--set``)."""
    from agegender_tf.experiments.runner import resolve_preset

    return resolve_preset(name, smoke=smoke, overrides=overrides, profile=profile)


def _fit_rounds(model, dataset, batch_size: int, warmup: int, steps: int, rounds: int, cpu_ms=None) -> list[float]:
    """Images/second of each of ``rounds`` rounds of ``steps`` training steps, timed inside one
    ``model.fit`` on ``dataset`` (one iterator, as an epoch of a real run) after ``warmup`` steps.

    With a list as ``cpu_ms``, each round's CPU milliseconds per image (this process, all threads)
    are appended to it: the work a step costs, which a shared machine's other jobs change much less
    than the wall-clock time they take from it."""
    import keras

    times = []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: times.append((time.perf_counter(), time.process_time())))
    model.fit(dataset, steps_per_epoch=warmup + rounds * steps, epochs=1, verbose=0, callbacks=[timer], shuffle=False)
    marks = times[warmup - 1::steps]  # the end of the warm-up, then the end of each round
    if cpu_ms is not None:
        cpu_ms += [1000 * (end[1] - start[1]) / (steps * batch_size) for start, end in zip(marks, marks[1:])]
    return [steps * batch_size / (end[0] - start[0]) for start, end in zip(marks, marks[1:])]


class MainNetwork:
    """One preset's main network as the runner trains it: builder, arguments, tasks, loss, pipeline.

    The network is ``runner.network_plan`` of the preset's own model on its first task group (e.g. the
    gender network of a preset that trains gender and age separately).
    """

    def __init__(self, preset, data_root, seed: int, parts=("train",)):
        from agegender_tf.experiments import runner
        from agegender_tf.pipelines.targets import usable_rows

        self.preset = preset
        self.seed = seed
        plan = runner.network_plan(preset, preset.task_groups[0])
        self.name, self.builder, self.tasks, self.kwargs = plan.run.name, plan.builder, plan.tasks, plan.kwargs
        self.loss, self.metrics, self.loss_weights = plan.loss, plan.metrics, plan.loss_weights
        binning = runner.preset_binning(preset)
        split, _ = runner.load_data(preset, data_root, seed)
        usable = {name: usable_rows(split[name], outputs=self.tasks, binning=binning)[0] for name in parts}
        if len(usable["train"]) < preset.batch_size:
            raise ValueError(f"preset {preset.name}: {len(usable['train'])} training faces, fewer than one batch "
                             f"of {preset.batch_size}")
        self.faces = {name: int(len(frame)) for name, frame in usable.items()}
        self.datasets = runner.make_datasets(preset, plan.augment, self.tasks, usable, seed, binning)

    def build(self, policy: str = "float32", jit_compile: bool = False):
        """The network built under dtype ``policy`` and compiled as the runner compiles it (plus ``jit_compile``)."""
        from agegender_tf import models
        from agegender_tf.experiments.train import build_before_fit, dtype_policy, make_optimizer, set_seed

        set_seed(self.seed)
        with dtype_policy(policy):
            model = models.build(self.builder, **self.kwargs)
        model.compile(optimizer=make_optimizer(self.preset.optimizer), loss=self.loss, metrics=self.metrics,
                      loss_weights=self.loss_weights, jit_compile=jit_compile)
        build_before_fit(model, self.datasets["train"])  # one trace of the step, as in a run
        return model

    def pipeline(self):
        """The runner's training dataset, repeated, without the short last batch of each epoch."""
        import tensorflow as tf

        size = self.preset.batch_size
        return self.datasets["train"].repeat().filter(lambda x, y: tf.shape(x)[0] == size)

    def in_memory(self):
        """One training batch of the pipeline, repeated from memory: no input cost at all. Its
        element spec is the pipeline's, so both feeds share one traced (and XLA-compiled) step."""
        return self.pipeline().take(1).cache().repeat()

    def facts(self) -> dict:
        return {"preset": self.preset.name, "profile": self.preset.profile, "network": self.name,
                "builder": self.builder, "tasks": list(self.tasks), "image_size": self.preset.image_size,
                "batch_size": self.preset.batch_size, "faces": self.faces,
                "model_args": {k: v for k, v in self.kwargs.items() if k != "input_shape"}}


def bench_train(preset, data_root, *, steps: int = 20, warmup: int = 5, repeats: int = 2, seed: int = 0) -> dict:
    """Median images/second of ``preset``'s main network trained from one in-memory batch and from
    the kit's pipeline (``make_dataset`` on the real training faces, the preset's augmentation).

    Four blocks in the order in-memory, pipeline, pipeline, in-memory (a load change on a shared
    machine hits both feeds alike); each block is one ``fit`` whose first ``warmup`` steps are not
    timed, then ``repeats`` timed rounds of ``steps`` steps; the medians of the rounds are reported.

    The first pipeline pass decodes every training face into the in-memory cache; its time is
    ``cache_fill_s`` (the extra cost of a run's first epoch) and is not part of ``pipeline_img_s``.
    """
    import numpy as np

    started = time.perf_counter()
    network = MainNetwork(preset, data_root, seed)
    setup_s = time.perf_counter() - started
    precision = preset.dtype_policy  # as a run of this preset trains
    model = network.build(precision)
    in_memory, pipeline = network.in_memory(), network.pipeline()
    size = preset.batch_size
    start = time.perf_counter()
    _fit_rounds(model, pipeline, size, 1, 1, 1)  # decodes every face into the cache, traces the step
    cache_fill_s = time.perf_counter() - start
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    rounds = {"in_memory": [], "pipeline": []}
    feeds = {"in_memory": in_memory, "pipeline": pipeline}
    for feed in ("in_memory", "pipeline", "pipeline", "in_memory"):
        rounds[feed] += _fit_rounds(model, feeds[feed], size, warmup, steps, repeats)
    in_memory_img_s, pipeline_img_s = (float(np.median(rounds[k])) for k in ("in_memory", "pipeline"))
    return {
        "benchmark": "train",
        **network.facts(),
        "precision": precision,
        "steps": steps,
        "warmup": warmup,
        "repeats": repeats,
        "in_memory_img_s": round(in_memory_img_s, 1),
        "pipeline_img_s": round(pipeline_img_s, 1),
        "ratio": round(pipeline_img_s / in_memory_img_s, 3),
        # The fastest round of each feed is the one a load spike on a shared machine hit least.
        "ratio_best_rounds": round(max(rounds["pipeline"]) / max(rounds["in_memory"]), 3),
        "rounds_img_s": {k: [round(v, 1) for v in values] for k, values in rounds.items()},
        "setup_s": round(setup_s, 1),
        "cache_fill_s": round(cache_fill_s, 1),
        "load_average_before": [round(x, 2) for x in load_before] if load_before else None,
        **_machine(),
    }


def bench_precision(preset, data_root, *, steps: int = 20, warmup: int = 5, repeats: int = 2,
                    accuracy_steps: int = 0, val_images: int = 1024, settings=tuple(PRECISION_SETTINGS),
                    passes: int = 2, seed: int = 0) -> dict:
    """Images/second of ``preset``'s main network under each dtype policy / XLA setting of
    ``PRECISION_SETTINGS``, fed from one in-memory batch: ``passes`` passes over the settings, in
    their order, then in reverse, and so on (each block ``warmup`` untimed steps then ``repeats``
    rounds of ``steps``), medians; more passes interleave the settings more finely, so a load change
    on a shared machine hits them more alike. ``speedup_best_rounds`` compares fastest rounds,
    ``speedup_cpu`` the CPU time per image (``cpu_ms_per_img``), which other jobs change least.

    With ``accuracy_steps``, each setting also trains a fresh network (same seed, same batches) for
    that many steps on the real pipeline and is scored on the first ``val_images`` validation faces.
    A setting that fails (e.g. an op XLA cannot compile) reports its error instead of a number.
    """
    import numpy as np

    network = MainNetwork(preset, data_root, seed, parts=("train", "val"))
    in_memory = network.in_memory()
    val = network.datasets["val"].take(max(1, -(-val_images // preset.batch_size)))
    size = preset.batch_size
    models, results = {}, {}
    for name in settings:
        policy, xla = PRECISION_SETTINGS[name]
        results[name] = {"policy": policy, "jit_compile": xla}
        start = time.perf_counter()
        try:
            model = network.build(policy, xla)
            if accuracy_steps:  # a fresh network (same seed, same batches) trained on the real pipeline
                model.fit(network.pipeline(), steps_per_epoch=accuracy_steps, epochs=1, verbose=0, shuffle=False)
                scores = model.evaluate(val, verbose=0, return_dict=True)
                results[name]["validation"] = {k: round(float(v), 4) for k, v in scores.items()}
            _fit_rounds(model, in_memory, size, 1, 1, 1)  # traces (and XLA-compiles) the step
            models[name] = model
        except Exception as error:  # reported per setting, the others still run
            # TensorFlow puts the cause at the end of a long message: keep its first line and its tail.
            lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
            results[name]["error"] = f"{type(error).__name__}: {lines[0][:200]} ... {' '.join(lines[1:])[-400:]}"
        results[name]["setup_s"] = round(time.perf_counter() - start, 1)
    rounds, cpu_ms = {name: [] for name in models}, {name: [] for name in models}
    for index in range(passes):
        for name in list(models)[::-1] if index % 2 else list(models):
            rounds[name] += _fit_rounds(models[name], in_memory, size, warmup, steps, repeats, cpu_ms[name])
    baseline = float(np.median(rounds["float32"])) if "float32" in rounds else None
    cpu_baseline = float(np.median(cpu_ms["float32"])) if "float32" in cpu_ms else None
    for name, values in rounds.items():
        img_s, cpu = float(np.median(values)), float(np.median(cpu_ms[name]))
        results[name].update(img_s=round(img_s, 1), rounds_img_s=[round(v, 1) for v in values],
                             cpu_ms_per_img=round(cpu, 3), rounds_cpu_ms_per_img=[round(v, 3) for v in cpu_ms[name]])
        if baseline:
            results[name]["speedup"] = round(img_s / baseline, 2)
            # The fastest round of each setting is the one a load spike on a shared machine hit least.
            results[name]["speedup_best_rounds"] = round(max(values) / max(rounds["float32"]), 2)
            # float32's CPU time per image over this setting's: the speed-up on a machine of its own.
            results[name]["speedup_cpu"] = round(cpu_baseline / cpu, 2) if cpu > 0 else None
    return {
        "benchmark": "precision",
        **network.facts(),
        "steps": steps,
        "warmup": warmup,
        "repeats": repeats,
        "passes": passes,
        "accuracy_steps": accuracy_steps,
        "val_images": min(val_images, network.faces["val"]) if accuracy_steps else 0,
        "settings": results,
        **_machine(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agegender_tf.bench", description=__doc__.splitlines()[0])
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
    from agegender_tf.bench_predict import add_benchmarks

    add_benchmarks(sub)  # predict, faces-memory, framing
    args = parser.parse_args(argv)
    if getattr(args, "run_benchmark", None):  # predict, faces-memory, framing (bench_predict.py)
        report, summary = args.run_benchmark(args)
        _print(report, summary, args.json)
        return 0
    if args.which == "pipeline":
        report = bench_pipeline(args.root, args.images, args.batch_size, args.image_size, args.seed, args.repeats)
        _print(report, f"tf.data / ImageDataGenerator: {report['ratio']}x (cached epoch: {report['ratio_cached']}x); "
                       "goal >= 5x", args.json)
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
        _print(report, summary, args.json)
        _release_models()
    return 0


def _print(report: dict, summary: str, as_json: bool) -> None:
    """One JSON line per report (``--json``), else indented JSON and a one-line summary."""
    print(json.dumps(report) if as_json else json.dumps(report, indent=2) + "\n" + summary, flush=True)


def _release_models() -> None:
    """Free the networks of the preset just measured before the next one is built."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


if __name__ == "__main__":
    sys.exit(main())
