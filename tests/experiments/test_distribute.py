"""tf.distribute on this CPU: ``--strategy mirrored --cpu-replicas 2`` trains on two replicas.

Splitting the CPU must happen before TensorFlow initialises its devices, so each check runs in a
fresh Python process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from tests.fixtures import PLUMBING_NETWORK

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
    assert distribution == {"strategy": "mirrored", "replicas": 2, "devices": TWO_CPU_DEVICES,
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
