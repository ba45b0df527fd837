"""AugmentSpec, presets, targets and preprocessing (paper 003 sec. 3.3; paper 000 sec. IV)."""

import numpy as np
import pandas as pd
import pytest

from agegender_tf.binning import ADIENCE8, LIFE_STAGES
from agegender_tf.experiments.presets import AUGMENT_PRESETS, get_augment_preset
from agegender_tf.pipelines.preprocess import apply_preprocess
from agegender_tf.pipelines.spec import AugmentSpec
from agegender_tf.pipelines.targets import class_weights, encode_targets, split_subset, usable_rows


def test_presets_cover_the_five_papers_and_round_trip():
    papers = {"cnn_lstm", "cnn_rnn_ensemble", "adience_cnn", "transfer_vgg16_resnet50", "gra_net"}
    assert set(AUGMENT_PRESETS) == papers | {"real_photos"}  # the kit's own spec for real photos beside them
    for name, spec in AUGMENT_PRESETS.items():
        assert spec.citation.startswith("paper 00" if name in papers else "the kit's"), name
        assert spec.resize_to is None and spec.crop_size is None, f"{name}: sizes are the model's facts"
        assert AugmentSpec.from_dict(spec.to_dict()) == spec
    seed003 = get_augment_preset("transfer_vgg16_resnet50")
    assert (seed003.rotation_range, seed003.width_shift_range, seed003.height_shift_range) == (30.0, 0.2, 0.2)
    assert seed003.horizontal_flip and seed003.fill_mode == "nearest" and seed003.validation_split == 0.3
    assert seed003.preprocess == "vgg16"
    facts = {"mode": "rescale", "input_size": (227, 227, 3), "resize_to": (256, 256), "crop_size": (227, 227)}
    assert get_augment_preset("adience_cnn").with_model_facts(facts).sizes(227) == ((256, 256), (227, 227))
    assert get_augment_preset("cnn_lstm").with_model_facts(facts).sizes(64) == ((72, 72), (64, 64))
    assert get_augment_preset("cnn_lstm").sizes(64) == ((64, 64), (64, 64))
    resnet = {"mode": "resnet50", "input_size": (224, 224, 3)}
    assert get_augment_preset("transfer_vgg16_resnet50").with_model_facts(resnet).preprocess == "resnet50"


def test_disabled_keeps_geometry_and_preprocessing():
    spec = get_augment_preset("cnn_lstm").replace(resize_to=256, crop_size=227)
    off = spec.disabled()
    assert spec.augments and not off.augments
    assert (off.resize_to, off.crop_size, off.preprocess) == (256, 227, "rescale")
    assert not off.random_crop and not off.horizontal_flip


@pytest.mark.parametrize("bad", [dict(preprocess="imagenet"), dict(fill_mode="edge"), dict(zoom_range=(1.2, 0.8)),
                                 dict(resize_to=256), dict(resize_to=200, crop_size=224), dict(validation_split=1.0),
                                 dict(rotation_range=-1)])
def test_spec_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        AugmentSpec(**bad)
    with pytest.raises(ValueError, match="unknown AugmentSpec fields"):
        AugmentSpec.from_dict({"flip": True})


def test_preprocess_modes_match_keras_and_backends():
    import keras
    import tensorflow as tf

    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    expected = keras.applications.vgg16.preprocess_input(x.copy())
    np.testing.assert_allclose(apply_preprocess(x, "vgg16"), expected, atol=1e-4)
    np.testing.assert_allclose(apply_preprocess(x, "resnet50"), keras.applications.resnet50.preprocess_input(x.copy()),
                               atol=1e-4)
    for mode in ("rescale", "vgg16", "standardize"):
        np.testing.assert_allclose(apply_preprocess(x, mode), apply_preprocess(tf.constant(x), mode).numpy(), atol=1e-4)
    std = apply_preprocess(x, "standardize")
    np.testing.assert_allclose(std.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    assert apply_preprocess(x, "rescale").max() <= 1.0


def _manifest():
    return pd.DataFrame({
        "path": [f"/x/{i}.jpg" for i in range(5)],
        "age": [3.0, 25.0, np.nan, 70.0, 15.0],
        "age_group": [None, None, "(25, 32)", None, None],
        "gender": ["female", "male", "male", None, "female"],
        "subject": list("abcde"), "source": "utkface",
    })


def test_targets_encoding_and_usable_rows_count_what_they_drop():
    m = _manifest()
    kept, dropped = usable_rows(m, ("gender", "age_group", "age"), ADIENCE8)
    assert dropped == {"no gender": 1, "no age": 1} and len(kept) == 3
    t = encode_targets(kept, ("gender", "age_group", "age"), ADIENCE8)
    np.testing.assert_array_equal(t["gender"], [0, 1, 0])  # GENDER_CLASSES: 0 female, 1 male
    np.testing.assert_array_equal(t["age_group"], [1, 4, 3])
    assert t["age"].dtype == np.float32
    assert encode_targets(kept, ("age_group",), LIFE_STAGES)["age_group"].tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match="lack a gender"):
        encode_targets(m, ("gender",))
    with pytest.raises(ValueError, match="needs a binning"):
        encode_targets(kept, ("age_group",))


def test_balanced_class_weights_make_every_class_weigh_alike():
    kept, _ = usable_rows(_manifest(), ("age_group",), ADIENCE8)  # 5 faces in classes 1, 4, 4, 7, 3
    eight = class_weights(kept, ("age_group",), ADIENCE8)
    assert eight == {1: 5 / 8, 3: 5 / 8, 4: 5 / 16, 7: 5 / 8, 0: 1.0, 2: 1.0, 5: 1.0, 6: 1.0}  # n / (k n_c)
    genders = pd.DataFrame({"gender": ["female"] * 3 + ["male"], "path": list("abcd")})
    weights = class_weights(genders, ("gender",))
    assert weights == {0: pytest.approx(4 / 6), 1: pytest.approx(2.0)}
    assert 3 * weights[0] == pytest.approx(1 * weights[1])  # each class's total weight is the same
    with pytest.raises(ValueError, match="one classification output"):
        class_weights(kept, ("gender", "age"))
    with pytest.raises(ValueError, match="one classification output"):
        class_weights(kept, ("age",))
    with pytest.raises(ValueError, match="unknown class weighting"):
        class_weights(genders, ("gender",), weighting="sqrt")


def test_split_subset_follows_image_data_generator_rule():
    m = _manifest()
    assert split_subset(m, 0.4, "validation")["subject"].tolist() == ["a", "b"]
    assert split_subset(m, 0.4, "training")["subject"].tolist() == ["c", "d", "e"]
