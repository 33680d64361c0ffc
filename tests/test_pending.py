"""Pending values: steady-state rows joined in blocks, against a float64 reference.

A loop's steady state (the same names, dtypes and shapes every batch) is kept as rows, and every
``Signature.block`` rows are joined into one vector per column group right away. Hypothesis draws
rows of scalars and per-example vectors of several dtypes, weights, NaNs, batch-curve windows and
folds at any point, with ``CHUNK`` small so that blocks, partial blocks and joins of joins all
happen in a few dozen batches; the sums must equal a float64 NumPy reference.
"""

from __future__ import annotations

import gc
import math
import warnings

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossboard import LossboardWarning
from lossboard.accumulate import pending
from lossboard.accumulate.accumulator import Accumulator
from lossboard.accumulate.tf_private import EagerTensor
from lossboard.accumulate.windows import BatchWindows

DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "int32": np.int32}


def _batch_values(rng, columns, lead, nan_rate):
    """One batch: per column, its value as numpy (scalars rank 0, vectors of ``lead``)."""
    values = []
    for dtype, rank in columns:
        x = rng.integers(-8, 9, size=(lead,) if rank else ()).astype(np.float64) / 4
        if dtype != "int32" and rng.random() < nan_rate:
            x = np.where(rng.random(x.shape) < 0.5, np.nan, x) if rank else np.float64(np.nan)
        values.append(np.asarray(x, DTYPES[dtype]))
    return values


def _reference(batches, weights, columns, by_batch_size, cuts, skip):
    """Per window (cut before batch i, for i in ``cuts``) and in all: per component
    (float64 weighted sum, weight total, non-finite batches)."""
    num = len(columns)
    windows = [np.zeros((3, num))]
    for i, (values, weight) in enumerate(zip(batches, weights, strict=True)):
        if i in cuts:
            windows.append(np.zeros((3, num)))
        for c, ((_, rank), x) in enumerate(zip(columns, values, strict=True)):
            x = np.asarray(x, np.float64)
            w = 1.0 if (rank and by_batch_size) else float(weight)
            bad = not (np.all(np.isfinite(x)) and math.isfinite(w))
            if not (bad and skip):
                with np.errstate(invalid="ignore", over="ignore"):  # inf * 0, inf - inf: NaN
                    windows[-1][0, c] += (x * w).sum()
                windows[-1][1, c] += w * x.size
            windows[-1][2, c] += bad
    return windows


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunk=st.integers(2, 9),
    columns=st.lists(
        st.tuples(st.sampled_from(sorted(DTYPES)), st.sampled_from([0, 1])),
        min_size=1,
        max_size=7,
    ),
    num_batches=st.integers(1, 40),
    weighting=st.sampled_from(["none", "number", "batch_size", "nonfinite number"]),
    folds=st.sets(st.integers(0, 40)),
    cuts=st.sets(st.integers(1, 40)),
    skip=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_rows_joined_in_blocks_match_a_float64_reference(
    monkeypatch, chunk, columns, num_batches, weighting, folds, cuts, skip, seed
):
    rng = np.random.default_rng(seed)
    lead = 3
    names = [f"c{i}" for i in range(len(columns))]
    batches = [_batch_values(rng, columns, lead, 0.1) for _ in range(num_batches)]
    weights = [float(rng.integers(1, 4)) if weighting != "none" else 1.0 for _ in batches]
    if weighting == "nonfinite number":  # a NaN or infinite sample_weight marks its batch
        weights = [rng.choice([w, w, w, math.nan, math.inf]) for w in weights]
    if weighting == "batch_size":
        weights = [float(lead)] * num_batches
    cuts = {c for c in cuts if c < num_batches}
    # a whole-number weight >= 2 over scalars and per-example values together is warned about
    # at the first batch (later ones of the same shape take the row path, unchecked)
    first = weights[0]
    warned = (
        weighting in ("number", "nonfinite number")
        and {rank for _, rank in columns} == {0, 1}
        and math.isfinite(first)
        and first >= 2
        and float(first).is_integer()
    )
    with monkeypatch.context() as patch, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LossboardWarning)
        patch.setattr(pending, "CHUNK", chunk)
        seen = []
        acc = Accumulator(
            nonfinite="skip" if skip else "warn", windows=BatchWindows(seen.append, 128)
        )
        for i, (values, weight) in enumerate(zip(batches, weights, strict=True)):
            if i in cuts:
                acc.cut_window(i, 0.0)
            logs = {n: tf.constant(v) for n, v in zip(names, values, strict=True)}
            if weighting == "batch_size":
                acc.add(logs, batch_size=lead)
            elif weighting == "number":
                acc.add(logs, sample_weight=int(weight))
            elif weighting == "nonfinite number":
                acc.add(logs, sample_weight=float(weight))
            else:
                acc.add(logs)
            if i in folds:
                acc.fold()
        running = acc.running()
        assert acc.steady_state_signatures == 1
    notes = [str(w.message) for w in caught if issubclass(w.category, LossboardWarning)]
    assert len(notes) == warned and all("weights every element" in n for n in notes), notes
    expected = _reference(batches, weights, columns, weighting == "batch_size", cuts, skip)
    ended = [(w.total, w.weight) for w in seen]
    assert sum(len(t) for t, _ in ended) == len(expected) - 1  # one row per window ended
    rows = [(t[r], w[r]) for t, w in ended for r in range(len(t))]
    for (total, weight), ref in zip(rows, expected[:-1], strict=True):
        np.testing.assert_allclose(total, ref[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(weight, ref[1], rtol=1e-12)
    everything = sum(expected)
    sums, counts, bad = (v.numpy() for v in running)
    np.testing.assert_allclose(sums, everything[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(counts, everything[1], rtol=1e-12)
    np.testing.assert_array_equal(bad, everything[2])


def _live_eager_tensors() -> int:
    gc.collect()
    return sum(type(o) is EagerTensor for o in gc.get_objects())


@pytest.mark.parametrize("components", [1, 64, 300])
def test_steady_rows_keep_few_tensors_alive_until_the_fold(components):
    """The garbage collector's work grows with the tensors kept: at most about a block's worth
    (plus one vector per block) stay alive, however many batches wait for the fold."""
    acc = Accumulator(fold_every=10**9)
    batches = 6000 // components + 2 * pending.CHUNK
    before = _live_eager_tensors()
    expected = np.zeros(components)
    for i in range(batches):
        values = np.arange(components, dtype=np.float32) + i % 7
        expected += values
        acc.add({f"c{j}": tf.constant(v) for j, v in enumerate(values)})
    kept = _live_eager_tensors() - before
    blocks = batches // max(1, pending.CHUNK // components)
    assert acc.pending_entries == batches * components  # nothing folded yet
    assert kept <= pending.CHUNK + components + blocks + 8, kept
    result = acc.read()
    for j in range(components):
        assert result[f"c{j}"].mean == pytest.approx(expected[j] / batches, rel=1e-12)


def test_a_block_join_matches_tf_stack_on_the_values_device():
    values = [tf.constant(float(i)) for i in range(5)]
    signature = pending.Signature((1,) * 5, ((),) * 5, tuple(range(5)))
    block = pending.RowBlock()
    for _ in range(signature.block):
        block.add(signature, tuple(values), 1.0, 0)
    (joined,), rows = block.state
    assert rows == [] and len(joined.weights) == signature.block
    (vector,) = joined.vectors
    assert vector.device == values[0].device
    np.testing.assert_array_equal(vector.numpy(), tf.tile(tf.stack(values), [signature.block]))
    assert math.isclose(float(tf.reduce_sum(block.vector(0, signature.columns[0]))), 10.0 * 51)


def test_empty_logs_record_nothing_and_break_nothing(tmp_path):
    acc = Accumulator()
    for _ in range(600):  # past a block of empty rows
        acc.add({})
    acc.add({"loss": tf.constant(2.0)})
    assert acc.read() == {"loss": (2.0, 1.0, 0)}


class _FailingJoin:
    """``tf_private.join`` that raises ``error`` on its ``nth`` call, then works."""

    def __init__(self, error, nth):
        self.error, self.nth, self.calls = error, nth, 0
        self.join = pending.tf_private.join

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.nth:
            raise self.error
        return self.join(*args)


@pytest.mark.parametrize("nth", [1, 2, 3])
@pytest.mark.parametrize(
    "error", [KeyboardInterrupt(), tf.errors.InvalidArgumentError(None, None, "no copy")]
)
def test_a_join_that_fails_leaves_every_row_whole(monkeypatch, error, nth):
    """Two column groups (two joins per block): an interrupt in either leaves the batch out
    and everything before it intact; another error holds the rows for the fold (recorded)."""
    failing = _FailingJoin(error, nth)
    monkeypatch.setattr(pending.tf_private, "join", failing)
    acc = Accumulator()
    recorded = []
    for i in range(300):
        logs = {"a": tf.constant(float(i)), "b": tf.constant(2.0 * i, tf.float64)}
        try:
            acc.add(logs)
        except KeyboardInterrupt:
            continue  # the interrupted batch is not recorded
        recorded.append(i)
    assert failing.calls >= nth and len(recorded) == 300 - isinstance(error, KeyboardInterrupt)
    result = acc.read()
    assert result["a"].mean == pytest.approx(np.mean(recorded), rel=1e-12)
    assert result["b"].mean == pytest.approx(2.0 * np.mean(recorded), rel=1e-12)
    assert result["a"].weight == result["b"].weight == len(recorded)
    acc.add({"a": tf.constant(1.0), "b": tf.constant(1.0, tf.float64)})  # still usable
    assert acc.read()["a"].weight == len(recorded) + 1


def test_an_interrupted_first_row_of_a_wide_batch_leaves_nothing_behind(monkeypatch):
    """Over ``CHUNK`` components a block is one row, joined as it arrives: Ctrl-C in that
    join leaves the batch out, and a read with no later row of its kind still works."""
    acc = Accumulator()
    names = [f"c{i}" for i in range(300)]
    acc.add({n: tf.constant(float(i)) for i, n in enumerate(names)})  # sets up the row path
    monkeypatch.setattr(pending.tf_private, "join", _FailingJoin(KeyboardInterrupt(), 1))
    with pytest.raises(KeyboardInterrupt):
        acc.add({n: tf.constant(100.0) for n in names})
    acc.add({"other": 1.0})
    result = acc.read()
    assert result["c7"] == (7.0, 1.0, 0) and result["other"] == (1.0, 1.0, 0)


WEIGHT_KINDS = ("number", "per_example_tensor", "scalar_tensor", "none")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunk=st.integers(2, 6),
    batches=st.lists(
        st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from(WEIGHT_KINDS), st.booleans()),
        min_size=1,
        max_size=30,
    ),
    folds=st.sets(st.integers(0, 30)),
    cuts=st.sets(st.integers(1, 30)),
    seed=st.integers(0, 2**31 - 1),
)
def test_entries_joined_in_blocks_match_a_float64_reference(
    monkeypatch, chunk, batches, folds, cuts, seed
):
    """The general path (any weight, any shape; a mapping of weights keeps batches off the
    row path): entries of every kind of weight joined every CHUNK, against float64 NumPy."""
    rng = np.random.default_rng(seed)
    with monkeypatch.context() as patch:
        patch.setattr(pending, "CHUNK", chunk)
        seen = []
        acc = Accumulator(nonfinite="skip", windows=BatchWindows(seen.append, 128))
        windows = [np.zeros(2)]  # (weighted sum, weight) of component "x" per window
        for i, (rank, kind, bad) in enumerate(batches):
            if i in cuts:
                acc.cut_window(i, 0.0)
                windows.append(np.zeros(2))
            n = (1, 4, 3000)[rank]  # 3000 elements or more: reduced at the call
            shape = () if rank == 0 else (n,)
            x = rng.integers(-8, 9, size=shape).astype(np.float64) / 4
            if bad:
                x = np.where(np.ones(shape, bool), np.nan, x) if rank else np.float64(np.nan)
            value = tf.constant(x.astype(np.float32))
            if kind == "number":
                w = np.full(shape, 3.0)
                weight = {"x": 3}
            elif kind == "per_example_tensor" and rank:
                w = rng.integers(1, 4, size=shape).astype(np.float64)
                weight = {"x": tf.constant(w.astype(np.float32))}
            elif kind == "scalar_tensor":
                w = np.full(shape, 2.0)
                weight = {"x": tf.constant(2.0)}
            else:
                w = np.ones(shape)
                weight = {"x": 1}
            acc.add({"x": value}, sample_weight=weight)
            if not bad:
                windows[-1] += [(np.float32(x).astype(np.float64) * w).sum(), w.sum()]
            if i in folds:
                acc.fold()
        result = acc.read()
    total = sum(windows)
    if total[1]:
        assert result["x"].mean == pytest.approx(total[0] / total[1], rel=1e-12, abs=1e-12)
        assert result["x"].weight == pytest.approx(total[1], rel=1e-12)
    assert result.get("x", (0, 0, 0))[2] == sum(bad for _, _, bad in batches)
    ended = [(t[0], w[0]) for win in seen for t, w in zip(win.total, win.weight, strict=True)]
    for (t, w), ref in zip(ended, windows[:-1], strict=True):
        assert (t, w) == (pytest.approx(ref[0], abs=1e-9), pytest.approx(ref[1]))


@pytest.mark.parametrize("nth", [1, 2, 3, 4])
@pytest.mark.parametrize("error", [KeyboardInterrupt(), tf.errors.UnknownError(None, None, "x")])
def test_an_entry_join_that_fails_leaves_every_batch_whole(monkeypatch, error, nth):
    """Two components in two groups, weighted by tensors (two joins per group and chunk): a
    failed or interrupted join never splits a batch; the interrupted one is wholly in or out."""
    failing = _FailingJoin(error, nth)
    monkeypatch.setattr(pending.tf_private, "join", failing)
    acc = Accumulator()
    returned, interrupted = [], []
    for i in range(600):
        logs = {"a": tf.constant([float(i)]), "b": tf.constant([2.0 * i], tf.float64)}
        weights = {"a": tf.constant([1.0]), "b": tf.constant([1.0], tf.float64)}
        try:
            acc.add(logs, sample_weight=weights)
        except KeyboardInterrupt:
            interrupted.append(i)
            continue
        returned.append(i)
    assert failing.calls >= nth
    result = acc.read()
    assert result["a"].weight == result["b"].weight  # no batch split between components
    recorded = returned + interrupted if result["a"].weight > len(returned) else returned
    assert result["a"].weight == len(recorded)
    assert result["a"].mean == pytest.approx(np.mean(recorded), rel=1e-12)
    assert result["b"].mean == pytest.approx(2.0 * np.mean(recorded), rel=1e-12)


def test_reduced_large_values_keep_few_tensors_alive_until_the_fold():
    acc = Accumulator(fold_every=10**9)
    before = _live_eager_tensors()
    values = [tf.constant(np.full(4096, float(i), np.float32)) for i in range(4)]
    for i in range(2000):
        acc.add({"per_example": values[i % 4]}, batch_size=4096)
    kept = _live_eager_tensors() - before - len(values)
    assert kept <= pending.CHUNK + 2000 // pending.CHUNK + 8, kept
    assert acc.read()["per_example"].mean == pytest.approx(1.5, rel=1e-12)
