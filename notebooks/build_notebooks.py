"""Write the five paper notebooks from one template so they stay consistent.

    python notebooks/build_notebooks.py

Each notebook is thin: Colab preamble, a ``parameters`` cell, then the paper's steps as calls into
``agegender_tf`` with prose, an "Interpretation" section and a "Paper vs this kit" table. Smoke mode
is on unless ``AGEGENDER_SMOKE=0`` (CI runs all five in smoke mode); ``notebooks/execute.py`` (or
papermill) injects values after the tagged ``parameters`` cell. Cells that draw are tagged ``figure``
(the notebook test checks that each produced an image). Notebooks are written without outputs.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from agegender_tf.experiments.presets import PRESETS, Preset

HERE = Path(__file__).resolve().parent
FIGURE_TAG = "figure"  # a cell that draws: executed, it must hold an image output
ROOT = HERE.parent
# The repository's address, written once: pyproject.toml's [project.urls] Repository (a fork changes that line).
REPO_URL = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Repository"]
REPO_SLUG = REPO_URL.removeprefix("https://github.com/")  # owner/name
COLAB = f"https://colab.research.google.com/github/{REPO_SLUG}/blob/main/notebooks/{{name}}.ipynb"

# What the kit's own trial runs showed, per preset: the observations behind some of the choices of
# the preset's interpretation (the preset states the choices; the notebook also tells how they came about).
OBSERVED = {
    "cnn_lstm": (
        "With Adam (--profile cpu_adam) the age network stayed at the majority class for 7 epochs before it "
        "started to learn: a trial with early stopping after 5 epochs without improvement ended there, so both "
        "CPU profiles keep the paper's patience.",
        "With dropout 0.5 the Adam variant's age network rarely predicted the small groups (macro F1 0.22); "
        "--profile cpu_adam_dropout02 followed. Weighting the classes as well (--set class_weight=balanced, age "
        "network alone) raised macro F1 to 0.39 but lowered accuracy to 0.37, under the majority class + 0.05.",
    ),
    "cnn_rnn_ensemble": (
        "At --profile cpu the ensemble fitted its training faces no better than its validation faces (gender "
        "0.90 on both), short of the 0.92 the kit's bundled model aims at: --profile cpu_wide gives the members "
        "more room.",
        "At --profile cpu_wide the training gender accuracy ended above the validation one, hence the 80 px "
        "variant that asks whether the input size limits gender.",
    ),
    "adience_cnn": (
        "The full --profile cpu run's test accuracy in bfloat16 matched the float32 run's.",
    ),
    "transfer_vgg16_resnet50": (
        "Trained from scratch, ResNet50's validation gender accuracy reached 0.70 after about 250 steps at "
        "Adam 1e-3 on 4,000 faces, and after about 2,500 at 1e-4 on all of them: the profiles keep 1e-3.",
        "VGG16 from scratch with glorot_uniform kernels stayed at chance on all the training faces (4 epochs, "
        "932 steps: validation gender accuracy 0.5225, the majority class); with he_normal kernels, on 4,000 "
        "faces, it left chance in its second epoch (0.62, then 0.67).",
    ),
}


def _md_table(rows, header):
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def notebook(preset: Preset):
    name = preset.name
    paper_rows = [(r["model"], r["task"], r["metric"], r["value"], r["source"]) for r in preset.paper_numbers]
    paper_table = (_md_table(paper_rows, ("model", "task", "metric", "paper", "source")) if paper_rows
                   else "The source document reports no numbers of its own for this method.")
    interpretation = "\n".join(f"{i}. **Paper:** {a}  \n   **This kit:** {c}"
                               for i, (a, c) in enumerate(preset.interpretation, 1))
    if OBSERVED.get(name):
        interpretation += "\n\nWhat this kit's trial runs showed:\n\n" + "\n".join(f"- {o}" for o in OBSERVED[name])
    cells = [
        new_markdown_cell(
            f"# {preset.title}\n\n"
            f"<a href=\"{COLAB.format(name=name)}\" target=\"_parent\"><img "
            "src=\"https://colab.research.google.com/assets/colab-badge.svg\" alt=\"Open In Colab\"/></a>\n\n"
            f"Replication of {preset.paper_label} (source document `{preset.seed_document}`) with the "
            f"`{name}` preset of **agegender-tf**.\n"
            f"Paper datasets: {', '.join(preset.paper_datasets)}. Dataset used here: **{preset.dataset}**. "
            f"{preset.dataset_note}"),
        new_markdown_cell("## Setup\nIn Colab, clone the kit and install it from the clone (its committed split files "
                          "live in `data_manifests/`; Colab's own TensorFlow is kept when it is 2.19 or later); "
                          "elsewhere it is already installed."),
        new_code_cell(
            "import sys\n"
            "IN_COLAB = \"google.colab\" in sys.modules\n"
            "if IN_COLAB:\n"
            f"    !git clone -q {REPO_URL}.git /content/agegender-tf\n"
            "    %pip install -q -e /content/agegender-tf\n"
            "    sys.path.insert(0, \"/content/agegender-tf\")"),
        new_code_cell(
            "import os\n"
            "import agegender_tf\n"
            "agegender_tf.import_tensorflow_quietly()  # TensorFlow without its start-up lines (oneDNN, cuInit)\n"
            "import keras\n"
            "import tensorflow as tf\n"
            "print(\"agegender_tf\", agegender_tf.__version__, \"| TensorFlow\", tf.__version__, "
            "\"| Keras\", keras.__version__)\n"
            "gpus = tf.config.list_physical_devices(\"GPU\")\n"
            "print(\"GPU:\", gpus if gpus else \"none (CPU only: keep SMOKE = True or expect a long run)\")"),
        new_markdown_cell(
            "## Parameters\n`SMOKE` shrinks the run (a few hundred images, small images, 1-2 epochs); set "
            "`AGEGENDER_SMOKE=0` or edit the cell for the paper's scale. `PROFILE = \"cpu\"` applies the preset's "
            "CPU profile (the whole training split at a size a CPU can train). `IMAGE_SIZE`/`EPOCHS` of None keep "
            "the preset's values; `SETTINGS` holds any other `key=value` override. To run the whole notebook headless: "
            f"`python notebooks/execute.py {name} [--full] [--profile cpu]` (see `docs/notebooks.md`)."),
        new_code_cell(
            "DATA_ROOT = os.environ.get(\"AGEGENDER_DATA\", \"/content/datasets\")\n"
            "SMOKE = os.environ.get(\"AGEGENDER_SMOKE\", \"1\") != \"0\"\n"
            "PROFILE = None  # or \"cpu\": the preset's CPU profile\n"
            "IMAGE_SIZE = None\n"
            "EPOCHS = None\n"
            "SETTINGS = []  # more overrides, as agegender run --set: e.g. [\"callbacks.time_limit.minutes=60\"]\n"
            "SEED = 42\n"
            f"OUT = os.path.join(os.environ.get(\"AGEGENDER_RUNS\", \"runs\"), \"{name}_notebook\")",
            metadata={"tags": ["parameters"]}),
        new_code_cell(
            "from agegender_tf.experiments import plans, presets, runner\n"
            "OVERRIDES = [f\"image_size={IMAGE_SIZE}\"] * (IMAGE_SIZE is not None) "
            "+ [f\"epochs={EPOCHS}\"] * (EPOCHS is not None) + list(SETTINGS)\n"
            f"preset = presets.resolve(\"{name}\", smoke=SMOKE, profile=PROFILE, overrides=OVERRIDES)\n"
            "{k: v for k, v in preset.to_dict().items() "
            "if k not in (\"interpretation\", \"paper_numbers\", \"smoke\")}"),
        new_markdown_cell(
            "## Data and its audit\nThe reader turns the dataset folder into a manifest (one row per face) and "
            "counts every row it dropped, with the reason."),
        new_code_cell(
            "from agegender_tf.data import read_dataset\n"
            "data = read_dataset(preset.dataset, os.path.join(DATA_ROOT, preset.dataset))\n"
            "print(len(data.manifest), \"faces kept; dropped:\", data.dropped_counts() or \"none\")\n"
            "data.manifest[[\"age\", \"gender\"]].describe(include=\"all\")"),
        new_markdown_cell("## Age binning\nThe age classes of this paper and how the faces fall into them."),
        new_code_cell(
            "from agegender_tf.binning import get_binning\n"
            "import pandas as pd\n"
            "binning = get_binning(preset.binning)\n"
            "print(binning.description)\n"
            "pd.Series(binning.to_label(data.manifest[\"age\"].dropna().to_numpy())).value_counts().reindex(binning.labels)"),
        new_markdown_cell("## Augmentation examples\nEight training faces, each titled by its gender and age, as read "
                          "and as the model sees them after this paper's augmentation (named in the title; shown "
                          "before the value mapping)."),
        new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "from agegender_tf.experiments import plots\n"
            "from agegender_tf.pipelines.tfdata import make_dataset\n"
            "# the main network as the run trains it: builder, arguments, augmentation (with the model's size and\n"
            "# crop, its preprocessing facts), losses; the augmentation is shown as x/255\n"
            "plan = plans.network_plan(preset, preset.task_groups[0])\n"
            "spec = plan.augment.replace(preprocess=\"rescale\")\n"
            "sample = data.manifest.sample(8, random_state=SEED)\n"
            "# shuffle_buffer=1 keeps the sample's order, so each face keeps its caption\n"
            "loader = dict(image_size=preset.image_size, batch_size=8, outputs=(\"gender\",), seed=SEED,\n"
            "              shuffle_buffer=1)\n"
            "as_read, augmented = (next(iter(make_dataset(sample, spec, training=training, **loader)))[0].numpy()\n"
            "                      for training in (False, True))\n"
            "captions = [f\"{row.gender or 'gender ?'}, \"\n"
            "            + (f\"{row.age:.0f} y\" if pd.notna(row.age) else f\"age {row.age_group}\")\n"
            "            for row in sample.itertuples()]\n"
            "fig = plots.augmentation_strip(augmented, captions, originals=as_read,\n"
            "                               augmentation=plots.augmentation_summary(spec.to_dict()),\n"
            "                               title=f\"Eight {preset.dataset} training faces\")\n"
            "plt.show()",
            metadata={"tags": [FIGURE_TAG]}),
        new_markdown_cell(
            "## The split and the input pipelines\n`runner.start` begins the run folder `OUT` (it refuses a folder "
            "holding another run's files, and records the preset). `plans.load_data` splits the faces (the "
            "committed split, or the paper's protocol) and checks that no subject, copy or near-duplicate crosses "
            "the parts; `runner.network_data` keeps the faces that carry the network's labels and builds the "
            "`tf.data` pipelines: the training faces augmented and shuffled, validation and test faces as they are."),
        new_code_cell(
            "runner.start(preset, DATA_ROOT, OUT, seed=SEED, smoke=SMOKE)\n"
            "parts, counts = plans.load_data(preset, DATA_ROOT, SEED)\n"
            "print({part: len(frame) for part, frame in parts.items()}, \"| no leak:\",\n"
            "      counts[\"leak_check\"][\"ok\"])\n"
            "data = runner.network_data(preset, plan, parts, SEED)\n"
            "data.datasets[\"train\"].element_spec"),
        new_markdown_cell("## Model\nThe network of the paper, built by the model registry with the preset's "
                          "arguments (`plan.builder`, `plan.kwargs`), its weights drawn from `SEED`; then compiled "
                          "with the paper's optimizer and the losses, loss weights and metrics of its heads."),
        new_code_cell(
            "model = runner.build_network(preset, plan, SEED)\n"
            "model.summary(line_length=110)"),
        new_code_cell(
            "model, fit = runner.compile_network(preset, plan, model, data)\n"
            "print(type(model.optimizer).__name__, preset.optimizer)\n"
            "print(\"losses:\", model.loss, \"| weights:\", plan.loss_weights)"),
        new_markdown_cell(
            "## Training\n`model.fit` with the paper's callbacks (`preset.callbacks`) and the kit's own: the "
            "best-`val_loss` checkpoint, BackupAndRestore (rerunning this cell after an interruption resumes from "
            "the last finished epoch) and the CSV history, in `OUT/train/<network>/`."),
        new_code_cell(
            "print(preset.callbacks, \"| epochs:\", preset.epochs)\n"
            "history = runner.fit_network(preset, plan, model, fit, OUT, verbose=2)\n"
            "history.tail()"),
        new_markdown_cell(
            "## Evaluation and report\n`runner.finish` trains the preset's other networks the same way (its other "
            "task groups and the paper's comparisons), loads the one fitted above, scores every network and "
            "baseline once on the test faces, and writes `report.json`, `predictions.csv`, `history.csv` and the "
            "figures to `OUT`. The whole run in one call is `runner.run(preset, DATA_ROOT, OUT)`, or `agegender run "
            + name + " --data-root DATA_ROOT --out OUT [--smoke] [--profile cpu]`: the same folder. Then every "
            "network is scored out of domain, on the Adience faces under `DATA_ROOT` where there are any, through "
            "the predictor's face detector, as `agegender run` does."),
        new_code_cell(
            "result = runner.finish(preset, DATA_ROOT, OUT, parts, counts, seed=SEED, smoke=SMOKE, verbose=2)\n"
            "from agegender_tf.serving.out_of_domain import score_run\n"
            "out_of_domain = score_run(OUT, DATA_ROOT, smoke=SMOKE)\n"
            "out_of_domain[\"networks\"] if out_of_domain else \"no Adience faces under DATA_ROOT\""),
        new_code_cell(
            "from agegender_tf.experiments.report import metrics_table\n"
            "metrics_table(result)"),
        new_code_cell("print(open(os.path.join(OUT, \"classification_report.txt\")).read())"),
        new_markdown_cell("## Figures\nLearning curves, confusion matrices, per-class bars, the training ages and "
                          "test faces; `agegender report " + name + " --run OUT` redraws them from the saved files."),
        new_code_cell(
            "from pathlib import Path\n"
            "from IPython.display import Image, display\n"
            "for figure in sorted(Path(OUT, \"figures\").glob(\"*.png\")):\n"
            "    print(figure.name)\n"
            "    display(Image(filename=str(figure)))",
            metadata={"tags": [FIGURE_TAG]}),
        new_markdown_cell("## Interpretation\nEach point where the paper is ambiguous (or its data is absent here), "
                          "and the choice this kit makes:\n\n" + interpretation),
        new_markdown_cell("## Paper vs this kit\nThe paper's numbers:\n\n" + paper_table +
                          "\n\nThe same rows beside this run's numbers (gap = kit - paper). A smoke run is far too "
                          "small to be compared; see `results/" + name + "/` for the committed full run."),
        new_code_cell(
            "from IPython.display import Markdown\n"
            "from agegender_tf.experiments.evaluate import comparison_markdown\n"
            "Markdown(comparison_markdown(result[\"comparison\"]) if result[\"comparison\"] "
            "else \"No paper numbers to compare.\")"),
    ]
    for index, cell in enumerate(cells):  # stable ids: rebuilding an unchanged notebook changes nothing
        cell["id"] = f"{name}-{index:02d}"
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    })
    return nb


def main() -> list[Path]:
    written = []
    for preset in PRESETS.values():
        path = HERE / f"{preset.name}.ipynb"
        nbformat.write(notebook(preset), path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in main():
        print(path)
