"""The BlazeFace detector: every face of a photo of several real UTKFace faces found, boxes in the
photo's own pixels, a tight face crop found without padding, its committed framing, and the
benchmark that compares the detectors."""

import numpy as np
import pytest

from agegender_tf import model_card
from agegender_tf.bench.detectors import bench_detectors, faces_matched, overlap, several_faces_photo
from agegender_tf.imaging import load_rgb
from agegender_tf.serving import DETECTORS, blazeface, faces


def _utkface(utkface_root, count):
    return sorted(str(p) for p in (utkface_root / "UTKFace").glob("*.jpg"))[:count]


def test_blazeface_is_selectable_beside_mtcnn_and_haar():
    assert {"mtcnn", "haar", "blazeface"} <= set(DETECTORS)
    assert blazeface.model_path().name == "face_detection_short_range.tflite"
    faces.require_detector("blazeface")
    assert faces.detect_faces(np.full((200, 300, 3), 128, np.uint8), "blazeface") == []


@pytest.mark.realdata
@pytest.mark.parametrize("width", [500, 2000])
def test_blazeface_finds_every_face_of_a_group_photo(utkface_root, width):
    photo, squares = several_faces_photo(_utkface(utkface_root, 12), width)
    boxes = faces.detect_faces(photo, "blazeface")
    assert faces_matched(boxes, squares) == len(squares) == len(boxes), (boxes, squares)
    for box in boxes:  # in the photo's own pixels (a 2000 px photo is detected on a 1600 px copy)
        best = max(squares, key=lambda s: overlap(box, s))
        assert overlap(box, best) > 0.4 and abs(box.width - best[2]) < 0.35 * best[2], (box, best)
        assert box.score is not None and 0.5 < box.score <= 1
        assert 0 <= box.x and box.x + box.width <= photo.shape[1] and box.y + box.height <= photo.shape[0]


@pytest.mark.realdata
def test_blazeface_boxes_scale_back_from_a_file(utkface_root, tmp_path):
    """From a file decoded at a reduced scale, the boxes still come back in the file's pixels."""
    from PIL import Image

    photo, squares = several_faces_photo(_utkface(utkface_root, 6), 2400, per_row=3)
    Image.fromarray(photo).save(tmp_path / "group.jpg", quality=90)
    boxes = faces.detect_faces(tmp_path / "group.jpg", "blazeface", max_side=1200)
    assert faces_matched(boxes, squares) == len(squares)


@pytest.mark.realdata
def test_blazeface_finds_the_face_of_tight_crops(utkface_root, adience_root):
    """UTKFace's 200x200 aligned faces and Adience's crops fill the image: found with no padding."""
    assert faces.DETECT_PAD["blazeface"] == 0.0
    paths = _utkface(utkface_root, 12) + sorted(str(p) for p in adience_root.glob("faces/*/*.jpg"))[:12]
    found = [faces.detect_faces(load_rgb(p), "blazeface") for p in paths]
    assert sum(bool(f) for f in found) >= 23, [len(f) for f in found]


@pytest.mark.realdata
def test_blazeface_framing_is_committed_and_matches(utkface_root):
    committed = model_card.TRAINING_FRAMING["utkface"]["blazeface"]
    assert committed.faces >= 190
    measured = faces.measure_framing(_utkface(utkface_root, 24), "blazeface")
    assert measured.faces >= 22
    assert abs(measured.margin - committed.margin) < 0.05 and abs(measured.shift - committed.shift) < 0.05


@pytest.mark.realdata
def test_bench_detectors_reports_each_detector(real_data_home):
    report = bench_detectors(real_data_home, ["blazeface", "haar"], sizes=(500,), faces_per_photo=4, adience=3,
                             repeats=1, first_answer=False)
    for name in ("blazeface", "haar"):
        row = report["detectors"][name]
        assert row["500"]["photos_per_s"] > 0 and row["500"]["faces_pasted"] == 4
        assert row["adience"]["crops"] == 3
    assert report["detectors"]["blazeface"]["500"]["faces_found"] == 4


def test_bench_predict_times_the_detectors_named(utkface_root, adience_root, capsys):
    """``python -m agegender_tf.bench predict --detector NAME`` times detection on photos of several sizes."""
    import json

    from agegender_tf.bench.cli import main

    assert main(["predict", "--root", str(utkface_root), "--detector", "haar", "--adience", "2", "--repeats", "1",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(report["detectors"]) == ["haar"]
    haar = report["detectors"]["haar"]
    assert {"500", "1000", "2000"} <= set(haar) and haar["adience"]["crops"] == 2
