"""A run folder's identity, lock and atomic files: a run's results are what its recorded settings made.

- ``fingerprint.json`` records what made the folder: the resolved preset (after ``--smoke``,
  ``--profile`` and ``--set``), the profile, seed, smoke flag, the dataset folder, the sha256 of the
  committed split file's train and validation rows (what training read; the whole file's sha256 is
  context), the distribution strategy and the kit version. A rerun with the
  same fingerprint resumes (or reuses finished networks); a different one is refused with one line
  naming what differs, unless ``overwrite`` empties the folder first.
- ``.lock`` is held with ``fcntl.flock`` for the whole run, so a second run into the same folder
  stops at once ("D is in use by process N") instead of mixing its files with the first one's.
  The lock file stays (removing it would let two runs lock two different files).
- ``write_text_atomic`` / ``write_json_atomic`` / ``write_csv_atomic`` write a temporary file beside
  the target and ``os.replace`` it, so a kill never leaves a half-written file; ``report.json`` is
  written last, so a folder without it is visibly unfinished.
- ``NetworkRun`` names one trained network's folder (``train/<model>__<tasks>/``) and reads it back.
- ``check_keras_file`` / ``load_keras_model`` name a damaged ``best.keras`` (a ``.keras`` file is a zip
  archive: cut short, it has no central directory) instead of Keras' "File not found".
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from agegender_tf.errors import UsageError
from agegender_tf.model_card import keras_archive_problem
from agegender_tf.paths import write_text_atomic

FINGERPRINT_FILE = "fingerprint.json"
LOCK_FILE = ".lock"
# The folders of the workers other than the chief (``workers``): each locks and writes its own.
WORKERS_DIR = ".workers"
REPORT_FILE = "report.json"
# Any of these marks a folder as a run folder that ``--overwrite`` may empty.
RUN_FOLDER_MARKS = (FINGERPRINT_FILE, "preset.json", REPORT_FILE, "train")
FRESH_START = "rerun with --overwrite to start fresh"


@dataclass(frozen=True)
class NetworkRun:
    """One trained network of a run: its model's name in reports, the outputs it trains, and whether it is
    a comparison (not the preset's own model). ``folder`` names its ``train/<folder>/`` and its rows of
    ``history.csv`` (the ``run`` column); ``from_folder`` reads such a name back."""

    name: str
    task_group: tuple[str, ...]
    comparison: bool = False

    @property
    def folder(self) -> str:
        """``gra_net__gender_age_group_age``: the name, two underscores, the tasks joined by one."""
        return f"{self.name}__{'_'.join(self.task_group)}"

    @classmethod
    def from_folder(cls, folder: str, task_groups, main_model: str | None = None) -> NetworkRun:
        """The network a ``folder`` name stands for, its tasks found among the preset's ``task_groups``
        (none matching: no tasks); a comparison when ``main_model`` is given and is not its name."""
        name, _, joined = folder.partition("__")
        tasks = next((tuple(group) for group in task_groups if "_".join(group) == joined), ())
        return cls(name, tasks, main_model is not None and name != main_model)


class RunFolderBusy(UsageError):
    """Another process holds the run folder's lock."""


class CorruptFile(UsageError):
    """A file of the run folder cannot be read back (cut short, not the format it should be)."""


# ------------------------------------------------------------------------------------ atomic files
def write_json_atomic(path: str | Path, value) -> Path:
    return write_text_atomic(path, json.dumps(value, indent=2, default=str))


def write_csv_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    return write_text_atomic(path, frame.to_csv(index=False))


# -------------------------------------------------------------------------------------- fingerprint
def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


# Committed split files a run folder may have recorded by their whole file's sha256 (before fingerprints
# named the train/val rows): file -> {that sha256: the sha256 of its train/val rows}. UTKFace's version 1
# had the train/val rows of version 2, which only excludes test faces: runs made on it resume.
EARLIER_SPLIT_FILES = {"utkface/split.csv": {
    "a1a90598d33d5957cfd0b283dd3f643cef81b0e673ab40a3c82b92f71f1efb27":
        "eb510a9aabfd77d88d8007504abc1a6553a8a09b9411d12c40d0ef68a044ecee"}}
TRAINING_PARTS = ("train", "val")


def train_val_sha256(path: str | Path) -> str:
    """sha256 of a split file's train and validation rows as ``key,split`` lines in file order: what a run
    trains and selects on. Excluding test faces, or adding a ``reason`` column, leaves it unchanged."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    kept = table[table["split"].isin(TRAINING_PARTS)]
    text = "".join(f"{key},{split}\n" for key, split in zip(kept.iloc[:, 0], kept["split"]))
    return hashlib.sha256(text.encode()).hexdigest()


def _upgraded(identity: dict) -> dict:
    """An identity recorded with the whole split file's sha256, named by its train/val rows instead when the
    file is a known earlier version (``EARLIER_SPLIT_FILES``); any other identity as it is."""
    split_file = identity.get("split_file")
    if not isinstance(split_file, dict) or "sha256" not in split_file or "train_val_sha256" in split_file:
        return identity
    known = EARLIER_SPLIT_FILES.get(split_file.get("name"), {}).get(split_file["sha256"])
    if known is None:
        return identity
    return {**identity, "split_file": {"name": split_file["name"], "train_val_sha256": known}}


# Preset fields that describe the paper or other modes (its numbers, the interpretation text, the
# profiles and smoke overrides not chosen) and do not change what a run trains: not compared on rerun.
DESCRIPTIVE_FIELDS = ("seed_document", "title", "paper_datasets", "dataset_note", "paper_numbers", "interpretation",
                      "profiles", "smoke")


def fingerprint(preset, *, seed: int, smoke: bool, data_root, profile: str | None = None,
                distribution: dict | None = None) -> dict:
    """What made a run: compared on rerun (``identity``) and recorded for the reader (``context``).

    The data root is compared by what the run read from it, not by its absolute path (the same data
    mounted elsewhere, or in Colab, is the same run): the dataset folder name and, for a committed
    split, the sha256 of the train/val rows of ``data_manifests/<dataset>/<split file>``
    (``train_val_sha256``; the whole file's sha256 is context: test faces do not change what trains).
    """
    from agegender_tf import __version__
    from agegender_tf.data.splits import committed_split_path

    split_file, context = None, {"data_root": portable_data_root(data_root)}
    if preset.split.get("kind", "committed") == "committed":
        path = committed_split_path(preset.dataset)
        if path is not None:
            split_file = {"name": f"{path.parent.name}/{path.name}", "train_val_sha256": train_val_sha256(path)}
            context["split_file_sha256"] = file_sha256(path)
    settings = {k: v for k, v in preset.to_dict().items() if k not in DESCRIPTIVE_FIELDS}
    identity = {
        "preset": json.loads(json.dumps(settings, default=str)),
        "profile": profile,
        "seed": int(seed),
        "smoke": bool(smoke),
        "dataset_folder": preset.dataset,
        "split_file": split_file,
        "distribution": {k: distribution[k] for k in ("strategy", "replicas")} if distribution else None,
        "kit_version": __version__,
    }
    return {"identity": identity, "context": context}


def portable_data_root(data_root) -> str:
    """``data_root`` as a fingerprint records it: ``$AGEGENDER_DATA`` when it is that folder (so a
    committed run folder names no machine path), else the path as given."""
    from agegender_tf.paths import DATA_ENV

    home = os.environ.get(DATA_ENV)
    try:
        if home and Path(data_root).resolve() == Path(home).resolve():
            return f"${DATA_ENV}"
    except OSError:
        pass
    return str(data_root)


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        flat = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat or {prefix: {}}
    return {prefix: value}


def _settings_only(identity: dict) -> dict:
    preset = {k: v for k, v in identity.get("preset", {}).items() if k not in DESCRIPTIVE_FIELDS}
    return {**identity, "preset": preset}


def differences(old: dict, new: dict, limit: int = 4) -> str:
    """``key: old -> new`` for each differing (dotted) key of two fingerprints' identities, '' if none
    (descriptive preset fields are not compared; a split file recorded as a known earlier version is
    compared by its train/val rows, ``EARLIER_SPLIT_FILES``)."""
    before, after = _flatten(_settings_only(_upgraded(old))), _flatten(_settings_only(_upgraded(new)))
    # A setting added to the kit after a run was made is absent from its fingerprint: absent = None (off).
    keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
    shown = [f"{k}: {json.dumps(before.get(k, '<absent>'), default=str)} -> "
             f"{json.dumps(after.get(k, '<absent>'), default=str)}" for k in keys[:limit]]
    if len(keys) > limit:
        shown.append(f"and {len(keys) - limit} more")
    return "; ".join(shown)


def _contents(out_dir: Path) -> list[Path]:
    """What a run wrote in ``out_dir``: not its lock, nor the other workers' folders (they write there while
    the chief checks the folder, and empty their own)."""
    return [p for p in out_dir.iterdir() if p.name not in (LOCK_FILE, WORKERS_DIR)]


def prepare(out_dir: str | Path, record: dict, overwrite: bool = False) -> str:
    """Check (or empty) ``out_dir`` for a run with fingerprint ``record``; return "new", "resume" or "overwrite".

    Call it while holding the folder's lock. A folder whose fingerprint differs, or a non-empty folder
    without one (made by an older kit), is refused unless ``overwrite``; ``overwrite`` only empties
    folders that look like run folders, never an arbitrary non-empty folder.
    """
    out_dir = Path(out_dir)
    contents = _contents(out_dir)
    path = out_dir / FINGERPRINT_FILE
    state = "new"
    if contents and overwrite:
        if not any((out_dir / mark).exists() for mark in RUN_FOLDER_MARKS):
            raise UsageError(f"{out_dir} is not empty and holds no run; --overwrite empties only run folders: "
                             "choose another --out")
        for item in contents:
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
        state = "overwrite"
    elif path.exists():
        try:
            old = json.loads(path.read_text())["identity"]
        except (ValueError, KeyError, TypeError) as error:
            raise CorruptFile(f"{path} is corrupt ({type(error).__name__}); {FRESH_START}") from None
        changed = differences(old, record["identity"])
        if changed:
            raise UsageError(f"{out_dir} holds a run made differently ({changed}); {FRESH_START} "
                             "or choose another --out")
        state = "resume"
    elif contents:
        raise UsageError(f"{out_dir} is not empty and has no {FINGERPRINT_FILE} (made by an older kit or "
                         f"another program); {FRESH_START} or choose another --out")
    write_json_atomic(path, record)
    return state


# ---------------------------------------------------------------------------------------------- lock
@contextmanager
def locked(out_dir: str | Path):
    """Hold an exclusive ``fcntl.flock`` on ``out_dir/.lock`` (creating the folder); raise
    ``RunFolderBusy`` at once when another process holds it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RunFolderBusy(f"{out_dir} is in use by process {holder}") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield out_dir
    finally:
        os.close(descriptor)  # closing releases the lock


# ------------------------------------------------------------------------------------- model files
def check_keras_file(path: str | Path) -> Path:
    """Raise ``CorruptFile`` naming ``path`` unless it is a complete ``.keras`` archive (zip CRCs checked)."""
    path = Path(path)
    if not path.is_file():
        raise CorruptFile(f"{path} is missing although its network is marked finished; {FRESH_START}")
    problem = keras_archive_problem(path)
    if problem:
        raise CorruptFile(f"{path} is corrupt ({problem}); {FRESH_START}")
    return path


def load_keras_model(path: str | Path):
    """``keras.saving.load_model`` of ``path`` after ``check_keras_file`` has found it whole."""
    import keras

    return keras.saving.load_model(check_keras_file(path))


def check_run_models(out_dir: str | Path) -> list[Path]:
    """Check every ``train/*/best.keras`` of a run folder (``agegender report``); return them."""
    return [check_keras_file(path) for path in sorted(Path(out_dir).glob("train/*/best.keras"))]
