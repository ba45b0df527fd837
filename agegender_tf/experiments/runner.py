"""``agegender run``: one paper preset end to end (read, split, train, evaluate, report, figures).

Layout of a run folder ``OUT``:

- ``preset.json`` the preset as run (after ``--smoke`` and ``--set``)
- ``train/<run>/`` one folder per trained network: ``history.csv``, ``best.keras`` (best val_loss),
  ``backup/`` while it is unfinished, ``done.json`` once it finished (a rerun loads it instead)
- ``history.csv`` every network's history with a ``run`` column; ``predictions.csv`` (``model``,
  ``path``, ``<task>_true``, ``<task>_pred``); ``train_ages.csv``; ``report.json``;
  ``classification_report.txt``; ``figures/*.png``

A killed run started again with the same command resumes: finished networks are loaded from their
``best.keras``, the interrupted one continues from its last finished epoch (``train.py``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from agegender_tf.binning import get_binning
from agegender_tf.data.manifest import GENDER_CLASSES
from agegender_tf.experiments import evaluate, report
from agegender_tf.experiments.presets import Preset, apply_overrides, get_preset, smoke_version
from agegender_tf.experiments.train import set_seed, train

SINGLE_TASK_BUILDERS = ("levi_hassner", "cnn_lstm", "dcnn", "transfer")


def resolve_preset(name: str, smoke: bool = False, overrides=()) -> Preset:
    """The preset ``name`` with ``--smoke`` then ``--set`` overrides applied."""
    preset = get_preset(name)
    if smoke:
        preset = smoke_version(preset)
    return apply_overrides(preset, list(overrides or ()))


def task_labels(preset: Preset) -> dict[str, list[str] | None]:
    """Class labels of each task of ``preset`` (None for the age regression)."""
    labels = {}
    for task in preset.tasks:
        if task == "gender":
            labels[task] = list(GENDER_CLASSES)
        elif task == "age_group":
            labels[task] = list(get_binning(preset.binning).labels)
        else:
            labels[task] = None
    return labels


# ---------------------------------------------------------------------------------------------- data
def load_data(preset: Preset, data_root: str | Path, seed: int) -> tuple[dict[str, pd.DataFrame], dict]:
    """Read the preset's dataset and split it into train/val/test manifests; return them and the counts."""
    from agegender_tf.data import read_dataset

    root = Path(data_root) / preset.dataset
    if not root.exists():
        raise FileNotFoundError(f"dataset folder {root} does not exist (--data-root should hold {preset.dataset}/)")
    result = read_dataset(preset.dataset, root)
    manifest = result.manifest
    counts = {"read": int(len(manifest)), "dropped_by_reader": result.dropped_counts()}
    parts = split_manifest(manifest, preset, seed)
    counts["not_in_split"] = int(len(manifest) - sum(len(frame) for frame in parts.values()))
    counts["split_sizes_before_limit"] = {name: int(len(frame)) for name, frame in parts.items()}
    parts = _limit(parts, preset.max_train_images, seed)
    counts.update({name: int(len(frame)) for name, frame in parts.items()})
    return parts, counts


def split_manifest(manifest: pd.DataFrame, preset: Preset, seed: int) -> dict[str, pd.DataFrame]:
    """train/val/test manifests by the preset's split.

    ``committed``: the split file under ``data_manifests/<dataset>/`` (same test faces for every user).
    ``holdout``: a seeded stratified holdout (seed 003's 70:30, stratified by gender x age group,
    duplicate copies and subjects kept on one side: ``splits.stratified_holdout``), then ``val_size``
    of the training part (default 0.1) for validation, split the same way.
    """
    from agegender_tf.data import splits

    kind = preset.split.get("kind", "committed")
    if kind == "committed":
        joined = splits.load_committed_split(manifest, preset.dataset)
        joined = joined[0] if isinstance(joined, tuple) else joined
        return {name: joined[joined["split"] == name].reset_index(drop=True) for name in ("train", "val", "test")}
    if kind != "holdout":
        raise ValueError(f"preset {preset.name}: unknown split kind {kind!r} (committed or holdout)")
    from agegender_tf.data.audit import add_content_hashes

    frame = add_content_hashes(manifest)
    frame["stratum"] = frame["gender"].astype(str)
    binning = get_binning_or_none(preset.binning)
    if binning is not None:
        frame["stratum"] += "_" + pd.Series(np.asarray(binning.to_class(frame["age"].to_numpy(float))),
                                            index=frame.index).astype(str)
    train_part, test = splits.stratified_holdout(frame, test_size=float(preset.split.get("test_size", 0.3)),
                                                 stratify="stratum", seed=seed)
    train_part, val = splits.stratified_holdout(train_part, test_size=float(preset.split.get("val_size", 0.1)),
                                                stratify="stratum", seed=seed)
    return {name: part.drop(columns="stratum").reset_index(drop=True)
            for name, part in (("train", train_part), ("val", val), ("test", test))}


def _limit(parts: dict[str, pd.DataFrame], max_train: int | None, seed: int) -> dict[str, pd.DataFrame]:
    """Seeded random subset: ``max_train`` training faces, validation and test scaled to half of it."""
    if not max_train:
        return parts
    caps = {"train": int(max_train), "val": max(int(max_train) // 4, 16), "test": max(int(max_train) // 2, 32)}
    return {
        name: frame.sample(n=min(len(frame), caps[name]), random_state=seed).reset_index(drop=True)
        for name, frame in parts.items()
    }


# -------------------------------------------------------------------------------------------- models
def model_kwargs(preset: Preset, tasks: tuple[str, ...], model_args: dict | None = None) -> dict:
    """Builder arguments: the preset's ``model_args`` plus input shape, task(s) and class counts."""
    kwargs = dict(preset.model_args if model_args is None else model_args)
    kwargs["input_shape"] = (preset.image_size, preset.image_size, 3)
    num_groups = get_binning(preset.binning).num_classes if preset.binning else None
    if preset.model in SINGLE_TASK_BUILDERS:
        (task,) = tasks
        kwargs["task"] = task
        kwargs["num_classes"] = {"gender": 2, "age_group": num_groups, "age": None}[task]
    else:
        kwargs["tasks"] = tuple(tasks)
        kwargs["num_age_groups"] = num_groups
    return kwargs


def losses_and_metrics(tasks: tuple[str, ...]):
    loss = {t: ("mse" if t == "age" else "sparse_categorical_crossentropy") for t in tasks}
    metrics = {t: (["mae"] if t == "age" else ["accuracy"]) for t in tasks}
    if len(tasks) == 1:
        return loss[tasks[0]], metrics[tasks[0]]
    return loss, metrics


def augment_spec(preset: Preset, model_name: str, kwargs: dict):
    """The preset's augmentation with the model's own value mapping (e.g. ResNet50's preprocess_input)."""
    from agegender_tf import models
    from agegender_tf.pipelines.spec import AUGMENT_PRESETS

    mode = models.preprocessing(model_name, **kwargs)["mode"]
    return AUGMENT_PRESETS[preset.augment].replace(preprocess=mode, validation_split=0.0)


def make_datasets(preset, spec, tasks, parts, seed, binning):
    from agegender_tf.pipelines.tfdata import make_dataset

    common = dict(image_size=preset.image_size, batch_size=preset.batch_size, outputs=tuple(tasks), binning=binning)
    return {
        name: make_dataset(frame, spec, training=name == "train", seed=seed, **common)
        for name, frame in parts.items()
    }


def predict_table(model, dataset, frame: pd.DataFrame, tasks, model_name: str) -> pd.DataFrame:
    """Predictions of ``model`` on ``dataset`` (built from ``frame`` in order) as a predictions table."""
    raw = model.predict(dataset, verbose=0)
    return predictions_frame(raw, model, frame, tasks, get_binning_or_none(frame.attrs.get("binning")), model_name)


def predictions_frame(raw, model, frame: pd.DataFrame, tasks, binning, model_name: str) -> pd.DataFrame:
    """``model``'s raw outputs on ``frame`` (in order) as rows ``model, path, <task>_true, <task>_pred``."""
    from agegender_tf.pipelines.targets import encode_targets

    if not isinstance(raw, dict):
        raw = dict(zip(model.output_names, raw if isinstance(raw, (list, tuple)) else [raw]))
    truth = encode_targets(frame, outputs=tuple(tasks), binning=binning)
    table = pd.DataFrame({"model": model_name, "path": frame["path"].to_numpy()})
    for task in tasks:
        output = np.asarray(raw[task])
        table[f"{task}_true"] = truth[task]
        table[f"{task}_pred"] = output.reshape(-1) if task == "age" else output.argmax(axis=-1)
    return table


def get_binning_or_none(name):
    return get_binning(name) if name else None


def _run_name(model_name: str, tasks) -> str:
    return f"{model_name}__{'_'.join(tasks)}"


def train_one(preset: Preset, model_name: str, builder: str, model_args: dict, tasks, parts, out_dir: Path, seed: int,
              verbose: int = 2):
    """Train (or load, if finished before) one network; return (model, datasets, usable parts, dropped)."""
    import keras

    from agegender_tf import models
    from agegender_tf.pipelines.targets import usable_rows

    binning = get_binning_or_none(preset.binning)
    usable, dropped = {}, {}
    for name, frame in parts.items():
        usable[name], dropped[name] = usable_rows(frame, outputs=tuple(tasks), binning=binning)
        usable[name].attrs["binning"] = preset.binning
    build_preset = dataclasses.replace(preset, model=builder)
    kwargs = model_kwargs(build_preset, tuple(tasks), model_args)
    spec = augment_spec(preset, builder, kwargs)
    datasets = make_datasets(preset, spec, tasks, usable, seed, binning)
    run_dir = out_dir / "train" / _run_name(model_name, tasks)
    done = run_dir / "done.json"
    if done.exists():
        model = keras.saving.load_model(run_dir / "best.keras")
        return model, datasets, usable, dropped
    set_seed(seed)
    model = models.build(builder, **kwargs)
    loss, metrics = losses_and_metrics(tuple(tasks))
    weights = {t: preset.loss_weights[t] for t in tasks if t in preset.loss_weights} if len(tasks) > 1 else None
    started = time.time()
    train(model, datasets["train"], datasets["val"], optimizer=preset.optimizer, callbacks=preset.callbacks,
          epochs=preset.epochs, out_dir=run_dir, loss=loss, metrics=metrics, loss_weights=weights or None,
          verbose=verbose)
    model = keras.saving.load_model(run_dir / "best.keras")
    done.write_text(json.dumps({"seconds": round(time.time() - started, 1), "params": int(model.count_params())}))
    return model, datasets, usable, dropped


def oversample_table(preset: Preset, model, builder: str, args: dict, frame: pd.DataFrame, tasks, model_name: str,
                     seed: int) -> pd.DataFrame:
    """Predictions with seed 000 sec. VII's over-sampling: 4 corner + centre crops and their mirrors, averaged.

    The test faces are loaded at the preset's load size (e.g. 256 for 224/227 crops), so each of the
    ten views is a crop of the model's input size. Reported as model ``<name>+oversample``.
    """
    from agegender_tf.pipelines.tfdata import make_dataset
    from agegender_tf.pipelines.tta import predict_tta

    spec = augment_spec(preset, builder, model_kwargs(dataclasses.replace(preset, model=builder), tuple(tasks), args))
    if spec.crop_size is None:
        raise ValueError(f"preset {preset.name}: over-sampling needs a resize-then-crop augmentation")
    load_size, _ = spec.sizes(preset.image_size)
    uncropped = spec.disabled().replace(resize_to=None, crop_size=None)
    dataset = make_dataset(frame, uncropped, image_size=load_size, batch_size=preset.batch_size, outputs=tuple(tasks),
                           binning=get_binning_or_none(preset.binning), training=False, seed=seed, validate=False)
    images = np.concatenate([np.asarray(x) for x, _ in dataset])
    raw = predict_tta(model, images, crop=preset.image_size, mode="oversample", batch_size=preset.batch_size)
    return predictions_frame(raw, model, frame, tasks, get_binning_or_none(preset.binning), f"{model_name}+oversample")


# ------------------------------------------------------------------------------------------ baselines
def _arrays(dataset):
    images, labels = [], []
    for x, y in dataset:
        images.append(np.asarray(x))
        labels.append(np.asarray(y if not isinstance(y, dict) else next(iter(y.values()))))
    return np.concatenate(images), np.concatenate(labels)


def run_sklearn_baselines(preset: Preset, parts, seed: int, names=("svm", "kmeans")) -> pd.DataFrame:
    """Seed 000 Table I's SVM and K-Means, one per classification task, on 32x32 pixels."""
    from agegender_tf.models import baselines
    from agegender_tf.pipelines.spec import AUGMENT_PRESETS
    from agegender_tf.pipelines.targets import usable_rows
    from agegender_tf.pipelines.tfdata import make_dataset

    binning = get_binning_or_none(preset.binning)
    tables = []
    for name in names:
        merged = None
        for task in (t for t in preset.tasks if t != "age"):
            frames = {k: usable_rows(v, outputs=(task,), binning=binning)[0] for k, v in parts.items() if k != "val"}
            spec = AUGMENT_PRESETS["gra_net"].disabled().replace(preprocess="rescale")
            data = {k: _arrays(make_dataset(f, spec, image_size=32, batch_size=64, outputs=(task,), binning=binning,
                                            training=False, seed=seed)) for k, f in frames.items()}
            classes = 2 if task == "gender" else binning.num_classes
            estimator = (baselines.svm_baseline(size=(32, 32), seed=seed) if name == "svm"
                         else baselines.kmeans_baseline(n_clusters=max(classes * 4, 8), size=(32, 32), seed=seed))
            estimator.fit(*data["train"])
            table = pd.DataFrame({"model": name, "path": frames["test"]["path"].to_numpy(),
                                  f"{task}_true": data["test"][1], f"{task}_pred": estimator.predict(data["test"][0])})
            merged = table if merged is None else merged.merge(table, on=["model", "path"], how="outer")
        tables.append(merged)
    return pd.concat(tables, ignore_index=True)


# ------------------------------------------------------------------------------------------- the run
def _models_to_train(preset: Preset) -> list[tuple[str, str, dict]]:
    """(model name in reports, builder, builder arguments) of the main model and its keras comparisons."""
    main_name = preset.model_args.get("backbone", preset.model) if preset.model == "transfer" else preset.model
    entries = [(main_name, preset.model, dict(preset.model_args))]
    for other in preset.comparisons:
        if other == "levi_hassner":
            entries.append(("levi_hassner", "levi_hassner", {}))
        elif other == "vgg16" and preset.model == "transfer":
            entries.append(("vgg16", "transfer", {**preset.model_args, "backbone": "vgg16"}))
    return entries


def _ensemble_members(model, preset, datasets, frame, tasks) -> list[pd.DataFrame]:
    """Each member of an ensemble scored alone (seed 001: the ensemble compared with its members)."""
    import keras

    tables = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            tables.append(predict_table(layer, datasets["test"], frame, tasks, layer.name))
    return tables


def run(name: str, data_root: str | Path, out_dir: str | Path, *, smoke: bool = False, seed: int = 42,
        overrides=(), verbose: int = 2) -> dict:
    """Train and evaluate preset ``name``; write the run folder (module docstring); return the report."""
    preset = resolve_preset(name, smoke, overrides)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "preset.json").write_text(json.dumps(preset.to_dict(), indent=2, default=str))
    started = time.time()
    set_seed(seed)
    parts, counts = load_data(preset, data_root, seed)
    pd.DataFrame({"age": parts["train"]["age"].to_numpy()}).to_csv(out_dir / "train_ages.csv", index=False)

    tables, dropped_for_training, trained = [], {}, {}
    main_name = _models_to_train(preset)[0][0]
    for model_name, builder, args in _models_to_train(preset):
        groups = preset.task_groups if model_name == main_name else preset.task_groups[:1]
        merged, oversampled = None, None
        for tasks in groups:
            model, datasets, usable, dropped = train_one(preset, model_name, builder, args, tasks, parts, out_dir,
                                                         seed, verbose)
            dropped_for_training[_run_name(model_name, tasks)] = dropped
            trained[_run_name(model_name, tasks)] = int(model.count_params())
            table = predict_table(model, datasets["test"], usable["test"], tasks, model_name)
            merged = table if merged is None else merged.merge(table, on=["model", "path"], how="outer")
            if "members" in preset.comparisons:
                tables.extend(_ensemble_members(model, preset, datasets, usable["test"], tasks))
            if preset.tta == "oversample" and model_name == main_name:
                table = oversample_table(preset, model, builder, args, usable["test"], tasks, model_name, seed)
                oversampled = table if oversampled is None else oversampled.merge(table, on=["model", "path"], how="outer")
        tables.extend(t for t in (merged, oversampled) if t is not None)
    if {"svm", "kmeans"} & set(preset.comparisons):
        tables.append(run_sklearn_baselines(preset, parts, seed, [c for c in ("svm", "kmeans") if c in preset.comparisons]))
    predictions = pd.concat(tables, ignore_index=True)
    predictions.to_csv(out_dir / "predictions.csv", index=False)
    histories = [pd.read_csv(p).assign(run=p.parent.name) for p in sorted((out_dir / "train").glob("*/history.csv"))]
    pd.concat(histories, ignore_index=True).to_csv(out_dir / "history.csv", index=False)

    counts["dropped_for_training"] = dropped_for_training
    extra = {"adience_folds": adience_fold_protocol(preset, data_root, out_dir, seed)} if preset.binning == "adience8" else {}
    result = report.write_report(preset, out_dir, predictions, counts=counts, seed=seed, smoke=smoke,
                                 seconds=time.time() - started, parameters=trained, extra=extra)
    report.render_figures(out_dir)
    return result


def adience_fold_protocol(preset: Preset, data_root: str | Path, out_dir: Path, seed: int) -> dict:
    """Adience's five-fold protocol on the faces present: each fold's faces scored by the trained networks.

    Only part of Adience's images exist here, so folds cannot be trained on; the networks trained on
    the preset's dataset are tested on every fold that has images, and the per-fold scores give the
    five-fold mean +- std (over the folds that have faces).
    """
    import keras

    from agegender_tf.data import read_dataset

    root = Path(data_root) / "adience"
    if not root.exists():
        return {"available": False, "reason": f"{root} not found"}
    manifest = read_dataset("adience", root).manifest
    if "image_found" in manifest:
        manifest = manifest[manifest["image_found"].astype(bool)].reset_index(drop=True)
    main_name = _models_to_train(preset)[0][0]
    summary = {"available": True, "faces_with_images": int(len(manifest)), "tasks": {}}
    binning = get_binning_or_none(preset.binning)
    from agegender_tf.pipelines.targets import usable_rows
    from agegender_tf.pipelines.tfdata import make_dataset

    for tasks in preset.task_groups:
        run_dir = out_dir / "train" / _run_name(main_name, tasks)
        model = keras.saving.load_model(run_dir / "best.keras")
        spec = augment_spec(preset, preset.model, model_kwargs(preset, tuple(tasks)))
        for task in tasks:
            per_fold = []
            for fold, frame in manifest.groupby("fold"):
                frame, _ = usable_rows(frame.reset_index(drop=True), outputs=tuple(tasks), binning=binning)
                if frame.empty:
                    continue
                frame.attrs["binning"] = preset.binning
                dataset = make_dataset(frame, spec, image_size=preset.image_size, batch_size=preset.batch_size,
                                       outputs=tuple(tasks), binning=binning, training=False, seed=seed)
                table = predict_table(model, dataset, frame, tasks, main_name)
                if task == "age":
                    metrics = evaluate.regression_metrics(table["age_true"], table["age_pred"])
                    per_fold.append({"fold": int(fold), "n": metrics["n"], "mae": metrics["mae"]})
                    continue
                metrics = evaluate.classification_metrics(table[f"{task}_true"], table[f"{task}_pred"],
                                                          task_labels(preset)[task], ordered=task == "age_group")
                per_fold.append({"fold": int(fold), **{k: metrics[k] for k in ("n", "accuracy", "f1", "one_off_accuracy")
                                                       if k in metrics}})
            summary["tasks"][task] = {"per_fold": per_fold, **evaluate.fold_summary(per_fold)}
    return summary
