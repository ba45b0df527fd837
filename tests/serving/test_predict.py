"""Using a trained model (``agegender predict``): the model card, the predictor against the training
pipeline on real faces, photos with several real faces, every bad input through ``agegender predict``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from agegender_tf import cli, imaging, model_card
from agegender_tf.binning import DECADES
from agegender_tf.data.manifest import GENDER_CLASSES
from agegender_tf.serving import predictor as predict
from tests.fixtures import TASKS, make_tiny_model, truncate, utkface_files, write_jpeg


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model") / "train" / "gra_net__gender_age_group_age")


@pytest.fixture(scope="module")
def predictor(tiny_model):
    return predict.load(tiny_model)


# ---------------------------------------------------------------------------------------- card
def test_card_holds_what_predict_needs(tiny_model):
    from agegender_tf import models

    card = json.loads((tiny_model / "model_card.json").read_text())
    assert card["builder"] == "gra_net" and card["preset"] == "gra_net" and card["paper"] == "paper 004"
    assert card["heads"]["gender"]["labels"] == list(GENDER_CLASSES)
    assert card["heads"]["age_group"] == {"kind": "classes", "labels": list(DECADES.labels), "binning": "decades"}
    assert card["heads"]["age"]["kind"] == "regression"
    facts = models.preprocessing("gra_net", **card["builder_args"])
    assert card["preprocessing"] == facts["mode"] and card["input_size"] == list(facts["input_size"])
    assert card["load_size"] == [32, 32] and card["training_data"]["dataset"] == "utkface"
    assert set(card["face_framing"]) == {"haar", "mtcnn", "blazeface"}


def test_model_locations_and_their_errors(tiny_model, tmp_path):
    run_folder = tiny_model.parent.parent
    assert predict.locate_model(run_folder)[0] == tiny_model / "best.keras"  # a run with one network
    assert predict.locate_model(tiny_model / "best.keras")[1] == tiny_model / "model_card.json"
    lone = tmp_path / "lone" / "model.keras"
    lone.parent.mkdir()
    lone.write_bytes((tiny_model / "best.keras").read_bytes())
    with pytest.raises(model_card.ModelCardError,
                       match="model.keras: no model_card.json beside it.*nothing is guessed"):
        predict.load(lone)
    half = tmp_path / "half" / "best.keras"
    half.parent.mkdir()
    data = (tiny_model / "best.keras").read_bytes()
    half.write_bytes(data[: len(data) // 2])
    (half.parent / "model_card.json").write_text((tiny_model / "model_card.json").read_text())
    with pytest.raises(model_card.ModelCardError, match="half/best.keras is corrupt"):
        predict.load(half)
    (half.parent / "model_card.json").write_text("{")
    with pytest.raises(model_card.ModelCardError, match="unreadable model card"):
        predict.load(half)
    with pytest.raises(model_card.ModelCardError, match="nowhere: no such model file or run folder"):
        predict.load(tmp_path / "nowhere")


def test_without_a_bundled_model_the_error_says_so():
    if (predict.BUNDLED_DIR / model_card.MODEL_NAME).is_file():
        pytest.skip("this install has a bundled model")
    with pytest.raises(model_card.ModelCardError, match="no bundled model in this install"):
        predict.load()


# ---------------------------------------------------------------------------- faces and parity
def test_predictor_matches_the_training_pipeline(predictor, utkface_root):
    """The predictor's resize, crop and value mapping give the same outputs as the tf.data
    pipeline that trained and evaluated the model, on 32 real faces."""
    from agegender_tf.experiments.presets import AUGMENT_PRESETS
    from agegender_tf.pipelines.tfdata import make_dataset

    paths = utkface_files(utkface_root, 32)
    frame = pd.DataFrame({"path": [str(p) for p in paths], "age": [float(p.name.split("_")[0]) for p in paths],
                          "gender": [GENDER_CLASSES[int(p.name.split("_")[1]) == 0] for p in paths]})
    spec = AUGMENT_PRESETS["gra_net"].replace(preprocess=predictor.card["preprocessing"])
    dataset = make_dataset(frame, spec, image_size=32, batch_size=16, outputs=TASKS, binning=DECADES,
                           training=False, validate=False)
    expected = predictor.network.predict(dataset, verbose=0)
    results = [r for _, r, _ in predictor.predict_files(paths)]
    gender = np.array([[r["faces"][0]["gender"]["p"][c] for c in GENDER_CLASSES] for r in results])
    ages = np.array([r["faces"][0]["age"] for r in results])
    np.testing.assert_allclose(gender, expected["gender"], atol=1e-5)
    np.testing.assert_allclose(ages, np.asarray(expected["age"]).reshape(-1), atol=1e-4)
    faces = predictor.predict_faces([np.asarray(Image.open(p).convert("RGB")) for p in paths[:4]])
    assert [f["gender"] for f in faces] == [r["faces"][0]["gender"] for r in results[:4]]
    assert all("box" not in f and f["age_group"]["binning"] == "decades" for f in faces)
    assert all(abs(sum(f["age_group"]["p"].values()) - 1) < 1e-5 for f in faces)


def test_predict_faces_takes_a_batch_array_and_refuses_one_face_alone(predictor):
    batch = np.random.default_rng(0).integers(0, 256, (3, 50, 40, 3), dtype=np.uint8)
    assert len(predictor.predict_faces(batch)) == 3
    assert len(predictor.predict_faces(list(batch / 255.0))) == 3
    with pytest.raises(ValueError, match="pass a list of face images"):
        predictor.predict_faces(batch[0])


def test_mirror_averages_each_face_with_its_mirror(tiny_model, predictor, utkface_root, capsys):
    """``mirror`` runs the network on each face and its left-right mirror and averages the outputs; the
    card's ``test_time.mirror`` decides when it is not given, and the predictor's card says what it does."""

    assert predictor.mirror is False and predictor.card["test_time"]["mirror"] is False
    mirrored = predict.Predictor(predictor.network, predictor.card, source=predictor.source, mirror=True)
    assert mirrored.card["test_time"]["mirror"] is True
    paths = utkface_files(utkface_root, 6)
    images = [imaging.load_rgb(p) for p in paths]
    plain = predictor.raw_outputs(images)
    flipped = predictor.raw_outputs([np.ascontiguousarray(image[:, ::-1]) for image in images])
    got = mirrored.raw_outputs(images)
    for task in TASKS:
        np.testing.assert_allclose(got[task], (plain[task] + flipped[task]) / 2, atol=1e-5)
    assert np.abs(got["gender"] - plain["gender"]).max() > 1e-4  # the mirror did change something

    card = {**predictor.card, "test_time": {"mirror": True}}
    assert predict.Predictor(predictor.network, card).mirror is True
    assert predict.Predictor(predictor.network, card, mirror=False).mirror is False

    assert cli.main(["predict", str(paths[0]), "--model", str(tiny_model), "--aligned", "--json", "--mirror"]) == 0
    (face,) = json.loads(capsys.readouterr().out)["faces"]
    assert face["gender"]["p"] == {c: round(float(p), 4) for c, p in zip(GENDER_CLASSES, got["gender"][0])}


def test_bundle_writes_the_network_without_optimizer_and_the_card_with_its_test_time(tiny_model, predictor,
                                                                                   utkface_root, tmp_path):
    dest = predict.bundle(tiny_model, tmp_path / "bundled", mirror=True)
    assert sorted(p.name for p in dest.iterdir()) == ["best.keras", "model_card.json"]
    bundled = predict.load(dest)
    assert bundled.mirror is True and bundled.card["builder"] == predictor.card["builder"]
    faces = [np.asarray(Image.open(p).convert("RGB")) for p in utkface_files(utkface_root, 3)]
    mirrored = predict.Predictor(predictor.network, predictor.card, mirror=True)
    np.testing.assert_allclose(bundled.raw_outputs(faces)["gender"], mirrored.raw_outputs(faces)["gender"], atol=1e-6)
    again = predict.bundle(tiny_model, tmp_path / "plain", evaluation={"utkface_val": {"gender_accuracy": 0.5}})
    card = json.loads((again / "model_card.json").read_text())
    assert "test_time" not in card  # the run's card as written, plus where it came from and its numbers
    assert card["run_folder"] == tiny_model.as_posix() and card["evaluation"]["utkface_val"]["gender_accuracy"] == 0.5


def test_a_card_without_a_detectors_framing_takes_the_kits_measurement(tiny_model, tmp_path):
    """Cards written before a detector existed still serve it: the framing measured on the card's training
    dataset (``model_card.TRAINING_FRAMING``)."""
    old = tmp_path / "old"
    old.mkdir()
    (old / "best.keras").write_bytes((tiny_model / "best.keras").read_bytes())
    card = json.loads((tiny_model / "model_card.json").read_text())
    card["face_framing"].pop("blazeface")
    (old / "model_card.json").write_text(json.dumps(card))
    expected = model_card.TRAINING_FRAMING["utkface"]["blazeface"]
    assert predict.load(old)._framing("blazeface") == expected


def compose_photo(utkface_root, path: Path, count: int = 3) -> list[tuple[int, int, int]]:
    """Real UTKFace faces pasted on a plain canvas; returns each face's (left, top, side)."""
    canvas = Image.new("RGB", (320 * count, 520), (90, 120, 90))
    spots = []
    for i, face_file in enumerate(utkface_files(utkface_root, 110)[100:100 + count]):
        left, top, side = 60 + i * 320, 150 + (i % 2) * 60, 200
        canvas.paste(Image.open(face_file).convert("RGB"), (left, top))
        spots.append((left, top, side))
    canvas.save(path, quality=92)
    return spots


@pytest.mark.parametrize("detector", ["blazeface", "mtcnn", "haar"])
def test_photo_with_three_real_faces(predictor, utkface_root, tmp_path, detector):
    spots = compose_photo(utkface_root, tmp_path / "three.jpg")
    result = predictor.predict_photo(tmp_path / "three.jpg", detector=detector)
    assert result["file"] == str(tmp_path / "three.jpg") and len(result["faces"]) == 3
    for face in result["faces"]:
        x, y, w, h = face["box"]
        centre = (x + w / 2, y + h / 2)
        assert any(abs(centre[0] - (left + s / 2)) < s / 4 and abs(centre[1] - (top + s / 2)) < s / 3
                   for left, top, s in spots)
        assert set(face) >= {"box", "gender", "age_group", "age"}
    from_array = predictor.predict_photo(np.asarray(Image.open(tmp_path / "three.jpg")), detector=detector)
    assert from_array["file"] is None and [f["box"] for f in from_array["faces"]] == [f["box"] for f in result["faces"]]


# ------------------------------------------------------------------------------------- the CLI
def write_bad_and_odd_inputs(folder: Path, utkface_root) -> dict[str, str | None]:
    """Every bad or odd input ``agegender predict`` must name or convert; value: the stderr problem expected,
    None for a usable image."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.jpg").write_text("not an image at all")
    truncate(write_jpeg(folder / "cut.jpg", size=200), 0.5)
    (folder / "zero.jpg").write_bytes(b"")
    face = Image.open(utkface_files(utkface_root, 1)[0]).convert("RGB")
    face.convert("CMYK").save(folder / "cmyk.jpg")
    face.convert("RGBA").save(folder / "alpha.png")
    face.convert("P", palette=Image.ADAPTIVE).save(folder / "face.gif")  # the web palette's dither hides the face
    Image.new("RGB", (1, 1), (200, 150, 120)).save(folder / "one_pixel.png")
    write_jpeg(folder / "landscape.jpg", size=(640, 480))
    big = Image.new("RGB", (4000, 3000), (80, 100, 80))
    big.paste(face.resize((800, 800)), (1500, 1000))
    big.save(folder / "big.jpg", quality=85)
    return {"notes.jpg": "not an image", "cut.jpg": "corrupt or cut-short", "zero.jpg": "empty file",
            "cmyk.jpg": None, "alpha.png": None, "face.gif": None, "one_pixel.png": None, "landscape.jpg": None,
            "big.jpg": None}


def test_cli_names_each_bad_file_and_runs_the_others(tiny_model, utkface_root, tmp_path, capsys):
    expected = write_bad_and_odd_inputs(tmp_path / "in", utkface_root)
    status = cli.main(["predict", str(tmp_path / "in"), "--model", str(tiny_model), "--json", "--detector", "mtcnn",
                       "--annotate", str(tmp_path / "annotated")])
    out, err = capsys.readouterr()
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    for name, problem in expected.items():
        named = [line for line in errors if name in line]
        assert (len(named) == 1 and problem in named[0]) if problem else not named, (name, named)
    results = {Path(r["file"]).name: r for r in map(json.loads, out.splitlines())}
    assert set(results) == {n for n, p in expected.items() if p is None}
    assert results["landscape.jpg"]["faces"] == [] and results["one_pixel.png"]["faces"] == []
    for name in ("cmyk.jpg", "alpha.png", "face.gif"):
        assert len(results[name]["faces"]) == 1, name
    (big_face,) = results["big.jpg"]["faces"]
    x, y, w, h = big_face["box"]
    assert abs(x + w / 2 - 1900) < 200 and abs(y + h / 2 - 1400) < 250  # the photo's own pixels
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == sorted(
        Path(n).stem + ".jpg" for n in results)


def test_cli_aligned_table_and_exit_status(tiny_model, utkface_root, capsys):
    paths = [str(p) for p in utkface_files(utkface_root, 3)]
    status = cli.main(["predict", *paths, "--model", str(tiny_model), "--aligned", "--batch-size", "2"])
    out, err = capsys.readouterr()
    assert status == 0 and not err.strip()
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["file", "face", "box"] and len(lines) == 4
    assert all("[0, 0, 200, 200]" in line for line in lines[1:])
    assert cli.main(["predict", paths[0], "missing.jpg", "--model", str(tiny_model), "--aligned", "--json"]) == 1
    assert "missing.jpg: file not found" in capsys.readouterr().err


def test_cli_annotate_says_where_each_annotated_photo_went(tiny_model, utkface_root, tmp_path, capsys):
    paths = [str(p) for p in utkface_files(utkface_root, 2)]
    out_dir = tmp_path / "annotated"
    assert cli.main(["predict", *paths, "--model", str(tiny_model), "--aligned", "--json",
                     "--annotate", str(out_dir)]) == 0
    out, err = capsys.readouterr()
    targets = [str(out_dir / (Path(p).stem + ".jpg")) for p in paths]
    assert err.splitlines() == [f"annotated {p} -> {t}" for p, t in zip(paths, targets)]
    assert [json.loads(line)["annotated"] for line in out.splitlines()] == targets
    assert all(Path(t).is_file() for t in targets)
    assert cli.main(["predict", paths[0], "--model", str(tiny_model), "--aligned", "--annotate", str(out_dir)]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"annotated {paths[0]} -> {targets[0]}"] and "annotated" not in out  # table on stdout


def test_cli_bad_model_is_one_line_exit_2(tmp_path, capsys):
    assert cli.main(["predict", str(tmp_path), "--model", str(tmp_path / "nope.keras")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.keras: model file not found" in err[0]


def _framed_copy(tiny_model, tmp_path, detector: str):
    """``tiny_model`` in a folder of its own, its card saying it was trained on faces framed by ``detector``."""
    card = json.loads((tiny_model / "model_card.json").read_text())
    card["training_data"]["face_crop"] = {"detector": detector, "scale_std": 0.0, "shift_std": 0.0,
                                          "rotation_std": 0.0}
    folder = tmp_path / "framed"
    folder.mkdir()
    (folder / "best.keras").write_bytes((tiny_model / "best.keras").read_bytes())
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


def test_aligned_crops_are_searched_for_the_face_when_the_network_was_trained_framed(tiny_model, tmp_path,
                                                                                     utkface_root):
    """A network trained on detector-framed faces (``training_data.face_crop``) gets the face found inside
    a given crop, framed as in training (``"framing": "detected"``), or the whole crop where no face is
    found (``"whole"``); a network trained on a dataset's own crops keeps the whole crop."""
    framed, plain = predict.load(_framed_copy(tiny_model, tmp_path, "mtcnn")), predict.load(tiny_model)
    face = imaging.load_rgb(utkface_files(utkface_root, 4)[3])
    canvas = np.full((420, 380, 3), 128, np.uint8)
    canvas[100:300, 90:290] = face  # another dataset's crop: the face with a wide margin around it
    with_margin = tmp_path / "margin.png"
    Image.fromarray(canvas).save(with_margin)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 100, 3), 128, np.uint8)).save(blank)
    found = framed.predict_photo(with_margin, aligned=True)["faces"][0]
    x, y, w, h = found["box"]
    # MTCNN's box of a UTKFace face reaches above the crop's top (``TRAINING_FRAMING``'s shift)
    assert found["framing"] == "detected" and 80 <= x and x + w <= 300 and 60 <= y and y + h <= 310
    assert framed.predict_photo(blank, aligned=True)["faces"][0]["framing"] == "whole"
    whole = plain.predict_photo(with_margin, aligned=True)["faces"][0]
    assert whole["framing"] == "whole" and whole["box"] == [0, 0, 380, 420]
    batch = {path: result["faces"][0] for path, result, _ in framed.predict_files([with_margin, blank])}
    assert batch[str(with_margin)]["framing"] == "detected" and batch[str(with_margin)]["box"] == found["box"]
    assert batch[str(blank)]["framing"] == "whole" and batch[str(blank)]["box"] == [0, 0, 100, 120]
    np.testing.assert_allclose(batch[str(with_margin)]["gender"]["p"]["female"], found["gender"]["p"]["female"],
                               atol=1e-5)


def test_crops_searched_in_the_decoding_threads_give_the_answers_of_one_search(tiny_model, tmp_path, utkface_root,
                                                                               monkeypatch):
    """BlazeFace searches a framed network's crops in ``predict_files``' decoding threads (one interpreter
    per thread); the answers are those of the search run once over the batch in the calling thread."""
    from agegender_tf.serving import faces

    framed = predict.load(_framed_copy(tiny_model, tmp_path, "blazeface"), batch_size=4)
    files = utkface_files(utkface_root, 12)
    assert "blazeface" in faces.THREADED_DETECTORS
    threaded = [result for _, result, _ in framed.predict_files(files)]
    monkeypatch.setattr(faces, "THREADED_DETECTORS", ())
    serial = [result for _, result, _ in framed.predict_files(files)]
    assert [r["faces"][0]["box"] for r in threaded] == [r["faces"][0]["box"] for r in serial]
    assert [r["faces"][0]["framing"] for r in threaded] == [r["faces"][0]["framing"] for r in serial]
    assert sum(r["faces"][0]["framing"] == "detected" for r in threaded) >= 10
    np.testing.assert_allclose([r["faces"][0]["gender"]["p"]["female"] for r in threaded],
                               [r["faces"][0]["gender"]["p"]["female"] for r in serial], atol=1e-5)
