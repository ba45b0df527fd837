"""``agegender export``: each format run on 32 real UTKFace faces agrees with the
Keras predictor (max abs difference of probabilities <= 1e-4 in float32)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from agegender_tf import cli, imaging, model_card
from agegender_tf.serving import export, export_accuracy, precision
from agegender_tf.serving import predictor as predict
from tests.fixtures import make_tiny_model, utkface_files

FLOAT_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return predict.load(make_tiny_model(tmp_path_factory.mktemp("model") / "net"))


@pytest.fixture(scope="module")
def real_faces(predictor, utkface_root):
    """32 real faces as the exported graph takes them: float32 0..255 at the card's load size."""
    return predictor.load_sized([imaging.load_rgb(p) for p in utkface_files(utkface_root, 32)])


def _keras_outputs(predictor, sized):
    return {task: np.asarray(value) for task, value in predictor._forward(sized).items()}


@pytest.mark.slow
@pytest.mark.parametrize("fmt, quantize", [("savedmodel", None), ("tflite", None), ("tflite", "dynamic"),
                                           ("onnx", None)])
def test_export_agrees_with_keras(predictor, real_faces, tmp_path, fmt, quantize):
    if fmt == "onnx" and importlib.util.find_spec("tf2onnx") is None:
        pytest.skip("tf2onnx is not installed (pip install tf2onnx onnx onnxruntime)")
    out = tmp_path / ("model" if fmt == "savedmodel" else f"model.{fmt}")
    path = export.export(predictor, fmt, out, quantize)
    card = json.loads(export.card_path(path, fmt).read_text())
    assert card["export"]["format"] == fmt and card["export"]["input"]["shape"] == [None, 32, 32, 3]
    got = export.load_exported(path, fmt)(real_faces)
    expected = _keras_outputs(predictor, real_faces)
    assert set(got) == set(predictor.tasks)
    for task in ("gender", "age_group"):
        difference = float(np.abs(got[task] - expected[task]).max())
        # Dynamic-range quantized weights are int8: close, not equal (its accuracy: docs/predict.md, export-accuracy).
        assert difference <= (FLOAT_TOLERANCE if quantize is None else 0.05), (task, difference)
    assert np.abs(got["age"].reshape(-1) - expected["age"]).max() <= (1e-3 if quantize is None else 0.5)


def test_export_of_a_mirror_averaging_predictor(predictor, real_faces, tmp_path):
    """A predictor that averages mirrors exports a graph that does the same, and its card says so."""
    mirrored = predict.Predictor(predictor.network, predictor.card, source=predictor.source, mirror=True)
    path = export.export(mirrored, "savedmodel", tmp_path / "model")
    assert json.loads(export.card_path(path, "savedmodel").read_text())["test_time"]["mirror"] is True
    got = export.load_exported(path, "savedmodel")(real_faces)
    plain = _keras_outputs(predictor, real_faces)
    flipped = _keras_outputs(predictor, np.ascontiguousarray(real_faces[:, :, ::-1]))
    for task in ("gender", "age_group"):
        assert float(np.abs(got[task] - (plain[task] + flipped[task]) / 2).max()) <= FLOAT_TOLERANCE


def test_export_command_writes_the_model_and_its_card(predictor, tmp_path, capsys):
    model_dir = str(predictor.source).rsplit("/", 1)[0]
    out = tmp_path / "face.tflite"
    assert cli.main(["export", "--model", model_dir, "--format", "tflite", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["out"] == str(out) and out.stat().st_size > 0
    assert json.loads((tmp_path / "face.tflite.model_card.json").read_text())["tasks"] == list(predictor.tasks)
    assert cli.main(["export", "--model", model_dir, "--format", "onnx", "--quantize", "dynamic",
                     "--out", str(tmp_path / "x.onnx")]) == 2
    assert "applies to --format tflite only" in capsys.readouterr().err


# ------------------------------------------------- recurrent networks and agegender export-accuracy
def make_tiny_rnn_model(folder, precision=None):
    """An untrained CNN+LSTM / CNN+GRU ensemble (the bundled model's builder) at the smoke preset's size, 32 px,
    built under the dtype policy ``precision`` (None: float32)."""
    import dataclasses

    import keras

    from agegender_tf import models
    from agegender_tf.experiments import plans
    from agegender_tf.experiments.train import dtype_policy

    tasks = ("gender", "age_group", "age")
    preset = dataclasses.replace(plans.resolve_preset("cnn_rnn_ensemble", smoke=True), image_size=32)
    kwargs = plans.model_kwargs(preset, tasks)
    spec = plans.augment_spec(preset, "cnn_rnn_ensemble", kwargs)
    keras.utils.set_random_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    with dtype_policy(precision):
        models.build("cnn_rnn_ensemble", **kwargs).save(folder / "best.keras")
    model_card.write_model_card(folder, preset, "cnn_rnn_ensemble", "cnn_rnn_ensemble", kwargs, tasks, spec,
                             train_faces=0)
    return folder


@pytest.mark.slow
def test_export_accuracy_of_a_recurrent_model_on_generated_faces(tmp_path, capsys):
    """The LSTM/GRU ensemble exports to TFLite with a fixed batch of one; ``agegender export-accuracy``
    runs Keras, float and quantized TFLite on a generated UTKFace-layout folder and its split file."""
    from tests.fixtures import write_utkface_layout

    model = make_tiny_rnn_model(tmp_path / "net")
    assert export.has_recurrent_layers(predict.load(model).network)
    written = write_utkface_layout(tmp_path / "utkface" / "UTKFace", per_group=2, size=40)
    split_file = tmp_path / "split.csv"
    split_file.write_text("file,split\n" + "".join(f"{p.name},{'test' if i % 4 else 'train'}\n"
                                                   for i, p in enumerate(written)))
    test_faces = sum(1 for i in range(len(written)) if i % 4)
    out = tmp_path / "exports"
    args = ["export-accuracy", "--model", str(model), "--data-root", str(tmp_path / "utkface"),
            "--split-file", str(split_file), "--out", str(out), "--batch-size", "4", "--json"]
    assert cli.main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["faces"] == test_faces and result["split"] == "test" and result["mirror"] is False
    assert json.loads((out / "accuracy.json").read_text()) == result
    rows = {row["name"]: row for row in result["variants"]}
    assert list(rows) == list(export_accuracy.VARIANTS)
    for row in rows.values():
        assert 0 <= row["gender_accuracy"] <= 1 and 0 <= row["age_group_accuracy"] <= 1 and row["age_mae"] >= 0
    card = json.loads((out / "model.tflite.model_card.json").read_text())
    assert card["export"]["input"]["shape"][0] == 1  # one face per call (recurrent layers)
    exact = rows["tflite"]["vs_keras"]
    assert exact["gender_max_abs_diff"] <= FLOAT_TOLERANCE and exact["age_group_max_abs_diff"] <= FLOAT_TOLERANCE
    assert rows["tflite"]["gender_accuracy"] == rows["keras"]["gender_accuracy"]
    assert rows["tflite-dynamic"]["vs_keras"]["gender_max_abs_diff"] <= 0.05
    assert rows["tflite-dynamic"]["bytes"] < rows["tflite"]["bytes"]
    # A batch of several faces goes through the one-face file face by face.
    faces_in = np.random.default_rng(0).uniform(0, 255, (3, *card["load_size"], 3)).astype(np.float32)
    assert export.load_exported(out / "model.tflite", "tflite")(faces_in)["gender"].shape == (3, 2)


def test_face_metrics_against_labels(predictor):
    import pandas as pd

    frame = pd.DataFrame({"gender": ["female", "male", "male", None], "age": [5.0, 25.0, 47.0, 91.0]})
    outputs = {"gender": np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]),
               "age_group": np.eye(10)[[0, 2, 3, 9]], "age": np.array([5.0, 30.0, 40.0, 91.0])}
    metrics = export_accuracy.face_metrics(predictor, outputs, frame)
    assert metrics == {"gender_accuracy": 2 / 3, "age_group_accuracy": 0.75, "age_mae": 3.0}


@pytest.mark.slow
def test_a_bfloat16_recurrent_model_exports_in_float32(tmp_path, utkface_root, monkeypatch):
    """A network trained in mixed bfloat16 (the bundled model) exports with float32 layers: TFLite cannot
    hold an LSTM's bfloat16 state. The export agrees with the Keras model up to bfloat16 rounding. Where
    bfloat16 is emulated (no AVX-512 BF16 / AMX, or an older GPU) the predictor itself computes in float32."""
    model = make_tiny_rnn_model(tmp_path / "net", precision="mixed_bfloat16")
    monkeypatch.setattr(predict, "native_bfloat16", lambda: False)
    assert predict.load(model).compute_dtype == "float32"
    monkeypatch.setattr(predict, "native_bfloat16", lambda: True)
    keras_predictor = predict.load(model)
    assert keras_predictor.compute_dtype == "bfloat16"
    assert keras_predictor.network.layers[1].layers[1].compute_dtype == "bfloat16"
    monkeypatch.undo()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # oneDNN held below AVX-512 BF16: no native bfloat16
    assert not precision.native_bfloat16()
    as_float = export.float32_network(keras_predictor.network)
    assert {layer.compute_dtype for layer in as_float.layers[1].layers} == {"float32"}
    assert export.float32_network(as_float) is as_float
    path = export.export(keras_predictor, "tflite", tmp_path / "model.tflite")
    assert json.loads(export.card_path(path, "tflite").read_text())["export"]["compute"] == "float32"
    sized = keras_predictor.load_sized([imaging.load_rgb(p) for p in utkface_files(utkface_root, 4)])
    got = export.load_exported(path, "tflite")(sized)
    expected = _keras_outputs(keras_predictor, sized)
    assert float(np.abs(got["gender"] - expected["gender"]).max()) <= 0.02


def test_a_converter_failure_is_one_line_naming_the_model(predictor, tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    class FailingConverter:
        optimizations: list = []

        def convert(self):
            raise RuntimeError("<unknown>:0: note: called from\n<unknown>:0: error: failed to legalize 'tf.Foo'\nmore")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_saved_model", staticmethod(lambda path: FailingConverter()))
    model_dir = str(predictor.source).rsplit("/", 1)[0]
    assert cli.main(["export", "--model", model_dir, "--format", "tflite", "--out", str(tmp_path / "m.tflite")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "best.keras: the TFLite converter failed: <unknown>:0: error: failed to legalize 'tf.Foo'" in line


# ------------------------------------------------------------------------------------ the destination
def _no_conversion(monkeypatch):
    """Fail the test if any conversion work starts (the SavedModel the converters start from)."""
    def refuse(*args, **kwargs):
        raise AssertionError("conversion started before the destination was checked")

    monkeypatch.setattr(export, "_save_savedmodel", refuse)


def _one_error_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in line
    return line


def test_an_existing_export_is_refused_unless_overwrite(predictor, tmp_path, monkeypatch, capsys):
    model_dir = str(predictor.source).rsplit("/", 1)[0]
    out = tmp_path / "m.tflite"
    out.write_bytes(b"an older export")
    with monkeypatch.context() as patch:
        _no_conversion(patch)
        assert cli.main(["export", "--model", model_dir, "--format", "tflite", "--out", str(out)]) == 2
        assert f"{out} exists; choose a new --out (or pass --overwrite" in _one_error_line(capsys)
        assert out.read_bytes() == b"an older export"
        folder = tmp_path / "saved"
        folder.mkdir()
        (folder / "keep.txt").write_text("mine")
        assert cli.main(["export", "--model", model_dir, "--format", "savedmodel", "--out", str(folder)]) == 2
        assert f"{folder} exists and is not empty" in _one_error_line(capsys)
        assert (folder / "keep.txt").read_text() == "mine"
    assert cli.main(["export", "--model", model_dir, "--format", "tflite", "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[4:8] == b"TFL3"  # a TFLite flatbuffer now
    assert json.loads((tmp_path / "m.tflite.model_card.json").read_text())["export"]["format"] == "tflite"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite", "m.tflite.model_card.json", "saved"]


def test_a_savedmodel_replaces_the_old_folder_whole(predictor, tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "stale.txt").write_text("old")
    assert export.export(predictor, "savedmodel", folder, overwrite=True) == folder
    assert not (folder / "stale.txt").exists() and (folder / "saved_model.pb").is_file()
    assert json.loads((folder / "model_card.json").read_text())["export"]["format"] == "savedmodel"
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]  # no temporary folder left


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_an_unwritable_destination_is_refused_before_converting(predictor, tmp_path, monkeypatch, capsys, where):
    _no_conversion(monkeypatch)
    model_dir = str(predictor.source).rsplit("/", 1)[0]
    if where == "under_a_file":
        (tmp_path / "plain.txt").write_text("a file, not a folder")
        out, expected = tmp_path / "plain.txt" / "sub" / "m.tflite", f"{tmp_path / 'plain.txt'} is a file"
    else:
        out, expected = "/proc/agegender-nowhere/m.tflite", "cannot create the folder /proc/agegender-nowhere"
    for fmt in ("tflite", "savedmodel"):
        assert cli.main(["export", "--model", model_dir, "--format", fmt, "--out", str(out)]) == 2
        assert expected in _one_error_line(capsys)


def test_a_full_disk_leaves_nothing_under_the_final_name(predictor, tmp_path, monkeypatch, capsys):
    import errno
    import pathlib

    model_dir = str(predictor.source).rsplit("/", 1)[0]
    monkeypatch.setattr(export, "_tflite_bytes", lambda predictor, quantize, batch: b"\0" * 300_000)
    real_write = pathlib.Path.write_bytes

    def full_disk(self, data):
        real_write(self, data[:1000])  # part of it made it to the disk
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_disk)
    out = tmp_path / "out" / "m.tflite"
    assert cli.main(["export", "--model", model_dir, "--format", "tflite", "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"error: no space left on the disk holding {out.parent} (")
    assert "free at least 293.0 KB (about the size of m.tflite)" in line
    assert list(out.parent.iterdir()) == []  # neither m.tflite, its card nor a temporary file

    def full_disk_savedmodel(predictor, folder, batch=None):
        (Path(folder) / "saved_model.pb").write_text("part")
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(export, "_save_savedmodel", full_disk_savedmodel)
    assert cli.main(["export", "--model", model_dir, "--format", "savedmodel", "--out", str(tmp_path / "s")]) == 2
    assert f"no space left on the disk holding {tmp_path} (" in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_labelled_faces_leave_out_the_faces_a_version_2_split_excludes(tmp_path):
    from tests.fixtures import write_utkface_layout

    written = write_utkface_layout(tmp_path / "utkface" / "UTKFace", per_group=1, size=24)
    split_file = tmp_path / "split.csv"
    rows = [(p.name, "excluded" if i == 1 else "test" if i % 2 else "train") for i, p in enumerate(written)]
    split_file.write_text("file,split,reason\n" + "".join(
        f"{name},{split},{'pixel copy of train face x.jpg (mad 3.0)' if split == 'excluded' else ''}\n"
        for name, split in rows))
    faces = export_accuracy.labelled_faces(tmp_path / "utkface", split_file=split_file)
    assert sorted(faces["file"]) == sorted(name for name, split in rows if split == "test")
