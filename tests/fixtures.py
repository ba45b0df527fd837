"""Helpers that write small fixtures in a dataset's published layout (real JPEG files)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

# The checkout's top folder (docs/, notebooks/, results/ ...).
REPO_ROOT = Path(__file__).resolve().parents[1]

# GRA_Net with one attention stage whose mask pools once: every layer kind of the network (residual units,
# max pooling, bilinear upsampling, the soft mask's activation, the gate) in 100 layers instead of the smoke
# preset's 361. What costs in a CPU smoke run is the number of layers and variables, not the arithmetic:
# tracing the first Nadam training step builds ~73k graph ops for the 361-layer network (a minute of CPU).
# For the session's smoke run (conftest ``gra_net_smoke_run``) that the run, report, refusal and app tests
# read: all three heads and every layer kind, not the paper's depth.
TINY_GRA_NET = ("--set", "model_args={'stem_filters': 8, 'stage_filters': (16,), 'attention_modules': (1,), "
                "'mask_depths': (1,), 'final_filters': 32, 'final_units': 1}")

# adience_cnn's Levi-Hassner network, narrow, with its gender head alone: a run of it costs about 4 s of CPU, one
# of the tiny GRA_Net about 16 s (tracing 100 layers and three heads). For the runs that check how a run is kept
# (a kill before its report, a resume, two replicas), not what it holds.
# NARROW_LEVI_HASSNER is that network's width (also what the bench tests train).
NARROW_LEVI_HASSNER = ("--set", "model_args={'conv_filters': (8, 16, 16), 'dense_units': (16, 16)}")
PLUMBING_PRESET = "adience_cnn"
PLUMBING_NETWORK = "levi_hassner__gender"
PLUMBING_ARGS = ("--smoke", "--quiet", "--set", "split.kind=holdout", "--set", "image_size=32",
                 "--set", "task_groups=(('gender',),)", *NARROW_LEVI_HASSNER)

# ``agegender run PLUMBING_PRESET`` on two CPU replicas (test_distribute.py), started in the background by
# conftest's ``background_runs`` on ``utkface_layout_root``: one epoch of 32 faces, 8 per replica.
MIRRORED_RUN_ARGS = (*PLUMBING_ARGS, "--strategy", "mirrored", "--cpu-replicas", "2", "--set", "batch_size=8",
                     "--set", "max_train_images=32", "--set", "epochs=1")

# ``agegender run PLUMBING_PRESET --strategy multiworker`` on two worker processes of this machine
# (test_distribute.py, ``start_workers``): one epoch of 32 faces, 8 per replica, one replica per worker.
MULTIWORKER_RUN_ARGS = (*PLUMBING_ARGS, "--strategy", "multiworker", "--set", "batch_size=8",
                        "--set", "max_train_images=32", "--set", "epochs=1")


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports of 127.0.0.1 free now (as TensorFlow's multi-worker tests pick theirs)."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(ports, index: int) -> str:
    """``TF_CONFIG`` of worker ``index`` in a cluster of workers on 127.0.0.1 at ``ports``."""
    import json

    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})


def start_workers(args, folder: Path, count: int = 2, tag: str = "") -> list:
    """Start ``count`` worker processes of ``args`` (a command line), each with its ``TF_CONFIG`` of one cluster
    on this machine, in its own process group, its output in ``folder/worker<i><tag>.out|.err``."""
    import os
    import subprocess

    ports = free_ports(count)
    folder.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in range(count):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg", "TF_CONFIG": tf_config(ports, index)}
        with open(folder / f"worker{index}{tag}.out", "w") as out, open(folder / f"worker{index}{tag}.err", "w") as err:
            processes.append(subprocess.Popen(args, cwd=folder, env=env, stdout=out, stderr=err, text=True,
                                              process_group=0))
    return processes


# A run of 20 epochs that conftest's ``background_runs`` kills once KILLED_RUN_HISTORY (under its ``--out run``)
# holds 2 epochs (test_run_cli.py resumes it): the epochs after the first take about 0.12 s each here,
# so that 18 more leave the kill two seconds and more to land before the last.
KILLED_RUN_EPOCHS = 20
KILLED_RUN_ARGS = (*PLUMBING_ARGS, "--set", "batch_size=16", "--set", "max_train_images=32",
                   "--set", f"epochs={KILLED_RUN_EPOCHS}",
                   "--set", "callbacks={'early_stopping': {'monitor': 'val_loss', 'patience': 100}}")
KILLED_RUN_HISTORY = f"run/train/{PLUMBING_NETWORK}/history.csv"


def csv_rows(path: Path) -> int:
    """Whole rows of a CSV file, also while it is being written (0 when it is not there yet)."""
    try:
        return max(path.read_text().count("\n") - 1, 0)
    except FileNotFoundError:
        return 0

# The smoke run that conftest's ``gra_net_smoke_run`` trains once per session (tiny images, holdout split).
SMOKE_RUN_ARGS = ("--smoke", "--quiet", "--seed", "7", "--set", "split.kind=holdout", "--set", "image_size=32",
                  "--set", "batch_size=16", *TINY_GRA_NET)


def write_jpeg(path: str | Path, size: int | tuple[int, int] = 64, seed: int = 0, mode: str = "RGB") -> Path:
    """Write a real, decodable JPEG of random smooth content; return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.BILINEAR)
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, format="JPEG", quality=90)
    return path


def truncate(path: str | Path, keep_fraction: float = 0.5) -> Path:
    """Cut a file short, as an interrupted download does."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep_fraction))])
    return path


def write_utkface_layout(folder: str | Path, per_group: int = 20, size: int = 40) -> list[Path]:
    """``per_group`` real JPEGs for each of ages 5, 25, 45 (plus 0-2 years) x both genders, named as UTKFace
    names them (``[age]_[gender]_[race]_[date].jpg.chip.jpg``) in ``folder`` (UTKFace's image folder)."""
    written, index = [], 0
    for age in (5, 25, 45):
        for gender in (0, 1):
            for copy in range(per_group):
                stamp = f"2017011{index % 10}1{index:05d}"
                name = f"{age + copy % 3}_{gender}_{copy % 5}_{stamp}.jpg.chip.jpg"
                written.append(write_jpeg(Path(folder) / name, size=size, seed=index))
                index += 1
    return written


# An Adience root in the published layout: five fold files and some of their face crops.
ADIENCE_HEADER = ("user_id\toriginal_image\tface_id\tage\tgender\tx\ty\tdx\tdy\ttilt_ang\t"
          "fiducial_yaw_angle\tfiducial_score")
# fold -> rows of (user, image, face_id, age, gender); fold k holds users of fold k only.
ADIENCE_ROWS = {
    0: [("111@N01", "a_o.jpg", 1, "(25, 32)", "f"), ("111@N01", "b_o.jpg", 2, "(38, 42)", "m"),
        ("111@N01", "c_o.jpg", 3, "35", "u"), ("111@N01", "d_o.jpg", 4, "None", "")],
    1: [("222@N02", "e_o.jpg", 1, "None", "m"), ("222@N02", "f_o.jpg", 2, "(60, 100)", "")],
    2: [("333@N03", "g_o.jpg", 1, "(0, 2)", "f")],
    3: [("444@N04", "h_o.jpg", 1, "(8, 12)", "m")],
    4: [("555@N05", "i_o.jpg", 1, "(48, 53)", "f")],
}


def write_adience(root, variant="faces", with_images=("a_o.jpg", "b_o.jpg", "g_o.jpg"), extra_line=None):
    folder, prefix = {"faces": ("faces", "coarse_tilt_aligned_face"),
                      "aligned": ("aligned", "landmark_aligned_face")}[variant]
    for fold, rows in ADIENCE_ROWS.items():
        lines = [ADIENCE_HEADER] + ["\t".join([u, i, str(f), a, g, "0", "0", "100", "100", "0", "0", "50"])
                            for u, i, f, a, g in rows]
        if extra_line and fold == 0:
            lines.append(extra_line)
        (root / f"fold_{fold}_data.txt").write_text("\n".join(lines))  # no final newline, like the real files
        for seed, (user, image, face_id, _, _) in enumerate(rows):
            if image in with_images:
                write_jpeg(root / folder / user / f"{prefix}.{face_id}.{image}", size=32, seed=seed)
    return root


TASKS = ("gender", "age_group", "age")


# A network folder as ``agegender run`` leaves it, for the predictor and export tests.
def make_tiny_model(folder: Path) -> Path:
    """An untrained GRA_Net of one attention stage (``fixtures.TINY_GRA_NET``) on the smoke preset's 32 px
    faces saved as ``agegender run`` leaves a network folder (``best.keras`` + ``model_card.json``);
    weights are random, which parity checks do not mind."""
    import keras

    from agegender_tf import model_card, models
    from agegender_tf.experiments import plans

    preset = plans.resolve_preset("gra_net", smoke=True, overrides=TINY_GRA_NET[1::2])
    kwargs = plans.model_kwargs(dataclasses.replace(preset, model="gra_net"), TASKS, dict(preset.model_args))
    spec = plans.augment_spec(preset, "gra_net", kwargs)
    keras.utils.set_random_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    models.build("gra_net", **kwargs).save(folder / "best.keras")
    model_card.write_model_card(folder, preset, "gra_net", "gra_net", kwargs, TASKS, spec, train_faces=0)
    return folder


def utkface_files(root, count):
    return sorted((root / "UTKFace").glob("*.jpg"))[:count]


def smoke_run_preset():
    """The gra_net preset ``SMOKE_RUN_ARGS`` resolves (its ``--set`` values), and the seed they give."""
    from agegender_tf.experiments import plans

    overrides = [SMOKE_RUN_ARGS[i + 1] for i, arg in enumerate(SMOKE_RUN_ARGS) if arg == "--set"]
    return (plans.resolve_preset("gra_net", smoke=True, overrides=overrides),
            int(SMOKE_RUN_ARGS[SMOKE_RUN_ARGS.index("--seed") + 1]))


# The steps of a run as the notebooks call them, in order (notebooks/build_notebooks.py, ``run_step_by_step``).
RUN_STEPS = ("runner.start(", "plans.load_data(", "runner.network_data(", "runner.build_network(",
             "runner.compile_network(", "runner.fit_network(", "runner.finish(")


def run_step_by_step(preset, data_root, out, seed: int) -> dict:
    """A run taken as the notebooks take it: the folder, the split, the first network's pipelines, model,
    compile and fit one call each, then ``finish``; returns the report."""
    from agegender_tf.experiments import plans, runner

    runner.start(preset, data_root, out, seed=seed, smoke=True)
    parts, counts = plans.load_data(preset, data_root, seed)
    plan = plans.network_plan(preset, preset.task_groups[0])
    data = runner.network_data(preset, plan, parts, seed)
    model = runner.build_network(preset, plan, seed)
    model, fit = runner.compile_network(preset, plan, model, data)
    runner.fit_network(preset, plan, model, fit, out, verbose=0)
    return runner.finish(preset, data_root, out, parts, counts, seed=seed, smoke=True, verbose=0)
