"""What a trained network carries: its model card (DESIGN.md, "Using a trained model").

``model_card.json`` beside each network's ``best.keras`` (written by every ``agegender run``, read by
``agegender_tf.serving``) holds what prediction needs: builder and arguments, input and load size,
value mapping, the labels of each head and the binning, how training faces are framed around a
detector's box, and what the model was trained on. Nothing is guessed from a file name.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from agegender_tf.errors import UsageError
from agegender_tf.paths import jsonable, write_text_atomic

CARD_NAME = "model_card.json"
MODEL_NAME = "best.keras"
CARD_VERSION = 1


@dataclass(frozen=True)
class Framing:
    """Where a training face sits around a detector's box: the square crop has side
    ``max(w, h) * (1 + 2 * margin)`` and its centre lies ``shift * max(w, h)`` below the box centre."""

    margin: float
    shift: float = 0.0
    faces: int = 0  # how many training faces the median was taken over

    def to_dict(self) -> dict:
        return {"margin": self.margin, "shift": self.shift, "faces": self.faces}


# Medians over the first 200 faces (sorted by file name) of each dataset, measured with
# ``python -m agegender_tf.bench framing --root $AGEGENDER_DATA/<dataset> --faces 200`` (detection on
# the padded face, boxes not clipped). tests/serving/test_faces.py re-measures a sample against these values.
TRAINING_FRAMING: dict[str, dict[str, Framing]] = {
    "utkface": {"haar": Framing(-0.019, 0.074, 194), "mtcnn": Framing(-0.061, 0.088, 199),
                "blazeface": Framing(0.046, -0.013, 199)},
}


class ModelCardError(UsageError):
    """A model or its card is missing, unreadable or incomplete (one line naming the file)."""


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
    framing = TRAINING_FRAMING.get(preset.dataset, {})
    return jsonable({
        "card_version": CARD_VERSION,
        "model_file": MODEL_NAME,
        "model_name": model_name,
        "preset": preset.name,
        "paper": preset.paper_label,
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
            "face_crop": preset.face_crop,
        },
        "kit_version": agegender_tf.__version__,
    })


def write_model_card(run_dir, preset, model_name: str, builder: str, builder_args: dict, tasks, spec,
                     train_faces: int | None = None) -> Path:
    """Write ``run_dir/model_card.json`` (``make_model_card``) beside the network's ``best.keras``."""
    card = make_model_card(preset, model_name, builder, builder_args, tasks, spec, train_faces)
    return write_text_atomic(Path(run_dir) / CARD_NAME, json.dumps(card, indent=2) + "\n")


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



def keras_archive_problem(path) -> str | None:
    """Why ``path`` is not a complete ``.keras`` archive (a zip: cut short, it has no central directory;
    a member fails its CRC; no ``config.json``), or None when it is whole."""
    path = Path(path)
    if not path.is_file():
        return "file not found"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                return f"member {bad} fails its checksum"
            if "config.json" not in archive.namelist():
                return "no config.json inside"
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"not a complete .keras archive: {error}"
    return None
