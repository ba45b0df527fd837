"""A detector's face boxes over a dataset, kept beside its manifest (``data_manifests/<dataset>/``).

``boxes_<detector>.csv`` holds, per image file (the split file's key: UTKFace's file name), the largest
face the predictor's detector finds there, exactly as ``agegender predict`` finds it (the same call,
clipped to the image, in file pixels): ``file, box_x, box_y, box_w, box_h, score, faces``. Where the
detector finds no face the box is empty and ``faces`` is 0; a run then uses the whole image, and says
how many. ``agegender detect-boxes DATASET --detector NAME`` writes the file once; runs read it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from agegender_tf.paths import manifests_dir

BOX_COLUMNS = ("box_x", "box_y", "box_w", "box_h")
COLUMNS = ("file", *BOX_COLUMNS, "score", "faces")


def boxes_path(dataset: str, detector: str) -> Path:
    return manifests_dir() / dataset / f"boxes_{detector}.csv"


def read_boxes(path) -> pd.DataFrame:
    """The boxes file at ``path``, its columns checked; ValueError naming it otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no face boxes (agegender detect-boxes writes them)")
    table = pd.read_csv(path)
    if list(table.columns) != list(COLUMNS):
        raise ValueError(f"{path}: expected columns {list(COLUMNS)}, found {list(table.columns)}")
    return table


def join_boxes(manifest: pd.DataFrame, dataset: str, detector: str, path=None) -> tuple[pd.DataFrame, dict]:
    """``manifest`` with the detector's box of each row (NaN where none was found or the file is not
    in the boxes file), and the counts a report records: rows with a box, rows where the detector
    found no face, rows the boxes file does not list."""
    path = Path(path) if path is not None else boxes_path(dataset, detector)
    table = read_boxes(path).set_index("file")
    keys = manifest["path"].map(lambda p: Path(p).name)
    joined = manifest.copy()
    for column in BOX_COLUMNS:
        joined[column] = keys.map(table[column]).astype(float)
    listed = keys.isin(table.index)
    found = joined[list(BOX_COLUMNS)].notna().all(axis=1).to_numpy()
    counts = {"detector": detector, "boxes_file": f"data_manifests/{dataset}/{path.name}",
              "faces": int(len(joined)), "with_box": int(found.sum()),
              "no_face_found": int((listed & ~found).sum()), "not_listed": int((~listed).sum()),
              "without_box_use": "the whole image"}
    return joined, counts


def boxes_table(files, boxes) -> pd.DataFrame:
    """The boxes file's rows for ``files`` (names) and, per file, the detector's boxes (largest first)."""
    rows = []
    for name, found in zip(files, boxes):
        if found:
            b = found[0]
            rows.append((name, b.x, b.y, b.width, b.height, np.nan if b.score is None else round(b.score, 4),
                         len(found)))
        else:
            rows.append((name, np.nan, np.nan, np.nan, np.nan, np.nan, 0))
    table = pd.DataFrame(rows, columns=list(COLUMNS)).sort_values("file").reset_index(drop=True)
    return table.astype({column: "Int64" for column in BOX_COLUMNS})
