"""Every model judged on photos from elsewhere: the Adience faces on disk, through the predictor's path.

The Adience faces under ``$AGEGENDER_DATA/adience`` are never trained on; they are the kit's out-of-domain
check, used to judge and to choose models. Each face file goes through ``Predictor.predict_files`` as a
user's photo would (the detector, then the training framing; ``aligned=True``: the file as one face). A
file where no face is found counts as wrong. Gender is scored on faces labelled f or m; age on Adience's
eight groups, exact and 1-off, from the network's groups where it has Adience's binning, else from its
predicted years (``ADIENCE8.to_class``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from agegender_tf.binning import ADIENCE8
from agegender_tf.experiments.rundir import write_json_atomic

DATASET = "adience"
SMOKE_FACES = 48  # a smoke run scores this many, only to show the path works
RESULT_FILE = "out_of_domain.json"


def adience_faces(root, limit: int | None = None) -> pd.DataFrame:
    """``path, gender, age_group`` of the labelled Adience faces on disk under ``root`` (sorted by path)."""
    from agegender_tf.data.readers import read_dataset

    manifest = read_dataset(DATASET, root).manifest
    frame = manifest[manifest["image_found"]].sort_values("path")
    frame = frame[frame["gender"].notna() | frame["age_group"].notna()]
    if limit:
        frame = frame.head(limit)
    return frame[["path", "gender", "age_group"]].reset_index(drop=True)


def _largest(faces: list[dict]) -> dict | None:
    return max(faces, key=lambda f: f["box"][2] * f["box"][3]) if faces else None


def score(predictor, frame: pd.DataFrame, detector: str | None = None, aligned: bool = False,
          dataset: str = DATASET) -> dict:
    """``predictor`` on ``frame``'s faces (``path``, ``gender``, and Adience's ``age_group`` or ``age`` in
    years) through ``predict_files``: gender accuracy, and Adience-group exact and 1-off accuracy or the
    age MAE (over the faces found). A file where no face is found counts as wrong."""
    from agegender_tf.serving import DETECTORS

    detector = detector or DETECTORS[0]
    answers = {path: (result, error) for path, result, error in
               predictor.predict_files(frame["path"].tolist(), aligned=aligned, detector=detector)}
    genders, groups, errors, found = [], [], [], 0
    groups_head = predictor.card["heads"].get("age_group", {})
    from_groups = groups_head.get("binning") == ADIENCE8.name
    for row in frame.to_dict("records"):
        result, _ = answers[str(row["path"])]
        face = _largest(result["faces"]) if result else None
        found += face is not None
        if isinstance(row.get("gender"), str) and "gender" in predictor.tasks:
            genders.append(face is not None and face["gender"]["label"] == row["gender"])
        if isinstance(row.get("age_group"), str) and ("age" in predictor.tasks or from_groups):
            truth = ADIENCE8.labels.index(row["age_group"])
            if face is None:
                groups.append(None)
            else:
                guess = (ADIENCE8.labels.index(face["age_group"]["label"]) if from_groups
                         else int(np.atleast_1d(ADIENCE8.to_class(np.array([face["age"]])))[0]))
                groups.append(guess - truth)
        years = row.get("age")
        if "age_group" not in row and face is not None and face.get("age") is not None and not pd.isna(years):
            errors.append(abs(face["age"] - float(years)))
    result = {"dataset": dataset, "faces": int(len(frame)), "face_found": int(found),
              "path": "aligned" if aligned else f"detector {detector}", "mirror": predictor.mirror}
    if genders:
        result.update(gender_accuracy=round(float(np.mean(genders)), 4), gender_faces=len(genders))
    if groups:
        result.update(
            age_group_exact=round(float(np.mean([g == 0 for g in groups])), 4),
            age_group_one_off=round(float(np.mean([g is not None and abs(g) <= 1 for g in groups])), 4),
            age_group_faces=len(groups), age_group_from="groups" if from_groups else "years")
    if errors:
        result.update(age_mae=round(float(np.mean(errors)), 3), age_faces=len(errors))
    return result


def score_run(out_dir, data_root, smoke: bool = False) -> dict | None:
    """Score every trained network of the run folder ``out_dir`` on the Adience faces under ``data_root``
    (None when there are none), and record the scores in its ``report.json`` (``out_of_domain``) and in
    ``out_of_domain.json`` beside it."""
    from agegender_tf.serving import predictor as serving_predictor

    root = Path(data_root) / DATASET
    if not (root / "faces").is_dir() and not (root / "aligned").is_dir():
        return None
    frame = adience_faces(root, limit=SMOKE_FACES if smoke else None)
    if frame.empty:
        return None
    out_dir = Path(out_dir)
    networks = {}
    for card in sorted(out_dir.glob("train/*/model_card.json")):
        predictor = serving_predictor.load(card.parent)
        networks[card.parent.name] = score(predictor, frame)
    scores = {"dataset": DATASET, "faces_on_disk": int(len(frame)), "smoke": smoke,
              "note": "one Flickr user of Adience fold 0, never trained on", "networks": networks}
    write_json_atomic(out_dir / RESULT_FILE, scores)
    report_path = out_dir / "report.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        report["out_of_domain"] = scores
        write_json_atomic(report_path, report)
    return scores
