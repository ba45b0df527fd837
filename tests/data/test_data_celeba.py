"""CelebA gender reader on fixtures in both published layouts: paper 003's Kaggle folders and the
official list_attr_celeba.txt / list_eval_partition.txt / identity_CelebA.txt release."""

from __future__ import annotations

import pandas as pd
import pytest

from agegender_tf.data import read_dataset, validate_manifest
from agegender_tf.data.celeba import read
from tests.fixtures import write_jpeg

ATTRIBUTES = [
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
]
MALE = ATTRIBUTES.index("Male")
# image -> (is male, partition, identity)
OFFICIAL = {
    "000001.jpg": (False, 0, 2880),
    "000002.jpg": (False, 0, 2937),
    "000003.jpg": (True, 0, 8692),
    "000004.jpg": (False, 1, 5805),
    "000005.jpg": (True, 2, 2880),
    "000006.jpg": (True, 2, 4153),
}


def attribute_line(name: str, is_male: bool) -> str:
    values = ["-1"] * len(ATTRIBUTES)
    values[MALE] = "1" if is_male else "-1"
    return name + " " + " ".join(f"{v:>2}" for v in values)


@pytest.fixture
def official_root(tmp_path):
    root = tmp_path / "CelebA"
    lines = [str(len(OFFICIAL)), " ".join(ATTRIBUTES) + " "]
    lines += [attribute_line(name, male) for name, (male, _, _) in OFFICIAL.items()]
    (root / "Anno").mkdir(parents=True)
    (root / "Anno" / "list_attr_celeba.txt").write_text("\r\n".join(lines) + "\r\n")
    (root / "Anno" / "identity_CelebA.txt").write_text("".join(f"{n} {i}\n" for n, (_, _, i) in OFFICIAL.items()))
    (root / "Eval").mkdir()
    (root / "Eval" / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, (_, p, _) in OFFICIAL.items()))
    for seed, name in enumerate(OFFICIAL):
        write_jpeg(root / "Img" / "img_align_celeba" / name, size=(32, 40), seed=seed)
    return root


# (folder under root, file name) in paper 003's layout.
FOLDERS = [
    ("Train/Female", "000001.jpg"),
    ("Train/Female", "000002.jpg"),
    ("Train/Male", "000003.jpg"),
    ("Validate/Female", "000004.jpg"),
    ("Validate/Male", "000005.jpg"),
    ("Test/Female", "000006.jpg"),
    ("Test/Male", "000007.jpg"),
]


@pytest.fixture
def folders_root(tmp_path):
    root = tmp_path / "gender-200k"
    for seed, (folder, name) in enumerate(FOLDERS):
        write_jpeg(root / "Dataset" / folder / name, size=32, seed=seed)
    return root


def test_folder_layout_gives_gender_and_split(folders_root):
    result = read(folders_root)
    manifest = validate_manifest(result.manifest)
    assert result.dropped.empty and result.notes["layout"] == "folders"
    assert len(manifest) == len(FOLDERS)
    assert manifest.groupby(["split", "gender"]).size().to_dict() == {
        ("test", "female"): 1, ("test", "male"): 1, ("train", "female"): 2, ("train", "male"): 1,
        ("validation", "female"): 1, ("validation", "male"): 1,
    }
    assert manifest["age"].isna().all() and not manifest["age_exact"].any()
    assert set(manifest["subject"]) == {name[:-4] for _, name in FOLDERS}
    assert (manifest["source"] == "celeba").all()


def test_folder_name_variants_are_accepted(tmp_path):
    root = tmp_path / "variant"
    write_jpeg(root / "training" / "MALE" / "a.jpg", size=32)
    write_jpeg(root / "Validation" / "female" / "b.jpg", size=32, seed=1)
    write_jpeg(root / "TEST" / "Female" / "c.jpg", size=32, seed=2)
    manifest = read(root).manifest.set_index("subject")
    assert manifest.loc["a", ["split", "gender"]].tolist() == ["train", "male"]
    assert manifest.loc["b", ["split", "gender"]].tolist() == ["validation", "female"]
    assert manifest.loc["c", ["split", "gender"]].tolist() == ["test", "female"]


def test_gender_folders_without_splits(tmp_path):
    write_jpeg(tmp_path / "g" / "Female" / "a.jpg", size=32)
    write_jpeg(tmp_path / "g" / "Male" / "b.jpg", size=32, seed=1)
    manifest = read(tmp_path / "g").manifest
    assert manifest["gender"].tolist() == ["female", "male"] and manifest["split"].isna().all()


def test_folder_strays_are_dropped_with_reasons(folders_root):
    base = folders_root / "Dataset"
    write_jpeg(base / "Train" / "Unknown" / "x.jpg", size=32)
    write_jpeg(base / "Train" / "loose.jpg", size=32)
    write_jpeg(base / "Test" / "Male" / "sub" / "deep.jpg", size=32)
    (base / "Test" / "Male" / "notes.txt").write_text("hello")
    write_jpeg(base / "__MACOSX" / "Female" / "y.jpg", size=32)
    result = read(folders_root)
    assert len(result.manifest) == len(FOLDERS)
    assert result.dropped_counts() == {
        "image nested below the Female/Male folder": 1,
        "image outside a Female/Male folder": 2,
        "not a JPEG file": 1,
    }
    assert result.notes["ignored_folders"] == ["__MACOSX"]


def test_official_layout_gives_gender_split_and_identity(official_root):
    result = read(official_root)
    manifest = validate_manifest(result.manifest).set_index("subject", drop=False)
    assert result.notes["layout"] == "official" and result.dropped.empty
    assert len(manifest) == len(OFFICIAL)
    for name, (male, partition, identity) in OFFICIAL.items():
        row = manifest[manifest["path"].str.endswith(name)].iloc[0]
        assert row["gender"] == ("male" if male else "female")
        assert row["split"] == ("train", "validation", "test")[partition]
        assert row["subject"] == str(identity)
    assert manifest["age"].isna().all()


def test_registry_reads_both_layouts(official_root, folders_root):
    assert len(read_dataset("celeba", official_root).manifest) == len(OFFICIAL)
    assert len(read_dataset("celeba", folders_root, layout="folders").manifest) == len(FOLDERS)


def test_official_missing_images_are_counted(official_root):
    (official_root / "Img" / "img_align_celeba" / "000002.jpg").unlink()
    result = read(official_root)
    assert len(result.manifest) == len(OFFICIAL) - 1
    assert result.dropped_counts() == {"missing image file": 1}
    assert result.dropped["item"].iloc[0].endswith("000002.jpg")


def test_official_without_partition_or_identity(official_root):
    (official_root / "Eval" / "list_eval_partition.txt").unlink()
    (official_root / "Anno" / "identity_CelebA.txt").unlink()
    result = read(official_root)
    assert result.manifest["split"].isna().all() and result.notes["rows_without_partition"] == len(OFFICIAL)
    assert result.manifest["subject"].tolist() == [n[:-4] for n in OFFICIAL]


def test_kaggle_csv_release(tmp_path):
    root = tmp_path / "celeba-dataset"
    header = "image_id," + ",".join(ATTRIBUTES)
    rows = [attribute_line(n, m).replace(" ", ",").replace(",,", ",") for n, (m, _, _) in OFFICIAL.items()]
    (root).mkdir()
    (root / "list_attr_celeba.csv").write_text("\n".join([header, *rows]) + "\n")
    (root / "list_eval_partition.csv").write_text(
        "image_id,partition\n" + "".join(f"{n},{p}\n" for n, (_, p, _) in OFFICIAL.items())
    )
    for seed, name in enumerate(OFFICIAL):
        write_jpeg(root / "img_align_celeba" / "img_align_celeba" / name, size=32, seed=seed)
    manifest = read(root).manifest
    assert manifest["gender"].tolist() == ["female", "female", "male", "female", "male", "male"]
    assert manifest["split"].tolist() == ["train", "train", "train", "validation", "test", "test"]


@pytest.mark.parametrize(
    "line_number, replacement, message",
    [
        (1, "six", r"list_attr_celeba\.txt line 1: expected the number of images"),
        (2, "Smiling Young", r"list_attr_celeba\.txt line 2: attribute names lack 'Male'"),
        (4, "000002.jpg 1 -1", r"list_attr_celeba\.txt line 4: expected an image name and 40 attribute values"),
        (5, None, r"list_attr_celeba\.txt line 5: Male must be 1 or -1, found '0'"),
        (1, "7", r"list_attr_celeba\.txt line 1: declares 7 images but lists 6"),
    ],
)
def test_malformed_attribute_file_names_file_and_line(official_root, line_number, replacement, message):
    path = official_root / "Anno" / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    if replacement is None:
        tokens = lines[line_number - 1].split()
        tokens[MALE + 1] = "0"
        replacement = " ".join(tokens)
    lines[line_number - 1] = replacement
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=message):
        read(official_root)


def test_malformed_partition_file_names_file_and_line(official_root):
    path = official_root / "Eval" / "list_eval_partition.txt"
    path.write_text(path.read_text().replace("000004.jpg 1", "000004.jpg 3"))
    with pytest.raises(ValueError, match=r"list_eval_partition\.txt line 4: partition must be 0, 1 or 2"):
        read(official_root)


def test_missing_root_empty_folder_and_bad_layout_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*Train,Validate,Test"):
        read(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty has no Train/Validate/Test"):
        read(tmp_path / "empty")
    (tmp_path / "bare" / "Train" / "Female").mkdir(parents=True)
    with pytest.raises(ValueError, match="hold no images"):
        read(tmp_path / "bare")
    with pytest.raises(FileNotFoundError, match="list_attr_celeba"):
        read(tmp_path / "bare", layout="official")
    with pytest.raises(ValueError, match="layout must be"):
        read(tmp_path / "bare", layout="kaggle")


def test_reading_is_deterministic(folders_root, official_root):
    pd.testing.assert_frame_equal(read(folders_root).manifest, read(folders_root).manifest)
    pd.testing.assert_frame_equal(read(official_root).manifest, read(official_root).manifest)
