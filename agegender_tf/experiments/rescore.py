"""Re-score a finished run folder on the current split from its ``predictions.csv``: no retraining.

A split can lose test faces after a run was made (UTKFace's ``split.csv`` version 2 excludes the test
faces that are pixel copies of a training or validation face, ``data/pixel_copies.py``). The networks
are the same, so their scores are recomputed on the faces that remain:

1. the current split code gives the run's parts for its recorded protocol (``splits.split_manifest``,
   ``limit_parts``) and its leak check (``splits.leak_check``, with pixel copies);
2. the predicted faces that are no longer test faces are *excluded*: listed in ``report.json``'s
   ``split_v2`` (``excluded_test_faces``, ``reason``, ``pairs_file``, ``excluded``) and left out of every
   score, while ``predictions.csv`` keeps every face the run predicted;
3. ``models``, ``metrics``, the paper-vs-kit ``comparison`` and ``protocol.counts`` (part sizes, faces not
   in the split, the leak check) are rewritten, and ``classification_report.txt`` with them.

``results_check.read_run`` drops the ``split_v2.excluded`` faces, so the committed reports are held to
their predictions on the current split. Rescoring is idempotent (it starts from the whole
``predictions.csv`` each time) and works the same on a folder made later on the version-1 split:
``agegender results rescore --results results`` (needs the images: ``$AGEGENDER_DATA`` or ``--data-root``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from agegender_tf.experiments import evaluate, results_check, rundir

SPLIT_KEY = "split_v2"
REASON = ("pixel copies of a training or validation face, the same photo re-encoded, recoloured, re-cropped or "
          "rotated (32x32 grey thumbnails with a mean absolute difference under {mad:g} of 255)")


class _Splits:
    """Each dataset read and each protocol's split and leak check made once per process."""

    def __init__(self, data_root: Path):
        self.data_root, self._manifests, self._made = Path(data_root), {}, {}

    def parts(self, report: dict) -> tuple[dict, dict, int]:
        from agegender_tf.binning import get_binning
        from agegender_tf.data import read_dataset, splits

        dataset, protocol = report["dataset_used"], report["protocol"]
        if dataset not in self._manifests:
            self._manifests[dataset] = read_dataset(dataset, self.data_root / dataset).manifest
        manifest = self._manifests[dataset]
        binning = protocol.get("binning")
        key = (dataset, json.dumps(protocol["split"], sort_keys=True), binning, protocol["seed"],
               protocol.get("max_train_images"))
        if key not in self._made:
            before = splits.split_manifest(manifest, protocol["split"], dataset,
                                           get_binning(binning) if binning else None, protocol["seed"])
            after = splits.limit_parts(before, protocol.get("max_train_images"), protocol["seed"])
            self._made[key] = (before, after, splits.leak_check(after), len(manifest))
        return self._made[key]


def _pairs_file(report: dict) -> str | None:
    from agegender_tf.data import pixel_copies

    if report["protocol"]["split"].get("kind", "committed") != "committed":
        return None
    path = pixel_copies.committed_pairs_path(report["dataset_used"])
    return f"data_manifests/{path.parent.name}/{path.name}" if path.is_file() else None


def rescore_folder(folder: str | Path, data_root: str | Path, cache: _Splits | None = None) -> dict:
    """Re-score ``folder`` on the current split (module docstring); return ``{"folder", "excluded", "test"}``."""
    from agegender_tf.data.pixel_copies import PIXEL_COPY_MAD
    from agegender_tf.experiments.predictions import relative_paths
    from agegender_tf.experiments.report import classification_texts

    folder = Path(folder)
    cache = cache or _Splits(Path(data_root))
    report = json.loads((folder / rundir.REPORT_FILE).read_text())
    predictions = pd.read_csv(folder / "predictions.csv")  # every face the run predicted
    before, after, leak, read = cache.parts(report)
    test_faces = set(relative_paths(after["test"]["path"], cache.data_root))
    excluded = sorted(set(predictions["path"]) - test_faces)
    scored = predictions[~predictions["path"].isin(excluded)]
    labels = results_check.task_labels(report)
    models = evaluate.evaluate_by_model(scored, labels)
    report["models"] = models
    report["metrics"] = models.get(report["main_model"], {})
    for row in report.get("comparison", []):
        kit = models.get(row["model"], {}).get(row["task"], {}).get(row["metric"])
        row["kit"], row["gap"] = kit, None if kit is None else float(kit) - float(row["paper"])
    counts = report["protocol"]["counts"]
    counts["not_in_split"] = int(read - sum(len(part) for part in before.values()))
    counts["split_sizes_before_limit"] = {name: int(len(part)) for name, part in before.items()}
    counts.update({name: int(len(part)) for name, part in after.items()})
    counts["leak_check"] = leak
    report[SPLIT_KEY] = {"excluded_test_faces": len(excluded), "reason": REASON.format(mad=PIXEL_COPY_MAD),
                         "pairs_file": _pairs_file(report), "rescored_from": "predictions.csv",
                         "excluded": excluded}
    texts = classification_texts(scored, labels, report["dataset_used"])
    rundir.write_text_atomic(folder / "classification_report.txt", texts)
    rundir.write_json_atomic(folder / rundir.REPORT_FILE, report)
    return {"folder": folder.name, "excluded": len(excluded), "test": int(len(after["test"]))}


def rescore_results(results_dir: str | Path, data_root: str | Path) -> list[dict]:
    """``rescore_folder`` for every run folder of ``results_dir`` (splits made once per protocol)."""
    cache = _Splits(Path(data_root))
    return [rescore_folder(folder, data_root, cache) for folder in results_check.run_folders(results_dir)]
