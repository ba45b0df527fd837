"""The committed results/ held to the code, and results/README.md generated from them.

Each committed ``results/*/report.json`` must recompute from its ``predictions.csv`` with the kit's own
evaluation, record a leak check that passed, name a known preset, be a full (not smoke) run with its
``COMMAND.txt``, store image paths relative to the data root, and (with the real data) have the split
counts and test faces that the current split code gives for its protocol. ``results/README.md`` and
``results/run_all.sh`` must be what ``agegender results readme`` writes. The generator itself is checked
on a synthetic run folder written by the real ``report.write_report``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd
import pytest

from agegender_tf.cli import main
from agegender_tf.experiments import results_check as rc
from agegender_tf.experiments import results_table as rt
from agegender_tf.paths import data_home
from tests.fixtures import REPO_ROOT

RESULTS_DIR = REPO_ROOT / "results"  # the checkout's committed runs
COMMITTED = rc.run_folders(RESULTS_DIR)


@pytest.fixture(scope="module", params=COMMITTED, ids=[folder.name for folder in COMMITTED])
def committed_run(request) -> rc.RunFolder:
    return rc.read_run(request.param)


@pytest.fixture(scope="session")
def split_parts():
    """``parts(report)``: the current split code's train/val/test for a report's protocol, before and after
    ``max_train_images``, and the reader's counts; each dataset read and each split made once per session
    (a holdout split hashes every image: about a minute for UTKFace)."""
    from agegender_tf.binning import get_binning
    from agegender_tf.data import read_dataset, splits

    home = data_home()
    if home is None:
        pytest.skip("AGEGENDER_DATA is not set to the real datasets: the split counts need the images")
    manifests, made = {}, {}

    def parts(report: dict):
        dataset, protocol = report["dataset_used"], report["protocol"]
        if not (home / dataset).is_dir():
            pytest.skip(f"{dataset} not found under AGEGENDER_DATA ({home})")
        if dataset not in manifests:
            result = read_dataset(dataset, home / dataset)
            manifests[dataset] = (result.manifest, result.dropped_counts())
        manifest, dropped = manifests[dataset]
        binning = protocol.get("binning")
        key = (dataset, json.dumps(protocol["split"], sort_keys=True), binning, protocol["seed"])
        if key not in made:
            made[key] = splits.split_manifest(manifest, protocol["split"], dataset,
                                              get_binning(binning) if binning else None, protocol["seed"])
        before = made[key]
        after = splits.limit_parts(before, protocol.get("max_train_images"), protocol["seed"])
        return manifest, dropped, before, after

    return parts


# ------------------------------------------------------------------------ committed reports, held to the code
def test_report_metrics_recompute_from_its_predictions(committed_run):
    assert rc.metric_mismatches(committed_run) == [], (
        f"results/{committed_run.name}/report.json does not recompute from its predictions.csv")


def test_report_is_a_full_run_of_a_known_preset_with_its_command(committed_run):
    from agegender_tf.experiments.presets import PRESETS

    report = committed_run.report
    assert report["preset"] in PRESETS, f"unknown preset {report['preset']!r}"
    assert report["protocol"]["smoke"] is False
    assert committed_run.command, f"results/{committed_run.name}/COMMAND.txt is missing or empty"
    assert re.search(rf"\bagegender run {re.escape(report['preset'])}\s", committed_run.command)
    assert re.search(rf"--out results/{re.escape(committed_run.name)}(\s|$)", committed_run.command), (
        f"COMMAND.txt of results/{committed_run.name} does not write to that folder")


def test_report_records_a_leak_check_that_passed(committed_run):
    check = committed_run.report["protocol"]["counts"].get("leak_check")
    assert check is not None, f"results/{committed_run.name}: no protocol.counts.leak_check (made before runs checked)"
    assert check["ok"] is True, check["boundaries"]
    for boundary in ("train/test", "val/test"):  # pixel copies counted (agegender results rescore adds them)
        assert check["boundaries"][boundary]["pixel_copy"] == 0, boundary


def test_prediction_paths_are_relative_to_the_data_root(committed_run):
    dataset = committed_run.report["dataset_used"]
    for path in committed_run.predictions["path"].unique():
        assert not PurePosixPath(path).is_absolute() and not PureWindowsPath(path).is_absolute(), path
        assert not path.startswith("~") and ".." not in PurePosixPath(path).parts, path
        assert PurePosixPath(path).parts[0] == dataset, f"{path} is not under {dataset}/"


def test_split_counts_are_what_the_current_split_code_gives(committed_run, split_parts):
    report = committed_run.report
    counts = report["protocol"]["counts"]
    manifest, dropped, before, after = split_parts(report)
    assert counts["read"] == len(manifest)
    assert counts["dropped_by_reader"] == dropped
    assert counts["not_in_split"] == len(manifest) - sum(len(part) for part in before.values())
    assert counts["split_sizes_before_limit"] == {name: len(part) for name, part in before.items()}
    assert {name: counts[name] for name in after} == {name: len(part) for name, part in after.items()}


def test_predictions_are_the_split_test_faces(committed_run, split_parts):
    """Scored faces are test faces of the current split; the faces a run predicted that the split now excludes
    are exactly its report's ``split_v2.excluded`` (``agegender results rescore``)."""
    from agegender_tf.experiments.predictions import relative_paths

    _, _, _, after = split_parts(committed_run.report)
    test_faces = set(relative_paths(after["test"]["path"], data_home()))
    for model, rows in committed_run.predictions.groupby("model"):
        assert rows["path"].is_unique, f"{model}: a face scored twice"
        outside = set(rows["path"]) - test_faces
        assert not outside, f"{model}: {len(outside)} predicted faces are not test faces, e.g. {sorted(outside)[:3]}"
    predicted = set(pd.read_csv(committed_run.path / "predictions.csv")["path"])
    assert set(committed_run.excluded) == predicted - test_faces, "run: agegender results rescore --results results"


def test_reports_of_the_committed_split_exclude_its_excluded_test_faces(committed_run):
    """Without the images: a run on the committed split scores none of the faces split.csv (version 2) excludes,
    and its report says which and why."""
    from agegender_tf.data import splits

    protocol = committed_run.report["protocol"]
    if protocol["split"].get("kind", "committed") != "committed":
        pytest.skip("a holdout split: its exclusions are checked with the images")
    table = pd.read_csv(splits.committed_split_path(committed_run.report["dataset_used"]), dtype=str,
                        keep_default_na=False)
    excluded = set(table.loc[table["split"] == splits.EXCLUDED, "file"])
    predicted = pd.read_csv(committed_run.path / "predictions.csv")["path"]
    want = sorted(path for path in predicted.unique() if PurePosixPath(path).name in excluded)
    assert sorted(committed_run.excluded) == want, "run: agegender results rescore --results results"
    scored = {PurePosixPath(path).name for path in committed_run.predictions["path"]}
    assert not scored & excluded
    v2 = committed_run.report.get("split_v2")
    if want:
        assert v2["excluded_test_faces"] == len(want) and v2["pairs_file"] == "data_manifests/utkface/pixel_copies.csv"
        assert "pixel" in v2["reason"]
    assert committed_run.report["protocol"]["counts"]["test"] == committed_run.predictions.groupby("model").size().max()


# ----------------------------------------------------------------------- the generated README and run_all.sh
def test_committed_readme_and_run_all_are_what_the_generator_writes():
    assert rt.stale_files(RESULTS_DIR) == [], "run: agegender results readme"


def test_every_paper_vs_kit_gap_says_why_it_remains():
    readme = (RESULTS_DIR / rt.README_FILE).read_text()
    assert rt.NO_REASON not in readme, "add the reasons to results/gaps.json, then run agegender results readme"
    unknown = set(rt.read_gaps(RESULTS_DIR)) - {folder.name for folder in COMMITTED}
    assert not unknown, f"results/gaps.json has entries for folders that do not exist: {sorted(unknown)}"


def test_baseline_models_are_the_kits_baselines():
    from agegender_tf.models.baselines import BASELINES

    assert rc.BASELINE_MODELS == BASELINES


# ------------------------------------------------------------------------------- a synthetic run folder
AGES = np.array([3, 8, 15, 22, 24, 25, 27, 28, 29, 33, 35, 38, 41, 47, 52, 58, 61, 66, 74, 85] * 5, dtype=float)


def _predictions(binning) -> tuple[pd.DataFrame, dict]:
    """Three models on 100 faces: an ensemble that learned, a member stuck at the majority class, and a
    member whose gender accuracy is exactly the bar (0.80)."""
    faces = len(AGES)
    paths = [f"utkface/UTKFace/{int(a)}_{i % 2}_0_2017011{i:05d}.jpg.chip.jpg" for i, a in enumerate(AGES)]
    gender = np.array([0] * 45 + [1] * 55)
    groups = np.asarray(binning.to_class(AGES))
    majority_group = int(pd.Series(groups).mode()[0])
    flip = np.arange(faces) < 5
    learned = pd.DataFrame({"model": "cnn_rnn_ensemble", "path": paths, "gender_true": gender,
                            "gender_pred": np.where(flip, 1 - gender, gender), "age_group_true": groups,
                            "age_group_pred": np.where(np.arange(faces) % 10 == 0, np.maximum(groups - 1, 0), groups),
                            "age_true": AGES, "age_pred": AGES + 2.0})
    stuck = learned.assign(model="cnn_rnn_ensemble_member0", gender_pred=1, age_group_pred=majority_group,
                           age_pred=float(np.median(AGES)))
    boundary = learned.assign(model="cnn_rnn_ensemble_member1",
                              gender_pred=np.where(np.arange(faces) < 20, 1 - gender, gender))
    table = pd.concat([stuck, boundary, learned], ignore_index=True)
    facts = {"gender_majority": 0.55, "group_majority": float(np.mean(groups == majority_group)),
             "median_mae": float(np.mean(np.abs(AGES - np.median(AGES))))}
    return table, facts


@pytest.fixture
def synthetic_results(tmp_path):
    """A results folder with one run folder written by the real ``write_report`` (no figures), its
    ``COMMAND.txt``, ``history.csv``, a ``gaps.json`` and a README with hand-written text around the markers."""
    from agegender_tf.binning import get_binning
    from agegender_tf.experiments.presets import get_preset
    from agegender_tf.experiments.report import write_report

    preset = get_preset("cnn_rnn_ensemble")
    table, facts = _predictions(get_binning(preset.binning))
    results = tmp_path / "results"
    folder = results / "cnn_rnn_ensemble"
    folder.mkdir(parents=True)
    table.to_csv(folder / "predictions.csv", index=False)
    counts = {"read": 500, "dropped_by_reader": {}, "not_in_split": 0,
              "split_sizes_before_limit": {"train": 350, "val": 50, "test": 100},
              "train": 350, "val": 50, "test": 100, "leak_check": {"ok": True, "boundaries": {}}}
    write_report(preset, folder, table, counts=counts, seed=42, smoke=False, seconds=4321.0, parameters={},
                 figures=False, training_seconds={"cnn_rnn_ensemble__gender_age_group_age": 3000.0})
    command = "agegender run cnn_rnn_ensemble --profile cpu --out results/cnn_rnn_ensemble --seed 42"
    (folder / "COMMAND.txt").write_text(command + "\n")
    patience = preset.callbacks["early_stopping"]["patience"]
    val_loss = [3.0, 2.0, 1.5] + [1.6 + 0.1 * i for i in range(patience)]  # best at epoch 3 (index 2)
    pd.DataFrame({"epoch": range(len(val_loss)), "val_loss": val_loss, "run": "cnn_rnn_ensemble__gender_age_group_age"}
                 ).to_csv(folder / "history.csv", index=False)
    (results / rt.GAPS_FILE).write_text(json.dumps({
        "cnn_rnn_ensemble": {"note": "A note by hand.", "reason": "The folder's reason.",
                             "rows": {"cnn_rnn_ensemble/age": "The age row's reason."}}}))
    (results / rt.README_FILE).write_text(f"# Results\n\nHand-written preamble.\n\n{rt.BEGIN}\nold tables\n{rt.END}\n"
                                          "\nHand-written tail.\n")
    return results, facts


def _row(text: str, model: str, task: str) -> str:
    """The line of ``model`` / ``task`` in the scores table (it comes before the paper-vs-kit table)."""
    return next(line for line in text.splitlines() if line.startswith(f"| {model} | {task} |"))


def test_generator_scores_each_model_against_the_learning_bar(synthetic_results):
    results, facts = synthetic_results
    text = rt.render_readme(results)
    stuck = _row(text, "cnn_rnn_ensemble_member0", "gender")
    assert f"majority {facts['gender_majority']:.3f}" in stuck and "**fail** (accuracy >= 0.80)" in stuck
    assert "predicts one class for 100% of the faces" in stuck
    group = _row(text, "cnn_rnn_ensemble_member0", "age_group")
    assert f"| {facts['group_majority']:.3f} |" in group  # stuck at the majority: its accuracy is the majority share
    assert f"accuracy >= {facts['group_majority'] + 0.05:.3f}, macro F1 >= 0.30" in group and "**fail**" in group
    assert "pass (accuracy >= 0.80)" in _row(text, "cnn_rnn_ensemble_member1", "gender")  # 0.800 meets the bar
    age = _row(text, "cnn_rnn_ensemble", "age")
    assert f"median guess MAE {facts['median_mae']:.2f}" in age and "| 2.00 |" in age
    assert f"pass (MAE <= {0.6 * facts['median_mae']:.2f})" in age
    assert ("Learning bar: cnn_rnn_ensemble_member0 **misses it**; cnn_rnn_ensemble_member1 meets it; "
            "cnn_rnn_ensemble meets it.") in text
    assert "Stayed at one class on some task: cnn_rnn_ensemble_member0." in text
    assert ("| 350 / 50 / 100 | 3,000 s (50 min) | 4,321 s (72 min) | 2 of 3 (cnn_rnn_ensemble_member1, "
            "cnn_rnn_ensemble) |") in text


def test_generator_reads_the_command_epochs_and_gap_reasons(synthetic_results):
    results, _ = synthetic_results
    text = rt.render_readme(results)
    assert "`agegender run cnn_rnn_ensemble --profile cpu --out results/cnn_rnn_ensemble --seed 42`" in text
    assert "A note by hand." in text
    report = json.loads((results / "cnn_rnn_ensemble" / "report.json").read_text())
    patience, cap = report["protocol"]["callbacks"]["early_stopping"]["patience"], report["protocol"]["epochs"]
    assert (f"`cnn_rnn_ensemble__gender_age_group_age`: {3 + patience} of {cap} epochs, best val_loss at epoch 3, "
            "stopped by early stopping, fit in 3,000 s (50 min).") in text
    for row in report["comparison"]:
        line = next(line for line in text.splitlines()
                    if line.startswith(f"| {row['model']} | {row['task']} | {row['metric']} | {row['paper']} |"))
        reason = "The age row's reason." if row["task"] == "age" else "The folder's reason."
        assert line.endswith(f"| {reason} |")
    assert rt.NO_REASON not in text


def test_generator_keeps_the_hand_written_text_and_refuses_a_readme_without_markers(synthetic_results):
    results, _ = synthetic_results
    text = rt.render_readme(results)
    assert text.startswith("# Results\n\nHand-written preamble.\n\n" + rt.BEGIN + "\n")
    assert text.endswith(rt.END + "\n\nHand-written tail.\n") and "old tables" not in text
    assert rt.render_readme(results, current=text) == text
    (results / rt.README_FILE).write_text("# Results\n\nno markers\n")
    with pytest.raises(ValueError, match="README.md: needs one line"):
        rt.render_readme(results)


def test_run_all_lists_every_command_and_needs_each(synthetic_results):
    results, _ = synthetic_results
    script = rt.render_run_all(results)
    assert ("agegender run cnn_rnn_ensemble --profile cpu --out results/cnn_rnn_ensemble --seed 42 "
            "> results/cnn_rnn_ensemble/train.log 2>&1") in script.splitlines()
    (results / "cnn_rnn_ensemble" / "COMMAND.txt").unlink()
    with pytest.raises(ValueError, match="COMMAND.txt is missing"):
        rt.render_run_all(results)


def test_a_tampered_report_or_prediction_is_caught(synthetic_results, tmp_path):
    results, _ = synthetic_results
    folder = results / "cnn_rnn_ensemble"
    assert rc.metric_mismatches(rc.read_run(folder)) == []
    report = json.loads((folder / "report.json").read_text())
    report["models"]["cnn_rnn_ensemble"]["gender"]["accuracy"] += 1e-6
    (folder / "report.json").write_text(json.dumps(report))
    [found] = rc.metric_mismatches(rc.read_run(folder))
    assert found.startswith("models.cnn_rnn_ensemble.gender.accuracy: 0.95 != 0.95000")
    other = shutil.copytree(folder, tmp_path / "other")
    table = pd.read_csv(other / "predictions.csv")
    table.loc[table["model"] == "cnn_rnn_ensemble", "age_pred"] += 1.0
    table.to_csv(other / "predictions.csv", index=False)
    found = rc.metric_mismatches(rc.read_run(other))
    assert "models.cnn_rnn_ensemble.age.mae: 3.0 != 2.0" in found and "metrics.age.mae: 3.0 != 2.0" in found


def test_cli_writes_then_checks_the_generated_files(synthetic_results, capsys):
    results, _ = synthetic_results
    assert main(["results", "readme", "--results", str(results), "--check"]) == 1
    assert "README.md is out of date" in capsys.readouterr().out
    assert main(["results", "readme", "--results", str(results)]) == 0
    assert main(["results", "readme", "--results", str(results), "--check"]) == 0
    assert (results / rt.RUN_ALL_FILE).stat().st_mode & 0o111
    assert main(["results", "readme", "--results", str(results / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_readme_command_defaults_to_the_results_folder_of_the_working_directory(synthetic_results, monkeypatch,
                                                                                capsys):
    results, _ = synthetic_results
    monkeypatch.chdir(results.parent)
    assert rt.main(["--check"]) == 1  # python -m agegender_tf.experiments.results_table, without the root CLI
    assert f"run agegender results readme --results {rt.DEFAULT_RESULTS}" in capsys.readouterr().out
    assert main(["results", "readme"]) == 0
    assert rt.main(["--check"]) == 0


# -------------------------------------------------------------------- prediction paths and the face grid
def test_prediction_paths_are_written_relative_and_joined_back(tmp_path, monkeypatch):
    from agegender_tf.experiments.predictions import relative_paths
    from agegender_tf.experiments.report import face_paths
    from tests.fixtures import write_jpeg

    root = tmp_path / "data"
    face = write_jpeg(root / "utkface" / "UTKFace" / "25_0_0_20170101.jpg.chip.jpg", size=16)
    assert relative_paths(pd.Series([str(face)]), root).tolist() == ["utkface/UTKFace/25_0_0_20170101.jpg.chip.jpg"]
    with pytest.raises(ValueError, match="is not under the data root"):
        relative_paths(pd.Series([str(tmp_path / "elsewhere.jpg")]), root)
    run = tmp_path / "run"
    run.mkdir()
    relative = ["utkface/UTKFace/25_0_0_20170101.jpg.chip.jpg"]
    assert face_paths(relative, run, root) == [face]
    monkeypatch.setenv("AGEGENDER_DATA", str(root))
    assert face_paths(relative, run) == [face]  # no fingerprint.json: the data root from the environment
    (run / "fingerprint.json").write_text(json.dumps({"context": {"data_root": str(root)}}))
    monkeypatch.delenv("AGEGENDER_DATA")
    assert face_paths(relative, run) == [face]  # the data root the run recorded
    with pytest.raises(FileNotFoundError, match="missing.jpg of .*predictions.csv not found"):
        face_paths(["utkface/UTKFace/missing.jpg"], run, root)


def test_a_run_stores_relative_paths_exact_ages_and_each_networks_fit_time(gra_net_smoke_run, utkface_layout_root):
    """The runner's own folder passes the checks the committed folders must pass."""
    run = rc.read_run(gra_net_smoke_run)
    assert rc.metric_mismatches(run) == []  # ages stored as float64: the MAE recomputes to 1e-9
    for path in run.predictions["path"]:
        assert not PurePosixPath(path).is_absolute() and (utkface_layout_root / path).is_file(), path
    done = {p.parent.name: json.loads(p.read_text())["seconds"] for p in gra_net_smoke_run.glob("train/*/done.json")}
    assert done and run.report["protocol"]["training_seconds"] == done
    assert (gra_net_smoke_run / "figures" / "test_faces.png").is_file()  # the face grid found the relative paths
