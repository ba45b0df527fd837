"""A preset's holdout split (paper 003's 70:30) keeps byte-identical copies on one side; limits are seeded."""

import shutil

import pandas as pd
import pytest

from agegender_tf.data.splits import check_no_leak, limit_parts, split_manifest
from agegender_tf.experiments.plans import preset_binning, resolve_preset
from tests.fixtures import write_jpeg


def test_holdout_keeps_duplicate_copies_together(tmp_path):
    rows = []
    for i in range(80):
        path = write_jpeg(tmp_path / f"{20 + i % 50}_{i % 2}_0_face{i}.jpg", size=16, seed=i)
        rows.append({"path": str(path), "age": float(20 + i % 50), "age_group": None,
                     "gender": ("male", "female")[i % 2], "subject": path.stem, "source": "utkface"})
    for i in range(0, 40, 4):  # ten photos repeated under another name, as UTKFace has
        copy = tmp_path / f"copy_{i}.jpg"
        shutil.copy(rows[i]["path"], copy)
        rows.append({**rows[i], "path": str(copy), "subject": copy.stem})
    manifest = pd.DataFrame(rows)
    preset = resolve_preset("transfer_vgg16_resnet50", overrides=["split.kind=holdout"])
    parts = split_manifest(manifest, preset.split, preset.dataset, preset_binning(preset), seed=3)
    assert sum(len(p) for p in parts.values()) == len(manifest)
    for train, test in ((parts["train"], parts["test"]), (parts["train"], parts["val"]), (parts["val"], parts["test"])):
        assert "content_hash" in train and "content_hash" in test
        assert check_no_leak(train, test, by=("content_hash",)) == {"content_hash": []}, "a duplicate crossed"
    assert 0.2 < len(parts["test"]) / len(manifest) < 0.4
    again = split_manifest(manifest, preset.split, preset.dataset, preset_binning(preset), seed=3)
    assert again["test"]["path"].tolist() == parts["test"]["path"].tolist()
    limited = limit_parts(parts, 20, seed=3)
    caps = {"train": 20, "val": 16, "test": 32}  # a quarter and a half of 20, raised to 16 and 32
    assert {name: len(part) for name, part in limited.items()} == {
        name: min(cap, len(parts[name])) for name, cap in caps.items()}
    assert set(limited["train"]["path"]) <= set(parts["train"]["path"])
    assert limit_parts(parts, None, seed=3) is parts


def test_unknown_split_kind_is_named():
    with pytest.raises(ValueError, match="unknown split kind 'kfold'"):
        split_manifest(pd.DataFrame({"path": []}), {"kind": "kfold"}, "utkface", None, seed=0)
