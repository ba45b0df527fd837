"""Offline balancing of paper 000 sec. IV: undersample, augment small classes, track origins, no leakage."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from agegender_tf.binning import LIFE_STAGES, age_classes
from agegender_tf.data.readers import read_dataset
from agegender_tf.pipelines.balance import LeakageError, balance_offline, check_no_leakage
from tests.fixtures import write_jpeg


@pytest.fixture
def utk(tmp_path):
    """UTKFace-layout fixture: 9 adults, 3 children, 1 senior (48x48 JPEGs)."""
    ages = [30] * 9 + [5] * 3 + [70]
    for i, age in enumerate(ages):
        write_jpeg(tmp_path / "UTKFace" / f"{age}_{i % 2}_0_201701{i:02d}.jpg.chip.jpg", 48, seed=i)
    return read_dataset("utkface", tmp_path).manifest


def test_balance_reaches_target_and_records_origins(utk, tmp_path):
    labels = age_classes(utk, LIFE_STAGES)
    out = tmp_path / "balanced"
    result = balance_offline(utk, labels, out, target_per_class=4, seed=0)
    m = result.manifest
    assert result.counts_before == {"0": 3, "2": 9, "3": 1}
    assert m["balance_label"].value_counts().to_dict() == {0: 4, 2: 4, 3: 4}
    assert result.dropped == {"undersampled": 5}
    generated = m[m["generated"]]
    assert len(generated) == 1 + 3
    assert set(generated["origin_path"]) <= set(utk["path"])
    assert (m.loc[~m["generated"], "origin_path"] == m.loc[~m["generated"], "path"]).all()
    for _, row in generated.iterrows():
        assert row["path"].startswith(str(out)) and row["augmentation"].startswith("flip=")
        assert Image.open(row["path"]).size == (48, 48)
        origin = utk.set_index("path").loc[row["origin_path"]]
        assert row["age"] == origin["age"] and row["gender"] == origin["gender"]
    seniors = generated[generated["balance_label"] == 3]
    assert seniors["origin_path"].nunique() == 1  # the only senior, copied three times
    again = balance_offline(utk, labels, tmp_path / "again", target_per_class=4, seed=0).manifest
    assert again["augmentation"].tolist() == m["augmentation"].tolist()


def test_balance_refuses_test_faces_by_path_and_by_content(utk, tmp_path):
    test = utk.head(2)
    with pytest.raises(LeakageError, match="in the test set"):
        balance_offline(utk, "gender", tmp_path / "b", seed=0, test_manifest=test)
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(open(utk["path"].iloc[5], "rb").read())
    with pytest.raises(LeakageError, match="byte-identical"):
        check_no_leakage(utk.iloc[3:], pd.DataFrame({"path": [str(copy)]}))
    result = balance_offline(utk.iloc[2:], "gender", tmp_path / "c", seed=0, test_manifest=test)
    check_no_leakage(result.manifest, test)


def test_balance_rejects_missing_labels(utk, tmp_path):
    with pytest.raises(ValueError, match="no label"):
        balance_offline(utk, np.array([None] * len(utk)), tmp_path / "d")
