"""Paper presets as data: five presets, their seed documents, paper numbers, smoke, profiles and --set overrides."""

from __future__ import annotations

import dataclasses
import re

import pytest

from agegender_tf import models
from agegender_tf.binning import BINNINGS
from agegender_tf.errors import UsageError
from agegender_tf.experiments.presets import (
    AUGMENT_PRESETS,
    FIELD_RULES,
    PAPER_NUMBER_KEYS,
    PRESETS,
    apply_overrides,
    check_model_args,
    get_preset,
    listing,
    parse_value,
    resolve,
    smoke_version,
)

NAMES = ("cnn_lstm", "cnn_rnn_ensemble", "adience_cnn", "transfer_vgg16_resnet50", "gra_net")


def test_the_five_presets_in_seed_order():
    assert tuple(PRESETS) == NAMES
    assert [p.seed_document[:3] for p in PRESETS.values()] == ["000", "001", "002", "003", "004"]


@pytest.mark.parametrize("name", NAMES)
def test_preset_refers_to_registered_things(name):
    preset = get_preset(name)
    assert preset.model in models.available()
    assert preset.augment in AUGMENT_PRESETS
    assert preset.binning is None or preset.binning in BINNINGS
    assert set(preset.tasks) <= {"gender", "age_group", "age"}
    assert preset.interpretation, "every preset lists the paper's ambiguities and the choices made"
    for row in preset.paper_numbers:
        assert tuple(row) == PAPER_NUMBER_KEYS and row["source"].startswith("paper 00")


# Where a paper number is cited: "Table I", "Table 1", "Fig. 4.17", "sec. 5.1".
CITATION = re.compile(r"\b(?P<kind>Table|Fig\.|Figure|sec\.)\s*(?P<label>[0-9IVX]+(?:\.[0-9]+)?)")
METRIC_WORDS = {"accuracy": ("accuracy",), "precision": ("precision",), "recall": ("recall",),
                "f1": ("f1", "f-1"), "mae": ("mean absolute error", "mae")}
MODEL_COLUMNS = {"cnn_lstm": "cnn-lstm", "levi_hassner": "dcnn", "svm": "svm", "kmeans": "k-means"}
TASK_WORDS = {"gender": "gender", "age_group": "age", "age": "age"}


def _number(cell: str) -> float | None:
    """A table cell as a number: "0.94" -> 0.94, "95.3%" -> 0.953; None if it is no number."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", cell)
    if not match:
        return None
    return float(match.group(1)) / (100 if match.group(2) else 1)


def cited_block(text: str, source: str) -> list[str]:
    """The lines of the table, figure or section that ``source`` cites: a table's rows follow its caption,
    a classification report's rows precede its figure caption, a section runs to the next one."""
    citation = CITATION.search(source)
    assert citation, f"no table/figure/section in the citation {source!r}"
    kind, label = citation.group("kind").lower(), citation.group("label")
    lines = text.splitlines()
    if kind == "sec.":
        start = next(i for i, line in enumerate(lines)
                     if re.match(rf"{re.escape(label)}\.?\s+\S", line) and "\t" not in line)
        major, minor = label.split(".")
        following = rf"{major}\.{int(minor) + 1}\.?\s"
        end = next((i for i in range(start + 1, len(lines)) if re.match(following, lines[i])), len(lines))
        return lines[start:end]
    caption = re.compile(rf"(table|fig\.|figure)\s*{re.escape(label)}(\b|:|$)", re.IGNORECASE)
    wanted = "table" if kind == "table" else "fig"
    index = next(i for i, line in enumerate(lines)
                 if caption.match(line.strip()) and line.strip().lower().startswith(wanted))
    step = 1 if kind == "table" else -1
    rows, i = [], index + step
    while 0 <= i < len(lines) and ("\t" in lines[i] or not lines[i].strip() or not rows):
        if "\t" in lines[i]:
            rows.append(lines[i])
        elif rows and lines[i].strip():
            break
        i += step
    return rows if step == 1 else rows[::-1]


def number_in_table(rows: list[str], row: dict) -> bool:
    """``row["value"]`` stands in a cell whose row or column names the metric, whose column names the model
    when the table compares models, and whose row names the task when rows name tasks."""
    cells = [line.split("\t") for line in rows]
    header = [c.strip().lower() for c in cells[0]]
    compares_models = any(name in header for name in MODEL_COLUMNS.values())
    gender_table = any(r[0].strip().lower() in ("female", "male") for r in cells)
    if gender_table != (row["task"] == "gender") and any(r[0].strip().lower() in ("female", "male", "child", "adult")
                                                           for r in cells):
        return False  # a per-class report of the other task
    for line in cells[1:]:
        label = line[0].strip().lower()
        for column, cell in enumerate(line):
            if _number(cell) is None or abs(_number(cell) - row["value"]) > 1e-9 or column >= len(header):
                continue
            words = METRIC_WORDS[row["metric"]]
            named_by_row = any(label.startswith(w) for w in words)
            named_by_column = any(header[column].startswith(w) for w in words) and label == "macro avg"
            if not (named_by_row or named_by_column):
                continue
            if compares_models and header[column] != MODEL_COLUMNS[row["model"]]:
                continue
            task_named = (re.findall(r"\(([^)]*)\)", label) or [None])[-1]  # "Accuracy (Gender Identification)"
            if task_named and (TASK_WORDS[row["task"]] not in task_named
                               or row["task"] != "gender" and "gender" in task_named):
                continue
            return True
    return False


def number_in_section(lines: list[str], row: dict) -> bool:
    """``row["value"]`` on a ``<metric> = <value>`` line under the task's "For <task>:" heading
    (a "(validation)" citation wants the ``val_`` metric)."""
    heading = re.compile(rf"for {TASK_WORDS[row['task']]}\b\w*:", re.IGNORECASE)
    inside = False
    metric = ("val_" if "validation" in row["source"] else "") + row["metric"]
    for line in lines:
        if re.match(r"for \w+", line.strip(), re.IGNORECASE):
            inside = bool(heading.match(line.strip()))
        found = re.fullmatch(rf"\s*{metric}\s*=\s*(\d+(?:\.\d+)?)\s*", line)
        if inside and found and abs(float(found.group(1)) - row["value"]) < 1e-9:
            return True
    return False


@pytest.mark.parametrize("name", NAMES)
def test_paper_numbers_stand_where_their_source_cites_them(name, paper_documents):
    """Each paper number is found in the cited table/figure/section, in the cell or line that names its
    metric (and model and task where the table names them), not merely somewhere in the document."""
    preset = get_preset(name)
    (path,) = paper_documents.glob(f"{preset.seed_document}.txt")
    text = path.read_text()
    for row in preset.paper_numbers:
        block = cited_block(text, row["source"])
        assert block, f"{name}: nothing found at {row['source']!r} in {path.name}"
        found = number_in_section(block, row) if "sec." in row["source"] else number_in_table(block, row)
        assert found, f"{name}: {row} is not at {row['source']!r} in {path.name}:\n" + "\n".join(block)


def test_the_citation_check_refuses_a_number_in_the_wrong_place(paper_documents):
    """The same check fails for a value moved to another model's column, metric, table or task."""
    text = next(paper_documents.glob(f"{get_preset('cnn_lstm').seed_document}.txt")).read_text()
    right = {"model": "cnn_lstm", "task": "gender", "metric": "accuracy", "value": 0.9814,
             "source": "paper 000 Table I"}
    assert number_in_table(cited_block(text, right["source"]), right)
    for wrong in ({"model": "svm"}, {"metric": "precision"}, {"value": 0.98}):
        assert not number_in_table(cited_block(text, right["source"]), {**right, **wrong}), wrong
    text = next(paper_documents.glob(f"{get_preset('transfer_vgg16_resnet50').seed_document}.txt")).read_text()
    vgg_age = {"model": "vgg16", "task": "age_group", "metric": "accuracy", "value": 0.73,
               "source": "paper 003 Fig. 4.12"}
    assert number_in_table(cited_block(text, vgg_age["source"]), vgg_age)
    assert not number_in_table(cited_block(text, "paper 003 Fig. 4.7"), vgg_age)  # the gender report
    assert not number_in_table(cited_block(text, vgg_age["source"]), {**vgg_age, "task": "gender"})
    assert not number_in_table(cited_block(text, vgg_age["source"]), {**vgg_age, "metric": "precision"})  # 0.69


def test_smoke_shrinks_the_run():
    for preset in PRESETS.values():
        smoke = smoke_version(preset)
        assert smoke.epochs <= 2 and smoke.max_train_images <= 400 and smoke.image_size <= 64


def test_overrides_are_typed_and_dotted():
    preset = apply_overrides(get_preset("gra_net"), ["epochs=3", "optimizer.learning_rate=1e-4",
                                                     "model_args.stage_filters=(8, 16, 32)", "augment=gra_net"])
    assert preset.epochs == 3
    assert preset.optimizer == {"name": "nadam", "learning_rate": 1e-4}
    assert preset.model_args["stage_filters"] == (8, 16, 32)
    assert get_preset("gra_net").optimizer["learning_rate"] == 1e-3  # the original is untouched


@pytest.mark.parametrize("bad, message", [
    ("epochs", "key=value"), ("nope=1", "no field 'nope'"), ("epochs.x=1", "not a dict"),
    ("image_size=abc", "image_size must be an integer from 16 to 1024, got 'abc'"),
    ("image_size=8", "image_size must be an integer from 16 to 1024, got 8"),
    ("epochs=-1", "epochs must be an integer >= 1, got -1"), ("epochs=0", "epochs must be an integer >= 1, got 0"),
    ("epochs=2.5", "epochs must be an integer >= 1, got 2.5"), ("epochs=True", "epochs must be an integer"),
    ("batch_size=0", "batch_size must be an integer >= 1, got 0"),
    ("max_train_images=-5", "max_train_images must be an integer >= 1 or None, got -5"),
    ("optimizer.learning_rate=-1e-3", "optimizer.learning_rate must be a number > 0"),
    ("optimizer.lr=1e-3", "optimizer.lr: no such key"), ("optimizer.name=adamw", "optimizer.name must be one of"),
    ("callbacks.early_stopping.patience=-1", "callbacks.early_stopping.patience must be an integer >= 0"),
    ("split.test_size=1.5", "split.test_size must be a number in (0, 1)"),
    ("augment=granet", "did you mean gra_net"), ("binning=None", "the age_group task needs a binning"),
    ("tta=tencrop", "tta must be one of 'center', 'oversample'"), ("title=x", "'title' cannot be set"),
    ("profile=cpu", "use --profile"), ("model_args=3", "model_args must be a dict"),
    ("pipeline.mode=disk", "pipeline.mode must be one of 'memory', 'stream', 'auto'"),
    ("pipeline.shuffle_buffer=0", "pipeline.shuffle_buffer must be an integer >= 1"),
    ("pipeline.cache=1", "pipeline.cache: no such key"),
])
def test_bad_overrides_are_refused_with_one_line(bad, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        apply_overrides(get_preset("gra_net"), [bad])
    assert str(caught.value).startswith(f"--set {bad}: ") and "\n" not in str(caught.value)


def test_good_overrides_pass_the_schema():
    preset = apply_overrides(get_preset("cnn_lstm"), [
        "max_train_images=None", "max_train_images=500", "image_size=16", "optimizer.momentum=0.5",
        "callbacks.time_limit={'minutes': 3}", "split={'kind': 'holdout', 'test_size': 0.3}", "tta=center"])
    assert preset.max_train_images == 500 and preset.optimizer["momentum"] == 0.5
    assert preset.callbacks["time_limit"] == {"minutes": 3} and preset.split["kind"] == "holdout"


def test_the_pipeline_mode_is_unset_by_default_and_settable():
    """No preset sets ``pipeline`` (a run picks the mode by its size); ``--set pipeline.mode=...`` forces one,
    and an unset field (None) is what a fingerprint made before the field existed lacks (absent = None)."""
    assert all(get_preset(name).pipeline is None for name in NAMES)
    preset = apply_overrides(get_preset("cnn_lstm"), ["pipeline.mode=stream", "pipeline.shuffle_buffer=2000"])
    assert preset.pipeline == {"mode": "stream", "shuffle_buffer": 2000}
    assert apply_overrides(get_preset("cnn_lstm"), ["pipeline={'mode': 'memory'}"]).pipeline == {"mode": "memory"}


@pytest.mark.parametrize("name", NAMES)
def test_each_presets_own_values_pass_the_schema(name):
    """The presets, their smoke overrides and their profiles obey the rules a user's --set obeys."""
    preset = get_preset(name)
    for field_name, rule in FIELD_RULES.items():
        assert rule(getattr(preset, field_name)) is None, (name, field_name)
    for profile in [None, *preset.profiles]:
        for smoke in (False, True):
            check_model_args(resolve(name, smoke=smoke, profile=profile))


def test_model_args_are_checked_against_the_builder():
    with pytest.raises(UsageError, match="takes no argument 'stem'.*did you mean stem_filters"):
        check_model_args(resolve("gra_net", overrides=["model_args.stem=8"]))
    with pytest.raises(UsageError, match="set by the run itself"):
        check_model_args(resolve("gra_net", overrides=["model_args.input_shape=(64, 64, 3)"]))
    # an ensemble takes its members' arguments too
    check_model_args(resolve("cnn_rnn_ensemble", overrides=["model_args.rnn_units=8"]))
    with pytest.raises(UsageError, match="did you mean rnn_units"):
        check_model_args(resolve("cnn_rnn_ensemble", overrides=["model_args.rnn_unit=8"]))
    check_model_args(resolve("cnn_rnn_ensemble", overrides=["ensemble_loss=members"]))
    with pytest.raises(UsageError, match="ensemble_loss='members' needs an ensemble; builder 'gra_net'"):
        check_model_args(resolve("gra_net", overrides=["ensemble_loss=members"]))
    with pytest.raises(UsageError, match="class_weight and ensemble_loss cannot be combined"):
        resolve("cnn_rnn_ensemble", overrides=["task_groups=[['gender']]", "class_weight=balanced",
                                               "ensemble_loss=members"])


def test_profiles_apply_before_smoke_and_set():
    full = resolve("gra_net", profile="cpu")
    assert (full.profile, full.image_size, full.max_train_images) == ("cpu", 32, None)
    assert full.model_args["stem_filters"] == 16
    assert full.epochs == get_preset("gra_net").epochs  # a profile changes only what it names
    smoke = resolve("gra_net", profile="cpu", smoke=True)
    assert (smoke.profile, smoke.image_size, smoke.max_train_images) == ("cpu", 32, 320)  # --smoke wins for sizes
    assert smoke.model_args["stem_filters"] == 8
    assert resolve("gra_net", profile="cpu", overrides=["image_size=48"]).image_size == 48  # --set wins over both
    assert resolve("gra_net").profile is None
    with pytest.raises(UsageError, match="no profile 'gpu'"):
        resolve("gra_net", profile="gpu")


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_has_a_cpu_profile_on_the_whole_training_split(name):
    assert get_preset(name).profiles["cpu"]["max_train_images"] is None


def test_cnn_lstm_variant_profile_changes_only_the_optimizer():
    recipe, variant = resolve("cnn_lstm", profile="cpu"), resolve("cnn_lstm", profile="cpu_adam")
    assert recipe.optimizer["name"] == "sgd" and variant.optimizer == {"name": "adam", "learning_rate": 1e-3}
    changed = {f for f in ("image_size", "epochs", "batch_size", "augment", "split", "model_args", "optimizer",
                           "callbacks", "comparisons") if getattr(recipe, f) != getattr(variant, f)}
    assert changed == {"optimizer"}


def test_the_profile_and_precision_reach_report_json(tmp_path, monkeypatch):
    import json

    import pandas as pd

    from agegender_tf.experiments import report

    monkeypatch.setattr(report, "render_figures", lambda *args, **kwargs: [])  # the scores and protocol only

    predictions = pd.DataFrame({"model": "gra_net", "path": ["a.jpg", "b.jpg"], "gender_true": [0, 1],
                                "gender_pred": [0, 0], "age_group_true": [2, 3], "age_group_pred": [2, 2],
                                "age_true": [25.0, 31.0], "age_pred": [27.0, 30.0]})
    for profile, overrides, precision in (("cpu", ["precision=mixed_bfloat16"], "mixed_bfloat16"),
                                          (None, [], "float32")):
        preset = resolve("gra_net", profile=profile, smoke=True, overrides=overrides)
        report.write_report(preset, tmp_path, predictions, counts={}, seed=1, smoke=True, seconds=1.0, parameters={})
        protocol = json.loads((tmp_path / "report.json").read_text())["protocol"]
        assert (protocol["profile"], protocol["precision"]) == (profile, precision)
    with pytest.raises(UsageError, match="precision.*mixed_bfloat16"):
        resolve("gra_net", overrides=["precision=bf16"])


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("True") is True and parse_value("resnet50") == "resnet50"


def test_unknown_preset_lists_choices_and_close_names():
    with pytest.raises(KeyError, match="cnn_lstm"):
        get_preset("vgg")
    with pytest.raises(UsageError, match="did you mean gra_net"):
        get_preset("granet")
    with pytest.raises(UsageError, match="did you mean transfer_vgg16_resnet50"):
        get_preset("transfer")


def test_listing_rows():
    rows = listing()
    assert [r["name"] for r in rows] == list(NAMES)
    assert rows[3]["seed_document"] == "003_49ef1d907f51e97c" and rows[3]["model"] == "transfer"
    assert [r["paper"] for r in rows] == [f"paper 00{k}" for k in range(5)]
    assert rows[4]["title"].startswith("GRA_Net") and rows[4]["profiles"]["cpu"]["image_size"] == 32


def test_cnn_lstm_dropout_variant_lowers_only_the_dropout_of_the_adam_variant():
    adam, light = resolve("cnn_lstm", profile="cpu_adam"), resolve("cnn_lstm", profile="cpu_adam_dropout02")
    assert light.model_args == {"feature_dropout": 0.2, "sequence_dropout": 0.2}
    assert dataclasses.replace(light, model_args={}, profile="cpu_adam") == adam


def test_class_weight_is_checked_when_set():
    assert resolve("adience_cnn", overrides=["class_weight=balanced"]).class_weight == "balanced"
    with pytest.raises(UsageError, match="class_weight must be one of"):
        resolve("adience_cnn", overrides=["class_weight=inverse"])


def test_paper_label_is_the_source_documents_number():
    from agegender_tf.experiments.presets import paper_label_of

    assert [p.paper_label for p in PRESETS.values()] == [f"paper 00{i}" for i in range(5)]
    assert [row["paper"] for row in listing()] == [p.paper_label for p in PRESETS.values()]
    assert paper_label_of(None) == "paper ?"


def test_network_plans_name_each_network_the_run_trains():
    from agegender_tf.experiments.plans import network_plan, network_plans
    from agegender_tf.experiments.rundir import NetworkRun
    from agegender_tf.experiments.runner import run

    plans = network_plans(get_preset("transfer_vgg16_resnet50"))
    assert [(p.run.folder, p.builder, p.run.comparison) for p in plans] == [
        ("resnet50__gender", "transfer", False), ("resnet50__age_group", "transfer", False),
        ("vgg16__gender", "transfer", True)]
    assert plans[2].kwargs["backbone"] == "vgg16" and plans[2].augment.preprocess == "vgg16"
    lstm = network_plans(get_preset("cnn_lstm"))  # the SVM and K-Means baselines are no networks
    assert [p.run.folder for p in lstm] == ["cnn_lstm__gender", "cnn_lstm__age_group", "levi_hassner__gender"]
    gra = network_plan(get_preset("gra_net"), ("gender", "age_group", "age"))
    assert gra.loss_weights == {"gender": 1.0, "age_group": 1.0, "age": 0.01} and not gra.per_member_loss
    assert network_plan(get_preset("gra_net"), ("gender",)).loss_weights is None
    members = resolve("cnn_rnn_ensemble", profile="cpu_wide_members")
    assert members.trains_members_apart and members.scores_members
    assert network_plan(members, members.task_groups[0]).per_member_loss
    for plan in plans + lstm:
        assert NetworkRun.from_folder(plan.run.folder, [plan.tasks], plans[0].run.name if plan in plans
                                      else lstm[0].run.name) == plan.run
    with pytest.raises(TypeError, match="resolved Preset"):
        run("gra_net", "data", "out")
