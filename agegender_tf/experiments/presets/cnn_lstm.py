"""Paper 000: the hybrid CNN-LSTM of "Accurate Age and Gender Prediction Using Hybrid CNN-LSTM Model
from Face Images": its preset, CPU profiles and augmentation."""

from __future__ import annotations

from agegender_tf.experiments.presets.preset import Preset, paper_numbers
from agegender_tf.pipelines.spec import AugmentSpec

# Its network-training paragraph (sec. VI) takes random 227 crops of the 256 image with mirroring, so
# training takes a random crop + flip and evaluation the centre crop (10-crop TTA: tta.py, sec. VII).
# The 256 -> 227 geometry is the models' (cnn_lstm.py, levi_hassner.py); sec. IV's "center crop of
# 224X224" is not what the networks of sec. V-VI take. The offline flip/rotation/scaling/noise of
# sec. IV is class balancing (balance.py). The paper gives no value mapping; [0, 1] rescale is the
# simplest faithful choice.
AUGMENT = AugmentSpec(
    horizontal_flip=True, random_crop=True, preprocess="rescale",
    citation="paper 000 sec. IV, sec. VI (network training), sec. VII",
)

_TABLE_I = "paper 000 Table I (task not named in the paper)"
CALLBACKS = {
    # Sec. V: the best validation loss is kept, the learning rate is lowered after 10 epochs without
    # improvement, training ends at epoch 150.
    "early_stopping": {"monitor": "val_loss", "patience": 20},
    "reduce_lr": {"monitor": "val_loss", "patience": 10, "factor": 0.1},
}

PRESET = Preset(
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
    callbacks=CALLBACKS,
    epochs=150,
    batch_size=50,
    comparisons=("levi_hassner", "svm", "kmeans"),
    tta="oversample",
    paper_numbers=(
        paper_numbers("cnn_lstm", "gender", _TABLE_I, accuracy=0.9814, precision=0.9641, recall=0.9547, f1=0.9514)
        + paper_numbers("levi_hassner", "gender", _TABLE_I, accuracy=0.9537, precision=0.9425, recall=0.9207,
                        f1=0.9277)
        + paper_numbers("svm", "gender", _TABLE_I, accuracy=0.9246, precision=0.9011, recall=0.9057, f1=0.9019)
        + paper_numbers("kmeans", "gender", _TABLE_I, accuracy=0.9345, precision=0.9132, recall=0.9131, f1=0.9081)
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
         "plateau rule owns the rate). Both keep the paper's long patience (20 epochs), which the age network "
         "needs to leave the majority class."),
        ("Sec. V names its dropout layers but not their rates.",
         "0.5 (sec. VI's rate) by default; --profile cpu_adam_dropout02 lowers both rates to 0.2 (a second change, "
         "so the Adam variant's age network predicts the small groups). --set class_weight=balanced weights the "
         "classes by n / (k n_c), the online form of sec. IV's balancing (one-output networks only)."),
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
)
