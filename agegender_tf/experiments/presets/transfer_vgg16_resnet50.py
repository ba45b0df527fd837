"""Paper 003: "Age and Gender Classification Application" (VGG16 / ResNet50 transfer learning): its
preset, CPU profiles and augmentation."""

from __future__ import annotations

from agegender_tf.experiments.presets.preset import Preset, paper_numbers
from agegender_tf.pipelines.spec import AugmentSpec

# Sec. 3.3 and Fig. 4.1/4.2: ImageDataGenerator(preprocessing_function=preprocess_input,
# rotation_range=30, horizontal_flip=True, width_shift_range=0.2, height_shift_range=0.2,
# fill_mode="nearest", validation_split=0.3) at 224x224. preprocess_input is VGG16's (caffe
# mode); ResNet50 presets swap in "resnet50" (the same function in keras.applications).
AUGMENT = AugmentSpec(
    horizontal_flip=True, rotation_range=30.0, width_shift_range=0.2, height_shift_range=0.2,
    fill_mode="nearest", preprocess="vgg16", validation_split=0.3,
    citation="paper 003 sec. 3.3, Fig. 4.1-4.2",
)

PRESET = Preset(
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
        paper_numbers("resnet50", "gender", "paper 003 Fig. 4.17", accuracy=0.95, precision=0.95, recall=0.95,
                      f1=0.95)
        + paper_numbers("resnet50", "age_group", "paper 003 Fig. 4.22", accuracy=0.81, precision=0.83, recall=0.80,
                        f1=0.80)
        + paper_numbers("vgg16", "gender", "paper 003 Fig. 4.7", accuracy=0.94, precision=0.94, recall=0.94, f1=0.94)
        + paper_numbers("vgg16", "age_group", "paper 003 Fig. 4.12", accuracy=0.73, precision=0.69, recall=0.69,
                        f1=0.69)
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
         "batch 64, at most 30 epochs with the paper's early stopping and the paper's Adam 1e-3: "
         "--profile cpu_scratch is ResNet50, --profile cpu_scratch_vgg16 is VGG16."),
        ("VGG16 trained from scratch: keras.applications draws its convolution kernels from glorot_uniform.",
         "cpu_scratch_vgg16 draws VGG16's convolution kernels from he_normal (He et al. 2015, the initialisation "
         "for deep plain ReLU stacks)."),
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
)
