"""Use a trained model: one predictor object for faces and photos (DESIGN.md, "Using a trained model").
The CLI (``agegender predict``), the Streamlit app (paper 003 sec. 4.5) and export all go through
:class:`Predictor`; none re-implements preprocessing.

>>> from agegender_tf.serving import predictor
>>> model = predictor.load()          # the bundled model; or a run folder, or FILE.keras
>>> model.predict_photo("group.jpg")  # {"file": ..., "faces": [{"box": [x, y, w, h], "gender": ...}]}

What prediction needs is read from the network's model card (``agegender_tf.model_card``).

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

from agegender_tf.errors import UsageError
from agegender_tf.imaging import as_rgb_uint8, image_size, load_rgb
from agegender_tf.model_card import (
    CARD_NAME,
    MODEL_NAME,
    TRAINING_FRAMING,
    Framing,
    ModelCardError,
    keras_archive_problem,
    read_model_card,
)
from agegender_tf.paths import replace_atomic, write_text_atomic
from agegender_tf.serving import DETECTORS, faces
from agegender_tf.serving.precision import compute_dtype, float32_network, has_gpu, native_bfloat16

BUNDLED_DIR = Path(__file__).parents[1] / "assets" / "model"
# Photos are decoded at a reduced JPEG scale when larger than this (longest side); boxes stay in
# the file's own pixels. Face crops from the reduced photo still far exceed any model's input size.
PHOTO_SIDE = 4000
DEFAULT_BATCH = 64


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
    if (reduced == "bfloat16" and not native_bfloat16()) or (reduced == "float16" and not has_gpu()):
        network = float32_network(network)  # emulated half precision is slower, or fails
    return Predictor(network, card, source=str(keras_file), batch_size=batch_size, mirror=mirror)


def _load_network(keras_file: Path):
    """The Keras network in ``keras_file`` (not compiled); ModelCardError naming the file when unusable."""
    import keras

    import agegender_tf.models  # noqa: F401  (registers the custom layers)

    problem = keras_archive_problem(keras_file)
    if problem:
        raise ModelCardError(f"{keras_file} is corrupt ({problem})")

    try:
        network = keras.saving.load_model(keras_file, compile=False)
    except Exception as exc:  # keras raises many types for a bad archive; all mean the same to a user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelCardError(f"{keras_file}: cannot load the Keras model ({first})") from None
    return network


def bundle(model, dest=BUNDLED_DIR, mirror: bool | None = None, evaluation: dict | None = None) -> Path:
    """Make ``model`` (as for ``load``) the bundled model: its network, in the precision it was trained
    in, saved to ``dest/best.keras`` without optimizer state, and its card beside it with
    ``test_time.mirror`` set when ``mirror`` is given, the run folder that made it (``run_folder``, as
    given, e.g. ``results/cnn_rnn_ensemble_photos``) and ``evaluation``, the numbers it was chosen and
    scored by. This is how ``agegender_tf/assets/model/`` is made from a ``results/`` folder (README)."""
    keras_file, card_file = locate_model(model)
    card = read_model_card(card_file)
    network = _load_network(keras_file)
    if mirror is not None:
        card["test_time"] = {**(card.get("test_time") or {}), "mirror": bool(mirror)}
    card["run_folder"] = Path(model).as_posix() if model is not None else card.get("run_folder")
    if evaluation is not None:
        card["evaluation"] = evaluation
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with replace_atomic(dest / MODEL_NAME, suffix=".keras") as temporary:
        network.save(temporary)
    write_text_atomic(dest / CARD_NAME, json.dumps(card, indent=2) + "\n")
    return dest


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
        images = [as_rgb_uint8(image, name=f"face {i}") for i, image in enumerate(images)]
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
        images = [as_rgb_uint8(image, name=f"face {i}") for i, image in enumerate(images)]
        return self.face_results(self.raw_outputs(images))

    # ----- photos and files
    def _framing(self, detector: str) -> Framing:
        """Where ``detector``'s box lies in the training faces: the card's, else the kit's measurement on the
        card's training dataset (``model_card.TRAINING_FRAMING``: cards written before a detector existed)."""
        dataset = (self.card.get("training_data") or {}).get("dataset")
        framing = self.card.get("face_framing", {}).get(detector)
        if framing is None and detector in TRAINING_FRAMING.get(dataset, {}):
            framing = TRAINING_FRAMING[dataset][detector].to_dict()
        if framing is None:
            data = self.card.get("training_data", {}).get("dataset")
            raise ModelCardError(f"{self.source}: its card has no face framing for detector {detector!r} "
                                 f"(training data {data!r} not measured); use aligned=True for cropped faces")
        return Framing(float(framing["margin"]), float(framing.get("shift", 0.0)), int(framing.get("faces", 0)))

    @property
    def face_search(self) -> str | None:
        """The detector whose boxes framed this network's training faces (the card's
        ``training_data.face_crop``), or None for a network trained on a dataset's own crops."""
        return ((self.card.get("training_data") or {}).get("face_crop") or {}).get("detector")

    def aligned_faces(self, images, detector: str = DETECTORS[0]) -> list[tuple[np.ndarray, str, list[int]]]:
        """``(face, framing, box)`` for each given crop: a network trained on framed faces gets the face
        ``detector`` finds inside the crop, framed as in training (the card's framing for that detector:
        ``"detected"``), or the whole crop where none is found (``"whole"``); other networks get the whole
        crop, as they were trained."""
        whole = [(image, "whole", [0, 0, int(image.shape[1]), int(image.shape[0])]) for image in images]
        if self.face_search is None or not images:
            return whole
        framing = self._framing(detector)
        found = faces.detect_many(images, detector)
        return [(faces.training_crop(image, boxes[0], framing), "detected",
                 [boxes[0].x, boxes[0].y, boxes[0].width, boxes[0].height]) if boxes else plain
                for image, boxes, plain in zip(images, found, whole)]

    def predict_photo(self, photo, detector: str = DETECTORS[0], aligned: bool = False) -> dict:
        """``{"file": str | None, "faces": [...]}`` for a path or an RGB array. Every face is detected,
        cropped with the training framing and predicted, in reading order (rows top to bottom, each
        left to right); ``aligned`` treats the image as one face's crop (``aligned_faces``: its
        ``framing`` says whether the face was found in it). A photo without a face gives ``faces: []``;
        an unreadable file raises ``imaging.ImageProblem`` (a ValueError) naming it."""
        name = None if isinstance(photo, np.ndarray) else str(photo)
        framing = None if aligned else self._framing(detector)
        if name is None:
            image = as_rgb_uint8(photo)
            width, height = image.shape[1], image.shape[0]
        else:
            width, height = image_size(photo)
            image = load_rgb(photo, max_side=PHOTO_SIDE)
        sx, sy = width / image.shape[1], height / image.shape[0]
        if aligned:
            (face, how, box), = self.aligned_faces([image], detector)
            box = faces.FaceBox(*box).scaled(sx, sy)
            return {"file": name, "faces": [{"box": [box.x, box.y, box.width, box.height], "framing": how,
                                             **self.predict_faces([face])[0]}]}
        boxes = faces.reading_order(faces.detect_faces(image, detector))
        crops = [faces.training_crop(image, box, framing) for box in boxes]
        results = self.predict_faces(crops) if crops else []
        found = []
        for box, result in zip(boxes, results):
            full = box.scaled(sx, sy)
            face = {"box": [full.x, full.y, full.width, full.height], "framing": "detected", **result}
            if box.score is not None:
                face["detector_score"] = round(box.score, 4)
            found.append(face)
        return {"file": name, "faces": found}

    def predict_files(self, paths, aligned: bool = True, detector: str = DETECTORS[0], workers: int | None = None):
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
        # A crop searched for its face by a detector that runs in several threads at once is searched in
        # the decoding threads, beside the network (``faces.THREADED_DETECTORS``).
        search_early = self.face_search is not None and detector in faces.THREADED_DETECTORS

        def prepare(path):
            try:
                image = load_rgb(path, max_side=PHOTO_SIDE)
                reduced = max(image.shape[:2]) >= PHOTO_SIDE  # maybe decoded at a reduced scale
                width, height = image_size(path) if reduced else (image.shape[1], image.shape[0])
                scale = (width / image.shape[1], height / image.shape[0])  # decoded pixels -> the file's
                return (self.aligned_faces([image], detector)[0] if search_early else image), scale, None
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
                framed = ([prepared[i][0] for i in good] if search_early
                          else self.aligned_faces([prepared[i][0] for i in good], detector))
                results = self.face_results(self.raw_outputs([face for face, _, _ in framed])) if good else []
                by_index = {i: (result, how, box) for i, result, (_, how, box) in zip(good, results, framed)}
                for i, path in enumerate(chunk):
                    _, scale, error = prepared[i]
                    if error is not None:
                        yield path, None, error
                    else:
                        result, how, box = by_index[i]
                        box = faces.FaceBox(*box).scaled(*scale)
                        yield path, {"file": path, "faces": [{"box": [box.x, box.y, box.width, box.height],
                                                              "framing": how, **result}]}, None
