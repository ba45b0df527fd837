"""Test-time crops (paper 000 sec. VII): centre crop, and 10-crop oversampling averaged.

Images come in already resized (e.g. 256) and preprocessed pixel-wise; crops are taken from them.
"""

from __future__ import annotations

import numpy as np


def center_crop(images: np.ndarray, crop: int) -> np.ndarray:
    """Centre ``crop`` x ``crop`` window of an HWC image or NHWC batch."""
    height, width = images.shape[-3], images.shape[-2]
    if crop > min(height, width):
        raise ValueError(f"crop {crop} larger than image {height}x{width}")
    top, left = (height - crop) // 2, (width - crop) // 2
    return images[..., top:top + crop, left:left + crop, :]


def ten_crops(image: np.ndarray, crop: int) -> np.ndarray:
    """[10, crop, crop, C]: four corners and the centre, then their horizontal mirrors."""
    height, width = image.shape[:2]
    if crop > min(height, width):
        raise ValueError(f"crop {crop} larger than image {height}x{width}")
    corners = [(0, 0), (0, width - crop), (height - crop, 0), (height - crop, width - crop)]
    crops = [image[top:top + crop, left:left + crop] for top, left in corners] + [center_crop(image, crop)]
    crops += [c[:, ::-1] for c in crops]
    return np.stack(crops)


def predict_tta(model, images: np.ndarray, crop: int, mode: str = "center", batch_size: int = 32):
    """Model probabilities with centre crop or 10-crop oversampling (mean over the 10 views).

    Works for single-output models (array) and multi-output models (dict of arrays).
    """
    images = np.asarray(images, dtype=np.float32)
    if mode == "center":
        return model.predict(center_crop(images, crop), batch_size=batch_size, verbose=0)
    if mode != "oversample":
        raise ValueError(f"mode must be 'center' or 'oversample', got {mode!r}")
    views = np.concatenate([ten_crops(image, crop) for image in images])
    predictions = model.predict(views, batch_size=batch_size, verbose=0)

    def average(p):
        p = np.asarray(p)
        return p.reshape(len(images), 10, *p.shape[1:]).mean(axis=1)

    if isinstance(predictions, dict):
        return {name: average(p) for name, p in predictions.items()}
    if isinstance(predictions, (list, tuple)):
        return [average(p) for p in predictions]
    return average(predictions)
