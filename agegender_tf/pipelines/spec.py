"""One augmentation spec, two backends (DESIGN.md, "Augmentation is one spec, two backends").

``AugmentSpec`` states what a paper does to its training images; ``generator.py`` turns it into a
Keras ``ImageDataGenerator`` and ``tfdata.py`` into a ``tf.data`` pipeline. The five source
papers' specs live beside their presets (``experiments.presets.AUGMENT_PRESETS``). They say how
images are augmented, not how large they are: the size, the resize-then-crop geometry and the value
mapping are the model's preprocessing facts (``models.preprocessing``), which ``with_model_facts``
puts into a spec (as timm's data config does), so a model and its pipeline cannot disagree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# Value mappings (``preprocess.py``), defined here once: the model registry checks its facts against them.
PREPROCESS_MODES = ("rescale", "vgg16", "resnet50", "standardize")
FILL_MODES = ("nearest", "reflect", "wrap", "constant")


@dataclass(frozen=True)
class AugmentSpec:
    """What a paper does to an image between the file and the model.

    Geometry follows Keras' ``ImageDataGenerator`` semantics so both backends agree:
    ``rotation_range`` in degrees (uniform in +-range), shifts as fractions of the size,
    ``zoom_range`` as (low, high) scale of the sampled input window (IDG's convention: >1 zooms
    out), ``brightness_range`` as a multiplicative (low, high) factor, ``noise_std`` Gaussian
    noise in 0..255 pixel units. ``resize_to`` then ``crop_size`` is resize-then-crop (256 -> 227);
    the paper presets leave both unset and ``with_model_facts`` takes them from the model.
    ``random_crop`` takes a random crop at training and the centre crop at evaluation
    (Levi-Hassner) where there is a crop. ``preprocess`` is the value mapping applied last
    (``preprocess.py``). ``validation_split`` is paper 003's ``ImageDataGenerator(validation_split=...)``.
    """

    horizontal_flip: bool = False
    rotation_range: float = 0.0
    width_shift_range: float = 0.0
    height_shift_range: float = 0.0
    zoom_range: tuple[float, float] = (1.0, 1.0)
    brightness_range: tuple[float, float] | None = None
    noise_std: float = 0.0
    fill_mode: str = "nearest"
    resize_to: int | None = None
    crop_size: int | None = None
    random_crop: bool = False
    preprocess: str = "rescale"
    validation_split: float = 0.0
    # Photos that are not studio crops (tf.data only, per training image before batching): Gaussian blur,
    # low resolution (downscaled by a factor in ``low_res_scale``, then back up), JPEG re-encoding at a
    # quality in ``jpeg_quality``, each with its probability; colour jitter (saturation and contrast
    # within 1 +- ``color_jitter``, hue within +- ``color_jitter`` / 10 of the colour wheel); greyscale.
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    low_res_prob: float = 0.0
    low_res_scale: tuple[float, float] = (0.3, 0.7)
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (25, 75)
    color_jitter: float = 0.0
    greyscale_prob: float = 0.0
    citation: str = ""

    def __post_init__(self):
        if self.preprocess not in PREPROCESS_MODES:
            raise ValueError(f"preprocess must be one of {PREPROCESS_MODES}, got {self.preprocess!r}")
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {self.fill_mode!r}")
        object.__setattr__(self, "zoom_range", tuple(float(z) for z in self.zoom_range))
        if len(self.zoom_range) != 2 or not 0 < self.zoom_range[0] <= self.zoom_range[1]:
            raise ValueError(f"zoom_range must be (low, high) with 0 < low <= high, got {self.zoom_range}")
        if self.brightness_range is not None:
            object.__setattr__(self, "brightness_range", tuple(float(b) for b in self.brightness_range))
        if (self.crop_size is None) != (self.resize_to is None):
            raise ValueError("resize_to and crop_size go together (resize, then crop)")
        if self.crop_size is not None and self.crop_size > self.resize_to:
            raise ValueError(f"crop_size {self.crop_size} exceeds resize_to {self.resize_to}")
        if not 0 <= self.validation_split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {self.validation_split}")
        for name in ("rotation_range", "width_shift_range", "height_shift_range", "noise_std", "color_jitter"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("blur_prob", "low_res_prob", "jpeg_prob", "greyscale_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a probability in [0, 1], got {getattr(self, name)}")
        for name in ("blur_sigma", "low_res_scale", "jpeg_quality"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {getattr(self, name)}")
        if self.low_res_scale[1] > 1 or self.jpeg_quality[1] > 100:
            raise ValueError("low_res_scale lies in (0, 1] and jpeg_quality in (0, 100]")

    @property
    def photo_augments(self) -> bool:
        """True when training degrades images as real photos are (blur, low resolution, JPEG, colour)."""
        return bool(self.blur_prob or self.low_res_prob or self.jpeg_prob or self.color_jitter or self.greyscale_prob)

    @property
    def augments(self) -> bool:
        """True when training draws anything at random."""
        return self != self.disabled()

    def replace(self, **changes) -> AugmentSpec:
        return dataclasses.replace(self, **changes)

    def disabled(self) -> AugmentSpec:
        """No random augmentation; same geometry (centre crop) and preprocessing."""
        return self.replace(
            horizontal_flip=False, rotation_range=0.0, width_shift_range=0.0, height_shift_range=0.0,
            zoom_range=(1.0, 1.0), brightness_range=None, noise_std=0.0, random_crop=False,
            blur_prob=0.0, low_res_prob=0.0, jpeg_prob=0.0, color_jitter=0.0, greyscale_prob=0.0,
        )

    def sizes(self, image_size: int | tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """(load size, output size) as (H, W) for a requested output ``image_size``.

        Without a crop both are ``image_size``. With resize-then-crop the load size keeps the
        ratio ``resize_to / crop_size`` (``scaled_load_size``): 256/227 at 64 px loads 72 px.
        """
        out = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size[:2])
        if self.crop_size is None:
            return out, out
        return scaled_load_size(out, (self.resize_to,) * 2, (self.crop_size,) * 2), out

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["zoom_range"] = list(self.zoom_range)
        data["brightness_range"] = None if self.brightness_range is None else list(self.brightness_range)
        for name in ("blur_sigma", "low_res_scale", "jpeg_quality"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> AugmentSpec:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown AugmentSpec fields {sorted(unknown)}")
        return cls(**data)

    def with_model_facts(self, facts: dict) -> AugmentSpec:
        """This augmentation for a model: its value mapping and resize-then-crop geometry
        (``models.preprocessing``: ``mode``, and ``resize_to``/``crop_size`` (H, W) when it crops)."""
        crops = facts.get("crop_size") is not None
        return self.replace(preprocess=facts["mode"], resize_to=facts["resize_to"][0] if crops else None,
                            crop_size=facts["crop_size"][0] if crops else None)


def scaled_load_size(out_size, load_size, crop_size) -> tuple[int, int]:
    """The (H, W) to load so that an ``out_size`` crop keeps the ratio of ``load_size`` to ``crop_size``
    (a paper's 256 -> 227): the one place that ratio is applied."""
    return tuple(int(round(o * load / crop)) for o, load, crop in zip(out_size, load_size, crop_size))
