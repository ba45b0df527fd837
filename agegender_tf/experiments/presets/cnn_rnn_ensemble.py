"""Paper 001: the CNN-RNN ensemble of "A Hybrid Models For Gender Classification And Age Prediction
Based On Deep Learning Techniques": its preset, CPU profiles and augmentation."""

from __future__ import annotations

from agegender_tf.experiments.presets.preset import COMPARE_MEMBERS, PER_MEMBER_LOSS, Preset, paper_numbers
from agegender_tf.pipelines.spec import AugmentSpec

# Sec. 3 (proposed methodology, pre-processing): "rotation, scaling, flipping, and brightness adjustment",
# "scaling values between 0 and 1". No magnitudes are given: we take moderate ones
# (15 degrees, +-10% zoom, brightness 0.8-1.2), common defaults that keep a face recognisable.
AUGMENT = AugmentSpec(
    horizontal_flip=True, rotation_range=15.0, zoom_range=(0.9, 1.1), brightness_range=(0.8, 1.2),
    preprocess="rescale", citation="paper 001 sec. 3",
)

# --profile cpu_wide: the two hybrids the paper names with 128-unit RNN and dense layers (the paper
# states no sizes), the gender loss weighted 2, bfloat16 compute (1.15x the images per second on
# AVX-512 BF16) and 36 epochs at most.
CPU_WIDE = {"image_size": 64, "max_train_images": None, "batch_size": 64, "epochs": 36,
            "model_args": {"num_members": 2, "conv_filters": (32, 64, 128, 256), "rnn_units": 128,
                           "dense_units": 128},
            "loss_weights": {"gender": 2.0, "age_group": 1.0, "age": 0.01},
            "precision": "mixed_bfloat16",
            "callbacks": {"early_stopping": {"monitor": "val_loss", "patience": 4},
                          "reduce_lr": {"monitor": "val_loss", "patience": 2, "factor": 0.5}}}

# --profile cpu_photos: cpu_wide with members trained apart, every face cut from MTCNN's
# box as the predictor cuts it, jittered by the box's own spread between near-identical copies of a face
# (``python -m agegender_tf.bench box-jitter``: log-scale std 0.017, centre std 0.010 of the side), and the
# real-photo augmentation (blur, low resolution, JPEG, colour, greyscale).
CPU_PHOTOS = {**CPU_WIDE, "ensemble_loss": PER_MEMBER_LOSS, "augment": "real_photos",
              "face_crop": {"detector": "mtcnn", "scale_std": 0.017, "shift_std": 0.010, "rotation_std": 0.0}}

# --profile cpu_photos_blazeface, the bundled recipe: cpu_photos with the faces cut from the boxes of
# BlazeFace, the predictor's default detector (clipped to the image, as predict clips them), so a face
# is framed in training exactly as predict frames it; jitter from ``bench box-jitter --detector
# blazeface`` (log-scale std 0.025, centre std 0.012 of the side).
CPU_PHOTOS_BLAZEFACE = {**CPU_PHOTOS, "face_crop": {"detector": "blazeface", "scale_std": 0.025,
                                                    "shift_std": 0.012, "rotation_std": 0.0}}

_TABLE_1 = "paper 001 Table 1 (UTKFace)"

PRESET = Preset(
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
    comparisons=(COMPARE_MEMBERS,),
    loss_weights={"gender": 1.0, "age_group": 1.0, "age": 0.01},
    paper_numbers=(
        paper_numbers("cnn_rnn_ensemble", "age", _TABLE_1, mae=4.25)
        + paper_numbers("cnn_rnn_ensemble", "age_group", _TABLE_1, accuracy=0.744)
        + paper_numbers("cnn_rnn_ensemble", "gender", _TABLE_1, accuracy=0.953, f1=0.95, precision=0.96,
                        recall=0.94)
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
        ("The members' layer sizes are not given.",
         "--profile cpu_wide: 128-unit LSTM/GRU and dense layers (more room after the 4x4x256 feature map), the "
         "gender loss weighted 2 against 1 for age groups and 0.01 for years, bfloat16 compute, 36 epochs at most."),
        ("Whether the input size, not the network's width, limits gender at --profile cpu_wide.",
         "--profile cpu_wide --set image_size=80: the same network on 80x80 faces (1.56x the computation per "
         "face), all else equal; results/cnn_rnn_ensemble_wide_80px."),
        ("Whether the ensemble's members are trained together on the averaged output or each on its own (the paper "
         "says only that the ensemble averages them). Trained on the average alone, members co-adapt and lose the "
         "diversity averaging relies on (Jeffares et al., NeurIPS 2023).",
         "--profile cpu_wide_members: the cpu_wide recipe with ensemble_loss='members': each member's heads carry "
         "its own losses, the average none; the saved model averages the members as before; "
         "results/cnn_rnn_ensemble_wide_members."),
        ("UTKFace's faces are aligned crops; a user's photo goes through a detector, and another dataset's crops "
         "are framed otherwise (the paper trains and tests on UTKFace's crops alone).",
         "--profile cpu_photos: cpu_wide_members with every face cut from MTCNN's box as the "
         "predictor cuts it (face_crop, jittered by the box's measured spread) and the real_photos augmentation "
         "(blur, low resolution, JPEG, colour, greyscale); judged on UTKFace's test faces as the predictor sees "
         "them and on the Adience faces on disk; results/cnn_rnn_ensemble_photos."),
        ("Which detector frames the training faces: MTCNN's boxes of UTKFace's tight crops are clipped at the "
         "crop's edge, so a network trained on them sees other faces than the predictor cuts from BlazeFace's "
         "boxes, its default (results/cnn_rnn_ensemble_photos lost on validation through BlazeFace).",
         "--profile cpu_photos_blazeface: cpu_photos with every face cut from BlazeFace's box (clipped as predict "
         "clips it; the 224 images without a face used whole, as predict uses a crop where it finds none), "
         "jittered by BlazeFace's measured spread (log-scale std 0.025, centre 0.012); "
         "results/cnn_rnn_ensemble_photos_blazeface."),
    ),
    # CPU: 64 px, the two hybrids the paper names (CNN+LSTM, CNN+GRU), batch 64, patience sized to an hour.
    profiles={"cpu": {"image_size": 64, "max_train_images": None, "batch_size": 64, "epochs": 30,
                      "model_args": {"num_members": 2, "conv_filters": (32, 64, 128, 256), "rnn_units": 64,
                                     "dense_units": 64},
                      "callbacks": {"early_stopping": {"monitor": "val_loss", "patience": 4},
                                    "reduce_lr": {"monitor": "val_loss", "patience": 2, "factor": 0.5}}},
              "cpu_wide": CPU_WIDE,
              "cpu_wide_members": {**CPU_WIDE, "ensemble_loss": PER_MEMBER_LOSS},
              "cpu_photos": CPU_PHOTOS,
              "cpu_photos_blazeface": CPU_PHOTOS_BLAZEFACE},
    smoke={"image_size": 48, "epochs": 2, "batch_size": 16, "max_train_images": 240,
           "model_args": {"num_members": 2, "conv_filters": (8, 16, 32), "rnn_units": 16, "dense_units": 16}},
)
