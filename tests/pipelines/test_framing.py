"""Training faces cut as the predictor cuts them: the pipeline's framed face equals ``training_crop`` to the
pixel, the boxes file joins the manifest with its misses counted, jitter and photo degradations stay
seeded, and a framed run records what it did."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from agegender_tf.data.face_boxes import BOX_COLUMNS, boxes_table, join_boxes, read_boxes
from agegender_tf.experiments.presets import AUGMENT_PRESETS, resolve
from agegender_tf.imaging import load_rgb
from agegender_tf.model_card import TRAINING_FRAMING, Framing
from agegender_tf.pipelines.framing import FaceCrop, framed_face, photo_degrade
from agegender_tf.pipelines.spec import AugmentSpec
from agegender_tf.pipelines.tfdata import make_dataset, resize_to_load_size
from agegender_tf.serving.faces import FaceBox, training_crop
from tests.fixtures import write_jpeg


@pytest.mark.parametrize("box", [(30, 40, 100, 110), (-10, 5, 120, 100), (100, 120, 90, 95)])
@pytest.mark.parametrize("margin, shift", [(-0.061, 0.088), (0.2, 0.0), (0.5, 0.1)])
def test_a_framed_face_is_the_predictors_crop(box, margin, shift):
    """Inside the image and past its edges (edge pixels repeated), every pixel the same."""
    image = np.random.default_rng(0).integers(0, 256, (200, 180, 3), dtype=np.uint8)
    expected = training_crop(image, FaceBox(*box), Framing(margin, shift))
    got = framed_face(tf.constant(image), tf.constant(box, tf.float32), FaceCrop(margin, shift), training=False)
    np.testing.assert_array_equal(got.numpy(), expected)


def test_no_box_means_the_whole_image_and_jitter_is_seeded():
    image = tf.constant(np.random.default_rng(1).integers(0, 256, (90, 80, 3), dtype=np.uint8))
    nan = tf.constant([np.nan] * 4, tf.float32)
    np.testing.assert_array_equal(framed_face(image, nan, FaceCrop(0.3), training=True).numpy(), image.numpy())
    crop = FaceCrop(0.0, 0.0, scale_std=0.05, shift_std=0.03, rotation_std=5.0)
    box = tf.constant([10, 10, 60, 60], tf.float32)
    one = framed_face(image, box, crop, True, tf.constant([3, 4]))
    again = framed_face(image, box, crop, True, tf.constant([3, 4]))
    other = framed_face(image, box, crop, True, tf.constant([5, 6]))
    np.testing.assert_array_equal(one.numpy(), again.numpy())
    assert one.shape != other.shape or not np.array_equal(one.numpy(), other.numpy())


def test_photo_degradations_are_seeded_and_keep_the_image_shape():
    spec = AUGMENT_PRESETS["real_photos"]
    assert spec.photo_augments and not spec.disabled().photo_augments
    image = tf.constant(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    outs = [photo_degrade(image, spec, tf.constant([s, 0])).numpy() for s in range(12)]
    assert all(o.shape == (64, 64, 3) and o.dtype == np.uint8 for o in outs)
    assert sum(not np.array_equal(o, image.numpy()) for o in outs) >= 6
    np.testing.assert_array_equal(photo_degrade(image, spec, tf.constant([3, 0])).numpy(), outs[3])
    everything = AugmentSpec(blur_prob=1.0, low_res_prob=1.0, jpeg_prob=1.0, greyscale_prob=1.0)
    grey = photo_degrade(image, everything, tf.constant([1, 1])).numpy().astype(int)
    assert np.abs(grey[..., 0] - grey[..., 1]).max() <= 8  # greyscale, then JPEG's small colour error
    with pytest.raises(ValueError, match="probability"):
        AugmentSpec(jpeg_prob=1.5)


def test_the_paper_presets_keep_their_own_augmentation():
    for name in ("cnn_lstm", "cnn_rnn_ensemble", "adience_cnn", "transfer_vgg16_resnet50", "gra_net"):
        assert not AUGMENT_PRESETS[name].photo_augments
        assert resolve(name).augment == name and resolve(name).face_crop is None
    for profile, detector in (("cpu_photos", "mtcnn"), ("cpu_photos_blazeface", "blazeface")):
        framed = resolve("cnn_rnn_ensemble", profile=profile)
        assert framed.augment == "real_photos" and framed.face_crop["detector"] == detector


def _boxes_fixture(tmp_path):
    faces = [write_jpeg(tmp_path / f"{i}_0_0_2017011{i}.jpg.chip.jpg", size=(80, 90), seed=i) for i in range(5)]
    found = [[FaceBox(10, 12, 50, 60, 0.99)], [], [FaceBox(5, 0, 70, 80, 0.9), FaceBox(0, 0, 10, 10, 0.5)],
             [FaceBox(20, 20, 30, 40, 0.95)]]
    table = boxes_table([p.name for p in faces[:4]], found)  # the last face is not in the boxes file
    path = tmp_path / "boxes_mtcnn.csv"
    table.to_csv(path, index=False)
    manifest = pd.DataFrame({"path": [str(p) for p in faces], "gender": ["male"] * 5, "age": [20.0] * 5})
    return faces, path, manifest


def test_boxes_join_the_manifest_and_misses_are_counted(tmp_path):
    faces, path, manifest = _boxes_fixture(tmp_path)
    assert list(read_boxes(path)["faces"]) == [1, 0, 2, 1]
    joined, counts = join_boxes(manifest, "utkface", "mtcnn", path)
    assert counts == {"detector": "mtcnn", "boxes_file": "data_manifests/utkface/boxes_mtcnn.csv", "faces": 5,
                      "with_box": 3, "no_face_found": 1, "not_listed": 1, "without_box_use": "the whole image"}
    assert joined.loc[2, list(BOX_COLUMNS)].tolist() == [5, 0, 70, 80]  # the largest face
    assert joined.loc[[1, 4], list(BOX_COLUMNS)].isna().all().all()
    (tmp_path / "bad.csv").write_text("file,x\n")
    with pytest.raises(ValueError, match="bad.csv: expected columns"):
        read_boxes(tmp_path / "bad.csv")


def test_the_evaluation_pipeline_feeds_the_predictors_faces(tmp_path):
    """Validation and test faces, framed, are what ``agegender predict`` feeds the network for the same
    photo: the detector's box, the training framing, the same resize."""
    faces, path, manifest = _boxes_fixture(tmp_path)
    joined, _ = join_boxes(manifest, "utkface", "mtcnn", path)
    framing = TRAINING_FRAMING["utkface"]["mtcnn"]
    crop = FaceCrop(framing.margin, framing.shift)
    spec = AugmentSpec(preprocess="rescale")
    batch = next(iter(make_dataset(joined, spec, image_size=32, batch_size=5, training=False, face_crop=crop)))[0]
    for i in (0, 2):
        row = joined.iloc[i]
        box = FaceBox(*(int(row[c]) for c in BOX_COLUMNS))
        expected = resize_to_load_size(tf.constant(training_crop(load_rgb(row["path"]), box, framing)), (32, 32))
        np.testing.assert_allclose(batch[i].numpy(), expected.numpy() / 255.0, atol=1e-6)
    def first_batch(seed):
        dataset = make_dataset(joined, AUGMENT_PRESETS["real_photos"], image_size=32, batch_size=5, training=True,
                               seed=seed, face_crop=FaceCrop(framing.margin, framing.shift, 0.02, 0.01, 2.0))
        return next(iter(dataset))[0].numpy()

    first = first_batch(3)
    np.testing.assert_array_equal(first, first_batch(3))  # seeded: the same first epoch from the same seed
    assert first.shape == (5, 32, 32, 3) and not np.array_equal(first, first_batch(4))


def test_detect_boxes_writes_the_boxes_file(tmp_path, capsys):
    """``agegender detect-boxes`` runs the predictor's detector over a dataset once and writes one row per
    image (no face in these generated images: every box empty and counted)."""
    import json

    from agegender_tf.cli import main
    from tests.fixtures import write_utkface_layout

    write_utkface_layout(tmp_path / "utkface" / "UTKFace", per_group=2)
    out = tmp_path / "boxes_haar.csv"
    assert main(["detect-boxes", "utkface", "--root", str(tmp_path / "utkface"), "--detector", "haar",
                 "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    table = read_boxes(out)
    assert summary["images"] == len(table) == 12 and summary["no_face_found"] == int((table["faces"] == 0).sum())
    assert table["file"].is_monotonic_increasing and table["file"].str.endswith(".jpg.chip.jpg").all()


@pytest.mark.parametrize("detector", ["blazeface", "mtcnn"])
def test_the_committed_boxes_are_what_detect_boxes_finds(utkface_root, tmp_path, capsys, detector):
    """``data_manifests/utkface/boxes_<detector>.csv`` holds what ``agegender detect-boxes`` finds today, here
    re-made for the first 40 images (by file name)."""
    from agegender_tf.cli import main
    from agegender_tf.data.face_boxes import boxes_path

    out = tmp_path / f"boxes_{detector}.csv"
    assert main(["detect-boxes", "utkface", "--root", str(utkface_root), "--detector", detector, "--limit", "40",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    fresh, committed = read_boxes(out), read_boxes(boxes_path("utkface", detector))
    assert len(committed) == 23708 and committed["file"].is_unique
    kept = committed.set_index("file").loc[fresh["file"]].reset_index()
    pd.testing.assert_frame_equal(fresh[["file", "faces"]], kept[["file", "faces"]])
    np.testing.assert_allclose(fresh[list(BOX_COLUMNS)].to_numpy(float), kept[list(BOX_COLUMNS)].to_numpy(float),
                               atol=1.0)
