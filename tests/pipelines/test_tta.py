"""Test-time crops of paper 000 sec. VII: centre crop and 10-crop oversampling."""

import keras
import numpy as np
import pytest

from agegender_tf.pipelines.tta import center_crop, predict_tta, ten_crops


def test_ten_crops_are_corners_centre_and_mirrors():
    image = np.arange(6 * 8 * 1, dtype=np.float32).reshape(6, 8, 1)
    crops = ten_crops(image, 4)
    assert crops.shape == (10, 4, 4, 1)
    np.testing.assert_array_equal(crops[0], image[:4, :4])
    np.testing.assert_array_equal(crops[3], image[2:, 4:])
    np.testing.assert_array_equal(crops[4], image[1:5, 2:6])
    np.testing.assert_array_equal(crops[4], center_crop(image, 4))
    for k in range(5):
        np.testing.assert_array_equal(crops[5 + k], crops[k][:, ::-1])
    with pytest.raises(ValueError, match="larger than image"):
        ten_crops(image, 7)


def _model(multi):
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    gender = keras.layers.Dense(2, activation="softmax", name="gender")(x)
    if not multi:
        return keras.Model(inputs, gender)
    return keras.Model(inputs, {"gender": gender, "age": keras.layers.Dense(1, name="age")(x)})


@pytest.mark.parametrize("multi", [False, True])
def test_predict_tta_averages_the_ten_views(multi):
    keras.utils.set_random_seed(0)
    model = _model(multi)
    images = np.random.default_rng(0).uniform(0, 1, (3, 8, 8, 3)).astype(np.float32)
    over = predict_tta(model, images, 6, mode="oversample")
    manual = [model.predict(ten_crops(img, 6), verbose=0) for img in images]
    centre = predict_tta(model, images, 6, mode="center")
    if multi:
        np.testing.assert_allclose(over["gender"], [m["gender"].mean(axis=0) for m in manual], atol=1e-5)
        assert over["age"].shape == (3, 1) and centre["gender"].shape == (3, 2)
    else:
        np.testing.assert_allclose(over, [m.mean(axis=0) for m in manual], atol=1e-5)
        np.testing.assert_allclose(over.sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(centre, model.predict(images[:, 1:7, 1:7], verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="mode"):
        predict_tta(model, images, 6, mode="five")
