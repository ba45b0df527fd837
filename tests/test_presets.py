"""Paper presets as data: five presets, their seed documents, paper numbers, smoke and --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from agegender_tf import models
from agegender_tf.binning import BINNINGS
from agegender_tf.experiments.presets import (
    PAPER_NUMBER_KEYS, PRESETS, apply_overrides, get_preset, listing, parse_value, smoke_version,
)
from agegender_tf.pipelines.spec import AUGMENT_PRESETS

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
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


@pytest.mark.parametrize("name", NAMES)
def test_seed_document_exists_and_contains_the_paper_numbers(name):
    preset = get_preset(name)
    path = SEEDS / f"{preset.seed_document}.txt"
    if not path.exists():
        pytest.skip("seed documents not present")
    text = path.read_text()
    for row in preset.paper_numbers:
        value = row["value"]
        candidates = {f"{value}", f"{value:.2f}", f"{value * 100:.1f}%", f"{value:.4f}"}
        assert any(c in text for c in candidates), f"{name}: {row} not found in {path.name}"


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
