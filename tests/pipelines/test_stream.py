"""The streaming mode of the tf.data pipeline (``pipelines/stream.py``): the same faces and labels as the
in-memory mode, seeded and reshuffled like it, packed once and reused, a changed file packs anew, and the
mode a run picks by itself."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from agegender_tf.binning import LIFE_STAGES
from agegender_tf.data.readers import read_dataset
from agegender_tf.experiments.presets import get_augment_preset
from agegender_tf.pipelines import stream
from agegender_tf.pipelines.framing import FaceCrop
from agegender_tf.pipelines.spec import AugmentSpec
from agegender_tf.pipelines.tfdata import make_dataset
from tests.fixtures import write_jpeg


@pytest.fixture(scope="module")
def utk(tmp_path_factory):
    """Twenty-three 48x48 JPEGs in UTKFace's layout (23 rows: shards of uneven length)."""
    root = tmp_path_factory.mktemp("utk")
    for i in range(23):
        write_jpeg(root / "UTKFace" / f"{5 + 3 * i}_{i % 2}_{i % 5}_201701{i:011d}.jpg.chip.jpg", size=48, seed=i)
    return read_dataset("utkface", root).manifest


def _batches(manifest, mode, folder, **kw):
    kw = {"image_size": 40, "batch_size": 5, "training": False, **kw}
    return [(np.asarray(x), {k: np.asarray(v) for k, v in y.items()} if isinstance(y, dict) else np.asarray(y))
            for x, y in make_dataset(manifest, kw.pop("spec", AugmentSpec()), mode=mode, stream_dir=folder, **kw)]


def _one_shard_per_face(monkeypatch):
    monkeypatch.setattr(stream, "SHARD_BYTES", 1)  # as many shards as faces allow (up to MAX_SHARDS)
    monkeypatch.setattr(stream, "MAX_SHARDS", 4)


@pytest.mark.parametrize("outputs", [("gender",), ("gender", "age_group", "age")])
def test_stream_gives_the_memory_paths_faces_and_labels_in_order(utk, tmp_path, monkeypatch, outputs):
    _one_shard_per_face(monkeypatch)
    spec = get_augment_preset("cnn_lstm").replace(resize_to=256, crop_size=227)  # loads 45 px for 40
    kw = dict(outputs=outputs, binning=LIFE_STAGES, spec=spec)
    memory, streamed = _batches(utk, "memory", tmp_path, **kw), _batches(utk, "stream", tmp_path, **kw)
    assert len(memory) == len(streamed) == 5
    for (xm, ym), (xs, ys) in zip(memory, streamed):
        np.testing.assert_array_equal(xm, xs)
        ym, ys = (y if isinstance(y, dict) else {"y": y} for y in (ym, ys))
        for key in ym:
            np.testing.assert_array_equal(ym[key], ys[key])
    (pack,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    meta = json.loads((pack / stream.DONE_FILE).read_text())
    assert meta["faces"] == 23 and meta["shards"] == 4 and meta["load_size"] == [45, 45]


def test_stream_training_is_seeded_reshuffled_and_sees_every_face(utk, tmp_path, monkeypatch):
    _one_shard_per_face(monkeypatch)
    kw = dict(image_size=40, batch_size=23, training=True, seed=7, outputs=("age",))
    spec = get_augment_preset("transfer_vgg16_resnet50")
    first = make_dataset(utk, spec, mode="stream", stream_dir=tmp_path, **kw)
    second = make_dataset(utk, spec, mode="stream", stream_dir=tmp_path, **kw)
    (xa, ya), (xb, yb) = next(iter(first)), next(iter(second))
    np.testing.assert_array_equal(xa, xb)  # the same seed, the same epoch
    np.testing.assert_array_equal(ya, yb)
    (xc, yc) = next(iter(first))  # the next epoch: another order, the same faces
    assert not np.array_equal(ya, yc)
    np.testing.assert_array_equal(np.sort(ya), np.sort(utk["age"].to_numpy(np.float32)))
    np.testing.assert_array_equal(np.sort(yc), np.sort(ya))


def test_the_pack_is_reused_and_a_changed_file_packs_anew(utk, tmp_path):
    paths = utk["path"].tolist()
    first = _batches(utk, "stream", tmp_path)
    (pack,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    written = (pack / stream.DONE_FILE).stat().st_mtime_ns
    assert [x for x, _ in _batches(utk, "stream", tmp_path)][0].tolist() == first[0][0].tolist()
    assert (pack / stream.DONE_FILE).stat().st_mtime_ns == written  # reused, not written again
    _, meta = stream.ensure_pack(paths, None, (40, 40), tmp_path)
    assert meta["reused"] is True
    stat = os.stat(paths[0])
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))  # the file "changed"
    assert stream.pack_key(paths, (40, 40)) != pack.name
    _batches(utk, "stream", tmp_path)
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2
    assert stream.pack_key(paths, (32, 32)) != stream.pack_key(paths, (40, 40))  # another load size


def test_framed_stream_carries_whole_images_and_their_boxes(utk, tmp_path):
    framed = utk.assign(box_x=8.0, box_y=6.0, box_w=24.0, box_h=30.0)
    framed.loc[3, ["box_x", "box_y", "box_w", "box_h"]] = np.nan  # no face found: the whole image
    crop = FaceCrop(0.2, 0.05)
    memory = _batches(framed, "memory", tmp_path, face_crop=crop, image_size=32)
    streamed = _batches(framed, "stream", tmp_path, face_crop=crop, image_size=32)
    for (xm, _), (xs, _) in zip(memory, streamed):
        np.testing.assert_array_equal(xm, xs)
    (pack,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert json.loads((pack / stream.DONE_FILE).read_text())["load_size"] is None  # whole images


def test_auto_streams_only_above_the_threshold():
    assert stream.choose_mode(None, 23_708, (256, 256)) == "memory"  # UTKFace, the largest load size
    assert stream.choose_mode("auto", stream.STREAM_ABOVE_FACES + 1, (64, 64)) == "stream"
    assert stream.choose_mode("auto", 45_000, (256, 256)) == "stream"  # 8.8 GB decoded: past the budget
    assert stream.choose_mode("memory", 10 ** 6, (64, 64)) == "memory"
    assert stream.choose_mode("stream", 3, (64, 64)) == "stream"
    with pytest.raises(ValueError, match="choose from"):
        stream.choose_mode("disk", 3, (64, 64))


def test_a_bad_file_keeps_no_pack(utk, tmp_path):
    bad = tmp_path / "data" / "1_0_0_20170101000000000.jpg.chip.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"not a jpeg")
    manifest = pd.concat([utk, utk.iloc[:1].assign(path=str(bad))], ignore_index=True)
    with pytest.raises(ValueError, match="1 unreadable"):
        _batches(manifest, "stream", tmp_path / "packs")
    assert not any((tmp_path / "packs").iterdir())
