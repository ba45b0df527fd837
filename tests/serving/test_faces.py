"""Faces in photos: Haar (paper 003) and MTCNN detection on real UTKFace and Adience photos, a clear
no-face result, and every kind of bad or odd image (unreadable, empty, cut short; CMYK, transparent, palette,
grayscale) named or converted."""

import numpy as np
import pytest
from PIL import Image

from agegender_tf import model_card
from agegender_tf.imaging import as_rgb_uint8, load_rgb
from agegender_tf.model_card import Framing
from agegender_tf.serving import faces
from agegender_tf.serving.faces import (
    FaceBox,
    FaceNotFound,
    align_by_eyes,
    crop_face,
    detect_faces,
    largest_face,
    training_crop,
)
from tests.fixtures import truncate, write_jpeg


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


# ------------------------------------------------------------------------------ bad and odd files
def test_cut_short_jpeg_is_refused_by_name(tmp_path):
    path = truncate(write_jpeg(tmp_path / "cut.jpg", size=200), keep_fraction=0.5)
    with pytest.raises(ValueError, match=r"cut\.jpg: corrupt or cut-short image"):
        load_rgb(path)
    with pytest.raises(ValueError, match="cut.jpg"):
        detect_faces(path)


@pytest.mark.parametrize("content, problem", [(b"", "empty file"), (b"hello, not an image", "not an image")])
def test_empty_and_non_image_files_are_named(tmp_path, content, problem):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"bad.jpg: {problem}"):
        load_rgb(path)


def test_odd_modes_load_as_rgb(tmp_path):
    source = Image.open(write_jpeg(tmp_path / "rgb.jpg", size=(48, 32)))
    source.convert("CMYK").save(tmp_path / "cmyk.jpg")
    rgba = source.convert("RGBA")
    rgba.putalpha(0)  # fully transparent: laid on white
    rgba.save(tmp_path / "alpha.png")
    source.convert("P").save(tmp_path / "palette.gif")
    source.convert("L").save(tmp_path / "gray.png")
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "one.png")
    for name in ("cmyk.jpg", "alpha.png", "palette.gif", "gray.png"):
        image = load_rgb(tmp_path / name)
        assert image.shape == (32, 48, 3) and image.dtype == np.uint8, name
    assert (load_rgb(tmp_path / "alpha.png") == 255).all()
    np.testing.assert_array_equal(load_rgb(tmp_path / "one.png"), [[[10, 20, 30]]])
    assert detect_faces(tmp_path / "one.png") == []


def test_pil_size_limit_does_not_refuse_a_big_photo(tmp_path, monkeypatch):
    """PIL refuses images above twice MAX_IMAGE_PIXELS (179 Mpx by default, so a 12000x9000 photo
    only warns); load_rgb uses its own limit. Shown with PIL's limit lowered below a small photo."""
    path = write_jpeg(tmp_path / "photo.jpg", size=(300, 200))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    assert load_rgb(path).shape == (200, 300, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored


def test_reduced_decode_keeps_at_least_max_side(tmp_path):
    path = write_jpeg(tmp_path / "big.jpg", size=(2400, 1800))
    image = load_rgb(path, max_side=500)
    assert image.shape == (450, 600, 3)  # decoded at 1/4: the smallest JPEG scale still >= 500 px


# ------------------------------------------------------------------------------------- arrays
def test_float_gray_rgba_and_int_arrays_convert():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(as_rgb_uint8(rgb / 255.0), rgb)
    np.testing.assert_array_equal(as_rgb_uint8(rgb.astype(np.int64)), rgb)
    assert as_rgb_uint8(rgb[..., 0]).shape == (20, 30, 3)
    assert as_rgb_uint8(rgb[..., :1]).shape == (20, 30, 3)
    opaque = np.concatenate([rgb, np.full((20, 30, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(as_rgb_uint8(opaque), rgb)
    clear = np.concatenate([rgb, np.zeros((20, 30, 1), np.uint8)], axis=2)
    assert (as_rgb_uint8(clear) == 255).all()


@pytest.mark.parametrize("array, message", [
    (np.zeros((0, 10, 3), np.uint8), "empty image array"),
    (np.zeros((0,), np.uint8), "empty image array"),
    (np.full((8, 8, 3), 2.0), "float image values must lie in 0..1"),
    (np.full((8, 8, 3), np.nan), "float image holds NaN"),
    (np.full((8, 8, 3), 300, np.int32), "integer image values must lie in 0..255"),
    (np.zeros((8, 8, 2), np.uint8), "expected an image"),
])
def test_bad_arrays_are_refused_with_a_message(array, message):
    with pytest.raises(ValueError, match=message):
        detect_faces(array)


def test_float_photo_detects_like_uint8(utkface_root):
    image = load_rgb(sorted((utkface_root / "UTKFace").glob("*.jpg"))[0])
    assert detect_faces(image / 255.0) == detect_faces(image) != []
    rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=2)
    face = largest_face(rgba)
    assert face.shape[2] == 3


# --------------------------------------------------------------------------------- large photos
def _photo_with_face(utkface_root, width, height, side, left, top):
    face = Image.open(sorted((utkface_root / "UTKFace").glob("*.jpg"))[3]).convert("RGB").resize((side, side))
    photo = Image.new("RGB", (width, height), (90, 110, 90))
    photo.paste(face, (left, top))
    return photo


def _overlap(box, left, top, side):
    """Intersection over union of ``box`` with the square (left, top, side)."""
    ix = max(0, min(box.x + box.width, left + side) - max(box.x, left))
    iy = max(0, min(box.y + box.height, top + side) - max(box.y, top))
    inter = ix * iy
    return inter / (box.area + side * side - inter)


@pytest.mark.parametrize("detector", ["haar", "mtcnn"])
def test_large_photo_is_detected_on_a_downscaled_copy(utkface_root, tmp_path, detector):
    """A 4000x3000 stand-in for the 12000x9000 photo (its memory is measured by
    ``python -m agegender_tf.bench faces-memory``): detection runs at 800 px here and the box comes
    back in the photo's own pixels, on the pasted face."""
    path = tmp_path / "big.jpg"
    _photo_with_face(utkface_root, 4000, 3000, 900, 2500, 1200).save(path, quality=90)
    for source in (path, load_rgb(path)):
        boxes = detect_faces(source, detector, max_side=800)
        assert boxes, f"{detector} found no face in the 4000x3000 photo"
        assert _overlap(boxes[0], 2500, 1200, 900) > 0.5, boxes[0]


def test_photo_without_face_gives_no_boxes(tmp_path):
    path = write_jpeg(tmp_path / "landscape.jpg", size=(640, 480))
    for detector in ("haar", "mtcnn"):
        assert detect_faces(path, detector) == []


# ----------------------------------------------------------------------------- training framing
def test_training_crop_is_square_and_pads_at_the_edge():
    image = np.arange(100 * 80 * 3, dtype=np.uint32).reshape(100, 80, 3).astype(np.uint8)
    crop = training_crop(image, FaceBox(20, 30, 40, 50), Framing(margin=0.1, shift=0.0))
    assert crop.shape == (60, 60, 3)  # side max(40, 50) * 1.2
    np.testing.assert_array_equal(crop, image[25:85, 10:70])
    edge = training_crop(image, FaceBox(0, 0, 40, 40), Framing(margin=0.25, shift=0.0))
    assert edge.shape == (60, 60, 3)
    np.testing.assert_array_equal(edge[:10], np.broadcast_to(edge[10], edge[:10].shape))  # first row repeated
    np.testing.assert_array_equal(edge[10:, 10:], image[:50, :50])


@pytest.mark.parametrize("detector, count", [("haar", 24), ("mtcnn", 12)])
def test_committed_framing_matches_the_training_faces(utkface_root, detector, count):
    """``TRAINING_FRAMING`` (measured on 200 faces) agrees with a fresh measurement on a sample."""
    paths = sorted((utkface_root / "UTKFace").glob("*.jpg"))[:count]
    measured = faces.measure_framing(paths, detector)
    committed = model_card.TRAINING_FRAMING["utkface"][detector]
    assert measured.faces >= count * 0.8
    assert abs(measured.margin - committed.margin) < 0.05 and abs(measured.shift - committed.shift) < 0.05
