"""Training wrapper: the papers' optimizers and callbacks, and resume after a crash (BackupAndRestore)."""

from __future__ import annotations

import contextlib
import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from agegender_tf.experiments import train as train_module
from agegender_tf.experiments.train import make_optimizer, set_seed, train


def tiny_model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", name="gender")(x)
    return keras.Model(inputs, outputs)


def tiny_data(seed=0, n=32):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 3), dtype=np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(int)
    return x, y


class CrashAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated crash")


def fit(out_dir, epochs, extra=()):
    set_seed(1)
    x, y = tiny_data()
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    val_ds = tf.data.Dataset.from_tensor_slices((x[:8], y[:8])).batch(8)
    return train(tiny_model(), train_ds, val_ds, optimizer={"name": "adam", "learning_rate": 1e-3},
                 callbacks={"early_stopping": {"monitor": "val_loss", "patience": 50}}, epochs=epochs,
                 out_dir=out_dir, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                 extra_callbacks=extra, verbose=0)


def test_crash_then_rerun_resumes_from_next_epoch(tmp_path):
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tmp_path, epochs=4, extra=[CrashAfterEpoch(1)])
    after_crash = pd.read_csv(tmp_path / "history.csv")
    assert after_crash["epoch"].tolist() == [0, 1]
    assert train_module.resuming(tmp_path)
    history = fit(tmp_path, epochs=4)
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    assert (tmp_path / "best.keras").exists()
    assert not train_module.resuming(tmp_path)  # backup deleted after a finished run


def test_fit_traces_the_train_step_once_with_class_weights_and_on_resume(tmp_path):
    """``build_before_fit`` creates the optimizer and metric variables first, so TensorFlow traces the step
    once (Keras alone traces it twice outside a tf.distribute strategy: variables made in the first trace)."""
    traces = []

    def counting(model):
        step = model.train_step
        model.train_step = lambda data: traces.append(1) or step(data)
        return model

    set_seed(1)
    x, y = tiny_data()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    for run, extra in enumerate(([CrashAfterEpoch(0)], [])):  # a crash, then the resumed run
        traces.clear()
        with pytest.raises(RuntimeError) if extra else contextlib.nullcontext():
            train(counting(tiny_model()), data, data, optimizer={"name": "nadam", "learning_rate": 1e-3}, callbacks={},
                  epochs=2, out_dir=tmp_path, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  class_weight={0: 1.0, 1: 2.0}, extra_callbacks=extra, verbose=0)
        assert len(traces) == 1, f"run {run}: train step traced {len(traces)} times"
    assert pd.read_csv(tmp_path / "history.csv")["epoch"].tolist() == [0, 1]


def test_a_resumed_networks_fit_time_counts_every_run(tmp_path, monkeypatch):
    """done.json's seconds add the finished epochs of the crashed run to those of the run that resumed it."""
    ticks = iter(range(0, 10_000, 10))  # each reading of the fit clock is 10 s after the previous one
    monkeypatch.setattr(train_module.FitClock, "clock", staticmethod(lambda: float(next(ticks))))
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tmp_path, epochs=4, extra=[CrashAfterEpoch(1)])
    before = json.loads((tmp_path / train_module.ELAPSED_FILE).read_text())["seconds"]
    assert before == 20.0  # start, epoch 0 (10 s), epoch 1 (20 s), then the crash
    fit(tmp_path, epochs=4)  # resumes at epoch 2: start, epoch 2 (10 s), epoch 3 (20 s)
    assert json.loads((tmp_path / train_module.DONE_FILE).read_text())["seconds"] == 40.0
    fit(tmp_path / "fresh", epochs=4)  # a fresh folder starts from zero: four epochs, 40 s
    assert json.loads((tmp_path / "fresh" / train_module.DONE_FILE).read_text())["seconds"] == 40.0


def test_fresh_run_starts_a_new_history(tmp_path):
    fit(tmp_path, epochs=2)
    history = fit(tmp_path, epochs=2)
    assert history["epoch"].tolist() == [0, 1]


def test_sgd_step_schedule_drops_after_the_iteration():
    optimizer = make_optimizer({"name": "sgd", "learning_rate": 1e-3, "momentum": 0.9,
                                "step_at_iteration": 10000, "step_to": 1e-4})
    schedule = optimizer._learning_rate
    assert float(schedule(9999)) == pytest.approx(1e-3)
    assert float(schedule(10001)) == pytest.approx(1e-4)


def test_unknown_optimizer_is_named():
    with pytest.raises(ValueError, match="lbfgs"):
        make_optimizer({"name": "lbfgs", "learning_rate": 1.0})


def test_nadam_and_adam_rates():
    assert isinstance(make_optimizer({"name": "nadam", "learning_rate": 1e-3}), keras.optimizers.Nadam)
    assert float(make_optimizer({"name": "adam", "learning_rate": 1e-3}).learning_rate) == pytest.approx(1e-3)


def test_time_limit_stops_after_the_first_epoch_past_it(tmp_path):
    set_seed(1)
    x, y = tiny_data()
    history = train(tiny_model(), tf.data.Dataset.from_tensor_slices((x, y)).batch(8),
                    tf.data.Dataset.from_tensor_slices((x, y)).batch(8),
                    optimizer={"name": "adam", "learning_rate": 1e-3},
                    callbacks={"time_limit": {"minutes": 0}}, epochs=5, out_dir=tmp_path,
                    loss="sparse_categorical_crossentropy", verbose=0)
    assert history["epoch"].tolist() == [0]


def test_finished_training_is_marked_done_before_its_backup_is_removed(tmp_path, monkeypatch):
    """A kill after fit but before the backup is removed: the rerun loads the finished network."""

    def killed_here(out_dir):
        raise KeyboardInterrupt("simulated kill between done.json and the backup's removal")

    monkeypatch.setattr(train_module, "remove_backup", killed_here)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path, epochs=3)
    monkeypatch.undo()
    assert train_module.resuming(tmp_path)  # the backup is still there...
    done = json.loads((tmp_path / train_module.DONE_FILE).read_text())  # ...and the network is marked finished
    assert done["epochs"] == 3 and done["params"] > 0
    best_bytes = (tmp_path / "best.keras").read_bytes()
    model = train_module.load_finished(tmp_path)
    assert model is not None and model.count_params() == done["params"]
    assert not (tmp_path / train_module.BACKUP_DIR).exists()  # leftover backup removed
    assert pd.read_csv(tmp_path / "history.csv")["epoch"].tolist() == [0, 1, 2]
    assert (tmp_path / "best.keras").read_bytes() == best_bytes


def test_unfinished_network_is_not_loaded(tmp_path):
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(tmp_path, epochs=3, extra=[CrashAfterEpoch(0)])
    assert train_module.load_finished(tmp_path) is None
    assert not (tmp_path / train_module.DONE_FILE).exists()


class _Stream:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_bar_on_a_terminal_one_line_per_epoch_in_logs_and_nothing_when_quiet():
    assert train_module.progress_verbosity(stream=_Stream(True)) == 1
    assert train_module.progress_verbosity(stream=_Stream(False)) == 2
    assert train_module.progress_verbosity(quiet=True, stream=_Stream(True)) == 0


def test_unknown_strategy_is_a_usage_error():
    from agegender_tf.errors import UsageError

    with pytest.raises(UsageError, match="choose one of default, mirrored, multiworker, tpu"):
        train_module.make_strategy("horovod")


def test_class_weight_weights_the_training_loss_per_class(tmp_path):
    """Class 1 weighted 3x: the first epoch's training loss is the mean of the weighted per-face losses
    (Keras divides by the batch size; balanced weights average 1, so the loss keeps its scale)."""
    x, y = tiny_data()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    set_seed(1)
    model = tiny_model()
    per_face = keras.losses.sparse_categorical_crossentropy(y, model(x)).numpy()
    history = train(model, data, data, optimizer={"name": "sgd", "learning_rate": 1e-9}, callbacks={}, epochs=1,
                    out_dir=tmp_path, loss="sparse_categorical_crossentropy", class_weight={0: 1.0, 1: 3.0},
                    verbose=0)
    weights = np.where(y == 1, 3.0, 1.0)
    assert history["loss"].iloc[0] == pytest.approx(float((per_face * weights).mean()), rel=1e-4)
    assert history["val_loss"].iloc[0] == pytest.approx(float(per_face.mean()), rel=1e-4)  # unweighted


def test_members_fit_trains_each_member_on_its_own_loss_and_keeps_the_averaging_model(tmp_path):
    """``ensemble_loss="members"``: val_loss is the weighted sum of the members' own losses (the averaged outputs
    weigh 0 but keep their metrics), and best.keras is the averaging model, which ``finalize`` maps to itself."""
    from agegender_tf.experiments.rundir import load_keras_model
    from agegender_tf.experiments.runner import members_fit
    from agegender_tf.models import build
    from agegender_tf.models.cnn_rnn import members_of

    set_seed(1)
    model = build("cnn_rnn_ensemble", num_members=2, input_shape=(8, 8, 3), conv_filters=(4,), rnn_units=4,
                  dense_units=4, tasks=("gender", "age"))
    x, y = tiny_data()
    ages = (20 + 40 * x.mean(axis=(1, 2, 3))).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, {"gender": y, "age": ages})).batch(16)
    fit_args = dict(train_data=data, val_data=data, loss={"gender": "sparse_categorical_crossentropy", "age": "mse"},
                    metrics={"gender": ["accuracy"], "age": ["mae"]}, loss_weights={"gender": 2.0, "age": 0.01})
    training, fit_args = members_fit(model, fit_args, ("gender", "age"))
    history = train(training, optimizer={"name": "adam", "learning_rate": 1e-3}, callbacks={}, epochs=2,
                    out_dir=tmp_path, verbose=0, **fit_args)
    last = history.iloc[-1]
    members = sum(2.0 * last[f"val_gender_member{i}_loss"] + 0.01 * last[f"val_age_member{i}_loss"] for i in (0, 1))
    assert last["val_loss"] == pytest.approx(members, rel=1e-3)
    assert {"val_gender_accuracy", "val_age_mae", "val_gender_loss"} <= set(history.columns)
    best = load_keras_model(tmp_path / "best.keras")
    assert sorted(best.output_names) == ["age", "gender"] and best.name == model.name
    again = fit_args["finalize"](best)
    np.testing.assert_allclose(again(x)["gender"], best(x)["gender"], rtol=1e-6)
    assert len(members_of(best)) == 2

    # One output: the dataset's plain labels and the plain loss become dicts keyed by it.
    one = build("cnn_rnn_ensemble", num_members=2, input_shape=(8, 8, 3), conv_filters=(4,), rnn_units=4,
                dense_units=4, tasks=("gender",))
    plain = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    training, fit_args = members_fit(one, dict(train_data=plain, val_data=plain, loss="sparse_categorical_crossentropy",
                                               metrics=["accuracy"], loss_weights=None), ("gender",))
    history = train(training, optimizer={"name": "adam", "learning_rate": 1e-3}, callbacks={}, epochs=1,
                    out_dir=tmp_path / "one", verbose=0, **fit_args)
    assert history["val_loss"].iloc[0] == pytest.approx(
        history["val_gender_member0_loss"].iloc[0] + history["val_gender_member1_loss"].iloc[0], rel=1e-3)
