"""Property-based: random sequences of calls against a float64 reference written here.

Hypothesis draws a run: components appearing and disappearing, values of every accepted kind and
shape (Python and NumPy numbers, lists, scalar tensors, per-example vectors and matrices), weights
(none, a number, one per example) or ``batch_size=``, NaN and infinity, epoch ends, and resumes
with a new logger on the same directory. Every value that ``on_epoch_end`` returns and every value
on disk (read with TensorBoard's reader) must equal the reference.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import read_split
from lossboard import LossLogger

NAMES = ("loss", "kl", "aux")
KINDS = ("float", "numpy", "list", "scalar_tensor", "vector", "matrix")

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
special = st.sampled_from([math.nan, math.inf, -math.inf])


@st.composite
def component_value(draw, n):
    """(value as logged, its elements as float64 (n, k) or a scalar, is it per example)."""
    kind = draw(st.sampled_from(KINDS))
    element = st.one_of(finite, special) if draw(st.integers(0, 9)) == 0 else finite
    if kind in ("float", "numpy", "scalar_tensor"):
        x = np.float32(draw(element))
        value = {"float": float(x), "numpy": x, "scalar_tensor": tf.constant(x)}[kind]
        return value, np.float64(x), False
    cols = 3 if kind == "matrix" else 1
    xs = np.asarray(draw(st.lists(element, min_size=n * cols, max_size=n * cols)), np.float32)
    xs = xs.reshape((n, cols) if kind == "matrix" else (n,))
    value = xs.tolist() if kind == "list" else tf.constant(xs)
    return value, xs.astype(np.float64).reshape(n, -1), True


@st.composite
def batch(draw):
    n = draw(st.integers(1, 5))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    how = draw(st.sampled_from(["none", "number", "per_example", "batch_size"]))
    comps = {name: draw(component_value(n)) for name in names}
    if how == "per_example":
        weights = np.asarray(draw(st.lists(st.floats(0.25, 4.0, width=32), min_size=n, max_size=n)))
        if not all(per_example for _, _, per_example in comps.values()):
            how = "number"
    weight = draw(st.sampled_from([0.5, 2.0, 3.0]))
    return n, how, comps, (weights.astype(np.float32) if how == "per_example" else weight)


def _reference(batches, policy):
    """Per name: the float64 mean over every element, by the policy; None without data."""
    sums, counts, bad = {}, {}, {}
    for n, how, comps, w in batches:
        for name, (_, elements, per_example) in comps.items():
            x = np.asarray(elements, np.float64).reshape(n if per_example else 1, -1)
            if how == "none":
                weights = np.ones_like(x)
            elif how == "number":
                weights = np.full_like(x, w)
            elif how == "per_example":
                weights = np.repeat(np.asarray(w, np.float64)[:, None], x.shape[1], axis=1)
            else:  # batch_size: a scalar counts as n examples, per-example values once each
                weights = np.ones_like(x) if per_example else np.full_like(x, n)
            is_bad = not np.isfinite(x).all()
            bad[name] = bad.get(name, 0) + is_bad
            if is_bad and policy == "skip":
                continue
            with np.errstate(invalid="ignore", over="ignore"):  # a NaN/inf batch: NaN, as meant
                sums[name] = sums.get(name, 0.0) + float((x * weights).sum())
            counts[name] = counts.get(name, 0.0) + float(weights.sum())
    out = {}
    for name in set(sums) | set(bad):
        if counts.get(name):
            out[name] = sums[name] / counts[name]
        elif bad.get(name):
            out[name] = None  # every batch skipped: not written
    return out, bad


def _log(logger, step, n, how, comps, w):
    logs = {name: value for name, (value, _, _) in comps.items()}
    if how == "none":
        logger.on_train_batch_end(step, logs)
    elif how == "batch_size":
        logger.on_train_batch_end(step, logs, batch_size=n)
    elif how == "per_example":
        logger.on_train_batch_end(step, logs, sample_weight=tf.constant(w))
    else:
        logger.on_train_batch_end(step, logs, sample_weight=w)


def _same(actual, expected, rel):
    if math.isnan(expected):
        return math.isnan(actual)
    if math.isinf(expected):
        return actual == expected
    return actual == pytest.approx(expected, rel=rel, abs=1e-9)


@pytest.mark.filterwarnings("ignore:sample_weight=:UserWarning")
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    epochs=st.lists(st.lists(batch(), min_size=0, max_size=4), min_size=1, max_size=3),
    resume_after=st.integers(0, 3),
    policy=st.sampled_from(["skip", "warn"]),
)
def test_random_runs_match_a_float64_reference(tmp_path_factory, epochs, resume_after, policy):
    run = tmp_path_factory.mktemp("run")
    logger = LossLogger(run, nonfinite=policy)
    on_disk: dict[int, dict[str, float]] = {}
    for epoch, batches in enumerate(epochs):
        if epoch == resume_after:  # a new process would do this: a new logger, same directory
            logger.close()
            logger = LossLogger(run, nonfinite=policy)
            assert logger.initial_epoch == max(on_disk, default=-1) + 1
        for step, b in enumerate(batches):
            _log(logger, step, *b)
        expected, bad = _reference(batches, policy)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nonfinite and empty-epoch notes
            history = logger.on_epoch_end(epoch)
        written = {k: v for k, v in expected.items() if v is not None}
        assert set(history) == set(written)
        for name, value in written.items():
            assert _same(history[name], value, 1e-9), (name, history[name], value)
        if written:
            on_disk[epoch] = written
    logger.close()
    disk = read_split(run, "train")
    for epoch, values in on_disk.items():
        for name, value in values.items():
            assert _same(disk[f"epoch_{name}"][epoch], float(np.float32(value)), 1e-6)
    assert {e for tag in disk.values() for e in tag} == set(on_disk)
