"""Paper presets as data (DESIGN.md, "Paper presets"): one per source document in ``shared/seeds/``.

A preset says what a paper did (dataset, binning, image size, augmentation, builder and arguments,
optimizer and schedule, callbacks, epochs, batch size) and what it reported (``paper_numbers``, each
row citing its table or section), plus what this kit does where the paper is silent or its data is
absent here (``interpretation``). ``smoke`` holds the overrides of ``--smoke``; ``profiles`` holds
named override sets for a kind of machine (``--profile cpu``: the whole training split at a size a
CPU trains in hours); ``apply_overrides`` applies ``--set key=value`` pairs (dotted keys reach into
dict fields, values parsed as Python literals where they parse). ``resolve`` applies them in that
order: profile, then smoke (whose sizes win), then ``--set``.

Every override (a profile's or ``--set``'s) is checked against ``FIELD_RULES`` (type and range of
each settable field) and refused with one line (``UsageError``) before anything is written; the
fields describing the paper itself (title, paper numbers, ...) cannot be set. ``model_args`` keys
are checked against the registered builder's arguments by ``check_model_args``, which imports
TensorFlow and so runs at the start of a run rather than when the command line is read.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from agegender_tf.errors import UnknownNameError, UsageError

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
    # "balanced": weight each class of a one-output classification network by n / (k * n_class) in the
    # training loss (paper 000 sec. IV balances its classes before training; ``targets.class_weights``).
    class_weight: str | None = None
    # "oversample" also scores the main model with 10-crop over-sampling (paper 000 sec. VII).
    tta: str = "center"
    comparisons: tuple[str, ...] = ()
    # "adience" also scores the trained networks on Adience's five official folds (experiments/folds.py).
    fold_protocol: str | None = None
    max_train_images: int | None = None
    # Keras dtype policy the networks are built under (``experiments.train.dtype_policy``): None or
    # "float32" (the papers), "mixed_bfloat16" (CPUs with AVX-512 BF16, TPUs), "mixed_float16" (GPUs).
    precision: str | None = None
    # What an ensemble's training loss is computed on: None, the averaged output (one network, trained
    # jointly); "members", each member's own outputs, averaged only at inference (``cnn_rnn.member_training_model``).
    ensemble_loss: str | None = None
    paper_numbers: tuple[dict, ...] = ()
    interpretation: tuple[tuple[str, str], ...] = ()
    smoke: dict = field(default_factory=dict)
    # Named override sets (``--profile NAME``), e.g. {"cpu": {"image_size": 64, "max_train_images": None}}.
    profiles: dict = field(default_factory=dict)
    # The profile this preset was resolved with (None: none); ``report.json`` records it as protocol.profile.
    profile: str | None = None

    @property
    def dtype_policy(self) -> str:
        """The Keras dtype policy this preset's networks train in (``precision``, float32 when unset)."""
        return self.precision or "float32"

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
         "Compared with the gender task (two classes, where ~98% is conceivable); "
         "age-group numbers are reported beside it."),
        ("'DCNN' in Table I is not specified.",
         "The sec. VI network (Levi-Hassner: 96x7x7, 256x5x5, 384x3x3, FC 512 x2, LRN) is the DCNN."),
        ("Sec. V mixes 1-D convolutions and LSTMs with image input; kernel counts 48, 32, 16.",
         "The model builder turns the feature map into a sequence of rows (see agegender_tf.models.cnn_lstm)."),
        ("Sec. V uses an MAE loss and 'one to six' outputs (copied from load forecasting).",
         "Softmax + cross-entropy per task, as sec. VI-VII describe for classification."),
        ("Sec. IV balances classes offline with an extra dataset; "
         "sec. VII uses 227 random crops + mirror, SGD, batch 50.",
         "Random crops with mirroring online; SGD 1e-3 -> 1e-4 after 10k iterations; centre crop at test, and "
         "10-crop over-sampling reported beside it as cnn_lstm+oversample."),
        ("Sec. V also lowers the rate after 10 epochs without improvement, which conflicts with the step schedule.",
         "The step schedule of sec. VII owns the learning rate; ReduceLROnPlateau is not added."),
        ("Dataset: Adience (+IMDB); only 741 Adience faces exist here.",
         "UTKFace binned to Adience's 8 groups (labelled as such); Adience 5-fold mean +- std on the faces present."),
        ("Table I's SVM and K-Means: features not given.",
         "Standardised 32x32 pixels on their first 100 principal components (eigenfaces); K-Means maps each of "
         "its 4 x classes clusters to the cluster's majority label."),
        ("Sec. VII's SGD 1e-3 from Gaussian(0.01) weights needs far more iterations than a CPU hour.",
         "--profile cpu keeps the recipe at 64 px for at most 40 epochs (13k iterations: the 10k-iteration step "
         "to 1e-4 is inside); --profile cpu_adam is the labelled variant with one change, Adam 1e-3 (then sec. V's "
         "plateau rule owns the rate). The age network needs the paper's long patience: with Adam it stays at the "
         "majority class for 7 epochs before it starts to learn (a trial with early stopping after 5 ended there)."),
        ("Sec. V names its dropout layers but not their rates.",
         "0.5 (sec. VI's rate) by default. With it the Adam variant's age network rarely predicts the small groups "
         "(macro F1 0.22), so --profile cpu_adam_dropout02 lowers both rates to 0.2 (second change). Weighting "
         "the classes by n / (k n_c) as well (--set class_weight=balanced, the online form of sec. IV's balancing; "
         "age network alone) raised macro F1 to 0.39 but lowered accuracy to 0.37, under the majority class + 0.05."),
    ),
    # CPU: 64 px, the whole train split. "cpu" keeps the paper's SGD; "cpu_adam" changes only the optimizer;
    # "cpu_adam_dropout02" also lowers the two dropout rates (not given by the paper) from 0.5 to 0.2.
    profiles={"cpu": {"image_size": 64, "max_train_images": None, "epochs": 40},
              "cpu_adam": {"image_size": 64, "max_train_images": None, "epochs": 40,
                           "optimizer": {"name": "adam", "learning_rate": 1e-3}},
              "cpu_adam_dropout02": {"image_size": 64, "max_train_images": None, "epochs": 40,
                                     "optimizer": {"name": "adam", "learning_rate": 1e-3},
                                     "model_args": {"feature_dropout": 0.2, "sequence_dropout": 0.2}}},
    smoke={"image_size": 64, "epochs": 2, "batch_size": 16, "max_train_images": 240},
))

# Paper 001's ensemble, --profile cpu_wide (the comment in its preset says why each value).
_ENSEMBLE_CPU_WIDE = {"image_size": 64, "max_train_images": None, "batch_size": 64, "epochs": 36,
                      "model_args": {"num_members": 2, "conv_filters": (32, 64, 128, 256), "rnn_units": 128,
                                     "dense_units": 128},
                      "loss_weights": {"gender": 2.0, "age_group": 1.0, "age": 0.01},
                      "precision": "mixed_bfloat16",
                      "callbacks": {"early_stopping": {"monitor": "val_loss", "patience": 4},
                                    "reduce_lr": {"monitor": "val_loss", "patience": 2, "factor": 0.5}}}

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
        ("The paper's scale (128 px, three members) takes days on a 2-core CPU.",
         "--profile cpu: 64 px, the two hybrids the paper names (CNN+LSTM, CNN+GRU; 0.93M parameters), batch 64, "
         "30 epochs at most; trained jointly, so a member alone is not calibrated (its age regression in particular)."),
        ("At --profile cpu the ensemble fits its training faces no better than its validation faces (gender 0.90 "
         "on both), short of the 0.92 the kit's bundled model aims at.",
         "--profile cpu_wide: 128-unit LSTM/GRU and dense layers (more room after the 4x4x256 feature map), the "
         "gender loss weighted 2 against 1 for age groups and 0.01 for years, bfloat16 compute, 36 epochs at most."),
        ("Whether the input size, not the network's width, limits gender at --profile cpu_wide (its training "
         "gender accuracy ends above the validation one).",
         "--profile cpu_wide --set image_size=80: the same network on 80x80 faces (1.56x the computation per "
         "face), all else equal; results/cnn_rnn_ensemble_wide_80px."),
        ("Whether the ensemble's members are trained together on the averaged output or each on its own (the paper "
         "says only that the ensemble averages them). Trained on the average alone, members co-adapt and lose the "
         "diversity averaging relies on (Jeffares et al., NeurIPS 2023).",
         "--profile cpu_wide_members: the cpu_wide recipe with ensemble_loss='members': each member's heads carry "
         "its own losses, the average none; the saved model averages the members as before; "
         "results/cnn_rnn_ensemble_wide_members."),
    ),
    # CPU: 64 px, the two hybrids the paper names (CNN+LSTM, CNN+GRU), batch 64, patience sized to an hour.
    # "cpu_wide": the same members with 128-unit RNN and dense layers (the paper states no sizes), the gender
    # loss weighted 2, bfloat16 compute (1.15x the images per second here) and 36 epochs at most.
    profiles={"cpu": {"image_size": 64, "max_train_images": None, "batch_size": 64, "epochs": 30,
                      "model_args": {"num_members": 2, "conv_filters": (32, 64, 128, 256), "rnn_units": 64,
                                     "dense_units": 64},
                      "callbacks": {"early_stopping": {"monitor": "val_loss", "patience": 4},
                                    "reduce_lr": {"monitor": "val_loss", "patience": 2, "factor": 0.5}}},
              "cpu_wide": _ENSEMBLE_CPU_WIDE,
              "cpu_wide_members": {**_ENSEMBLE_CPU_WIDE, "ensemble_loss": "members"}},
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
    # CPU: 64 px, the whole train split, bfloat16 compute (docs/performance.md: 1.44x less CPU per image on
    # AVX-512 BF16; the full run's test accuracy matched float32's, which --set precision=float32 repeats).
    profiles={"cpu": {"image_size": 64, "max_train_images": None, "precision": "mixed_bfloat16"}},
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
        ("Frozen ImageNet backbones at 224 px (sec. 4.2) cannot run here: no weights, a 2-core CPU.",
         "--profile cpu keeps the frozen backbone at 64 px (it needs a local weights file to mean anything); "
         "two labelled variants train the backbone whole from random weights (BatchNorm included) at 32 px, "
         "batch 64, at most 30 epochs with the paper's early stopping and the paper's Adam 1e-3 (ResNet50's "
         "validation gender accuracy reached 0.70 after about 250 steps at 1e-3 on 4,000 faces, and after about "
         "2,500 at 1e-4 on all of them): --profile cpu_scratch is ResNet50, --profile cpu_scratch_vgg16 is VGG16."),
        ("VGG16 from scratch with keras.applications' glorot_uniform kernels stayed at chance on all the "
         "training faces (4 epochs, 932 steps: validation gender accuracy 0.5225, the majority class).",
         "cpu_scratch_vgg16 draws VGG16's convolution kernels from he_normal (He et al. 2015, the initialisation "
         "for deep plain ReLU stacks); on 4,000 faces it left chance in its second epoch (0.62, then 0.67)."),
    ),
    # CPU: "cpu" is the paper's frozen backbone at 64 px (ImageNet weights from a local file:
    # --set model_args.weights=PATH); "cpu_scratch" (ResNet50) and "cpu_scratch_vgg16" train the whole
    # backbone from scratch at 32 px, one backbone per profile (each a network pair of about an hour here).
    profiles={"cpu": {"image_size": 64, "max_train_images": None},
              "cpu_scratch": {"image_size": 32, "max_train_images": None, "batch_size": 64, "epochs": 30,
                              "model_args": {"backbone": "resnet50", "weights": None, "unfreeze_top": -1},
                              "comparisons": ()},
              "cpu_scratch_vgg16": {"image_size": 32, "max_train_images": None, "batch_size": 64, "epochs": 30,
                                    "model_args": {"backbone": "vgg16", "weights": None, "unfreeze_top": -1,
                                                   "kernel_initializer": "he_normal"},
                                    "comparisons": ()}},
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
        ("The full network (30M parameters at 32x32) is far too slow on a 2-core CPU.",
         "--profile cpu: the paper's 32x32 input and every module of the network, at narrower stages (stem 16, "
         "stages 32/64/128, final 256 with one unit: 0.34M parameters); the default keeps the full widths."),
    ),
    # CPU: the paper's 32 px, the whole train split, a narrower network of the same structure.
    profiles={"cpu": {"image_size": 32, "max_train_images": None,
                      "model_args": {"stem_filters": 16, "stage_filters": (32, 64, 128), "final_filters": 256,
                                     "final_units": 1}}},
    smoke={"image_size": 32, "epochs": 2, "batch_size": 32, "max_train_images": 320,
           "model_args": {"stem_filters": 8, "stage_filters": (16, 32, 64), "final_filters": 64, "final_units": 1}},
))


def _suggest(name: str, choices) -> str:
    """' (did you mean X?)' for names starting with ``name`` or close to it among ``choices``, else ''."""
    choices = [str(c) for c in choices]
    starting = [c for c in choices if c.startswith(str(name))]
    close = list(dict.fromkeys(starting + difflib.get_close_matches(str(name), choices, n=3, cutoff=0.5)))[:3]
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError(f"unknown preset {name!r}{_suggest(name, PRESETS)}; the presets are "
                               f"{', '.join(PRESETS)} (agegender papers lists them)") from None


def smoke_version(preset: Preset) -> Preset:
    """The preset with its ``smoke`` overrides applied (few hundred images, small images, 1-2 epochs)."""
    values = dict(preset.smoke)
    if "model_args" in values:
        values["model_args"] = {**preset.model_args, **values["model_args"]}
    return dataclasses.replace(preset, **values)


def with_profile(preset: Preset, profile: str) -> Preset:
    """The preset with its profile ``profile`` applied (checked like ``--set``) and recorded in ``profile``."""
    if profile not in preset.profiles:
        known = ", ".join(preset.profiles) or "none"
        raise UnknownNameError(f"preset {preset.name} has no profile {profile!r}{_suggest(profile, preset.profiles)}; "
                               f"its profiles: {known}")
    values = dict(preset.profiles[profile])
    if "model_args" in values:
        values["model_args"] = {**preset.model_args, **values["model_args"]}
    for key, value in values.items():
        _check_field(key, value, f"profile {profile!r} of {preset.name}")
    return _check_consistent(dataclasses.replace(preset, **values, profile=profile), f"profile {profile!r}")


def resolve(name: str, *, smoke: bool = False, profile: str | None = None, overrides=()) -> Preset:
    """Preset ``name`` with its profile, then ``--smoke`` (whose sizes win), then ``--set`` applied."""
    preset = get_preset(name)
    if profile is not None:
        preset = with_profile(preset, profile)
    if smoke:
        preset = smoke_version(preset)
    return apply_overrides(preset, list(overrides or ()))


def parse_value(text: str) -> Any:
    """A Python literal where ``text`` is one (``3``, ``1e-4``, ``True``, ``None``, ``[1, 2]``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


# ------------------------------------------------------------------------------ the override schema
# A rule takes a value and returns what is wrong with it ("must be ...") or None; a dict rule's
# problem names the key path and the value itself (".learning_rate must be ..., got 0").
Rule = Callable[[Any], "str | None"]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def integer(low: int, high: int | None = None, none: bool = False) -> Rule:
    span = f"from {low} to {high}" if high is not None else f">= {low}"
    wanted = f"an integer {span}" + (" or None" if none else "")

    def rule(value):
        if value is None and none:
            return None
        if not _is_int(value) or value < low or (high is not None and value > high):
            return f"must be {wanted}"
        return None

    return rule


def number(low: float = 0.0, high: float | None = None, low_open: bool = True, high_open: bool = False) -> Rule:
    if high is None:
        wanted = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        wanted = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def rule(value):
        ok = _is_number(value) and (value > low if low_open else value >= low)
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        return None if ok else f"must be {wanted}"

    return rule


def choice(*options) -> Rule:
    def rule(value):
        return None if value in options else f"must be one of {', '.join(map(repr, options))}"

    return rule


def text() -> Rule:
    return lambda value: None if isinstance(value, str) and value else "must be a non-empty string"


def flag() -> Rule:
    return lambda value: None if isinstance(value, bool) else "must be True or False"


def anything() -> Rule:
    return lambda value: None


def mapping(keys: dict[str, Rule] | None = None, required: tuple[str, ...] = ()) -> Rule:
    """A dict whose keys are among ``keys`` (any keys when None), each value passing its rule."""

    def rule(value):
        if not isinstance(value, dict):
            return "must be a dict"
        for key in required:
            if key not in value:
                return f".{key} is required"
        for key, inner in value.items():
            if keys is None:
                continue
            if key not in keys:
                return f".{key}: no such key{_suggest(key, keys)}; the keys are {', '.join(keys)}"
            problem = keys[key](inner)
            if problem:
                return f".{key}{problem}" if problem.startswith(".") else f".{key} {problem}, got {inner!r}"
        return None

    return rule


def sequence_of(allowed: tuple[str, ...], nested: bool = False) -> Rule:
    """A list/tuple of names from ``allowed`` (of such lists when ``nested``)."""

    def names(value) -> bool:
        return isinstance(value, (list, tuple)) and all(v in allowed for v in value)

    def rule(value):
        ok = isinstance(value, (list, tuple)) and (all(names(v) and v for v in value) if nested else names(value))
        return None if ok else f"must be a {'list of lists' if nested else 'list'} of {', '.join(allowed)}"

    return rule


TASKS = ("gender", "age_group", "age")
_MONITOR = text()
FIELD_RULES: dict[str, Rule] = {
    "image_size": integer(16, 1024),
    "epochs": integer(1),
    "batch_size": integer(1),
    "max_train_images": integer(1, none=True),
    "tta": choice("center", "oversample"),
    "comparisons": sequence_of(("levi_hassner", "vgg16", "svm", "kmeans", "members")),
    "task_groups": sequence_of(TASKS, nested=True),
    "loss_weights": mapping({task: number(0.0, low_open=False) for task in TASKS}),
    "model": text(),  # a registered builder: checked with model_args by check_model_args
    "model_args": mapping(),  # keys checked against the builder by check_model_args
    "optimizer": mapping({
        "name": choice("sgd", "adam", "nadam", "rmsprop"), "learning_rate": number(0.0),
        "momentum": number(0.0, 1.0, low_open=False, high_open=True), "nesterov": flag(),
        "step_at_iteration": integer(1), "step_to": number(0.0), "weight_decay": number(0.0, low_open=False),
        "clipnorm": number(0.0), "clipvalue": number(0.0), "beta_1": number(0.0, 1.0, high_open=True),
        "beta_2": number(0.0, 1.0, high_open=True), "epsilon": number(0.0),
    }, required=("name", "learning_rate")),
    "callbacks": mapping({
        "early_stopping": mapping({"monitor": _MONITOR, "patience": integer(0),
                                   "min_delta": number(0.0, low_open=False),
                                   "restore_best_weights": flag(), "start_from_epoch": integer(0),
                                   "mode": choice("auto", "min", "max")}),
        "reduce_lr": mapping({"monitor": _MONITOR, "patience": integer(0), "factor": number(0.0, 1.0, high_open=True),
                              "min_lr": number(0.0, low_open=False), "min_delta": number(0.0, low_open=False),
                              "cooldown": integer(0), "mode": choice("auto", "min", "max")}),
        "time_limit": mapping({"minutes": number(0.0)}, required=("minutes",)),
    }),
    "split": mapping({"kind": choice("committed", "holdout"), "test_size": number(0.0, 1.0, high_open=True),
                      "val_size": number(0.0, 1.0, high_open=True)}),
    "fold_protocol": choice(None, "adience"),
    "class_weight": choice(None, "balanced"),  # pipelines.targets.CLASS_WEIGHTINGS
    "precision": choice(None, "float32", "mixed_bfloat16", "mixed_float16"),
    "ensemble_loss": choice(None, "members"),
}


def _named_choices(field_name: str) -> tuple[str, ...]:
    """Names a field may take that live in other modules (none of them imports TensorFlow)."""
    if field_name == "augment":
        from agegender_tf.pipelines.spec import AUGMENT_PRESETS

        return tuple(AUGMENT_PRESETS)
    if field_name == "binning":
        from agegender_tf.binning import BINNINGS

        return tuple(BINNINGS)
    from agegender_tf.data.readers import available

    return tuple(available())


def _check_field(name: str, value: Any, source: str) -> None:
    """Raise ``UsageError`` naming ``source`` when ``value`` may not go into field ``name``."""
    settable = set(FIELD_RULES) | {"augment", "binning", "dataset"}
    if name not in settable:
        if name in {f.name for f in dataclasses.fields(Preset)}:
            hint = "use --profile" if name in ("profile", "profiles") else "it describes the paper"
            raise UsageError(f"{source}: field {name!r} cannot be set ({hint})")
        raise UsageError(f"{source}: a preset has no field {name!r}{_suggest(name, settable)}; "
                         f"settable fields: {', '.join(sorted(settable))}")
    if name in FIELD_RULES:
        problem = FIELD_RULES[name](value)
    else:
        options = _named_choices(name)
        allowed = options + ((None,) if name == "binning" else ())
        problem = None if value in allowed else f"must be one of {', '.join(options)}{_suggest(value, options)}"
    if problem:
        raise UsageError(f"{source}: {name}{problem}" if problem.startswith(".")
                         else f"{source}: {name} {problem}, got {value!r}")


def _check_consistent(preset: Preset, source: str) -> Preset:
    """Refuse combinations of fields that cannot run together."""
    from agegender_tf.pipelines.targets import CLASSIFICATION_TASKS

    if "age_group" in preset.tasks and not preset.binning:
        raise UsageError(f"{source}: the age_group task needs a binning (e.g. --set binning=decades)")
    several = [list(g) for g in preset.task_groups if len(g) != 1 or g[0] not in CLASSIFICATION_TASKS]
    if preset.class_weight and several:
        raise UsageError(f"{source}: class_weight={preset.class_weight!r} needs networks with one classification "
                         f"output; preset {preset.name} trains {several}")
    if preset.class_weight and preset.ensemble_loss:
        raise UsageError(f"{source}: class_weight and ensemble_loss cannot be combined (class weights need one "
                         "output; ensemble_loss='members' trains one per member)")
    return preset


def apply_overrides(preset: Preset, assignments: list[str] | tuple[str, ...]) -> Preset:
    """Apply ``key=value`` strings, each checked against ``FIELD_RULES``; ``optimizer.learning_rate=1e-4``
    reaches into a dict field. A bad key or value raises ``UsageError`` naming the assignment."""
    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value_text = assignment.partition("=")
        source = f"--set {assignment}"
        if not sep or not key:
            raise UsageError(f"{source}: an override is key=value, e.g. --set epochs=3")
        head, *rest = key.split(".")
        value = parse_value(value_text)
        if rest:
            current = changes.get(head, getattr(preset, head, None))
            if not isinstance(current, dict):
                if head in FIELD_RULES or hasattr(preset, head):
                    raise UsageError(f"{source}: field {head!r} is not a dict, so {key!r} cannot be set")
                _check_field(head, current, source)  # names the unknown field
            value = _set_nested(dict(current), rest, value, source)
        _check_field(head, value, source)
        changes[head] = value
    return _check_consistent(dataclasses.replace(preset, **changes), "--set " + " ".join(assignments))


def _set_nested(target: dict, keys: list[str], value: Any, source: str) -> dict:
    key, *rest = keys
    if rest:
        inner = target.get(key, {})
        if not isinstance(inner, dict):
            raise UsageError(f"{source}: {key!r} is not a dict")
        target[key] = _set_nested(dict(inner), rest, value, source)
    else:
        target[key] = value
    return target


# Builder arguments the runner sets itself (from image_size and the task groups).
RUN_SET_ARGUMENTS = ("input_shape", "task", "tasks", "num_classes", "num_age_groups")


def check_model_args(preset: Preset) -> None:
    """Refuse (``UsageError``) an unregistered ``model`` or a ``model_args`` key its builder does not take.

    Imports the model registry, hence TensorFlow: call it at the start of a run, before anything
    is written. An ensemble's builder also takes its members' arguments (the registry's
    ``defaults_from``); a builder taking any ``**kwargs`` without saying whose accepts every key.
    """
    from agegender_tf import models

    if preset.model not in models.available():
        raise UsageError(f"preset {preset.name}: unknown model {preset.model!r}"
                         f"{_suggest(preset.model, models.available())}"
                         f"; registered models: {', '.join(models.available())}")
    model = models.entry(preset.model)
    parameters = inspect.signature(model.builder).parameters
    takes_any = model.defaults_from is None and any(p.kind is inspect.Parameter.VAR_KEYWORD
                                                      for p in parameters.values())
    names = [n for n in model.arguments() if n not in RUN_SET_ARGUMENTS]
    for key in preset.model_args:
        if key in RUN_SET_ARGUMENTS:
            raise UsageError(f"model_args.{key} is set by the run itself (from image_size and task_groups); "
                             "set those fields instead")
        if key not in names and not takes_any:
            raise UsageError(f"model_args.{key}: builder {preset.model!r} takes no argument {key!r}"
                             f"{_suggest(key, names)}; it takes {', '.join(names)}")
    if preset.ensemble_loss and not model.is_ensemble:
        raise UsageError(f"ensemble_loss={preset.ensemble_loss!r} needs an ensemble; builder {preset.model!r} "
                         "builds one network")


def paper_label(preset: Preset) -> str:
    """``paper 000`` ... ``paper 004``: the source document's number (never "seed", the random argument)."""
    return f"paper {preset.seed_document[:3]}"


def listing() -> list[dict]:
    """One row per preset for ``agegender papers``."""
    return [
        {"name": p.name, "paper": paper_label(p), "seed_document": p.seed_document, "title": p.title,
         "paper_datasets": list(p.paper_datasets), "dataset_used": p.dataset, "model": p.model,
         "tasks": list(p.tasks), "profiles": {name: dict(values) for name, values in p.profiles.items()}}
        for p in PRESETS.values()
    ]
