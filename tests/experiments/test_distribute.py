"""tf.distribute on this CPU: ``--strategy mirrored --cpu-replicas 2`` trains on two replicas, and
``--strategy multiworker`` on two worker processes of this machine (a cluster of two 127.0.0.1 ports).

Splitting the CPU must happen before TensorFlow initialises its devices, so each check runs in a
fresh Python process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from tests.fixtures import (
    MULTIWORKER_RUN_ARGS,
    PLUMBING_ARGS,
    PLUMBING_NETWORK,
    PLUMBING_PRESET,
    csv_rows,
    start_workers,
)

TWO_CPU_DEVICES = ["/job:localhost/replica:0/task:0/device:CPU:0", "/job:localhost/replica:0/task:0/device:CPU:1"]

# A layer whose ON_READ variable keeps one step count per replica: each replica adds 1 on its own
# copy for every training batch it runs, so the copies show which replicas trained.
REPLICA_PROBE = textwrap.dedent("""
    import json, sys
    import keras, numpy as np, tensorflow as tf
    from agegender_tf.experiments.train import global_batch_size, make_strategy, set_seed, train

    strategy = make_strategy("mirrored", cpu_replicas=2)

    class ReplicaSteps(keras.layers.Layer):
        def build(self, shape):
            self.steps = keras.Variable(0.0, trainable=False, dtype="float32", synchronization="on_read",
                                        aggregation="sum", name="steps")

        def call(self, x, training=False):
            if training:
                self.steps.assign_add(1.0)
            return x

    with strategy.scope():
        set_seed(1)
        inputs = keras.Input((8, 8, 3))
        probe = ReplicaSteps()
        outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(probe(inputs)))
        model = keras.Model(inputs, outputs)
        images = np.random.default_rng(0).random((64, 8, 8, 3), dtype=np.float32)
        labels = (images.mean(axis=(1, 2, 3)) > 0.5).astype(int)
        batch = global_batch_size(8)
        data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)
        train(model, data, data, optimizer={"name": "adam", "learning_rate": 1e-3}, callbacks={}, epochs=2,
              out_dir=sys.argv[1], loss="sparse_categorical_crossentropy", verbose=0)
    copies = probe.steps.value.values
    print(json.dumps({"global_batch": batch, "replicas": strategy.num_replicas_in_sync,
                      "steps": [float(c.numpy()) for c in copies], "devices": [c.device for c in copies]}))
""")


def _python(args, **kwargs):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=1800, **kwargs)


def test_each_of_two_cpu_replicas_runs_its_share_of_the_training_steps(tmp_path):
    done = _python(["-c", REPLICA_PROBE, str(tmp_path / "net")])
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["replicas"] == 2 and probe["global_batch"] == 16  # 8 per replica x 2
    assert probe["devices"] == TWO_CPU_DEVICES
    # 64 images / 16 per global batch = 4 steps per epoch, 2 epochs: every step ran on both replicas.
    assert probe["steps"] == [8.0, 8.0]
    assert (tmp_path / "net" / "done.json").exists()


@pytest.mark.background_run("mirrored")
def test_agegender_run_mirrored_on_two_cpu_replicas_reports_them(background_runs):
    """``agegender run adience_cnn --strategy mirrored --cpu-replicas 2`` (``fixtures.MIRRORED_RUN_ARGS``), run
    in a fresh process in the background from the session's start (conftest ``background_runs``)."""
    folder, done = background_runs.futures["mirrored"].result()
    assert done.returncode == 0, done.stderr[-3000:]
    out = folder / "run"
    report = json.loads((out / "report.json").read_text())
    distribution = report["protocol"]["distribution"]
    assert distribution == {"strategy": "mirrored", "workers": 1, "replicas": 2, "devices": TWO_CPU_DEVICES,
                            "per_replica_batch_size": 8, "global_batch_size": 16, "learning_rate_scaling": "none"}
    assert report["protocol"]["batch_size"] == 8  # the preset's batch stays per replica
    fingerprint = json.loads((out / "fingerprint.json").read_text())["identity"]
    assert fingerprint["distribution"] == {"strategy": "mirrored", "replicas": 2}
    history = pd.read_csv(out / "train" / PLUMBING_NETWORK / "history.csv")
    assert history["epoch"].tolist() == [0]
    assert len(pd.read_csv(out / "predictions.csv")) == report["protocol"]["counts"]["test"]


def test_default_strategy_is_one_replica_with_the_presets_batch():
    from agegender_tf.experiments.train import distribution_record, make_strategy

    record = distribution_record(make_strategy("default"), "default", per_replica_batch=32)
    assert record["replicas"] == 1 and record["global_batch_size"] == 32 and len(record["devices"]) == 1


def test_too_late_to_split_the_cpu_is_one_clear_line():
    done = _python(["-c", "import tensorflow as tf; tf.constant(1.0)\n"
                          "from agegender_tf.experiments.train import make_strategy\n"
                          "make_strategy('mirrored', cpu_replicas=2)"])
    assert done.returncode != 0
    assert "--cpu-replicas 2: TensorFlow has already started" in done.stderr


# ------------------------------------------------------------------------------------------- two workers
def test_a_keras_without_what_is_mended_for_several_workers_is_one_line(monkeypatch):
    """``workers.fix_keras`` replaces private parts of Keras' TensorFlow trainer: present in the Keras installed
    (the two-worker tests below use them), and a Keras without one is refused by name before any fit."""
    from keras.src.backend.tensorflow import trainer

    from agegender_tf.errors import UsageError
    from agegender_tf.experiments import workers

    assert workers.missing_keras_internals(trainer) == []
    monkeypatch.setattr(trainer, "_agegender_fixed", False, raising=False)
    monkeypatch.delattr(trainer, "_collective_all_reduce_multi_worker")
    with pytest.raises(UsageError, match="has no _collective_all_reduce_multi_worker, which the kit mends"):
        workers.fix_keras()


def test_each_worker_reads_every_nth_file_and_auto_sharding_is_off(tmp_path):
    import tensorflow as tf

    from agegender_tf.experiments.workers import Worker, shard_options, worker_of
    from agegender_tf.pipelines.spec import AugmentSpec
    from agegender_tf.pipelines.tfdata import make_dataset
    from tests.fixtures import write_jpeg

    paths = [str(write_jpeg(tmp_path / f"{i}.jpg", 16, seed=i)) for i in range(7)]
    manifest = pd.DataFrame({"path": paths, "age": [float(10 + i) for i in range(7)], "age_group": None,
                             "gender": "female", "subject": [f"s{i}" for i in range(7)], "source": "fixture"})
    dataset = shard_options(make_dataset(manifest, AugmentSpec(), image_size=16, batch_size=4, outputs=("age",),
                                         training=False, shard=(1, 2)))
    assert [float(a) for _, y in dataset for a in y.numpy()] == [11.0, 13.0, 15.0]
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.OFF
    assert worker_of(tf.distribute.get_strategy()) == Worker(0, 1)  # no cluster: one worker, the chief


TWO_WORKER_DEVICES = ["/job:worker/replica:0/task:0/device:CPU:0", "/job:worker/replica:0/task:1/device:CPU:0"]


def _run_command(data_root, out, *args):
    return [sys.executable, "-m", "agegender_tf.cli", "run", PLUMBING_PRESET, "--data-root", str(data_root),
            "--out", str(out), *args]


def _finish(processes, timeout: float = 600):
    deadline = time.monotonic() + timeout
    try:
        return [process.wait(timeout=max(deadline - time.monotonic(), 1)) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _output(folder, index, tag=""):
    return (folder / f"worker{index}{tag}.err").read_text()[-3000:]


@pytest.mark.slow
def test_two_workers_train_one_run_that_the_chief_writes(utkface_layout_root, tmp_path):
    """Two worker processes (``TF_CONFIG``: two 127.0.0.1 ports) run ``agegender run --strategy multiworker`` into
    one ``--out``: both finish; the chief's report says 2 workers; the other worker leaves no files of its own."""
    out = tmp_path / "run"
    codes = _finish(start_workers(_run_command(utkface_layout_root, out, *MULTIWORKER_RUN_ARGS), tmp_path))
    assert codes == [0, 0], _output(tmp_path, 0) + _output(tmp_path, 1)
    report = json.loads((out / "report.json").read_text())
    distribution = report["protocol"]["distribution"]
    assert distribution["strategy"] == "multiworker" and distribution["workers"] == 2
    assert distribution["replicas"] == 2 and distribution["devices"] == TWO_WORKER_DEVICES
    assert distribution["per_replica_batch_size"] == 8 and distribution["global_batch_size"] == 16
    assert distribution["input_sharding"]["by"] == "files"
    assert distribution["input_sharding"]["auto_shard_policy"] == "OFF"
    assert json.loads((out / "fingerprint.json").read_text())["identity"]["distribution"] == {
        "strategy": "multiworker", "replicas": 2}
    network = out / "train" / PLUMBING_NETWORK
    assert {"best.keras", "model_card.json", "history.csv", "done.json"} <= {p.name for p in network.iterdir()}
    assert not (network / "backup").exists()
    assert pd.read_csv(network / "history.csv")["epoch"].tolist() == [0]
    assert len(pd.read_csv(out / "predictions.csv")) == report["protocol"]["counts"]["test"]
    # Worker 1 locked and wrote only its own folder, and removed its temporaries when done.
    worker_files = [p for p in (out / ".workers" / "1").rglob("*") if p.is_file()]
    assert [p.name for p in worker_files] == [".lock"]
    assert "worker 1 of 2: trained" in (tmp_path / "worker1.out").read_text()


# Killed at 2 epochs: 6 more leave the kill several seconds to land before the last.
MULTIWORKER_EPOCHS = 8
# Not --quiet: Keras' "Epoch k/N" lines say where each worker starts again.
KILLED_MULTIWORKER_ARGS = (*[a for a in PLUMBING_ARGS if a != "--quiet"], "--strategy", "multiworker",
                           "--set", "batch_size=8", "--set", "max_train_images=32",
                           "--set", f"epochs={MULTIWORKER_EPOCHS}",
                           "--set", "callbacks={'early_stopping': {'monitor': 'val_loss', 'patience': 100}}")


def _first_epoch(folder, index, tag):
    lines = [line for line in (folder / f"worker{index}{tag}.out").read_text().splitlines()
             if line.startswith("Epoch ")]
    return int(lines[0].split()[1].split("/")[0]) if lines else None


@pytest.mark.slow
def test_killed_worker_then_both_rerun_resume_from_the_last_epoch(utkface_layout_root, tmp_path):
    """Worker 1 is killed once the chief's history holds 2 epochs; the chief stops as well (or is stopped: a cluster
    restarts its job whole). The same two commands again: both workers resume from the chief's backup, at the
    same epoch, and the run ends with every epoch in history.csv once."""
    out = tmp_path / "run"
    command = _run_command(utkface_layout_root, out, *KILLED_MULTIWORKER_ARGS)
    history = out / "train" / PLUMBING_NETWORK / "history.csv"
    chief, other = start_workers(command, tmp_path, tag="-killed")
    deadline = time.monotonic() + 300
    while csv_rows(history) < 2 and chief.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(other.pid, signal.SIGKILL)
    other.wait()
    assert chief.poll() is None, _output(tmp_path, 0, "-killed")  # it was mid-run
    try:  # the chief stops once the cluster finds worker 1 gone (heartbeats, ~10 s); a cluster manager would too
        chief.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(chief.pid, signal.SIGKILL)
        chief.wait()
    backup = json.loads((out / "train" / PLUMBING_NETWORK / "backup" / "training_metadata.json").read_text())
    resumed_at = backup["epoch"]
    assert 2 <= resumed_at < MULTIWORKER_EPOCHS
    assert csv_rows(history) == resumed_at

    codes = _finish(start_workers(command, tmp_path, tag="-rerun"))
    assert codes == [0, 0], _output(tmp_path, 0, "-rerun") + _output(tmp_path, 1, "-rerun")
    # Both workers started again at the epoch after the last one the chief's backup holds.
    assert _first_epoch(tmp_path, 0, "-rerun") == _first_epoch(tmp_path, 1, "-rerun") == resumed_at + 1
    assert pd.read_csv(history)["epoch"].tolist() == list(range(MULTIWORKER_EPOCHS))
    report = json.loads((out / "report.json").read_text())
    assert report["protocol"]["distribution"]["workers"] == 2
