"""Several workers (``--strategy multiworker``, ``docs/distribute.md``): who writes what, which files each
worker reads, and the two places where Keras 3's TensorFlow trainer breaks across workers.

Every worker runs the same ``agegender run`` with its own ``TF_CONFIG`` and the same ``--out`` (one machine,
or a file system all of them see). Worker 0, the chief, owns the run folder as a one-worker run does: its
lock, the fingerprint check, ``train/``, the predictions, the report, the figures. Another worker ``i``
locks and writes only ``OUT/.workers/<i>/``: the checkpoints it must write because writing one is a step
every worker takes together (Keras' rule for the non-chief: a temporary folder, removed when the network
is done). It resumes from the chief's backup and takes the chief's ``done.json`` as "finished", so that
after a kill every worker starts again from the same epoch.

Each worker reads its own files: ``Dataset.shard`` on the file list, before decoding (``input_sharding``),
with tf.distribute's auto-sharding off (``AutoShardPolicy.OFF``: the files are sharded already).

Keras 3.15 over two or more workers (keras-team/keras#20585, tensorflow/tensorflow#72388): ``fit`` stops
with "unsupported type (...PerReplica) to a Tensor" because ``TensorFlowTrainer._maybe_symbolic_build``
builds the model from ``strategy.reduce("MEAN", first_batch)`` of the whole (x, y) structure, which
``CollectiveAllReduce`` cannot reduce; past that, every step stops in ``reduce_per_replica``, which reduces
the scalar logs over workers along ``axis=0``. ``fix_keras`` mends both, for a multi-worker strategy only.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from agegender_tf.experiments.rundir import WORKERS_DIR

# What ``protocol.distribution.input_sharding`` says (the dataset options: ``shard_options``).
INPUT_SHARDING = {"by": "files", "how": "worker i of N reads every N-th file of each part (Dataset.shard) "
                                         "before decoding", "auto_shard_policy": "OFF"}


@dataclass(frozen=True)
class Worker:
    """This process among the workers of a strategy: ``index`` (0 is the chief) of ``count``."""

    index: int = 0
    count: int = 1

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def several(self) -> bool:
        return self.count > 1

    def folder(self, out_dir) -> Path:
        """Where this worker writes: the run folder for the chief, ``OUT/.workers/<index>`` for another."""
        return Path(out_dir) if self.is_chief else Path(out_dir) / WORKERS_DIR / str(self.index)


def worker_of(strategy) -> Worker:
    """The ``Worker`` of a strategy: its cluster's workers (a ``chief`` job first, if any), else one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    jobs = resolver.cluster_spec().as_dict() if resolver is not None else {}
    chiefs, workers = len(jobs.get("chief", [])), len(jobs.get("worker", []))
    if chiefs + workers <= 1 or resolver.task_type not in ("chief", "worker"):
        return Worker()
    index = 0 if resolver.task_type == "chief" else chiefs + int(resolver.task_id)
    return Worker(index, chiefs + workers)


def shard_options(dataset):
    """``dataset`` with tf.distribute's auto-sharding off (the kit has sharded its files itself)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


def chief_agrees(strategy, worker: Worker, ok: bool) -> bool:
    """Every worker learns whether the chief's check of the run folder passed (a barrier: the others wait
    here while the chief prepares the folder). Returns the chief's ``ok``."""
    import tensorflow as tf

    vote = (1.0 if ok else -1.0) if worker.is_chief else 0.0
    total = strategy.reduce("SUM", strategy.run(lambda: tf.constant(vote)), axis=None)
    return float(total) > 0


def prepare_together(strategy, worker: Worker, prepare) -> None:
    """The chief runs ``prepare`` (``rundir.prepare``: the fingerprint check) while the others wait; when it
    refuses the folder, the chief raises its error and every other worker one line pointing to it."""
    from agegender_tf.errors import UsageError

    error = None
    if worker.is_chief:
        try:
            prepare()
        except UsageError as refused:
            error = refused
    if not chief_agrees(strategy, worker, error is None):
        raise error or UsageError(f"worker {worker.index} of {worker.count}: the chief (worker 0) refused the run "
                                  "folder; its output says why")


def clear(folder) -> None:
    """Remove a non-chief's temporary folder."""
    shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------ keras fixes
def _first_replica_batch(self, iterator=None, data_batch=None):
    """``TensorFlowTrainer._maybe_symbolic_build`` that builds from the first replica's share of the first
    batch (shapes and dtypes are all that building needs) instead of reducing the batch over workers."""
    import tensorflow as tf
    from keras.src import tree

    if self._distribute_strategy is None:
        return
    if iterator is not None:
        for _, _, it in iterator:
            data_batch = tree.map_structure(
                lambda v: self.distribute_strategy.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues) else v, next(it))
            break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


# The private names of Keras' TensorFlow trainer that ``fix_keras`` replaces or calls (the multi-worker tests
# run on Keras 3.15); a Keras without them gets one line, not a run that breaks mid-fit.
KERAS_INTERNALS = ("reduce_per_replica", "_collective_all_reduce_multi_worker",
                   "TensorFlowTrainer._maybe_symbolic_build", "TensorFlowTrainer._symbolic_build")


def missing_keras_internals(trainer) -> list[str]:
    """Which of ``KERAS_INTERNALS`` the trainer module ``trainer`` lacks."""
    missing = []
    for name in KERAS_INTERNALS:
        owner = trainer
        for part in name.split("."):
            owner = getattr(owner, part, None)
        if owner is None:
            missing.append(name)
    return missing


def fix_keras() -> None:
    """Mend Keras' TensorFlow trainer for several workers (module docstring); idempotent. A Keras whose
    trainer lacks what is mended raises ``UsageError`` naming it."""
    import keras
    from keras.src.backend.tensorflow import trainer

    from agegender_tf.errors import UsageError

    if getattr(trainer, "_agegender_fixed", False):
        return
    missing = missing_keras_internals(trainer)
    if missing:
        raise UsageError(f"--strategy multiworker: Keras {keras.__version__}'s TensorFlow trainer has no "
                         f"{', '.join(missing)}, which the kit mends for several workers (tested on Keras 3.15; "
                         "experiments/workers.py)")
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        """Keras' reduction, but a scalar (a loss, a metric) is averaged over the replicas of every worker
        (``axis=None``) where Keras asks for ``axis=0``, which a scalar does not have."""
        if reduction not in ("auto", "mean") or not trainer._collective_all_reduce_multi_worker(strategy):
            return original(values, strategy, reduction)
        from keras.src import tree

        def one(value):
            if value is not None and getattr(value.shape, "rank", None) == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original(value, strategy, reduction)

        return tree.map_structure(one, values)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = _first_replica_batch
    trainer._agegender_fixed = True
