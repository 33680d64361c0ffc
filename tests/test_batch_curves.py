"""Batch curves written in bulk: exact window means, on disk within a bound, nothing lost."""

from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from lossboard import LossLogger
from lossboard.logger import batch_curves as curves
from lossboard.warn import LossboardRuntimeWarning
from tests.conftest import close_to, read_split


def reference(epochs: list[list[dict[str, np.ndarray]]], every: int):
    """float64 window means at each global batch step, and epoch means, by NumPy alone.

    Each batch is ``{name: values}``; a batch's value counts each element once.
    """
    windows: dict[str, dict[int, float]] = {}
    epoch_means: dict[str, dict[int, float]] = {}
    batch = 0
    window: dict[str, list[np.ndarray]] = {}
    for e, batches in enumerate(epochs):
        per_epoch: dict[str, list[np.ndarray]] = {}
        for logs in batches:
            batch += 1
            for name, v in logs.items():
                window.setdefault(name, []).append(np.ravel(v).astype(np.float64))
                per_epoch.setdefault(name, []).append(np.ravel(v).astype(np.float64))
            if batch % every == 0:
                for name, parts in window.items():
                    windows.setdefault(name, {})[batch] = np.concatenate(parts).mean()
                window = {}
        for name, parts in per_epoch.items():
            epoch_means.setdefault(name, {})[e] = np.concatenate(parts).mean()
    return windows, epoch_means


def assert_on_disk(read_events, run, windows, epoch_means):
    train = read_events(run, "train")
    for name, expected in windows.items():
        got = train.get(f"batch_{name}", {})
        assert sorted(got) == sorted(expected), name
        for step, mean in expected.items():
            assert close_to(got[step], mean), (name, step, got[step], mean)
    for name, expected in epoch_means.items():
        got = train[f"epoch_{name}"]
        assert sorted(got) == sorted(expected)
        for e, mean in expected.items():
            assert close_to(got[e], mean), (name, e)


batch_strategy = st.fixed_dictionaries(
    {"loss": st.floats(-100, 100, width=32, allow_subnormal=False)},
    optional={
        "kl": st.floats(0, 10, width=32, allow_subnormal=False),
        "pix": st.lists(st.floats(-5, 5, width=32, allow_subnormal=False), min_size=3, max_size=3),
    },
)


@settings(max_examples=25, deadline=None)
@given(
    epochs=st.lists(st.lists(batch_strategy, max_size=9), min_size=1, max_size=3),
    every=st.integers(1, 4),
    delay=st.sampled_from([0.0, 1e9]),
    reads=st.sets(st.integers(0, 20), max_size=3),
)
def test_window_means_equal_a_float64_reference(tmp_path_factory, epochs, every, delay, reads):
    """Any epoch lengths, windows across epochs, components that come and go, per-example
    values, mid-epoch reads (which fold), points written at once or at the epoch end."""
    run = tmp_path_factory.mktemp("run")
    batches = [[{k: np.asarray(v, np.float32) for k, v in b.items()} for b in e] for e in epochs]
    with pytest.MonkeyPatch.context() as patch, LossLogger(run, update_freq=every) as logger:
        patch.setattr(curves, "DELAY", delay)
        n = 0
        for e, epoch in enumerate(batches):
            for logs in epoch:
                logger.on_train_batch_end(n, {k: tf.constant(v) for k, v in logs.items()})
                if n in reads:
                    logger.metrics["loss"].result()
                n += 1
            if epoch:
                logger.on_epoch_end(e)
    windows, epoch_means = reference(batches, every)
    assert_on_disk(read_split, run, windows, epoch_means)


def test_points_wait_until_the_epoch_end_then_all_are_on_disk(tmp_path, read_events, monkeypatch):
    monkeypatch.setattr(curves, "DELAY", 1e9)
    values = np.random.default_rng(1).normal(size=(30, 4)).astype(np.float32)
    logger = LossLogger(tmp_path, update_freq=1)
    for i, row in enumerate(values):
        logger.on_train_batch_end(i, {f"c{c}": tf.constant(v) for c, v in enumerate(row)})
    assert "batch_c0" not in read_events(tmp_path, "train")  # in bulk: not one write per batch
    logger.on_epoch_end(0)  # every point of the epoch is on disk when it returns
    train = read_events(tmp_path, "train")
    for c in range(4):
        assert train[f"batch_c{c}"] == {i + 1: float(values[i, c]) for i in range(30)}
    logger.close()


def test_close_writes_points_of_an_unfinished_epoch(tmp_path, read_events, monkeypatch):
    monkeypatch.setattr(curves, "DELAY", 1e9)
    with LossLogger(tmp_path, update_freq=2) as logger:
        for i in range(7):
            logger.on_train_batch_end(i, {"loss": tf.constant(float(i))})
    assert read_events(tmp_path, "train")["batch_loss"] == {2: 0.5, 4: 2.5, 6: 4.5}


@pytest.mark.parametrize("components", [1, 4, 64])
def test_at_most_max_points_wait(tmp_path, read_events, monkeypatch, components):
    monkeypatch.setattr(curves, "DELAY", 1e9)
    monkeypatch.setattr(curves, "MAX_POINTS", 256)
    windows = max(1, 256 // components)
    logger = LossLogger(tmp_path, update_freq=1)
    logs = {f"c{c}": tf.constant(float(c)) for c in range(components)}
    for i in range(windows - 1):
        logger.on_train_batch_end(i, logs)
    assert "batch_c0" not in read_events(tmp_path, "train")
    logger.on_train_batch_end(windows, logs)  # this window makes 256 points wait: written
    assert sorted(read_events(tmp_path, "train")["batch_c0"]) == list(range(1, windows + 1))
    logger.close()


def test_delay_bounds_the_wait(tmp_path, read_events, monkeypatch):
    monkeypatch.setattr(curves, "DELAY", 0.0)  # due at once: each window end writes
    logger = LossLogger(tmp_path, update_freq=3)
    for i in range(6):
        logger.on_train_batch_end(i, {"loss": tf.constant(float(i))})
        steps = sorted(read_events(tmp_path, "train").get("batch_loss", {}))
        assert steps == [3, 6][: (i + 1) // 3]
    logger.close()


def test_a_failed_write_loses_no_point_and_does_not_stick(tmp_path, read_events, monkeypatch):
    monkeypatch.setattr(curves, "DELAY", 0.0)
    logger = LossLogger(tmp_path, update_freq=1)
    (tmp_path / "train").write_text("not a folder")  # the points file cannot be created
    with pytest.raises(OSError, match="writing batch curves .* failed.*the points are kept"):
        logger.on_train_batch_end(0, {"loss": tf.constant(1.0)})
    with pytest.raises(OSError, match="batch curves"):
        logger.on_train_batch_end(1, {"loss": tf.constant(2.0)})
    os.remove(tmp_path / "train")  # fixed: the next call writes everything
    logger.on_train_batch_end(2, {"loss": tf.constant(3.0)})
    assert logger.on_epoch_end(0) == {"loss": 2.0}
    logger.close()
    train = read_events(tmp_path, "train")
    assert train["batch_loss"] == {1: 1.0, 2: 2.0, 3: 3.0}
    assert train["epoch_loss"] == {0: 2.0}


def test_removed_run_folder_points_go_to_a_new_file(tmp_path, read_events, monkeypatch):
    monkeypatch.setattr(curves, "DELAY", 0.0)
    run = tmp_path / "run"
    logger = LossLogger(run, update_freq=1)
    logger.on_train_batch_end(0, {"loss": tf.constant(1.0)})
    logger.on_epoch_end(0)
    shutil.rmtree(run)
    logger.on_train_batch_end(1, {"loss": tf.constant(2.0)})  # to a file that was removed
    with pytest.warns(RuntimeWarning, match="lossboard.v2.*were removed|were removed"):
        logger.on_epoch_end(1)
    logger.on_train_batch_end(2, {"loss": tf.constant(3.0)})
    logger.close()
    train = read_events(run, "train")
    assert train["epoch_loss"] == {1: 2.0}
    assert train["batch_loss"] == {3: 3.0}  # after the warning, nothing more is lost


def test_fit_batch_curves_match_keras_logs(tmp_path, read_events, monkeypatch):
    """fit's per-batch logs (Keras' running means) are points too, written in bulk."""
    import keras

    monkeypatch.setattr(curves, "DELAY", 1e9)
    seen: dict[int, float] = {}

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen[len(seen) + 1] = float(np.float32(logs["loss"]))

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    logger = LossLogger(tmp_path, update_freq=1)
    model.fit(x, x[:, :1], batch_size=8, epochs=2, verbose=0, callbacks=[logger, Spy()])
    logger.close()
    assert read_events(tmp_path, "train")["batch_loss"] == seen


def test_many_points_keep_memory_flat_in_python_objects(tmp_path, monkeypatch):
    """Waiting points are arrays, not a Python object per point: what waits is bounded."""
    monkeypatch.setattr(curves, "MAX_POINTS", 64)
    monkeypatch.setattr(curves, "DELAY", 1e9)
    logger = LossLogger(tmp_path, update_freq=1)
    logs = {f"c{c}": tf.constant(1.0) for c in range(8)}
    for i in range(100):
        logger.on_train_batch_end(i, logs)
        assert logger._run.curves.unwritten < 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logger.close()


@pytest.mark.parametrize("first_freq", ["epoch", 2, 3])
@pytest.mark.parametrize("where", ["eager", "inside_step"])
def test_a_resumed_run_continues_the_global_batch_in_whole_windows(tmp_path, first_freq, where):
    """A first run of 10 batches (epoch values only, or curves every 2 or 3 batches), then a
    resumed logger with update_freq=4 for 8 batches: its points are at the global batches
    14 and 18, each the mean of the 4 batches before it (not 2, 4 or a first short window)."""
    values = np.arange(18, dtype=np.float64) / 4  # quarters: every mean is exact
    with LossLogger(tmp_path, update_freq=first_freq) as first:
        for v in values[:10]:
            first.on_train_batch_end(logs={"loss": v})
        first.on_epoch_end(0)
    with LossLogger(tmp_path, update_freq=4) as resumed:
        assert resumed.global_batch == 10

        @tf.function
        def step(v):
            resumed.on_train_batch_end(logs={"loss": v})

        for v in values[10:]:
            if where == "eager":
                resumed.on_train_batch_end(logs={"loss": tf.constant(v)})
            else:
                step(tf.constant(v))
        resumed.on_epoch_end(1)
        assert resumed.global_batch == 18
    points = read_split(tmp_path, "train")["batch_loss"]
    after = {step: value for step, value in points.items() if step > 10}
    assert after == {14: values[10:14].mean(), 18: values[14:18].mean()}


@pytest.mark.parametrize("policy", ["skip", "warn"])
def test_a_window_mean_beyond_float32_is_said_and_handled_by_the_policy(tmp_path, policy):
    """A batch-curve mean float32 cannot hold: left out under nonfinite='skip', written as
    inf under 'warn'; either way one warning per tag says so (never a silent inf)."""
    with LossLogger(tmp_path, update_freq=1, nonfinite=policy) as logger:
        with pytest.warns(LossboardRuntimeWarning) as caught:
            for big in (1e39, 3e39):
                logger.on_train_batch_end(logs={"loss": big, "ok": big / 1e39})
            logger.on_epoch_end(0)
    said = [str(w.message) for w in caught if "batch curve" in str(w.message)]
    assert len(said) == 1 and "'batch_loss'" in said[0], said
    points = read_split(tmp_path, "train")
    assert points["batch_ok"] == {1: 1.0, 2: 3.0}
    if policy == "skip":
        assert "batch_loss" not in points and "left out" in said[0]
    else:
        assert points["batch_loss"] == {1: np.inf, 2: np.inf} and "written as inf" in said[0]


@pytest.mark.parametrize("first", ["inside_step", "eager"])
def test_eager_and_in_graph_train_batches_with_curves_are_not_mixed_silently(tmp_path, first):
    """The two kinds of call number their points apart: after one kind, the other is refused
    at its call (the eager window landed on the graph's step 2 and hid its point)."""
    logger = LossLogger(tmp_path, update_freq=2)

    @tf.function
    def step(x):
        logger.on_train_batch_end(logs={"loss": x})

    def eager(x):
        logger.on_train_batch_end(logs={"loss": tf.constant(x)})

    def graph(x):
        step(tf.constant(x))

    kinds = [graph, eager] if first == "inside_step" else [eager, graph]
    for v in (1.0, 2.0, 3.0, 4.0):
        kinds[0](v)
    with pytest.raises(ValueError, match="number their batch-curve points apart"):
        kinds[1](10.0)
    logger.on_epoch_end(0)
    logger.close()
    assert read_split(tmp_path, "train") == {
        "batch_loss": {2: 1.5, 4: 3.5},
        "epoch_loss": {0: 2.5},
    }
