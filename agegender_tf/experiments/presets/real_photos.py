"""The augmentation for photos that are not studio crops: the kit's own spec, not a paper's.

A face a user brings is blurred, small, JPEG-compressed, coloured by its camera and light, sometimes
grey, and a little turned. This spec keeps paper 001's mirror, rotation, zoom and brightness and adds
those degradations, each with its own probability (``AugmentSpec``'s photo fields). The bundled recipe
uses it (``cnn_rnn_ensemble --profile cpu_photos_blazeface``, as ``cpu_photos`` does); the paper presets
keep their papers' augmentation.
"""

from __future__ import annotations

from agegender_tf.pipelines.spec import AugmentSpec

NAME = "real_photos"

AUGMENT = AugmentSpec(
    horizontal_flip=True, rotation_range=10.0, zoom_range=(0.95, 1.05), brightness_range=(0.75, 1.25),
    blur_prob=0.2, blur_sigma=(0.5, 1.5), low_res_prob=0.25, low_res_scale=(0.3, 0.7),
    jpeg_prob=0.3, jpeg_quality=(25, 75), color_jitter=0.2, greyscale_prob=0.05,
    preprocess="rescale", citation="the kit's spec for real photos (not a paper's)",
)
