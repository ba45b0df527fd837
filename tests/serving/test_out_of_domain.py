"""Every model judged on faces from elsewhere: the Adience faces on disk scored through the predictor's
path (a face not found counts as wrong), recorded in a run's report, and one command for any model."""

from __future__ import annotations

import json
import shutil

import pytest

from agegender_tf.cli import main
from agegender_tf.serving import out_of_domain
from agegender_tf.serving import predictor as predict
from tests.fixtures import make_tiny_model, write_adience


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    """A data root holding an Adience fixture: five fold files, three crops on disk (f, m and an unknown)."""
    root = tmp_path_factory.mktemp("ood")
    (root / "adience").mkdir()
    write_adience(root / "adience", with_images=("a_o.jpg", "b_o.jpg", "c_o.jpg", "g_o.jpg"))
    return root


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    make_tiny_model(run / "train" / "gra_net__gender_age_group_age")
    (run / "report.json").write_text(json.dumps({"preset": "gra_net", "protocol": {}}))
    return run


def test_the_faces_on_disk_and_their_labels(fixture_root):
    frame = out_of_domain.adience_faces(fixture_root / "adience")
    assert [p.rsplit(".", 2)[-2] for p in frame["path"]] == ["a_o", "b_o", "c_o", "g_o"]
    assert frame["gender"].tolist()[:2] == ["female", "male"] and frame["gender"].isna().tolist()[2]
    assert frame["age_group"].iloc[0] == "(25, 32)"


def test_scores_count_a_face_not_found_as_wrong(fixture_root, tiny_run):
    predictor = predict.load(tiny_run / "train" / "gra_net__gender_age_group_age")
    frame = out_of_domain.adience_faces(fixture_root / "adience")
    through_detector = out_of_domain.score(predictor, frame)  # random crops: no face anywhere
    assert through_detector["face_found"] == 0 and through_detector["gender_accuracy"] == 0.0
    assert through_detector["gender_faces"] == 3 and through_detector["age_group_faces"] == 4
    assert through_detector["age_group_exact"] == 0.0 and through_detector["age_group_from"] == "years"
    aligned = out_of_domain.score(predictor, frame, aligned=True)  # each crop as one face
    assert aligned["face_found"] == 4 and aligned["path"] == "aligned"
    assert 0.0 <= aligned["age_group_exact"] <= aligned["age_group_one_off"] <= 1.0


def test_a_run_records_its_scores_beside_its_report(fixture_root, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    scores = out_of_domain.score_run(run, fixture_root, smoke=True)
    assert set(scores["networks"]) == {"gra_net__gender_age_group_age"} and scores["faces_on_disk"] == 4
    report = json.loads((run / "report.json").read_text())
    assert report["out_of_domain"] == scores == json.loads((run / out_of_domain.RESULT_FILE).read_text())
    assert out_of_domain.score_run(run, tmp_path / "no_data") is None  # no Adience faces: nothing recorded


def test_the_evaluate_command(fixture_root, tiny_run, capsys):
    model = str(tiny_run / "train" / "gra_net__gender_age_group_age")
    assert main(["evaluate", "--model", model, "--data-root", str(fixture_root), "--aligned", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "adience" and result["faces"] == 4 and result["model"].endswith("best.keras")
    assert main(["evaluate", "--model", model, "--data-root", str(fixture_root / "nowhere")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
