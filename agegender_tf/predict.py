"""Use a trained model: its model card, one predictor object for faces and photos (DESIGN.md, "Using a
trained model"). The CLI (``agegender predict``), the Streamlit app (paper 003 sec. 4.5) and export
all go through :class:`Predictor`; none re-implements preprocessing.

>>> from agegender_tf import predict
>>> predictor = predict.load()            # the bundled model; or a run folder, or FILE.keras
>>> predictor.predict_photo("group.jpg")  # {"file": ..., "faces": [{"box": [x, y, w, h], "gender": ...}]}

A *model card* (``model_card.json`` beside each network's ``best.keras``, written by every
``agegender run``) holds what prediction needs: builder and arguments, input and load size, value
mapping, the labels of each head and the binning, how training faces are framed around a detector's
box, and what the model was trained on. Nothing is guessed from a file name.

A face crop becomes model input exactly as in training: resized to the card's ``load_size`` by the
training pipeline's resize (``pipelines.tfdata.resize_to_load_size``), centre-cropped to
``input_size`` and mapped by ``pipelines.preprocess.apply_preprocess``. With mirror averaging (the
card's ``test_time.mirror``, or ``mirror=`` / ``--mirror``) the network also sees each face mirrored
left to right and the two outputs are averaged: one face's prediction at twice the network cost, for a
network trained with mirrored faces (paper 000 sec. VII's oversampling averages mirrors the same way).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from agegender_tf import faces
from agegender_tf.errors import UsageError

CARD_NAME = "model_card.json"
MODEL_NAME = "best.keras"
CARD_VERSION = 1
BUNDLED_DIR = Path(__file__).parent / "assets" / "model"
# Photos are decoded at a reduced JPEG scale when larger than this (longest side); boxes stay in
# the file's own pixels. Face crops from the reduced photo still far exceed any model's input size.
PHOTO_SIDE = 4000
DEFAULT_BATCH = 64


class ModelCardError(UsageError):
    """A model or its card is missing, unreadable or incomplete (one line naming the file)."""


# ------------------------------------------------------------------------------------- model cards
def make_model_card(preset, model_name: str, builder: str, builder_args: dict, tasks, spec,
                    train_faces: int | None = None) -> dict:
    """The card of one network of a run: ``builder_args`` as the builder was called, ``spec`` the
    augmentation spec it was trained with (its load size, crop and value mapping)."""
    import agegender_tf
    from agegender_tf import models
    from agegender_tf.binning import get_binning
    from agegender_tf.pipelines.targets import task_labels

    tasks = list(tasks)
    binning = get_binning(preset.binning) if preset.binning and "age_group" in tasks else None
    facts = models.preprocessing(builder, **builder_args)
    load_size, out_size = spec.sizes(preset.image_size)
    heads = {}
    for task, labels in task_labels(tasks, binning).items():
        if labels is None:
            heads[task] = {"kind": "regression", "unit": "years"}
        else:
            heads[task] = {"kind": "classes", "labels": labels}
            if task == "age_group":
                heads[task]["binning"] = binning.name
    framing = faces.TRAINING_FRAMING.get(preset.dataset, {})
    return _jsonable({
        "card_version": CARD_VERSION,
        "model_file": MODEL_NAME,
        "model_name": model_name,
        "preset": preset.name,
        "paper": f"paper {preset.seed_document[:3]}",
        "builder": builder,
        "builder_args": builder_args,
        "tasks": tasks,
        "heads": heads,
        "binning": binning.name if binning else None,
        "input_size": list(facts["input_size"]),
        "load_size": list(load_size),
        "crop": list(out_size),
        "preprocessing": spec.preprocess,
        "face_framing": {name: f.to_dict() for name, f in framing.items()},
        "training_data": {
            "dataset": preset.dataset,
            "note": getattr(preset, "dataset_note", ""),
            "split": preset.split,
            "train_faces": train_faces,
            "image_size": preset.image_size,
            "epochs": preset.epochs,
            "max_train_images": preset.max_train_images,
        },
        "kit_version": agegender_tf.__version__,
    })


def write_model_card(run_dir, preset, model_name: str, builder: str, builder_args: dict, tasks, spec,
                     train_faces: int | None = None) -> Path:
    """Write ``run_dir/model_card.json`` (``make_model_card``) beside the network's ``best.keras``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    card = make_model_card(preset, model_name, builder, builder_args, tasks, spec, train_faces)
    path = run_dir / CARD_NAME
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(temporary, path)
    return path


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


_REQUIRED = ("builder", "tasks", "heads", "input_size", "load_size", "preprocessing")


def read_model_card(path) -> dict:
    """The card at ``path``, checked for the fields prediction needs; ModelCardError naming it otherwise."""
    path = Path(path)
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelCardError(f"{path}: model card not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelCardError(f"{path}: unreadable model card ({exc})") from None
    missing = [k for k in _REQUIRED if k not in card] if isinstance(card, dict) else list(_REQUIRED)
    if missing:
        raise ModelCardError(f"{path}: model card lacks {', '.join(missing)}")
    if card.get("card_version", 0) > CARD_VERSION:
        raise ModelCardError(f"{path}: model card version {card['card_version']} is newer than this kit reads "
                             f"({CARD_VERSION}); upgrade agegender-tf")
    return card


def locate_model(model=None) -> tuple[Path, Path]:
    """(``best.keras``, ``model_card.json``) of ``model``: None (the bundled model), a network folder
    (``OUT/train/<name>``), a run folder ``OUT`` with one network, or a ``.keras`` file with its card beside it."""
    if model is None:
        keras_file = BUNDLED_DIR / MODEL_NAME
        if not keras_file.is_file():
            raise ModelCardError(f"no bundled model in this install ({keras_file} is missing); "
                                 "pass --model RUN_DIR or FILE.keras")
        return keras_file, BUNDLED_DIR / CARD_NAME
    path = Path(model)
    if path.is_file() or path.suffix == ".keras":
        if not path.is_file():
            raise ModelCardError(f"{path}: model file not found")
        card = path.with_name(CARD_NAME)
        if not card.is_file():
            raise ModelCardError(f"{path}: no {CARD_NAME} beside it (agegender run writes one beside every "
                                 "best.keras; nothing is guessed from the file name)")
        return path, card
    if not path.is_dir():
        raise ModelCardError(f"{path}: no such model file or run folder")
    if (path / MODEL_NAME).is_file():
        return locate_model(path / MODEL_NAME)
    networks = sorted(p.parent for p in path.glob(f"train/*/{MODEL_NAME}"))
    if len(networks) == 1:
        return locate_model(networks[0] / MODEL_NAME)
    if not networks:
        raise ModelCardError(f"{path}: no {MODEL_NAME} in it or in its train/*/ folders (an unfinished run?)")
    names = ", ".join(str(p.relative_to(path)) for p in networks)
    raise ModelCardError(f"{path} holds {len(networks)} trained networks ({names}); pass one of those folders")


def load(model=None, batch_size: int = DEFAULT_BATCH, mirror: bool | None = None) -> Predictor:
    """The predictor of ``model`` (see ``locate_model``; None is the bundled model). ``mirror``: average
    each face with its mirror image (None: as the card's ``test_time.mirror`` says, else off). A network
    trained in mixed precision computes as trained where the machine has that precision natively
    (``native_bfloat16``), else in float32 with the same weights (``float32_network``)."""
    keras_file, card_file = locate_model(model)
    card = read_model_card(card_file)
    network = _load_network(keras_file)
    reduced = compute_dtype(network)
    if (reduced == "bfloat16" and not native_bfloat16()) or (reduced == "float16" and not _has_gpu()):
        network = float32_network(network)  # emulated half precision is slower, or fails
    return Predictor(network, card, source=str(keras_file), batch_size=batch_size, mirror=mirror)


def _load_network(keras_file: Path):
    """The Keras network in ``keras_file`` (not compiled); ModelCardError naming the file when unusable."""
    import agegender_tf.models  # noqa: F401  (registers the custom layers)
    from agegender_tf.experiments.rundir import CorruptFile, check_keras_file

    try:
        check_keras_file(keras_file)
    except CorruptFile as exc:
        raise ModelCardError(str(exc).split(";")[0]) from None
    import keras

    try:
        network = keras.saving.load_model(keras_file, compile=False)
    except Exception as exc:  # keras raises many types for a bad archive; all mean the same to a user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelCardError(f"{keras_file}: cannot load the Keras model ({first})") from None
    return network


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _float32_config(value):
    """A Keras config with every mixed-precision dtype policy (a ``DTypePolicy`` entry, or a ``dtype``
    given by name) replaced by float32; layer names and everything else stay."""
    if isinstance(value, dict):
        policy = str(value.get("config", {}).get("name", "")) if value.get("class_name") == "DTypePolicy" else ""
        if policy.startswith("mixed_"):
            return {**value, "config": {**value["config"], "name": "float32"}}
        return {key: ("float32" if key == "dtype" and isinstance(inner, str) and inner.startswith("mixed_")
                      else _float32_config(inner)) for key, inner in value.items()}
    if isinstance(value, list):
        return [_float32_config(inner) for inner in value]
    return value


def float32_network(network):
    """``network`` itself when it computes in float32, else a copy whose layers all compute in float32
    with the same weights (mixed-precision variables are float32 already)."""
    config = network.get_config()
    converted = _float32_config(config)
    if converted == config:
        return network
    import agegender_tf.models  # noqa: F401  (registers the custom layers)

    copy = network.__class__.from_config(converted)
    copy.set_weights(network.get_weights())
    return copy


def nested_layers(network):
    """``network`` and every layer in it, models nested in it included."""
    stack = [network]
    while stack:
        layer = stack.pop()
        yield layer
        stack.extend(getattr(layer, "layers", None) or [])


def compute_dtype(network) -> str:
    """The narrowest dtype ``network``'s layers compute in: "bfloat16", "float16" or "float32"."""
    seen = {str(getattr(layer, "compute_dtype", "float32")) for layer in nested_layers(network)}
    return next((dtype for dtype in ("bfloat16", "float16") if dtype in seen), "float32")


def native_bfloat16() -> bool:
    """Whether this machine computes bfloat16 natively: a GPU of compute capability 8.0 or more, or,
    without a GPU, a CPU with AVX-512 BF16 or AMX (Linux) that ``ONEDNN_MAX_CPU_ISA`` does not rule out.
    Elsewhere bfloat16 is slower than float32 (1.6x on AVX-512 without BF16, measured on the bundled
    model) or fails (with AVX2 alone oneDNN has no bfloat16 convolution)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        return tuple(capability) >= (8, 0)
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if isa != "ALL" and "BF16" not in isa and "AMX" not in isa:
        return False
    return bool((cpu_flags() or set()) & {"avx512_bf16", "amx_bf16"})


def cpu_flags() -> set[str] | None:
    """This CPU's feature flags (Linux ``/proc/cpuinfo``), else None."""
    try:
        with open("/proc/cpuinfo") as handle:
            return set(next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), []))
    except OSError:
        return None


def bundle(model, dest=BUNDLED_DIR, mirror: bool | None = None) -> Path:
    """Make ``model`` (as for ``load``) the bundled model: its network, in the precision it was trained
    in, saved to ``dest/best.keras`` without optimizer state, and its card beside it with
    ``test_time.mirror`` set when ``mirror`` is given. This is how ``agegender_tf/assets/model/`` is
    made from a ``results/`` folder (README)."""
    keras_file, card_file = locate_model(model)
    card = read_model_card(card_file)
    network = _load_network(keras_file)
    if mirror is not None:
        card["test_time"] = {**(card.get("test_time") or {}), "mirror": bool(mirror)}
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    network.save(dest / MODEL_NAME)
    (dest / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
    return dest


# --------------------------------------------------------------------------------------- predictor
class Predictor:
    """A trained network with its card: face crops or photos in, labelled probabilities out."""

    def __init__(self, network, card: dict, source: str | None = None, batch_size: int = DEFAULT_BATCH,
                 mirror: bool | None = None):
        import tensorflow as tf

        if mirror is None:
            mirror = bool((card.get("test_time") or {}).get("mirror", False))
        self.mirror = bool(mirror)
        # The card travels with exports: it says whether their graph averages mirrors.
        self.card = {**card, "test_time": {**(card.get("test_time") or {}), "mirror": self.mirror}}
        self.network, self.source = network, source
        self.compute_dtype = compute_dtype(network)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise UsageError(f"batch size must be at least 1, got {batch_size}")
        self.tasks = tuple(card["tasks"])
        self.load_size = tuple(int(s) for s in card["load_size"])
        self.input_size = tuple(int(s) for s in card["input_size"][:2])
        names = list(getattr(network, "output_names", None) or self.tasks)
        if len(names) != len(self.tasks) or set(names) != set(self.tasks):
            names = list(self.tasks) if len(self.tasks) == 1 else names
        if set(names) != set(self.tasks):
            raise ModelCardError(f"{source}: the model's outputs {names} do not match its card's tasks "
                                 f"{list(self.tasks)}")
        self._output_names = names
        load_h, load_w = self.load_size
        self._sized = tf.function(self._resize_batch, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
        self._forward = tf.function(self.model_input_to_outputs,
                                    input_signature=[tf.TensorSpec([None, load_h, load_w, 3], tf.float32)])
        self._predict_batch = tf.function(lambda images: self.model_input_to_outputs(self._resize_batch(images)),
                                          input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])

    # ----- graph pieces (export reuses them)
    def _resize_batch(self, images):
        """uint8 [N, H, W, 3] (faces of one size) -> float32 [N, load_h, load_w, 3], resized as in training."""
        import tensorflow as tf

        from agegender_tf.pipelines.tfdata import resize_to_load_size

        return tf.cast(resize_to_load_size(images, self.load_size), tf.float32)

    def model_input_to_outputs(self, images):
        """float32 RGB 0..255 [N, load_h, load_w, 3] -> {task: [N, classes] or [N]}: centre crop,
        value mapping, network (on the faces and their mirrors, averaged, when ``mirror``). This is the
        graph ``agegender export`` writes."""
        import tensorflow as tf

        from agegender_tf.pipelines.augment_tf import crop_batch
        from agegender_tf.pipelines.preprocess import apply_preprocess

        x = apply_preprocess(crop_batch(images, self.input_size, random=False), self.card["preprocessing"])
        if not self.mirror:
            outputs = self._named_outputs(self.network(x, training=False))
        else:
            count = tf.shape(x)[0]
            both = self._named_outputs(self.network(tf.concat([x, tf.reverse(x, axis=[2])], axis=0), training=False))
            outputs = {task: (value[:count] + value[count:]) / 2.0 for task, value in both.items()}
        return {task: (tf.reshape(outputs[task], [-1]) if task == "age" else outputs[task]) for task in self.tasks}

    def _named_outputs(self, raw) -> dict:
        if isinstance(raw, dict):
            return raw
        return dict(zip(self._output_names, raw if isinstance(raw, (list, tuple)) else [raw]))

    # ----- arrays
    def _batches(self, images):
        """(indices, uint8 [n, H, W, 3]) chunks of at most ``batch_size`` faces of one size each."""
        by_shape: dict[tuple, list[int]] = {}
        for i, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(i)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                yield chunk, np.stack([images[i] for i in chunk])

    def load_sized(self, images) -> np.ndarray:
        """float32 0..255 [N, load_h, load_w, 3]: face crops of any size resized as in training
        (the input of ``model_input_to_outputs`` and of an exported model)."""
        images = [faces.as_rgb_uint8(image, name=f"face {i}") for i, image in enumerate(images)]
        sized = np.zeros((len(images), *self.load_size, 3), np.float32)
        for indices, batch in self._batches(images):
            sized[indices] = self._sized(batch).numpy()
        return sized

    def raw_outputs(self, images) -> dict[str, np.ndarray]:
        """Network outputs {task: [N, classes] or [N]} for RGB uint8 face crops of any size, in order."""
        outputs: dict[str, np.ndarray] = {}
        for indices, batch in self._batches(images):
            for task, value in self._predict_batch(batch).items():
                value = value.numpy()
                if task not in outputs:
                    outputs[task] = np.zeros((len(images), *value.shape[1:]), np.float32)
                outputs[task][indices] = value
        return outputs

    def face_results(self, raw: dict[str, np.ndarray]) -> list[dict]:
        """One face dict per row of ``raw``: ``gender``/``age_group`` {label, p[, binning]}, ``age``."""
        count = len(next(iter(raw.values()))) if raw else 0
        results = []
        for i in range(count):
            face = {}
            for task in self.tasks:
                head = self.card["heads"][task]
                if head.get("kind") == "regression":
                    face[task] = float(raw[task][i])
                    continue
                probabilities = raw[task][i]
                labels = head["labels"]
                face[task] = {"label": labels[int(np.argmax(probabilities))],
                              "p": {label: float(p) for label, p in zip(labels, probabilities)}}
                if "binning" in head:
                    face[task]["binning"] = head["binning"]
            results.append(face)
        return results

    def predict_faces(self, images) -> list[dict]:
        """Face dicts (no ``box``) for a list or [N, H, W, C] array of face crops (RGB uint8 or float 0..1)."""
        if isinstance(images, np.ndarray) and images.ndim != 4:
            raise ValueError(f"faces: pass a list of face images or an [N, H, W, C] array, got shape {images.shape}")
        images = [faces.as_rgb_uint8(image, name=f"face {i}") for i, image in enumerate(images)]
        return self.face_results(self.raw_outputs(images))

    # ----- photos and files
    def _framing(self, detector: str) -> faces.Framing:
        framing = self.card.get("face_framing", {}).get(detector)
        if framing is None:
            data = self.card.get("training_data", {}).get("dataset")
            raise ModelCardError(f"{self.source}: its card has no face framing for detector {detector!r} "
                                 f"(training data {data!r} not measured); use aligned=True for cropped faces")
        return faces.Framing(float(framing["margin"]), float(framing.get("shift", 0.0)), int(framing.get("faces", 0)))

    def predict_photo(self, photo, detector: str = "mtcnn", aligned: bool = False) -> dict:
        """``{"file": str | None, "faces": [...]}`` for a path or an RGB array. Every face is detected,
        cropped with the training framing and predicted; ``aligned`` treats the image as one face.
        A photo without a face gives ``faces: []``; an unreadable file raises ValueError naming it."""
        name = None if isinstance(photo, np.ndarray) else str(photo)
        framing = None if aligned else self._framing(detector)
        if name is None:
            image = faces.as_rgb_uint8(photo)
            width, height = image.shape[1], image.shape[0]
        else:
            width, height = faces.image_size(photo)
            image = faces.load_rgb(photo, max_side=None if aligned else PHOTO_SIDE)
        if aligned:
            result = self.predict_faces([image])[0]
            return {"file": name, "faces": [{"box": [0, 0, int(width), int(height)], **result}]}
        sx, sy = width / image.shape[1], height / image.shape[0]
        boxes = faces.detect_faces(image, detector)
        crops = [faces.training_crop(image, box, framing) for box in boxes]
        results = self.predict_faces(crops) if crops else []
        found = []
        for box, result in zip(boxes, results):
            full = box.scaled(sx, sy)
            face = {"box": [full.x, full.y, full.width, full.height], **result}
            if box.score is not None:
                face["detector_score"] = round(box.score, 4)
            found.append(face)
        return {"file": name, "faces": found}

    def predict_files(self, paths, aligned: bool = True, detector: str = "mtcnn", workers: int | None = None):
        """Yield ``(path, result_or_None, error_or_None)`` in order for image files. Aligned faces are
        decoded and resized in a thread pool and predicted in batches; photos run one by one."""
        paths = [str(p) for p in paths]
        if not aligned:
            for path in paths:
                try:
                    yield path, self.predict_photo(path, detector=detector), None
                except ModelCardError:
                    raise
                except ValueError as exc:
                    yield path, None, str(exc)
            return
        workers = workers or max(2, os.cpu_count() or 1)

        def prepare(path):
            try:
                image = faces.load_rgb(path)
                return image, (image.shape[1], image.shape[0]), None
            except ValueError as exc:
                return None, None, str(exc)

        step = self.batch_size * 4
        chunks = [paths[start:start + step] for start in range(0, len(paths), step)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # The next chunk is decoded while the network runs on this one.
            pending = [pool.submit(prepare, path) for path in chunks[0]] if chunks else []
            for number, chunk in enumerate(chunks):
                prepared = [future.result() for future in pending]
                following = chunks[number + 1] if number + 1 < len(chunks) else []
                pending = [pool.submit(prepare, path) for path in following]
                good = [i for i, (image, _, _) in enumerate(prepared) if image is not None]
                results = self.face_results(self.raw_outputs([prepared[i][0] for i in good])) if good else []
                by_index = dict(zip(good, results))
                for i, path in enumerate(chunk):
                    _, size, error = prepared[i]
                    if error is not None:
                        yield path, None, error
                    else:
                        yield path, {"file": path, "faces": [{"box": [0, 0, size[0], size[1]], **by_index[i]}]}, None
