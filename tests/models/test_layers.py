"""Custom layers: the paper's formulas against NumPy references, configs, and .keras save/reload."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import agegender_tf.models  # noqa: F401  (registers the custom layers)
from agegender_tf.models.layers import AttentionMaskActivation, GatedAttention, LocalResponseNormalization, UnitInterval


def _lrn_reference(x, depth, alpha, beta, bias):
    radius = depth // 2
    channels = x.shape[-1]
    out = np.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - radius), min(channels, c + radius + 1)
        window = np.sum(x[..., lo:hi] ** 2, axis=-1)
        out[..., c] = x[..., c] / (bias + alpha / depth * window) ** beta
    return out


def test_lrn_matches_caffe_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(scale=20.0, size=(2, 4, 5, 7)).astype("float32")
    layer = LocalResponseNormalization(depth=5, alpha=1e-2, beta=0.75, bias=2.0)
    expected = _lrn_reference(x.astype("float64"), 5, 1e-2, 0.75, 2.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-5)


def test_lrn_rejects_even_depth():
    with pytest.raises(ValueError, match="odd"):
        LocalResponseNormalization(depth=4)


def test_mixed_attention_is_sigmoid():
    x = np.linspace(-3, 3, 2 * 3 * 3 * 4, dtype="float32").reshape(2, 3, 3, 4)
    out = keras.ops.convert_to_numpy(AttentionMaskActivation("mixed")(x))
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-x)), rtol=1e-6)


def test_channel_attention_has_unit_l2_norm_per_position():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 3, 6)).astype("float32")
    out = keras.ops.convert_to_numpy(AttentionMaskActivation("channel")(x))
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out, x / np.linalg.norm(x, axis=-1, keepdims=True), rtol=1e-4)


def test_spatial_attention_standardises_each_channel_then_sigmoid():
    rng = np.random.default_rng(2)
    x = rng.normal(loc=5.0, scale=3.0, size=(2, 4, 4, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(AttentionMaskActivation("spatial")(x))
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = x.std(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-(x - mean) / std)), rtol=1e-4)


def test_attention_activation_rejects_unknown_kind():
    with pytest.raises(ValueError, match="mixed"):
        AttentionMaskActivation("softmax")


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
def test_gated_attention_follows_eq3(gamma):
    rng = np.random.default_rng(3)
    mask = rng.uniform(size=(2, 3, 3, 4)).astype("float32")
    trunk = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    out = keras.ops.convert_to_numpy(GatedAttention(initial_gate=gamma)([mask, trunk]))
    np.testing.assert_allclose(out, (gamma + (1 - gamma) * mask) * trunk, rtol=1e-6)
    if gamma == 1.0:  # no effect of the mask branch (paper 004 sec. 6.2 table)
        np.testing.assert_allclose(out, trunk, rtol=1e-6)


def test_gate_is_trainable_and_clipped_to_unit_interval():
    layer = GatedAttention(initial_gate=0.9)
    layer.build([(None, 2, 2, 3), (None, 2, 2, 3)])
    assert [w.name for w in layer.trainable_weights] == ["gamma"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(UnitInterval()(np.array([-0.5, 0.4, 1.7]))), [0.0, 0.4, 1.0])
    mask = keras.Input((2, 2, 3))
    trunk = keras.Input((2, 2, 3))
    model = keras.Model([mask, trunk], GatedAttention(initial_gate=0.9, name="gate")([mask, trunk]))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=100.0), loss="mse")
    ones = np.ones((4, 2, 2, 3), "float32")
    model.train_on_batch([np.zeros_like(ones), ones], np.full_like(ones, 10.0))  # pushes gamma far above 1
    assert float(keras.ops.convert_to_numpy(model.get_layer("gate").gamma)) == 1.0


def test_gate_rejects_out_of_range_and_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        GatedAttention(initial_gate=1.5)
    with pytest.raises(ValueError, match="same shape"):
        GatedAttention()([keras.Input((2, 2, 3)), keras.Input((2, 2, 4))])


LAYER_CASES = [
    ("lrn", lambda: LocalResponseNormalization(depth=3, alpha=1e-3, beta=0.5, bias=1.5, name="custom")),
    ("mixed", lambda: AttentionMaskActivation("mixed", name="custom")),
    ("channel", lambda: AttentionMaskActivation("channel", epsilon=1e-5, name="custom")),
    ("spatial", lambda: AttentionMaskActivation("spatial", name="custom")),
]


@pytest.mark.parametrize("case, make_layer", LAYER_CASES, ids=[case for case, _ in LAYER_CASES])
def test_single_input_layer_saves_and_reloads(tmp_path, case, make_layer):
    inputs = keras.Input((4, 4, 6))
    x = keras.layers.Conv2D(6, 1)(inputs)
    model = keras.Model(inputs, make_layer()(x))
    batch = np.random.default_rng(4).normal(size=(2, 4, 4, 6)).astype("float32")
    path = tmp_path / f"{case}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.get_layer("custom").get_config() == model.get_layer("custom").get_config()
    np.testing.assert_allclose(reloaded.predict(batch, verbose=0), model.predict(batch, verbose=0), rtol=1e-6)


def test_gated_attention_saves_and_reloads_with_its_gate(tmp_path):
    mask = keras.Input((3, 3, 2))
    trunk = keras.Input((3, 3, 2))
    model = keras.Model([mask, trunk], GatedAttention(initial_gate=0.25, name="gate")([mask, trunk]))
    model.get_layer("gate").gamma.assign(0.7)
    path = tmp_path / "gate.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert float(keras.ops.convert_to_numpy(reloaded.get_layer("gate").gamma)) == pytest.approx(0.7)
    assert reloaded.get_layer("gate").get_config()["initial_gate"] == 0.25
    rng = np.random.default_rng(5)
    inputs = [rng.uniform(size=(2, 3, 3, 2)).astype("float32"), rng.normal(size=(2, 3, 3, 2)).astype("float32")]
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0), rtol=1e-6)


def test_layers_keep_float16_under_mixed_precision():
    x = np.random.default_rng(6).normal(scale=300.0, size=(1, 2, 2, 8)).astype("float16")
    policy = "mixed_float16"
    for layer in (
        LocalResponseNormalization(dtype=policy),
        AttentionMaskActivation("channel", dtype=policy),
        AttentionMaskActivation("spatial", dtype=policy),
    ):
        out = layer(keras.ops.convert_to_tensor(x))
        assert keras.backend.standardize_dtype(out.dtype) == "float16"
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))
