"""Training throughput of a preset's main network.

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

import os
import time

from agegender_tf.bench import machine

PRECISION_SETTINGS = {
    "float32": ("float32", False),
    "float32_xla": ("float32", True),
    "bf16": ("mixed_bfloat16", False),
    "bf16_xla": ("mixed_bfloat16", True),
}
def resolve_bench_preset(name: str, *, smoke: bool = False, profile: str | None = None, overrides=()):
    """The preset as ``agegender run`` resolves it (``--profile``, ``--smoke``, ``--set``)."""
    from agegender_tf.experiments.plans import resolve_preset

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

    The network is ``plans.network_plan`` of the preset's own model on its first task group (e.g. the
    gender network of a preset that trains gender and age separately).
    """

    def __init__(self, preset, data_root, seed: int, parts=("train",), split: dict | None = None):
        from agegender_tf.experiments import plans
        from agegender_tf.pipelines.targets import usable_rows

        self.preset = preset
        self.seed = seed
        self.plan = plan = plans.network_plan(preset, preset.task_groups[0])
        self.name, self.builder, self.tasks, self.kwargs = plan.run.name, plan.builder, plan.tasks, plan.kwargs
        self.loss, self.metrics, self.loss_weights = plan.loss, plan.metrics, plan.loss_weights
        binning = plans.preset_binning(preset)
        if split is None:  # ``split``: manifests given instead of the preset's split of data_root's dataset
            split, _ = plans.load_data(preset, data_root, seed)
        usable = {name: usable_rows(split[name], outputs=self.tasks, binning=binning)[0] for name in parts}
        if len(usable["train"]) < preset.batch_size:
            raise ValueError(f"preset {preset.name}: {len(usable['train'])} training faces, fewer than one batch "
                             f"of {preset.batch_size}")
        self.faces = {name: int(len(frame)) for name, frame in usable.items()}
        self.datasets = plans.make_datasets(preset, plan.augment, self.tasks, usable, seed, binning)

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
        **machine(),
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
        **machine(),
    }
