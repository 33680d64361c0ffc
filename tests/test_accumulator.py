"""The per-batch path: no host sync, bounded pending state, exact folds."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import ops

from lossboard import LossboardWarning, LossLogger
from lossboard.accumulate.accumulator import Accumulator
from lossboard.accumulate.windows import NO_WINDOWS, BatchWindows

_SYNCS = ("numpy", "_numpy", "__float__", "__int__", "__index__", "__bool__", "__array__")


def _raiser(name):
    def read(*args, **kwargs):
        raise AssertionError(f"host sync: EagerTensor.{name} called on the per-batch path")

    return read


@contextlib.contextmanager
def no_host_sync():
    """Makes every way of reading an eager tensor's value on the host raise."""
    patch = pytest.MonkeyPatch()
    try:
        for name in _SYNCS:
            patch.setattr(ops._EagerTensorBase, name, _raiser(name))
        yield
    finally:
        patch.undo()


def test_guard_catches_a_host_read():
    with no_host_sync(), pytest.raises(AssertionError, match="host sync"):
        float(tf.constant(1.0))
    with no_host_sync(), pytest.raises(AssertionError, match="host sync"):
        tf.constant([1.0]).numpy()
    assert float(tf.constant(2.0)) == 2.0  # restored afterwards


@pytest.mark.parametrize("fold_every", [1, 5, 2048])
def test_per_batch_path_never_reads_values_back(tmp_path, fold_every):
    rng = np.random.default_rng(3)
    batches = []
    for n in [16, 16, 16, 5] * 3:
        x = rng.normal(size=n).astype("float32")
        batches.append(
            (
                {
                    "loss": tf.constant(x),  # per-example vector
                    "scalar": tf.constant(np.float32(x.mean())),
                    "int_count": tf.constant(n),
                    **{f"many{i}": tf.constant(np.float32(i)) for i in range(16)},
                },
                tf.constant(rng.uniform(size=n).astype("float32")),
            )
        )
    logger = LossLogger(tmp_path, fold_every=fold_every)

    @tf.function
    def in_graph(v):
        logger.on_test_batch_end(0, {"loss": v})

    in_graph(tf.constant([1.0, 2.0]))  # trace before the guard (tracing reads constants)
    with no_host_sync():
        for i, (logs, weights) in enumerate(batches):
            logger.on_train_batch_end(i, logs)
            logger.on_train_batch_end(i, {"weighted": logs["loss"]}, sample_weight=weights)
            logger.on_train_batch_end(i, {"by_size": logs["scalar"]}, sample_weight=len(weights))
            in_graph(logs["loss"])
    history = logger.on_epoch_end(0)
    x = np.concatenate([b[0]["loss"].numpy() for b in batches]).astype(np.float64)
    w = np.concatenate([b[1].numpy() for b in batches]).astype(np.float64)
    assert history["loss"] == pytest.approx(x.mean(), rel=1e-9)
    assert history["weighted"] == pytest.approx((x * w).sum() / w.sum(), rel=1e-9)
    assert history["val_loss"] == pytest.approx((x.sum() + 3.0) / (len(x) + 2), rel=1e-9)
    sizes = np.array([len(b[1]) for b in batches], np.float64)
    means = np.array([b[0]["scalar"].numpy() for b in batches], np.float64)
    assert history["by_size"] == pytest.approx((means * sizes).sum() / sizes.sum(), rel=1e-9)


def test_pending_state_is_bounded_by_fold_every():
    acc = Accumulator(fold_every=64)
    value = tf.constant(1.0)
    for _ in range(1000):
        acc.add({"a": value, "b": value, "c": value})
        assert acc.pending_entries < 64
    assert acc.read()["a"] == (1.0, 1000.0, 0)


@pytest.mark.parametrize("scalars", [2, 20])
def test_fast_rows_and_general_entries_agree(scalars):
    """The steady-state row path (kept or packed) and the general path give the same sums."""
    rng = np.random.default_rng(5)
    rows, general = Accumulator(), Accumulator()
    with pytest.warns(LossboardWarning, match="sample_weight=3 weights every element") as caught:
        for _ in range(50):
            v = rng.normal(size=8).astype("float32")
            logs = {"vec": tf.constant(v), "f64": tf.constant(v.mean(), tf.float64)}
            logs.update({f"s{i}": tf.constant(v[i % 8] * i) for i in range(scalars)})
            rows.add(logs, sample_weight=3)  # after the first batch, recorded as rows
            general.add(logs, sample_weight={k: 3.0 for k in logs})  # a mapping: never a row
    # said once, at this file's line: a mix of per-example and scalar values under one weight
    assert [w.filename for w in caught] == [__file__]
    assert rows.steady_state_signatures == 1 and general.steady_state_signatures == 0
    r, g = rows.read(), general.read()
    assert set(r) == set(g) == {"vec", "f64", *(f"s{i}" for i in range(scalars))}
    for name in r:
        assert r[name][0] == pytest.approx(g[name][0], rel=1e-12)
        assert r[name][1] == g[name][1]


def test_shape_change_in_steady_state_is_checked_per_batch():
    acc = Accumulator()
    acc.add({"loss": tf.constant([1.0, 2.0])})
    acc.add({"loss": tf.constant([3.0, 4.0])})
    acc.add({"loss": tf.constant([5.0])})  # a short batch leaves the row path
    with pytest.raises(ValueError, match="empty"):
        acc.add({"loss": tf.constant([], tf.float32)})
    with pytest.raises(TypeError, match="string"):
        acc.add({"loss": tf.constant(["x", "y"])})
    assert acc.read()["loss"] == (3.0, 5.0, 0)


@pytest.mark.parametrize("shape", [(8, 32, 32), (4096,)])
def test_pending_memory_is_bounded_in_bytes_and_the_mean_exact(shape):
    """Large losses (per-pixel, long per-example vectors) fold by bytes, not by entry count."""
    from lossboard.accumulate.accumulator import FOLD_BYTES

    rng = np.random.default_rng(11)
    acc = Accumulator()  # fold_every=16384 entries would hold 16384 of these
    total, count = 0.0, 0
    one = int(np.prod(shape)) * 4
    for i in range(150):
        values = rng.normal(size=shape).astype("float32")
        total, count = total + values.astype(np.float64).sum(), count + values.size
        acc.add({"pixels": tf.constant(values)} if i % 3 else {"pixels": values.tolist()})
        assert acc.pending_bytes < FOLD_BYTES + one
    result = acc.read()["pixels"]
    assert result.mean == pytest.approx(total / count, rel=1e-12) and result.weight == count


@pytest.mark.parametrize("weight", [None, 3, "per_example"])
def test_large_values_reduced_at_the_call_keep_weights_and_flag_nonfinite(weight):
    from lossboard.accumulate.staging import LARGE

    rng = np.random.default_rng(12)
    shape = (16, LARGE // 16)  # exactly LARGE elements: reduced at the call
    values = [rng.normal(size=shape).astype("float32") for _ in range(3)]
    values[1][3, 5] = np.nan
    weights = {
        None: [None] * 3,
        3: [3] * 3,
        "per_example": [rng.uniform(0.5, 2, size=16).astype("float32") for _ in range(3)],
    }[weight]
    acc = Accumulator(nonfinite="skip")
    for v, w in zip(values, weights, strict=True):
        acc.add({"pixels": tf.constant(v)}, sample_weight=w)
    assert acc.pending_bytes < 1 << 10  # two scalars per batch, not its elements
    kept = [0, 2]
    v64 = [values[i].astype(np.float64) for i in kept]
    if weight == "per_example":
        w64 = [np.repeat(weights[i].astype(np.float64)[:, None], shape[1], 1) for i in kept]
    else:
        w64 = [np.full(shape, 1.0 if weight is None else 3.0) for _ in kept]
    expected = sum((v * w).sum() for v, w in zip(v64, w64, strict=True)) / sum(w.sum() for w in w64)
    result = acc.read()["pixels"]
    assert result.mean == pytest.approx(expected, rel=1e-12) and result.nonfinite == 1


@pytest.mark.parametrize("where", ["segment_sums", "merge", "graph_read", "split_windows"])
@pytest.mark.parametrize("windows", [False, True])
def test_an_interrupted_fold_loses_nothing(monkeypatch, where, windows):
    """Ctrl-C in a fold (in its ops, before anything is kept) leaves every batch pending:
    the next read folds them all. Eager rows, entries, host values and in-graph sums."""
    from lossboard.accumulate import accumulator as accumulate
    from lossboard.accumulate import pending
    from lossboard.accumulate.sums import Sums

    seen = []
    acc = Accumulator(windows=BatchWindows(seen.append, 128) if windows else NO_WINDOWS)

    @tf.function
    def in_graph(v):
        acc.add_in_graph({"a": v, "b": v * 2.0})

    expected_a, expected_b = [], []
    for i in range(40):
        value = float(i)
        if i % 4 == 3:
            in_graph(tf.constant(value))
        elif i % 4 == 2:
            acc.add({"a": value, "b": [value * 2.0]})  # host values
        else:
            acc.add({"a": tf.constant(value), "b": tf.constant(value * 2.0)})
        expected_a.append(value)
        expected_b.append(value * 2.0)
        if windows and i % 10 == 9:
            acc.cut_window(i, 0.0)
    target = {
        "segment_sums": (pending, "segment_sums"),
        "merge": (Sums, "__add__"),
        "graph_read": (accumulate.Accumulator, "_graph_sums"),
        "split_windows": (BatchWindows, "split"),
    }[where]
    original = getattr(*target)

    def interrupted(*args, **kwargs):
        monkeypatch.setattr(*target, original)  # once
        raise KeyboardInterrupt

    monkeypatch.setattr(*target, interrupted)
    if where == "split_windows" and not windows:
        acc.fold()  # no window ended: nothing to split, the fold just works
    else:
        with pytest.raises(KeyboardInterrupt):
            acc.read()
    result = acc.read()
    assert result["a"] == (pytest.approx(np.mean(expected_a), rel=1e-12), 40.0, 0)
    assert result["b"] == (pytest.approx(np.mean(expected_b), rel=1e-12), 40.0, 0)
    if windows:  # every ended window reached the sink once, with its own batches
        rows = [(s, t[0]) for w in seen for s, t in zip(w.step, w.total, strict=True)]
        eager_a = [
            sum(expected_a[j] for j in range(i - 9, i + 1) if j % 4 != 3)  # in-graph: open window
            for i in (9, 19, 29)
        ]
        assert [s for s, _ in rows] == [9, 19, 29, 39][: len(rows)]
        assert [t for _, t in rows][:3] == pytest.approx(eager_a)


@pytest.mark.parametrize("call", ["fold", "reset one component", "reset"])
def test_ctrl_c_at_any_line_of_a_commit_leaves_the_old_state_or_the_new(call):
    """Ctrl-C at every line a fold or a reset runs (each line at each of its first three
    runs): afterwards the accumulator holds exactly the state before the call or after it,
    eager and in-graph sums alike, never a mix, and the next call completes it."""
    from conftest import Interrupter

    def filled() -> tuple[Accumulator, tf.types.experimental.GenericFunction]:
        acc = Accumulator()

        @tf.function
        def in_graph(x):
            acc.add_in_graph({"a": x, "b": x * 4.0})

        for i in range(5):
            acc.add({"a": tf.constant(float(i)), "b": [float(i), 1.0]})
            in_graph(tf.constant(float(i)))
        return acc, in_graph

    def act(acc: Accumulator) -> None:
        if call == "fold":
            acc.fold()
        else:
            acc.reset(0 if call == "reset one component" else None)

    before = {k: tuple(v) for k, v in filled()[0].read().items()}
    done, _ = filled()
    act(done)
    after = {k: tuple(v) for k, v in done.read().items()}
    dry = Interrupter()
    dry.run(act, filled()[0])
    seen: dict[str, int] = {}
    points = []
    for _, where in dry.lines:
        seen[where] = seen.get(where, 0) + 1
        if seen[where] <= 3:
            points.append((where, seen[where]))
    assert len(points) > 10
    for point in points:
        acc, _ = filled()
        interrupter = Interrupter(at=point)
        interrupter.run(act, acc)
        assert interrupter.fired, point
        state = {k: tuple(v) for k, v in acc.read().items()}
        assert state in (before, after), (point, state)
        act(acc)  # the call again, whole: the state after it
        assert {k: tuple(v) for k, v in acc.read().items()} == after, point
