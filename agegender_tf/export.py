"""Export a trained model for serving: SavedModel, TFLite (float32 or dynamic-range quantized), ONNX.

The exported graph is the predictor's own ``Predictor.model_input_to_outputs``: its input is
``image``, float32 RGB in 0..255 of shape [N, load_h, load_w, 3] (the model card's ``load_size``),
and it does the centre crop, the value mapping (``preprocessing``) and the network, returning one
output per head (``gender``, ``age_group``: class probabilities in the card's label order; ``age``:
years). Only the resize of a face crop to ``load_size`` stays outside (crops come in any size); do
it with bilinear filtering (antialiased when shrinking), as ``Predictor.load_sized`` does.
Each export writes the model card beside it (``<out>/model_card.json`` for a SavedModel folder,
``<out>.model_card.json`` for a file), with an ``export`` entry describing the input.

A network with recurrent layers (LSTM, GRU: paper 001's CNN+RNN ensemble, the bundled model) converts
to TFLite only with a fixed batch: the converter cannot lower the RNN's tensor lists with an unknown
batch size, and a Select-TF-ops file does not run in LiteRT. Its TFLite file takes one face per call
(input shape [1, load_h, load_w, 3], stated in the card); ``load_exported`` feeds it face by face.

A network trained in mixed precision (``precision`` mixed_bfloat16 or mixed_float16: the bundled model)
is exported with every layer computing in float32, with the same (float32) weights: TFLite cannot hold
an LSTM's bfloat16 state, and float32 runs everywhere. Its outputs then differ from the Keras model's
by the bfloat16 rounding the Keras model does (``export-accuracy`` measures it).

``evaluate_tflite`` (``agegender export-accuracy``) exports float32 and dynamic-range quantized TFLite
files and measures them beside the Keras model on labelled faces (by default the committed UTKFace test
split): gender accuracy, age-group accuracy, age MAE, agreement with Keras and file sizes.
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from agegender_tf.errors import UsageError
from agegender_tf.predict import Predictor, float32_network, nested_layers

FORMATS = ("savedmodel", "tflite", "onnx")
ONNX_OPSET = 17


class ExportUnavailable(UsageError):
    """The format needs a package that is not installed (one line saying which)."""


class ExportFailed(UsageError):
    """A converter could not convert the model (one line: the model and the converter's first error)."""


def float32_predictor(predictor):
    """``predictor`` with ``float32_network`` in place of its network (same card, same mirroring)."""
    network = float32_network(predictor.network)
    if network is predictor.network:
        return predictor
    return Predictor(network, predictor.card, source=predictor.source, batch_size=predictor.batch_size,
                     mirror=predictor.mirror)


def has_recurrent_layers(network) -> bool:
    """Whether ``network`` (or a model nested in it) holds a recurrent layer (LSTM, GRU, any RNN)."""
    import keras

    return any(isinstance(layer, keras.layers.RNN) for layer in nested_layers(network))


def export_batch(predictor, fmt: str) -> int | None:
    """The fixed batch size of ``fmt``'s input: 1 for TFLite of a recurrent network, else None (any)."""
    return 1 if fmt == "tflite" and has_recurrent_layers(predictor.network) else None


def _serving_function(predictor, batch: int | None = None):
    import tensorflow as tf

    height, width = predictor.load_size
    spec = tf.TensorSpec([batch, height, width, 3], tf.float32, name="image")
    return tf.function(lambda image: predictor.model_input_to_outputs(image), input_signature=[spec]), spec


def card_path(out: Path, fmt: str) -> Path:
    out = Path(out)
    return out / "model_card.json" if fmt == "savedmodel" else out.with_name(out.name + ".model_card.json")


def _write_card(predictor, out: Path, fmt: str, quantize: str | None, batch: int | None = None) -> Path:
    card = dict(predictor.card)
    card["export"] = {
        "format": fmt,
        "quantize": quantize,
        "input": {"name": "image", "dtype": "float32", "shape": [batch, *predictor.load_size, 3],
                  "values": "RGB 0..255, face crop resized to load_size (bilinear, antialiased when shrinking)"},
        "outputs": {task: ("years [N]" if predictor.card["heads"][task].get("kind") == "regression"
                           else "probabilities [N, classes] in heads[task].labels order") for task in predictor.tasks},
        "compute": "float32",
        "source": predictor.source,
    }
    path = card_path(out, fmt)
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def _save_savedmodel(predictor, folder: Path, batch: int | None = None) -> None:
    """Keras' ``ExportArchive`` (what ``model.export`` uses) with the predictor's graph as endpoint; a
    hand-made ``tf.Module`` converts to a TFLite file whose variables the interpreter cannot read."""
    import keras

    serve, spec = _serving_function(predictor, batch)
    archive = keras.export.ExportArchive()
    archive.track(predictor.network)
    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    archive.write_out(str(folder), verbose=False)


def export(predictor, fmt: str, out, quantize: str | None = None) -> Path:
    """Write ``predictor``'s model to ``out`` in ``fmt``; return the path written."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if quantize not in (None, "dynamic"):
        raise UsageError(f"unknown quantization {quantize!r}; only 'dynamic' (TFLite) is offered")
    if quantize and fmt != "tflite":
        raise UsageError("--quantize dynamic applies to --format tflite only")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    predictor = float32_predictor(predictor)
    batch = export_batch(predictor, fmt)
    if fmt == "savedmodel":
        if out.is_file() or (out.is_dir() and any(out.iterdir())):
            raise UsageError(f"{out} exists and is not empty; choose a new --out")
        _save_savedmodel(predictor, out)
    elif fmt == "tflite":
        import tensorflow as tf

        with tempfile.TemporaryDirectory() as folder:
            _save_savedmodel(predictor, Path(folder) / "saved", batch)
            converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(folder) / "saved"))
            if quantize == "dynamic":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            try:
                out.write_bytes(converter.convert())
            except Exception as exc:  # the converter raises its own error types, with pages of MLIR notes
                lines = str(exc).splitlines() or [type(exc).__name__]
                first = next((line for line in lines if "error:" in line), lines[0])
                raise ExportFailed(f"{predictor.source}: the TFLite converter failed: {first.strip()[:300]}") from None
    else:
        try:
            import tf2onnx
        except ImportError:
            raise ExportUnavailable("ONNX export needs tf2onnx and onnx "
                                    "(pip install tf2onnx onnx onnxruntime)") from None
        serve, spec = _serving_function(predictor)
        tf2onnx.convert.from_function(serve, input_signature=[spec], opset=ONNX_OPSET, output_path=str(out))
    _write_card(predictor, out, fmt, quantize, batch)
    return out


def load_exported(path, fmt: str):
    """A function float32 [N, load_h, load_w, 3] -> {task: array} running the exported model
    (TensorFlow's SavedModel loader, the TFLite interpreter, or onnxruntime)."""
    path = Path(path)
    if fmt == "savedmodel":
        import tensorflow as tf

        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        return lambda images: {k: v.numpy() for k, v in serve(image=tf.constant(images, tf.float32)).items()}
    if fmt == "tflite":
        try:  # LiteRT, the TFLite interpreter's successor; tf.lite.Interpreter is deprecated in TF 2.21
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
        interpreter = Interpreter(model_path=str(path))
        runner = interpreter.get_signature_runner("serving_default")
        fixed = int(runner.get_input_details()["image"]["shape_signature"][0])  # -1: any batch size

        def run_tflite(images):
            images = np.asarray(images, np.float32)
            if fixed < 1:
                return {k: np.asarray(v) for k, v in runner(image=images).items()}
            parts: dict[str, list] = {}
            for start in range(0, len(images), fixed):
                chunk = images[start:start + fixed]
                padded = np.concatenate([chunk, np.zeros((fixed - len(chunk), *chunk.shape[1:]), np.float32)])
                for k, v in runner(image=padded).items():
                    parts.setdefault(k, []).append(np.array(v)[:len(chunk)])
            return {k: np.concatenate(v) for k, v in parts.items()}

        return run_tflite
    if fmt == "onnx":
        try:
            import onnxruntime
        except ImportError:
            raise ExportUnavailable("running an ONNX model needs onnxruntime (pip install onnxruntime)") from None
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]

        def run(images):
            values = session.run(names, {input_name: np.asarray(images, np.float32)})
            return dict(zip(names, values))

        return run
    raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


# ------------------------------------------------------------------------ accuracy of TFLite exports
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
    ``outputs`` ({task: [N, classes] or [N]}) against ``frame``'s ``gender`` and ``age``."""
    from agegender_tf.binning import get_binning

    heads, metrics = predictor.card["heads"], {}
    ages = frame["age"].to_numpy(dtype=float)
    if "gender" in outputs:
        labels = list(heads["gender"]["labels"])
        truth = np.array([labels.index(g) if g in labels else -1 for g in frame["gender"]])
        known = truth >= 0
        metrics["gender_accuracy"] = float(np.mean(outputs["gender"].argmax(1)[known] == truth[known]))
    if "age_group" in outputs and heads["age_group"].get("binning"):
        truth = np.atleast_1d(get_binning(heads["age_group"]["binning"]).to_class(ages))
        known = truth >= 0
        metrics["age_group_accuracy"] = float(np.mean(outputs["age_group"].argmax(1)[known] == truth[known]))
    if "age" in outputs:
        known = ~np.isnan(ages)
        metrics["age_mae"] = float(np.mean(np.abs(outputs["age"][known] - ages[known])))
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
    (``labelled_faces``): each face is read and resized to the card's load size once, as
    ``agegender predict --aligned`` does, and the same array goes to every variant. Returns
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
                                 quantize)
            runners[name] = load_exported(files[name], "tflite")
    outputs: dict[str, dict[str, list]] = {name: {} for name in variants}
    paths = frame["path"].tolist()
    from agegender_tf import faces

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        for start in range(0, len(paths), batch_size):
            images = list(pool.map(faces.load_rgb, paths[start:start + batch_size]))
            sized = predictor.load_sized(images)
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
