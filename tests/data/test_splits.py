"""Splits: official Adience folds, seeded stratified holdout, LOSO, leak checks, committed UTKFace split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agegender_tf.binning import LIFE_STAGES
from agegender_tf.data import near_duplicates, pixel_copies
from agegender_tf.data.adience import read as read_adience
from agegender_tf.data.hashing import add_content_hashes
from agegender_tf.data.splits import (
    UTKFACE_FRACTIONS,
    adience_folds,
    check_no_leak,
    committed_split_path,
    connected_groups,
    leave_one_subject_out,
    load_committed_split,
    make_utkface_split,
    stratified_holdout,
)
from agegender_tf.data.utkface import read as read_utkface
from tests.fixtures import write_adience


def synthetic_manifest(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "path": [f"/img/{i}.jpg" for i in range(rows)],
        "age": rng.integers(1, 90, rows).astype(float),
        "age_group": rng.choice(["young", "old"], rows),
        "gender": rng.choice(["male", "female"], rows),
        "subject": [f"s{i // 4}" for i in range(rows)],  # four images per subject
        "source": "synthetic",
        "content_hash": [f"h{i}" if i % 50 else "dup" for i in range(rows)],  # rows 0, 50, ... are copies
    })


def test_connected_groups_links_rows_through_any_column():
    frame = pd.DataFrame({"subject": ["a", "a", "b", "c", "d"], "content_hash": ["x", "y", "y", None, None]})
    groups = connected_groups(frame, ["subject", "content_hash"])
    assert groups[0] == groups[1] == groups[2] and len({groups[0], groups[3], groups[4]}) == 3


def test_stratified_holdout_is_seeded_group_exclusive_and_stratified():
    manifest = synthetic_manifest()
    train, test = stratified_holdout(manifest, test_size=0.3, seed=3)
    again_train, again_test = stratified_holdout(manifest, test_size=0.3, seed=3)
    assert list(test.index) == list(again_test.index) and list(train.index) == list(again_train.index)
    assert list(stratified_holdout(manifest, test_size=0.3, seed=4)[1].index) != list(test.index)
    assert len(train) + len(test) == len(manifest) and set(train.index).isdisjoint(test.index)
    assert check_no_leak(train, test) == {"subject": [], "content_hash": []}
    assert 0.2 <= len(test) / len(manifest) <= 0.4
    # row-level (no groups): exact 30% and per-stratum shares follow the whole set
    train, test = stratified_holdout(manifest, test_size=0.3, seed=3, group=None)
    assert len(test) == round(0.3 * len(manifest))
    whole = manifest.groupby(["age_group", "gender"]).size() / len(manifest)
    part = test.groupby(["age_group", "gender"]).size() / len(test)
    assert (whole - part).abs().max() < 0.02


def test_stratified_holdout_rejects_empty_and_tiny_inputs():
    with pytest.raises(ValueError, match="empty"):
        stratified_holdout(synthetic_manifest().iloc[:0])
    with pytest.raises(ValueError, match="too few groups"):
        stratified_holdout(synthetic_manifest().iloc[:4])  # one subject


def test_leave_one_subject_out_covers_each_subject_once():
    manifest = synthetic_manifest(rows=20)
    seen = []
    for subject, train, test in leave_one_subject_out(manifest):
        assert set(test["subject"]) == {subject} and subject not in set(train["subject"])
        assert len(train) + len(test) == len(manifest)
        seen.append(subject)
    assert seen == sorted(manifest["subject"].unique())


def test_check_no_leak_names_shared_values():
    manifest = synthetic_manifest(rows=8)
    assert check_no_leak(manifest.iloc[:5], manifest.iloc[3:]) == {
        "subject": ["s0", "s1"], "content_hash": ["h3", "h4"]}
    assert check_no_leak(manifest.iloc[:4], manifest.iloc[4:], by=("subject", "fold")) == {"subject": []}


def test_adience_folds_are_the_official_subject_exclusive_folds(tmp_path):
    manifest = read_adience(write_adience(tmp_path)).manifest
    folds = adience_folds(manifest)
    assert len(folds) == 5
    for k, (train, test) in enumerate(folds):
        assert set(test["fold"]) == {k} and k not in set(train["fold"])
        assert check_no_leak(train, test)["subject"] == []
    with pytest.raises(ValueError, match="no 'fold' column"):
        adience_folds(manifest.drop(columns="fold"))


def test_load_committed_split_reports_unlisted_rows_and_bad_files(tmp_path):
    manifest = pd.DataFrame({"file": ["a.jpg", "b.jpg", "c.jpg"]})
    split_file = tmp_path / "split.csv"
    split_file.write_text("file,split\na.jpg,train\nb.jpg,test\n")
    with pytest.warns(UserWarning, match=r"1 utkface rows are not in .*\['c.jpg'\]"):
        joined = load_committed_split(manifest, "utkface", path=split_file)
    assert joined["split"].tolist() == ["train", "test", None] and joined.attrs["split_unlisted"] == 1
    split_file.write_text("file,part\na.jpg,train\n")
    with pytest.raises(ValueError, match="expected columns"):
        load_committed_split(manifest, "utkface", path=split_file)
    split_file.write_text("file,split\na.jpg,holdout\n")
    with pytest.raises(ValueError, match="unknown split names"):
        load_committed_split(manifest, "utkface", path=split_file)
    with pytest.raises(ValueError, match="no committed split"):
        load_committed_split(manifest, "celeba")


def test_a_version_2_split_file_excludes_rows_from_every_part(tmp_path):
    manifest = pd.DataFrame({"file": ["a.jpg", "b.jpg", "c.jpg"], "path": ["a.jpg", "b.jpg", "c.jpg"]})
    split_file = tmp_path / "split.csv"
    split_file.write_text("file,split,reason\na.jpg,train,\nb.jpg,excluded,pixel copy of train face a.jpg (mad 2.0)\n"
                          "c.jpg,test,\n")
    joined = load_committed_split(manifest, "utkface", path=split_file)
    assert joined["split"].tolist() == ["train", "excluded", "test"] and joined.attrs["split_excluded"] == 1
    assert joined.attrs["split_unlisted"] == 0
    split_file.write_text("file,split,note\na.jpg,train,\n")
    with pytest.raises(ValueError, match="expected columns"):
        load_committed_split(manifest, "utkface", path=split_file)


def test_committed_utkface_split_file_is_well_formed():
    path = committed_split_path("utkface")
    assert path is not None and path.name == "split.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(table.columns) == ["file", "split", "reason"] and table["file"].is_unique
    shares = table["split"].value_counts(normalize=True)
    for name, fraction in UTKFACE_FRACTIONS.items():
        assert abs(shares[name] - fraction) < 0.01
    excluded = table[table["split"] == "excluded"]
    assert (excluded["reason"].str.startswith("pixel copy of ")).all() and (table.loc[table["split"] != "excluded",
                                                                                    "reason"] == "").all()
    copies = pixel_copies.read_pairs(pixel_copies.committed_pairs_path("utkface"))
    assert sorted(copies["test_file"]) == sorted(excluded["file"])
    assert (copies["mad"] < pixel_copies.PIXEL_COPY_MAD).all() and set(copies["train_split"]) <= {"train", "val"}
    by_file = table.set_index("file")["split"]
    assert (by_file[copies["train_file"]].to_numpy() == copies["train_split"].to_numpy()).all()


def test_committed_utkface_split_is_reproduced_and_covers_the_real_set(utkface_root):
    manifest = add_content_hashes(read_utkface(utkface_root).manifest)
    pairs = near_duplicates.pairs_table(manifest)
    committed_pairs = near_duplicates.read_pairs(near_duplicates.committed_pairs_path("utkface"))
    pd.testing.assert_frame_equal(pairs, committed_pairs, check_dtype=False)
    manifest = near_duplicates.add_groups(manifest, pairs)
    joined = load_committed_split(manifest, "utkface")
    assert joined.attrs["split_unlisted"] == 0
    remade = make_utkface_split(manifest)
    committed = pd.read_csv(committed_split_path("utkface"), dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(remade.reset_index(drop=True), committed, check_dtype=False)
    copies = pixel_copies.read_pairs(pixel_copies.committed_pairs_path("utkface"))
    pd.testing.assert_frame_equal(remade.attrs["pixel_copies"], copies, check_dtype=False)
    parts = {name: joined[joined["split"] == name] for name in UTKFACE_FRACTIONS}
    group = near_duplicates.GROUP_COLUMN
    for first, second in (("train", "val"), ("train", "test"), ("val", "test")):
        # A near-duplicate group joins every pair within NEAR_DUPLICATE_DISTANCE bits (the recomputed pairs above),
        # so no group on both sides is no near-duplicate across them: near_leaks' answer without hashing again.
        assert check_no_leak(parts[first], parts[second], by=("subject", "content_hash", group)) == {
            "subject": [], "content_hash": [], group: []}, f"{first}/{second}"
    stage = pd.Series(LIFE_STAGES.to_label(joined["age"].to_numpy()), index=joined.index)
    whole = stage.str.cat(joined["gender"], sep="|").value_counts(normalize=True)
    in_test = stage[parts["test"].index].str.cat(parts["test"]["gender"], sep="|").value_counts(normalize=True)
    assert (whole - in_test).abs().max() < 0.01
