"""Haar-cascade faces (paper 003) on real UTKFace and Adience photos, and a clear no-face result."""

import numpy as np
import pytest

from agegender_tf.faces import FaceBox, FaceNotFound, align_by_eyes, crop_face, detect_faces, largest_face, load_rgb


def test_flat_grey_image_has_no_face():
    grey = np.full((160, 160, 3), 128, np.uint8)
    assert detect_faces(grey) == []
    with pytest.raises(FaceNotFound, match="found no face"):
        largest_face(grey)


def test_crop_face_margin_is_clipped_to_the_image():
    image = np.arange(100 * 80 * 3, dtype=np.uint8).reshape(100, 80, 3)
    crop = crop_face(image, FaceBox(10, 20, 40, 50), margin=0.5)
    assert crop.shape == (95, 70, 3)  # top and left clipped at 0; bottom 20 + 50 + 25
    np.testing.assert_array_equal(crop, image[0:95, 0:70])


def test_unreadable_photo_names_the_file(tmp_path):
    with pytest.raises(ValueError, match="nope.jpg"):
        detect_faces(tmp_path / "nope.jpg")


def _most_found(paths):
    found = [detect_faces(p) for p in paths]
    return sum(bool(f) for f in found), found


def test_faces_found_in_real_utkface_photos(utkface_root):
    paths = sorted((utkface_root / "UTKFace").glob("*.jpg"))[:12]
    hits, found = _most_found(paths)
    assert hits >= 8, f"{hits}/12 UTKFace photos with a face"
    box = next(f[0] for f in found if f)
    assert box.width >= 60  # aligned crops: the face fills most of the 200x200 image


def test_faces_found_in_real_adience_photos(adience_root):
    paths = sorted(adience_root.glob("faces/*/*.jpg"))[:12]
    hits, _ = _most_found(paths)
    assert hits >= 9, f"{hits}/12 Adience photos with a face"
    face = largest_face(paths[0], margin=0.1, align=True)
    assert face.ndim == 3 and face.shape[2] == 3 and min(face.shape[:2]) >= 30
    image = load_rgb(paths[0])
    aligned, angle = align_by_eyes(image, detect_faces(image)[0])
    assert aligned.shape == image.shape and (angle is None or abs(angle) < 45)
