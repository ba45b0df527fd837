"""Paper presets as data (DESIGN.md, "Paper presets"): one per source document in ``shared/seeds/``.

A preset says what a paper did (dataset, binning, image size, augmentation, builder and arguments,
optimizer and schedule, callbacks, epochs, batch size) and what it reported (``paper_numbers``, each
row citing its table or section), plus what this kit does where the paper is silent or its data is
absent here (``interpretation``). ``smoke`` holds the overrides of ``--smoke``; ``apply_overrides``
applies ``--set key=value`` pairs (dotted keys reach into dict fields, values parsed as Python
literals where they parse).
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Columns of a ``paper_numbers`` row.
PAPER_NUMBER_KEYS = ("model", "task", "metric", "value", "source")


@dataclass(frozen=True)
class Preset:
    """Everything one paper's experiment needs; see the module docstring."""

    name: str
    seed_document: str
    title: str
    paper_datasets: tuple[str, ...]
    dataset: str
    dataset_note: str
    model: str
    model_args: dict
    # Each entry is the outputs of one trained model: ("gender",) and ("age_group",) train two
    # single-task networks; ("gender", "age_group", "age") trains one multi-output network.
    task_groups: tuple[tuple[str, ...], ...]
    binning: str | None
    image_size: int
    augment: str
    split: dict
    optimizer: dict
    callbacks: dict
    epochs: int
    batch_size: int
    # Per-output loss weights of multi-output networks: the age MSE (hundreds of years^2) would
    # otherwise drown the two cross-entropies.
    loss_weights: dict = field(default_factory=dict)
    # "oversample" also scores the main model with 10-crop over-sampling (paper 000 sec. VII).
    tta: str = "center"
    comparisons: tuple[str, ...] = ()
    # "adience" also scores the trained networks on Adience's five official folds (experiments/folds.py).
    fold_protocol: str | None = None
    max_train_images: int | None = None
    paper_numbers: tuple[dict, ...] = ()
    interpretation: tuple[tuple[str, str], ...] = ()
    smoke: dict = field(default_factory=dict)

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every output this preset evaluates, in order, without repeats."""
        return tuple(dict.fromkeys(t for group in self.task_groups for t in group))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _numbers(model: str, task: str, source: str, **metrics: float) -> tuple[dict, ...]:
    return tuple({"model": model, "task": task, "metric": m, "value": v, "source": source} for m, v in metrics.items())


_TABLE_I = "paper 000 Table I (task not named in the paper)"
_CALLBACKS_000 = {
    # Sec. V: the best validation loss is kept, the learning rate is lowered after 10 epochs without
    # improvement, training ends at epoch 150.
    "early_stopping": {"monitor": "val_loss", "patience": 20},
    "reduce_lr": {"monitor": "val_loss", "patience": 10, "factor": 0.1},
}

PRESETS: dict[str, Preset] = {}


def _add(preset: Preset) -> None:
    PRESETS[preset.name] = preset


_add(Preset(
    name="cnn_lstm",
    seed_document="000_2d9ca6d609785c90",
    title="Accurate Age and Gender Prediction Using Hybrid CNN-LSTM Model from Face Images",
    paper_datasets=("Adience", "IMDB"),
    dataset="utkface",
    dataset_note=(
        "Adience images are absent here (741 faces of one fold-0 user): trained and tested on UTKFace with "
        "ages binned into Adience's 8 groups; the Adience 5-fold protocol runs on the faces that exist."
    ),
    model="cnn_lstm",
    model_args={},
    task_groups=(("gender",), ("age_group",)),
    binning="adience8",
    fold_protocol="adience",
    image_size=227,
    augment="cnn_lstm",
    split={"kind": "committed"},
    # Sec. VII: SGD, batch 50, learning rate 1e-3 dropping to 1e-4 after 10k iterations.
    optimizer={"name": "sgd", "learning_rate": 1e-3, "momentum": 0.9, "step_at_iteration": 10000, "step_to": 1e-4},
    callbacks=_CALLBACKS_000,
    epochs=150,
    batch_size=50,
    comparisons=("levi_hassner", "svm", "kmeans"),
    tta="oversample",
    paper_numbers=(
        _numbers("cnn_lstm", "gender", _TABLE_I, accuracy=0.9814, precision=0.9641, recall=0.9547, f1=0.9514)
        + _numbers("levi_hassner", "gender", _TABLE_I, accuracy=0.9537, precision=0.9425, recall=0.9207, f1=0.9277)
        + _numbers("svm", "gender", _TABLE_I, accuracy=0.9246, precision=0.9011, recall=0.9057, f1=0.9019)
        + _numbers("kmeans", "gender", _TABLE_I, accuracy=0.9345, precision=0.9132, recall=0.9131, f1=0.9081)
    ),
    interpretation=(
        ("Table I does not say whether it scores age or gender.",
         "Compared with the gender task (two classes, where ~98% is conceivable); age-group numbers are reported beside it."),
        ("'DCNN' in Table I is not specified.",
         "The sec. VI network (Levi-Hassner: 96x7x7, 256x5x5, 384x3x3, FC 512 x2, LRN) is the DCNN."),
        ("Sec. V mixes 1-D convolutions and LSTMs with image input; kernel counts 48, 32, 16.",
         "The model builder turns the feature map into a sequence of rows (see agegender_tf.models.cnn_lstm)."),
        ("Sec. V uses an MAE loss and 'one to six' outputs (copied from load forecasting).",
         "Softmax + cross-entropy per task, as sec. VI-VII describe for classification."),
        ("Sec. IV balances classes offline with an extra dataset; sec. VII uses 227 random crops + mirror, SGD, batch 50.",
         "Random crops with mirroring online; SGD 1e-3 -> 1e-4 after 10k iterations; centre crop at test, and "
         "10-crop over-sampling reported beside it as cnn_lstm+oversample."),
        ("Sec. V also lowers the rate after 10 epochs without improvement, which conflicts with the step schedule.",
         "The step schedule of sec. VII owns the learning rate; ReduceLROnPlateau is not added."),
        ("Dataset: Adience (+IMDB); only 741 Adience faces exist here.",
         "UTKFace binned to Adience's 8 groups (labelled as such); Adience 5-fold mean +- std on the faces present."),
    ),
    smoke={"image_size": 64, "epochs": 2, "batch_size": 16, "max_train_images": 240},
))

_add(Preset(
    name="cnn_rnn_ensemble",
    seed_document="001_21a2552084d7feab",
    title="A Hybrid Models For Gender Classification And Age Prediction Based On Deep Learning Techniques",
    paper_datasets=("UTKFace", "IMDB-WIKI"),
    dataset="utkface",
    dataset_note="UTKFace as in the paper's Table 1; IMDB-WIKI (Table 2) is not available here.",
    model="cnn_rnn_ensemble",
    model_args={},
    task_groups=(("gender", "age_group", "age"),),
    binning="decades",
    image_size=128,
    augment="cnn_rnn_ensemble",
    split={"kind": "committed"},
    optimizer={"name": "adam", "learning_rate": 1e-3},
    callbacks={"early_stopping": {"monitor": "val_loss", "patience": 5},
               "reduce_lr": {"monitor": "val_loss", "patience": 3, "factor": 0.5}},
    epochs=30,
    batch_size=32,
    comparisons=("members",),
    loss_weights={"gender": 1.0, "age_group": 1.0, "age": 0.01},
    paper_numbers=(
        _numbers("cnn_rnn_ensemble", "age", "paper 001 Table 1 (UTKFace)", mae=4.25)
        + _numbers("cnn_rnn_ensemble", "age_group", "paper 001 Table 1 (UTKFace)", accuracy=0.744)
        + _numbers("cnn_rnn_ensemble", "gender", "paper 001 Table 1 (UTKFace)", accuracy=0.953, f1=0.95,
                   precision=0.96, recall=0.94)
    ),
    interpretation=(
        ("The CNN backbone, RNN type (LSTM or GRU), members of the ensemble and how they are combined are not given.",
         "Members are CNN+LSTM and CNN+GRU hybrids from the model registry; the ensemble averages their outputs."),
        ("'Accuracy (Age Prediction)' 74.4% has no stated age groups.",
         "Ten-year groups (decades) as the age classification head; exact age by regression (MSE loss)."),
        ("No optimizer, epochs or image size.", "Adam 1e-3, 128x128 rescaled to [0, 1], early stopping on val_loss."),
        ("Train/test split unstated.", "The committed UTKFace train/val/test split."),
    ),
    smoke={"image_size": 48, "epochs": 2, "batch_size": 16, "max_train_images": 240,
           "model_args": {"num_members": 2, "conv_filters": (8, 16, 32), "rnn_units": 16, "dense_units": 16}},
))

_add(Preset(
    name="adience_cnn",
    seed_document="002_b85b1a003b9b5354",
    title="Image-Based Age and Gender Classification with Convolutional Neural Networks (CNN)",
    paper_datasets=("Adience",),
    dataset="utkface",
    dataset_note=(
        "Adience images are absent here: trained and tested on UTKFace binned into Adience's 8 groups; the "
        "5-fold protocol machinery runs on the 741 Adience faces present."
    ),
    model="levi_hassner",
    model_args={},
    task_groups=(("gender",), ("age_group",)),
    binning="adience8",
    fold_protocol="adience",
    image_size=227,
    augment="adience_cnn",
    split={"kind": "committed"},
    optimizer={"name": "adam", "learning_rate": 1e-3},
    callbacks={"early_stopping": {"monitor": "val_loss", "patience": 5}},
    epochs=40,
    batch_size=256,
    paper_numbers=(
        _numbers("levi_hassner", "age_group", "paper 002 sec. 5.1 (validation)", accuracy=0.8351)
        + _numbers("levi_hassner", "gender", "paper 002 sec. 5.1 (validation)", accuracy=0.7951)
    ),
    interpretation=(
        ("The architecture is only described as 'CNN ... three fully connected layers' with Levi-Hassner's text.",
         "The Levi-Hassner network of the model registry."),
        ("Gender is trained with 3 classes (female, male, undefined) and a sigmoid.",
         "Two classes with softmax; undefined-gender rows are dropped and counted."),
        ("Batch size 256/512 and 20/40 epochs are given as 'variations'; no optimizer.",
         "Second variation: 40 epochs, batch 256 (512 does not fit CPU memory at 227 px); Adam 1e-3."),
        ("Reported numbers are validation accuracies on Adience.", "Compared with our test accuracy on UTKFace."),
    ),
    smoke={"image_size": 64, "epochs": 2, "batch_size": 16, "max_train_images": 240},
))

_add(Preset(
    name="transfer_vgg16_resnet50",
    seed_document="003_49ef1d907f51e97c",
    title="Age and Gender Classification Application (VGG16 / ResNet50 transfer learning)",
    paper_datasets=("CelebA gender 200k", "UTKFace", "RL-VAP faces"),
    dataset="utkface",
    dataset_note="CelebA (gender) is absent here: both tasks run on UTKFace, age in 4 life stages.",
    model="transfer",
    model_args={"backbone": "resnet50", "weights": None},
    task_groups=(("gender",), ("age_group",)),
    binning="life_stages",
    image_size=224,
    augment="transfer_vgg16_resnet50",
    split={"kind": "holdout", "test_size": 0.3},
    optimizer={"name": "adam", "learning_rate": 1e-3},
    callbacks={"early_stopping": {"monitor": "val_loss", "patience": 3, "restore_best_weights": True}},
    epochs=100,
    batch_size=16,
    comparisons=("vgg16",),
    paper_numbers=(
        _numbers("resnet50", "gender", "paper 003 Fig. 4.17", accuracy=0.95, precision=0.95, recall=0.95, f1=0.95)
        + _numbers("resnet50", "age_group", "paper 003 Fig. 4.22", accuracy=0.81, precision=0.83, recall=0.80, f1=0.80)
        + _numbers("vgg16", "gender", "paper 003 Fig. 4.7", accuracy=0.94, precision=0.94, recall=0.94, f1=0.94)
        + _numbers("vgg16", "age_group", "paper 003 Fig. 4.12", accuracy=0.73, precision=0.69, recall=0.69, f1=0.69)
    ),
    interpretation=(
        ("ImageNet weights are required by the paper but cannot be downloaded on these machines.",
         "weights=None by default (random frozen backbone: far below the paper); pass --set model_args.weights=PATH."),
        ("Gender uses CelebA's Train/Validate/Test folders (absent here).", "UTKFace gender on the same 70:30 split."),
        ("Age validation images use rescale 1/255 while training uses preprocess_input.",
         "The backbone's preprocess_input for both (the paper's mismatch is a bug)."),
        ("Patience 2 (gender) and 3 (age).", "Patience 3 for both; the best val_loss weights are restored."),
        ("Senior adults were topped up from another dataset.", "Not done: UTKFace only, imbalance reported."),
    ),
    smoke={"image_size": 32, "epochs": 1, "batch_size": 16, "max_train_images": 200},
))

_add(Preset(
    name="gra_net",
    seed_document="004_f2c8ad08a614c73c",
    title="GRA_Net: A Deep Learning Model for Classification of Age and Gender from Facial Images",
    paper_datasets=("FG-NET", "Wikipedia", "AFAD", "UTKFace", "AdienceDB"),
    dataset="utkface",
    dataset_note="UTKFace (one of the paper's five datasets).",
    model="gra_net",
    model_args={},
    task_groups=(("gender", "age_group", "age"),),
    binning="decades",
    image_size=32,
    augment="gra_net",
    split={"kind": "committed"},
    optimizer={"name": "nadam", "learning_rate": 1e-3},
    callbacks={"early_stopping": {"monitor": "val_loss", "patience": 5},
               "reduce_lr": {"monitor": "val_loss", "patience": 3, "factor": 0.5}},
    epochs=50,
    batch_size=64,
    loss_weights={"gender": 1.0, "age_group": 1.0, "age": 0.01},
    paper_numbers=(),
    interpretation=(
        ("The seminar report gives no result table of its own (only other papers' numbers).",
         "No paper numbers are compared; the kit's numbers are reported alone."),
        ("Label division (Fig. 8) is not described in text.",
         "Age as a decade class (softmax) plus exact age regression (MSE), one multi-output network."),
        ("Epochs, batch size and split are not given.", "50 epochs with early stopping, batch 64, committed split."),
        ("Gender and age are separate models in the paper.", "One network with three heads (gender, age_group, age)."),
        ("The full network (33M parameters) is far too slow on a 2-core CPU.",
         "Smoke runs and the committed results use narrower stages (stated in each report's model_args)."),
    ),
    smoke={"image_size": 32, "epochs": 2, "batch_size": 32, "max_train_images": 320,
           "model_args": {"stem_filters": 8, "stage_filters": (16, 32, 64), "final_filters": 64, "final_units": 1}},
))


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


def smoke_version(preset: Preset) -> Preset:
    """The preset with its ``smoke`` overrides applied (few hundred images, small images, 1-2 epochs)."""
    values = dict(preset.smoke)
    if "model_args" in values:
        values["model_args"] = {**preset.model_args, **values["model_args"]}
    return dataclasses.replace(preset, **values)


def parse_value(text: str) -> Any:
    """A Python literal where ``text`` is one (``3``, ``1e-4``, ``True``, ``None``, ``[1, 2]``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(preset: Preset, assignments: list[str] | tuple[str, ...]) -> Preset:
    """Apply ``key=value`` strings; ``optimizer.learning_rate=1e-4`` reaches into a dict field."""
    fields = {f.name for f in dataclasses.fields(Preset)}
    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise ValueError(f"override {assignment!r} is not key=value")
        head, *rest = key.split(".")
        if head not in fields:
            raise KeyError(f"override {assignment!r}: preset has no field {head!r}; fields: {sorted(fields)}")
        value = parse_value(text)
        if not rest:
            changes[head] = value
            continue
        current = changes.get(head, getattr(preset, head))
        if not isinstance(current, dict):
            raise ValueError(f"override {assignment!r}: field {head!r} is not a dict")
        updated = _set_nested(dict(current), rest, value)
        changes[head] = updated
    return dataclasses.replace(preset, **changes)


def _set_nested(target: dict, keys: list[str], value: Any) -> dict:
    key, *rest = keys
    if rest:
        inner = target.get(key, {})
        if not isinstance(inner, dict):
            raise ValueError(f"cannot set {'.'.join(keys)}: {key!r} is not a dict")
        target[key] = _set_nested(dict(inner), rest, value)
    else:
        target[key] = value
    return target


def listing() -> list[dict]:
    """One row per preset for ``agegender papers``."""
    return [
        {"name": p.name, "seed_document": p.seed_document, "paper_datasets": list(p.paper_datasets),
         "dataset_used": p.dataset, "model": p.model, "tasks": list(p.tasks), "title": p.title}
        for p in PRESETS.values()
    ]
