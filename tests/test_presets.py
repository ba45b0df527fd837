"""Paper presets as data: five presets, their seed documents, paper numbers, smoke and --set overrides."""

from __future__ import annotations

import re

import pytest

from agegender_tf import models
from agegender_tf.binning import BINNINGS
from agegender_tf.experiments.presets import (
    PAPER_NUMBER_KEYS, PRESETS, apply_overrides, get_preset, listing, parse_value, smoke_version,
)
from agegender_tf.pipelines.spec import AUGMENT_PRESETS

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
        assert tuple(row) == PAPER_NUMBER_KEYS and row["source"].startswith("seed")


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
        start = next(i for i, line in enumerate(lines) if re.match(rf"{re.escape(label)}\.?\s+\S", line) and "\t" not in line)
        major, minor = label.split(".")
        following = rf"{major}\.{int(minor) + 1}\.?\s"
        end = next((i for i in range(start + 1, len(lines)) if re.match(following, lines[i])), len(lines))
        return lines[start:end]
    caption = re.compile(rf"(table|fig\.|figure)\s*{re.escape(label)}(\b|:|$)", re.IGNORECASE)
    wanted = "table" if kind == "table" else "fig"
    index = next(i for i, line in enumerate(lines) if caption.match(line.strip()) and line.strip().lower().startswith(wanted))
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
    right = {"model": "cnn_lstm", "task": "gender", "metric": "accuracy", "value": 0.9814, "source": "seed 000 Table I"}
    assert number_in_table(cited_block(text, right["source"]), right)
    for wrong in ({"model": "svm"}, {"metric": "precision"}, {"value": 0.98}):
        assert not number_in_table(cited_block(text, right["source"]), {**right, **wrong}), wrong
    text = next(paper_documents.glob(f"{get_preset('transfer_vgg16_resnet50').seed_document}.txt")).read_text()
    vgg_age = {"model": "vgg16", "task": "age_group", "metric": "accuracy", "value": 0.73, "source": "seed 003 Fig. 4.12"}
    assert number_in_table(cited_block(text, vgg_age["source"]), vgg_age)
    assert not number_in_table(cited_block(text, "seed 003 Fig. 4.7"), vgg_age)  # the gender report
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


@pytest.mark.parametrize("bad, message", [("epochs", "key=value"), ("nope=1", "no field"), ("epochs.x=1", "not a dict")])
def test_bad_overrides_are_named(bad, message):
    with pytest.raises((KeyError, ValueError), match=message):
        apply_overrides(get_preset("gra_net"), [bad])


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("True") is True and parse_value("resnet50") == "resnet50"


def test_unknown_preset_lists_choices():
    with pytest.raises(KeyError, match="cnn_lstm"):
        get_preset("vgg")


def test_listing_rows():
    rows = listing()
    assert [r["name"] for r in rows] == list(NAMES)
    assert rows[3]["seed_document"] == "003_49ef1d907f51e97c" and rows[3]["model"] == "transfer"
