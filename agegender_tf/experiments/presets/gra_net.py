"""Paper 004: "GRA_Net: A Deep Learning Model for Classification of Age and Gender from Facial Images":
its preset, CPU profile and augmentation."""

from __future__ import annotations

from agegender_tf.experiments.presets.preset import Preset
from agegender_tf.pipelines.spec import AugmentSpec

# Sec. 6 (methodology, gender and age identification): images "scaled and resized to 32x32" and fed by
# an ImageDataGenerator; no augmentation is named, so none is applied; "scaled" read as x/255.
AUGMENT = AugmentSpec(preprocess="rescale", citation="paper 004 sec. 6")

PRESET = Preset(
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
)
