"""Offline class balancing (paper 000 sec. IV): undersample large classes, raise small ones with
augmented copies (flip, rotation, scaling, noise) written to disk as real JPEGs.

Every generated row records its ``origin_path``; kept originals carry their own path there. The
build refuses to run when a training image (by path or by byte-identical content) is in the test
manifest, so no augmented copy of a test face can reach training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from agegender_tf.data.hashing import content_hash
from agegender_tf.pipelines.checks import require_readable


class LeakageError(ValueError):
    """Training rows (or their origins) overlap the test set."""


@dataclass
class BalanceResult:
    manifest: pd.DataFrame
    counts_before: dict
    counts_after: dict
    dropped: dict = field(default_factory=dict)  # reason -> rows left out (undersampling)


def check_no_leakage(train: pd.DataFrame, test: pd.DataFrame) -> None:
    """Raise ``LeakageError`` if a training row's path or origin, or its file content, is in ``test``."""
    train_paths = set(train["path"].astype(str))
    if "origin_path" in train:
        train_paths |= set(train["origin_path"].astype(str))
    test_paths = set(test["path"].astype(str))
    shared = sorted(train_paths & test_paths)
    if shared:
        raise LeakageError(f"{len(shared)} training image(s) are in the test set, e.g. {shared[:3]}")
    test_hashes = {content_hash(p): p for p in test_paths}
    clashes = [(p, test_hashes[h]) for p in sorted(train_paths) if (h := content_hash(p)) in test_hashes]
    if clashes:
        raise LeakageError(f"{len(clashes)} training image(s) are byte-identical to test images, e.g. {clashes[:3]}")


def augment_image(image: np.ndarray, rng: np.random.Generator, rotation: float = 15.0,
                  scale: tuple[float, float] = (0.9, 1.1), noise_std: float = 8.0) -> tuple[np.ndarray, str]:
    """One random offline augmentation of an RGB uint8 image (paper 000 sec. IV) and its recipe."""
    height, width = image.shape[:2]
    flip = bool(rng.random() < 0.5)
    angle = float(rng.uniform(-rotation, rotation))
    zoom = float(rng.uniform(*scale))
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, zoom)
    out = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if flip:
        out = out[:, ::-1]
    out = np.clip(out + rng.normal(0.0, noise_std, out.shape), 0, 255).astype(np.uint8)
    return out, f"flip={int(flip)} rotate={angle:.1f} scale={zoom:.3f} noise_std={noise_std:g}"


def balance_offline(manifest: pd.DataFrame, labels, out_dir, *, target_per_class: int | None = None,
                    seed: int = 0, test_manifest: pd.DataFrame | None = None) -> BalanceResult:
    """Each class brought to ``target_per_class`` rows (default: the median class size).

    ``labels`` is a manifest column name or one label per row. Larger classes are randomly
    undersampled (counted in ``dropped``), smaller ones keep every original and gain augmented
    copies of their own images, written as JPEGs under ``out_dir/<class>/``. Added columns:
    ``origin_path``, ``generated``, ``augmentation`` (the recipe) and ``balance_label``.
    """
    manifest = manifest.reset_index(drop=True)
    values = manifest[labels].to_numpy() if isinstance(labels, str) else np.asarray(labels)
    if len(values) != len(manifest):
        raise ValueError(f"{len(values)} labels for {len(manifest)} manifest rows")
    if pd.isna(values).any():
        raise ValueError(f"{int(pd.isna(values).sum())} rows have no label; filter them first (targets.usable_rows)")
    if test_manifest is not None:
        check_no_leakage(manifest, test_manifest)
    require_readable(manifest["path"])
    classes, counts = np.unique(values, return_counts=True)
    target = int(target_per_class or np.median(counts))
    if target < 1:
        raise ValueError(f"target_per_class must be >= 1, got {target}")
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    rows, dropped = [], 0
    for label, count in zip(classes, counts):
        members = manifest.index[values == label].to_numpy()
        if count >= target:
            keep = np.sort(rng.choice(members, size=target, replace=False))
            dropped += count - target
            part = manifest.loc[keep].copy()
            part["origin_path"], part["generated"] = part["path"], False
            part["augmentation"], part["balance_label"] = None, label
            rows.append(part)
            continue
        part = manifest.loc[members].copy()
        part["origin_path"], part["generated"] = part["path"], False
        part["augmentation"], part["balance_label"] = None, label
        rows.append(part)
        extra = target - count
        sources = np.concatenate([rng.permutation(members) for _ in range(-(-extra // count))])[:extra]
        folder = out_dir / str(label).replace("/", "_").replace(" ", "")
        folder.mkdir(parents=True, exist_ok=True)
        generated = []
        for k, source in enumerate(sources):
            row = manifest.loc[source].to_dict()
            image = cv2.cvtColor(cv2.imread(str(row["path"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            augmented, recipe = augment_image(image, rng)
            path = folder / f"{Path(row['path']).stem.replace('.', '_')}_aug{k:05d}.jpg"
            cv2.imwrite(str(path), cv2.cvtColor(augmented, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            row.update(origin_path=row["path"], path=str(path), generated=True, augmentation=recipe,
                       balance_label=label)
            generated.append(row)
        rows.append(pd.DataFrame(generated))
    balanced = pd.concat(rows, ignore_index=True)
    counts_after = {str(c): target for c in classes}
    return BalanceResult(
        manifest=balanced,
        counts_before={str(c): int(n) for c, n in zip(classes, counts)},
        counts_after=counts_after,
        dropped={"undersampled": int(dropped)} if dropped else {},
    )
