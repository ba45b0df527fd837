import numpy as np
import pandas as pd
import pytest

from agegender_tf.binning import ADIENCE8, DECADES, LIFE_STAGES, age_classes, get_binning


def test_life_stages_match_seed_003_boundaries():
    ages = [0, 9, 10, 19, 20, 59, 60, 116]
    assert LIFE_STAGES.to_label(ages) == [
        "Child", "Child", "Adolescence", "Adolescence", "Adult", "Adult", "Senior", "Senior"]


def test_adience8_groups_and_gap_policy():
    inside = {1: "(0, 2)", 5: "(4, 6)", 10: "(8, 12)", 17: "(15, 20)", 30: "(25, 32)",
              40: "(38, 43)", 50: "(48, 53)", 80: "(60, 100)"}
    for age, label in inside.items():
        assert ADIENCE8.to_label(age) == label
    gaps = {3: "(4, 6)", 7: "(8, 12)", 13: "(8, 12)", 14: "(15, 20)", 22: "(15, 20)",
            23: "(25, 32)", 34: "(25, 32)", 35: "(38, 43)", 45: "(38, 43)", 46: "(48, 53)",
            56: "(48, 53)", 57: "(60, 100)"}
    for age, label in gaps.items():
        assert ADIENCE8.to_label(age) == label, age


def test_unknown_age_is_minus_one_and_decades_cap():
    assert ADIENCE8.to_class(float("nan")) == -1
    assert DECADES.to_label([0, 95, 116]) == ["0-9", "90+", "90+"]
    assert DECADES.num_classes == 10


def test_age_classes_prefers_native_group_label():
    manifest = pd.DataFrame({"age": [28.5, 40.0, np.nan], "age_group": ["(25, 32)", None, None]})
    np.testing.assert_array_equal(age_classes(manifest, ADIENCE8), [4, 5, -1])
    np.testing.assert_array_equal(age_classes(manifest, LIFE_STAGES), [2, 2, -1])


def test_unknown_binning_names_the_choices():
    with pytest.raises(KeyError, match="life_stages"):
        get_binning("quartiles")
