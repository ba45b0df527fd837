"""The ``Preset`` type: everything one paper's experiment needs, as data (DESIGN.md, "Paper presets").

A preset says what a paper did (dataset, binning, image size, augmentation, builder and arguments,
optimizer and schedule, callbacks, epochs, batch size) and what it reported (``paper_numbers``, each
row citing its table or section), plus what this kit does where the paper is silent or its data is
absent here (``interpretation``). ``smoke`` holds the overrides of ``--smoke``; ``profiles`` holds
named override sets for a kind of machine (``--profile cpu``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

# Columns of a ``paper_numbers`` row.
PAPER_NUMBER_KEYS = ("model", "task", "metric", "value", "source")

# A ``comparisons`` entry: also score each member of an ensemble alone (paper 001 compares the
# ensemble with its members). The other entries name networks (a registered model, a variant of the
# preset's builder) or classical baselines (``agegender_tf.tasks.BASELINES``).
COMPARE_MEMBERS = "members"
# An ``ensemble_loss`` value: each member of an ensemble is trained on its own outputs' losses and
# the members are averaged only at inference (``cnn_rnn.member_training_model``). None (the default)
# trains the averaged output, one network.
PER_MEMBER_LOSS = "members"
ENSEMBLE_LOSSES = (None, PER_MEMBER_LOSS)


def paper_label_of(seed_document: str | None) -> str:
    """``paper 000`` ... ``paper 004`` from a source-document id (``000_...``); ``paper ?`` without one.

    Never "seed": that word is the random argument of a run."""
    document = str(seed_document or "")
    return f"paper {document[:3]}" if document[:3].isdigit() else "paper ?"


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
    # What an ensemble's training loss is computed on: one of ``ENSEMBLE_LOSSES`` (see PER_MEMBER_LOSS).
    ensemble_loss: str | None = None
    # Train as the predictor serves: {"detector": NAME, "scale_std": s, "shift_std": t, "rotation_std": r} cuts
    # every face from that detector's box (data_manifests/<dataset>/boxes_<detector>.csv) with the detector's
    # framing, jittered at training (``pipelines.framing.FaceCrop``). None: the dataset's own crops.
    face_crop: dict | None = None
    # How the tf.data pipeline holds the decoded faces (``pipelines.stream``): {"mode": "memory" | "stream" |
    # "auto", "shuffle_buffer": n}. None (and "auto"): in memory up to 50,000 faces, streamed from a pack on
    # disk above (IMDB-WIKI), with a shuffle buffer of the whole set in memory and of 10,000 faces streamed.
    pipeline: dict | None = None
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

    @property
    def paper_label(self) -> str:
        """``paper 000`` ... ``paper 004``: the source document's number (``paper_label_of``)."""
        return paper_label_of(self.seed_document)

    @property
    def scores_members(self) -> bool:
        """Whether each member of the ensemble is also scored alone (``COMPARE_MEMBERS``)."""
        return COMPARE_MEMBERS in self.comparisons

    @property
    def trains_members_apart(self) -> bool:
        """Whether an ensemble's members are trained on their own losses (``PER_MEMBER_LOSS``)."""
        return self.ensemble_loss == PER_MEMBER_LOSS

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def paper_numbers(model: str, task: str, source: str, **metrics: float) -> tuple[dict, ...]:
    """``paper_numbers`` rows of one model and task from one source: one row per metric."""
    return tuple({"model": model, "task": task, "metric": m, "value": v, "source": source} for m, v in metrics.items())
