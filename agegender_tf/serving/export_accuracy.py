"""The accuracy of exported files (``agegender export-accuracy``): float32 and dynamic-range quantized
TFLite exports measured beside the Keras model on labelled faces (by default the committed UTKFace test
split): gender accuracy, age-group accuracy, age MAE, agreement with Keras and file sizes.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from agegender_tf.errors import UsageError
from agegender_tf.imaging import load_rgb
from agegender_tf.serving.export import export, load_exported

VARIANTS = ("keras", "tflite", "tflite-dynamic")
EVAL_SAMPLE_SEED = 0


def labelled_faces(root=None, split: str = "test", split_file=None, limit: int | None = None):
    """``path, file, gender, age`` of the UTKFace faces in ``split`` of the committed split (sorted by
    file; ``limit``: a seeded sample of that many). ``root``: UTKFace's folder (default
    ``$AGEGENDER_DATA/utkface``); ``split_file``: default ``data_manifests/utkface/split.csv``."""
    from agegender_tf.data import utkface
    from agegender_tf.data.splits import load_committed_split
    from agegender_tf.paths import DATA_ENV, dataset_root

    if root is None:
        root = dataset_root("utkface")
        if root is None:
            raise UsageError(f"UTKFace not found: set {DATA_ENV} (holding utkface/UTKFace/) or pass --data-root")
    try:
        manifest = utkface.read(root).manifest
        joined = load_committed_split(manifest, "utkface", split_file, warn=False)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    part = joined[joined["split"] == split]
    if part.empty:
        raise UsageError(f"no UTKFace faces in the {split!r} split under {root}")
    if limit:
        part = part.sample(n=min(int(limit), len(part)), random_state=EVAL_SAMPLE_SEED)
    return part.sort_values("file")[["path", "file", "gender", "age"]].reset_index(drop=True)


def face_metrics(predictor, outputs: dict, frame) -> dict:
    """Gender accuracy, age-group accuracy (the card's binning of the true age) and age MAE of
    ``outputs`` ({task: [N, classes] or [N]}) against ``frame``'s ``gender`` and ``age``, computed by
    the same metrics as a run's report (``experiments.evaluate``)."""
    from agegender_tf.binning import get_binning
    from agegender_tf.experiments.evaluate import classification_metrics, regression_metrics

    heads, metrics = predictor.card["heads"], {}
    ages = frame["age"].to_numpy(dtype=float)
    if "gender" in outputs:
        labels = list(heads["gender"]["labels"])
        truth = np.array([labels.index(g) if g in labels else -1 for g in frame["gender"]])
        known = truth >= 0
        metrics["gender_accuracy"] = classification_metrics(
            truth[known], outputs["gender"].argmax(1)[known], labels)["accuracy"]
    if "age_group" in outputs and heads["age_group"].get("binning"):
        truth = np.atleast_1d(get_binning(heads["age_group"]["binning"]).to_class(ages))
        known = truth >= 0
        metrics["age_group_accuracy"] = classification_metrics(
            truth[known], outputs["age_group"].argmax(1)[known], heads["age_group"]["labels"])["accuracy"]
    if "age" in outputs:
        known = ~np.isnan(ages)
        metrics["age_mae"] = regression_metrics(ages[known], outputs["age"][known])["mae"]
    return metrics


def _agreement(outputs: dict, reference: dict) -> dict:
    """How a variant's outputs compare with the Keras model's on the same faces."""
    result = {}
    for task, value in outputs.items():
        if task == "age":
            result["age_max_abs_diff"] = float(np.abs(value - reference[task]).max())
        else:
            result[f"{task}_same_label"] = float(np.mean(value.argmax(1) == reference[task].argmax(1)))
            result[f"{task}_max_abs_diff"] = float(np.abs(value - reference[task]).max())
    return result


def evaluate_tflite(predictor, frame, folder, variants=VARIANTS, batch_size: int = 64) -> dict:
    """Export ``predictor`` as float32 (``tflite``) and dynamic-range quantized (``tflite-dynamic``)
    TFLite into ``folder`` and run them and the Keras model (``keras``) on the faces of ``frame``
    (``labelled_faces``): each face is read, framed and resized to the card's load size once, as
    ``agegender predict --aligned`` does (``Predictor.aligned_faces``: a network trained on framed faces
    gets the face found in the crop), and the same array goes to every variant. Returns
    ``{"faces", "model", "mirror", "variants": [{"name", "file", "bytes", metrics..., "vs_keras"}]}``."""
    folder = Path(folder)
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise UsageError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    runners, files = {}, {}
    for name in variants:
        if name == "keras":
            files[name] = Path(predictor.source) if predictor.source else None
            runners[name] = lambda sized: {k: np.asarray(v) for k, v in predictor._forward(sized).items()}
        else:
            quantize = "dynamic" if name == "tflite-dynamic" else None
            files[name] = export(predictor, "tflite", folder / f"model{'_dynamic' if quantize else ''}.tflite",
                                 quantize, overwrite=True)  # its own files in the folder it keeps them in
            runners[name] = load_exported(files[name], "tflite")
    outputs: dict[str, dict[str, list]] = {name: {} for name in variants}
    paths = frame["path"].tolist()
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        for start in range(0, len(paths), batch_size):
            images = list(pool.map(load_rgb, paths[start:start + batch_size]))
            sized = predictor.load_sized([face for face, _, _ in predictor.aligned_faces(images)])
            for name, run in runners.items():
                for task, value in run(sized).items():
                    value = np.asarray(value, np.float32)
                    value = value.reshape(-1) if task == "age" else value.reshape(len(images), -1)
                    outputs[name].setdefault(task, []).append(value)
    joined = {name: {task: np.concatenate(parts) for task, parts in by_task.items()}
              for name, by_task in outputs.items()}
    reference = joined.get("keras")
    rows = []
    for name in variants:
        file = files[name]
        row = {"name": name, "file": str(file) if file else None,
               "bytes": file.stat().st_size if file and file.is_file() else None,
               **face_metrics(predictor, joined[name], frame)}
        if reference is not None and name != "keras":
            row["vs_keras"] = _agreement(joined[name], reference)
        rows.append(row)
    return {"faces": len(frame), "model": predictor.source, "mirror": predictor.mirror, "variants": rows}


def _number(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_evaluation(result: dict) -> str:
    """``evaluate_tflite``'s result as a table (one line per variant)."""
    mirrored = ", each face averaged with its mirror image" if result.get("mirror") else ""
    lines = [f"{result['faces']} faces, model {result['model']}{mirrored}",
             f"{'variant':<16}{'file':<22}{'bytes':>11}{'gender acc':>12}{'age group acc':>15}{'age MAE':>9}"
             f"{'same gender':>13}{'same age group':>16}"]
    for row in result["variants"]:
        vs = row.get("vs_keras", {})
        size = "-" if row["bytes"] is None else f"{row['bytes']:,}"
        lines.append(f"{row['name']:<16}{Path(row['file']).name if row['file'] else '-':<22}{size:>11}"
                     f"{_number(row.get('gender_accuracy')):>12}{_number(row.get('age_group_accuracy')):>15}"
                     f"{_number(row.get('age_mae'), 3):>9}{_number(vs.get('gender_same_label')):>13}"
                     f"{_number(vs.get('age_group_same_label')):>16}")
    return "\n".join(lines)
