"""Near-duplicate photos (re-encoded, re-cropped copies) are found and kept on one side of a split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from agegender_tf.data import near_duplicates
from agegender_tf.data.hashing import FileMemo, add_content_hashes, hash_images
from agegender_tf.data.images import pool_map
from agegender_tf.data.splits import make_utkface_split
from tests.fixtures import write_jpeg


def _recode(source, target, quality=40, crop=0, brightness=1.0):
    """Save ``source`` again as UTKFace's re-encoded copies are: other quality, a slight crop, a colour change."""
    with Image.open(source) as image:
        image = image.convert("RGB")
        if crop:
            image = image.crop((crop, crop, image.width - crop, image.height - crop)).resize(image.size)
        if brightness != 1.0:
            image = Image.fromarray(np.clip(np.asarray(image, np.float32) * brightness, 0, 255).astype(np.uint8))
        image.save(target, format="JPEG", quality=quality)
    return target


def test_recoded_copies_are_near_and_other_photos_are_far(tmp_path):
    original = write_jpeg(tmp_path / "a.jpg", size=200, seed=1)
    copies = [_recode(original, tmp_path / "a_q40.jpg"), _recode(original, tmp_path / "a_crop.jpg", crop=3),
              _recode(original, tmp_path / "a_dark.jpg", quality=70, brightness=0.8)]
    others = [write_jpeg(tmp_path / f"other{i}.jpg", size=200, seed=10 + i) for i in range(3)]
    hashes = hash_images([original, *copies, *others], workers=1)
    assert hashes.shape == (7, 4)
    pairs = near_duplicates.close_pairs(hashes)
    linked = {(int(i), int(j)) for i, j, _ in pairs}
    assert {(0, 1), (0, 2), (0, 3)} <= linked
    assert not any(j >= 4 or i >= 4 for i, j in linked), f"unrelated photos linked: {pairs}"
    assert all(0 <= d <= near_duplicates.NEAR_DUPLICATE_DISTANCE for d in pairs[:, 2])


def test_group_ids_follow_chains_and_leave_singletons_alone():
    names = ["c", "a", "b", "d", "e"]
    pairs = np.array([[0, 1, 3], [1, 2, 9]])  # c-a, a-b: one chain; d and e alone
    assert near_duplicates.group_ids(names, pairs) == ["a", "a", "a", None, None]


def _utkface_like(tmp_path, count=60):
    rows = []
    for i in range(count):
        age, gender = 5 + (i * 7) % 80, i % 2
        path = write_jpeg(tmp_path / f"{age}_{gender}_0_2017{i:011d}.jpg.chip.jpg", size=200, seed=100 + i)
        rows.append({"path": str(path), "file": path.name, "age": float(age),
                     "gender": "female" if gender else "male"})
    for k in range(6):  # six photos saved again under another name, with another age label
        source = rows[k * 9]
        target = tmp_path / f"{int(source['age']) + 1}_{k % 2}_0_2018{k:011d}.jpg.chip.jpg"
        _recode(source["path"], target, quality=35, crop=2)
        rows.append({**source, "path": str(target), "file": target.name, "age": source["age"] + 1})
    return pd.DataFrame(rows)


def test_split_keeps_each_near_duplicate_group_on_one_side(tmp_path):
    manifest = add_content_hashes(_utkface_like(tmp_path), workers=1)
    pairs = near_duplicates.pairs_table(manifest, workers=1)
    assert len(pairs) >= 6 and list(pairs.columns) == ["first", "second", "distance"]
    assert (pairs["first"] < pairs["second"]).all()
    grouped = near_duplicates.add_groups(manifest, pairs)
    split = make_utkface_split(grouped, seed=3).set_index("file")["split"]
    for _, group in grouped.dropna(subset=[near_duplicates.GROUP_COLUMN]).groupby(near_duplicates.GROUP_COLUMN):
        assert split[group["file"]].nunique() == 1, f"group {list(group['file'])} crosses the split"
    frame = grouped.assign(split=grouped["file"].map(split))
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    assert near_duplicates.near_leaks(train, test, ).empty


def test_near_leaks_names_the_test_and_training_files(tmp_path):
    original = write_jpeg(tmp_path / "train.jpg", size=120, seed=5)
    copy = _recode(original, tmp_path / "test.jpg")
    other = write_jpeg(tmp_path / "test_other.jpg", size=120, seed=6)
    leaks = near_duplicates.near_leaks(pd.DataFrame({"path": [str(original)]}),
                                       pd.DataFrame({"path": [str(copy), str(other)]}))
    assert leaks[["test_path", "train_path"]].values.tolist() == [[str(copy), str(original)]]


def test_committed_pairs_file_is_well_formed():
    table = near_duplicates.read_pairs(near_duplicates.committed_pairs_path("utkface"))
    assert len(table) > 0 and (table["first"] < table["second"]).all()
    assert table["distance"].between(0, near_duplicates.NEAR_DUPLICATE_DISTANCE).all()
    assert not table.duplicated(["first", "second"]).any()


def test_leak_check_counts_each_kind_of_leak_per_boundary(tmp_path):
    from agegender_tf.data.splits import leak_check

    faces = [write_jpeg(tmp_path / f"f{i}.jpg", size=200, seed=40 + i) for i in range(6)]
    recoded = _recode(faces[0], tmp_path / "f0_again.jpg", quality=30, crop=2)
    byte_copy = tmp_path / "f1_copy.jpg"
    byte_copy.write_bytes(faces[1].read_bytes())

    def part(paths, subjects):
        return pd.DataFrame({"path": [str(p) for p in paths], "subject": subjects})

    clean = leak_check({"train": part(faces[:3], ["a", "b", "c"]), "val": part(faces[3:4], ["d"]),
                        "test": part(faces[4:], ["e", "f"])})
    assert clean["ok"] and set(clean["boundaries"]) == {"train/val", "train/test", "val/test"}
    leaky = leak_check({"train": part(faces[:3], ["a", "b", "c"]), "val": part(faces[3:4], ["d"]),
                        "test": part([recoded, byte_copy, faces[4]], ["x", "y", "c"])})
    assert not leaky["ok"]
    counts = leaky["boundaries"]["train/test"]
    assert counts["subject"] == 1 and counts["content_hash"] == 1 and counts["near_duplicate"] >= 2
    assert ["f0_again.jpg", "f0.jpg"] in [example[:2] for example in counts["examples"]]
    assert leaky["boundaries"]["val/test"]["near_duplicate"] == 0


def test_file_memo_computes_each_version_of_a_file_once(tmp_path):
    calls = []
    memo = FileMemo(lambda path: calls.append(path) or Path(path).read_bytes())
    path = tmp_path / "face.bin"
    path.write_bytes(b"one")
    assert memo(path) == memo(path) == b"one" and len(calls) == 1
    path.write_bytes(b"three")  # rewritten: another size and time
    assert memo(path) == b"three" and len(calls) == 2
    path.write_bytes(b"four!")  # same size: the modification time tells
    os.utime(path, ns=(1, 1))
    assert memo(path) == b"four!" and len(calls) == 3
    with pytest.raises(FileNotFoundError):
        memo(tmp_path / "missing.bin")


def test_pool_map_keeps_the_order_of_its_items():
    assert pool_map(str, range(1000), workers=2) == [str(i) for i in range(1000)]
    assert pool_map(str, [], workers=2) == []


# ------------------------------------------------------------------------------------------ pixel copies
def test_pixel_copy_search_is_exact_against_brute_force():
    from agegender_tf.data import pixel_copies

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(40, 1024)).astype(np.int16)
    # near copies at several distances from face 0..9, some just under and some just over the threshold
    noisy = np.clip(base[:10] + rng.integers(-22, 23, size=(10, 1024)) * rng.uniform(0.2, 1.0, (10, 1)), 0, 255)
    first = np.concatenate([noisy, rng.integers(0, 256, size=(5, 1024))]).astype(np.uint8)
    second = base.astype(np.uint8)
    brute = np.abs(first[:, None, :].astype(np.int32) - second[None, :, :]).sum(axis=2) / 1024
    want = {(int(i), int(j)) for i, j in zip(*np.nonzero(brute < pixel_copies.PIXEL_COPY_MAD))}
    found = pixel_copies.cross_copies(first, second, chunk=4)
    assert {(int(i), int(j)) for i, j in zip(found["i"], found["j"])} == want and want
    assert np.allclose(found["mad"], brute[found["i"], found["j"]])
    assert 0 < len(want) < 10  # some of the planted copies are over the threshold
    both = np.concatenate([first, second])
    within = pixel_copies.close_copies(both, chunk=7)
    square = np.abs(both[:, None, :].astype(np.int32) - both[None, :, :]).sum(axis=2) / 1024
    rows, cols = np.nonzero(np.triu(square < pixel_copies.PIXEL_COPY_MAD, k=1))
    assert {(int(i), int(j)) for i, j in zip(within["i"], within["j"])} == set(zip(rows.tolist(), cols.tolist()))


def test_a_recoloured_copy_is_a_pixel_copy_in_the_leak_check_and_excluded_from_test(tmp_path, monkeypatch):
    from agegender_tf.data import pixel_copies, splits
    from agegender_tf.data.splits import exclude_pixel_copies, leak_check

    faces = [write_jpeg(tmp_path / f"f{i}.jpg", size=120, seed=60 + i) for i in range(4)]
    copy = _recode(faces[0], tmp_path / "f0_again.jpg", quality=60, brightness=1.04)  # re-encoded and recoloured
    thumbs = pixel_copies.thumbnails([copy, faces[0]])
    assert np.abs(thumbs[0].astype(int) - thumbs[1]).mean() < pixel_copies.PIXEL_COPY_MAD

    def part(paths):
        return pd.DataFrame({"path": [str(p) for p in paths], "age": 30, "gender": "male"})

    parts = {"train": part(faces[:2]), "val": part(faces[2:3]), "test": part([copy, faces[3]])}
    check = leak_check(parts)
    assert not check["ok"] and check["boundaries"]["train/test"]["pixel_copy"] == 1
    assert check["boundaries"]["train/test"]["pixel_examples"][0][:2] == ["f0_again.jpg", "f0.jpg"]
    cleaned = exclude_pixel_copies(parts)
    assert cleaned["test"]["path"].tolist() == [str(faces[3])]
    assert cleaned["test"].attrs["pixel_copies"]["train_file"].tolist() == [str(faces[0])]
    assert leak_check(cleaned)["ok"]
    # A validation face that copies a training face is counted, not failed (moving it would change training);
    # the hash is made blind here, as it is to UTKFace's recoloured and re-cropped copies.
    monkeypatch.setattr(splits, "cross_pairs", lambda first, second: np.zeros((0, 3), dtype=np.int64))
    allowed = leak_check({"train": part(faces[:2]), "val": part([copy]), "test": part(faces[3:])})
    assert allowed["ok"] and allowed["boundaries"]["train/val"]["pixel_copy"] == 1
