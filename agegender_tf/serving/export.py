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

``serving.export_accuracy`` (``agegender export-accuracy``) measures the TFLite files beside the Keras model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from agegender_tf.errors import MissingExtra, UsageError
from agegender_tf.paths import disk_full_error, is_disk_full, replace_atomic, write_text_atomic
from agegender_tf.serving.precision import float32_network, nested_layers
from agegender_tf.serving.predictor import Predictor

FORMATS = ("savedmodel", "tflite", "onnx")
ONNX_OPSET = 17


class ExportUnavailable(MissingExtra):
    """The format needs a package that is not installed: one line saying which, and that the ``export`` extra
    (``pip install 'agegender-tf[export]'``) brings it."""

    def __init__(self, needs: str):
        super().__init__(needs, "export")


def check_available(fmt: str) -> None:
    """Raise ``ExportUnavailable`` when writing ``fmt`` (``onnx``: tf2onnx and onnx) or measuring TFLite files
    (``tflite-run``: LiteRT, or TensorFlow's own interpreter where it still has one) needs a package that is
    not installed; the commands call it before loading the model."""
    if fmt == "onnx":
        missing = [name for name in ("tf2onnx", "onnx") if importlib.util.find_spec(name) is None]
        if missing:
            raise ExportUnavailable(f"ONNX export needs {' and '.join(missing)}")
    elif fmt == "tflite-run":
        tflite_interpreter()
    elif fmt == "onnx-run" and importlib.util.find_spec("onnxruntime") is None:
        raise ExportUnavailable("running an ONNX model needs onnxruntime")


def tflite_interpreter():
    """The TFLite interpreter class: LiteRT's (``ai-edge-litert``, the successor), else ``tf.lite.Interpreter``
    (deprecated, still in TF 2.19 to 2.21); ``ExportUnavailable`` when neither is there."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    import tensorflow as tf

    interpreter = getattr(tf.lite, "Interpreter", None)
    if interpreter is None:  # LiteRT is a core dependency (BlazeFace runs on it): reinstall the kit
        raise UsageError("running a TFLite file needs ai-edge-litert: pip install 'ai-edge-litert>=2.0,<3'")
    return interpreter


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


def _card_text(predictor, fmt: str, quantize: str | None, batch: int | None = None) -> str:
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
    return json.dumps(card, indent=2) + "\n"


def _save_savedmodel(predictor, folder: Path, batch: int | None = None) -> None:
    """Keras' ``ExportArchive`` (what ``model.export`` uses) with the predictor's graph as endpoint; a
    hand-made ``tf.Module`` converts to a TFLite file whose variables the interpreter cannot read."""
    import keras

    serve, spec = _serving_function(predictor, batch)
    archive = keras.export.ExportArchive()
    archive.track(predictor.network)
    archive.add_endpoint("serving_default", serve, input_signature=[spec])
    with contextlib.redirect_stdout(io.StringIO()):  # Keras 3.8 prints the endpoints even with verbose=False
        archive.write_out(str(folder), verbose=False)


# ------------------------------------------------------------------------------------ the destination
def check_destination(out, fmt: str, overwrite: bool = False) -> Path:
    """Refuse, before any conversion work, an ``out`` that exists (unless ``overwrite``; a SavedModel folder
    may be empty) or whose folder cannot be made or written; make that folder. Each refusal is one line."""
    out = Path(out)
    if out.is_dir() and fmt != "savedmodel":
        raise UsageError(f"--out {out} is a folder; --format {fmt} writes a file: name the file")
    if out.exists() and not overwrite:
        if fmt == "savedmodel" and (out.is_file() or any(out.iterdir())):
            raise UsageError(f"{out} exists and is not empty; choose a new --out (or pass --overwrite)")
        if fmt != "savedmodel":
            raise UsageError(f"{out} exists; choose a new --out (or pass --overwrite to replace it)")
    parent = out.parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--out {out} cannot be created: {existing} is a file, not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if is_disk_full(exc):
            raise _write_error(exc, out) from None
        raise UsageError(f"--out {out}: cannot create the folder {exc.filename or parent}: "
                         f"{exc.strerror or exc}") from None
    try:
        handle, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=parent)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        if is_disk_full(exc):
            raise _write_error(exc, out) from None
        raise UsageError(f"--out {out}: cannot write in {parent}: {exc.strerror or exc}") from None
    return out


def _write_error(exc: BaseException, out: Path, needed: int | None = None) -> UsageError:
    """The one line for a filesystem error while writing ``out`` (a full disk names the space needed). An
    error on a file outside ``out``'s folder (the converter's scratch SavedModel) names that file's folder."""
    name = getattr(exc, "filename", None)
    outside = name is not None and not Path(os.path.abspath(name)).is_relative_to(os.path.abspath(out.parent))
    if is_disk_full(exc):
        return disk_full_error(Path(name).parent if outside else out.parent, needed,
                               what=f"about the size of {out.name}", then="export again; nothing was left under --out")
    reason = getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return UsageError(f"cannot write {name if outside else out}: {reason}")


def _source_size(predictor) -> int | None:
    """The size of the predictor's ``.keras`` file: the estimate of what an export needs."""
    try:
        return os.path.getsize(predictor.source) if predictor.source else None
    except OSError:
        return None


def _replace_folder(staged: Path, out: Path) -> None:
    """Put the finished folder ``staged`` at ``out`` (a sibling), moving an old ``out`` aside first."""
    if not out.exists():
        os.rename(staged, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, old / out.name)
    os.rename(staged, out)
    shutil.rmtree(old, ignore_errors=True)


def _tflite_bytes(predictor, quantize: str | None, batch: int | None) -> bytes:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        _save_savedmodel(predictor, Path(folder) / "saved", batch)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(folder) / "saved"))
        if quantize == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        try:
            return converter.convert()
        except OSError:
            raise
        except Exception as exc:  # the converter raises its own error types, with pages of MLIR notes
            if is_disk_full(exc):
                raise
            lines = str(exc).splitlines() or [type(exc).__name__]
            first = next((line for line in lines if "error:" in line), lines[0])
            raise ExportFailed(f"{predictor.source}: the TFLite converter failed: {first.strip()[:300]}") from None


def export(predictor, fmt: str, out, quantize: str | None = None, overwrite: bool = False) -> Path:
    """Write ``predictor``'s model to ``out`` in ``fmt``; return the path written.

    ``out`` is checked first (``check_destination``); the model is written under a temporary name in
    ``out``'s folder and renamed when whole (a SavedModel: a temporary folder, its card inside), so a
    failure leaves nothing under ``out``. A filesystem error is one line naming the path."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if quantize not in (None, "dynamic"):
        raise UsageError(f"unknown quantization {quantize!r}; only 'dynamic' (TFLite) is offered")
    if quantize and fmt != "tflite":
        raise UsageError("--quantize dynamic applies to --format tflite only")
    out = check_destination(out, fmt, overwrite)
    predictor = float32_predictor(predictor)
    batch = export_batch(predictor, fmt)
    needed = _source_size(predictor)
    try:
        if fmt == "savedmodel":
            staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
            try:
                _save_savedmodel(predictor, staged)
                write_text_atomic(card_path(staged, fmt), _card_text(predictor, fmt, quantize, batch))
                _replace_folder(staged, out)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
            return out
        if fmt == "tflite":
            data = _tflite_bytes(predictor, quantize, batch)
            needed = len(data)
            with replace_atomic(out) as temporary:
                temporary.write_bytes(data)
        else:
            check_available("onnx")
            import tf2onnx
            serve, spec = _serving_function(predictor)
            with replace_atomic(out) as temporary:
                tf2onnx.convert.from_function(serve, input_signature=[spec], opset=ONNX_OPSET,
                                              output_path=str(temporary))
        write_text_atomic(card_path(out, fmt), _card_text(predictor, fmt, quantize, batch))
    except UsageError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) or is_disk_full(exc):
            raise _write_error(exc, out, needed) from None
        raise
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
        interpreter = tflite_interpreter()(model_path=str(path))
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
        check_available("onnx-run")
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]

        def run(images):
            values = session.run(names, {input_name: np.asarray(images, np.float32)})
            return dict(zip(names, values))

        return run
    raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
