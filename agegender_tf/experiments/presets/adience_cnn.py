"""Paper 002: "Image-Based Age and Gender Classification with Convolutional Neural Networks (CNN)"
(the Levi-Hassner network): its preset, CPU profile and augmentation."""

from __future__ import annotations

from agegender_tf.experiments.presets.preset import Preset, paper_numbers
from agegender_tf.pipelines.spec import AugmentSpec

# Levi-Hassner lineage: 227x227 input, "artificially adding cropped versions of the images", i.e.
# random 227 crops of a 256 image (the model's geometry) with mirroring; centre crop at test time.
AUGMENT = AugmentSpec(
    horizontal_flip=True, random_crop=True, preprocess="rescale",
    citation="paper 002 sec. 3 (227x227 input), sec. 6 (added cropped versions)",
)

_SEC_5_1 = "paper 002 sec. 5.1 (validation)"

PRESET = Preset(
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
        paper_numbers("levi_hassner", "age_group", _SEC_5_1, accuracy=0.8351)
        + paper_numbers("levi_hassner", "gender", _SEC_5_1, accuracy=0.7951)
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
    # CPU: 64 px, the whole train split, bfloat16 compute (1.44x less CPU per image on AVX-512 BF16,
    # docs/performance.md); --set precision=float32 runs it in the paper's float32.
    profiles={"cpu": {"image_size": 64, "max_train_images": None, "precision": "mixed_bfloat16"}},
    smoke={"image_size": 64, "epochs": 2, "batch_size": 16, "max_train_images": 240},
)
