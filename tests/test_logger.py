"""LossLogger end to end: values written to disk vs NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from conftest import close_to, read_split
from lossboard import LossboardWarning, LossLogger

RNG = np.random.default_rng(7)
SIZES = [32, 32, 32, 7]  # the last batch is short


def _batches(sizes=SIZES, cols=None, loc=0.0):
    shape = (lambda n: (n,)) if cols is None else (lambda n: (n, cols))
    return [(loc + RNG.normal(size=shape(n))).astype("float32") for n in sizes]


def _case(kind):
    """Returns ``(calls, reference)``: ``calls`` is a list of (value, sample_weight)."""
    if kind == "per_example":
        vals = _batches()
        return [(v, None) for v in vals], np.concatenate(vals).astype(np.float64).mean()
    if kind == "scalar_weighted_by_batch_size":
        vals = _batches()
        means = [np.float32(v.mean()) for v in vals]
        ref = np.average(np.float64(means), weights=SIZES)
        return [(m, len(v)) for m, v in zip(means, vals, strict=True)], ref
    if kind == "per_example_weights":
        vals = _batches()
        ws = [RNG.uniform(0, 2, size=v.shape).astype("float32") for v in vals]
        v64, w64 = np.concatenate(vals).astype(np.float64), np.concatenate(ws).astype(np.float64)
        return list(zip(vals, ws, strict=True)), (v64 * w64).sum() / w64.sum()
    if kind == "matrix_with_example_weights":
        vals = _batches(cols=3)
        ws = [RNG.uniform(0, 2, size=len(v)).astype("float32") for v in vals]
        v64 = np.concatenate(vals).astype(np.float64)
        w64 = np.repeat(np.concatenate(ws).astype(np.float64), 3)
        return list(zip(vals, ws, strict=True)), (v64.ravel() * w64).sum() / w64.sum()
    if kind == "scalar_tensor_weight_on_vector":
        vals = _batches()
        ws = [np.float32(RNG.uniform(0.5, 2)) for _ in vals]
        v64 = np.concatenate(vals).astype(np.float64)
        w64 = np.concatenate(
            [np.full(len(v), w, np.float64) for v, w in zip(vals, ws, strict=True)]
        )
        return list(zip(vals, ws, strict=True)), (v64 * w64).sum() / w64.sum()
    raise AssertionError(kind)


CASES = [
    "per_example",
    "scalar_weighted_by_batch_size",
    "per_example_weights",
    "matrix_with_example_weights",
    "scalar_tensor_weight_on_vector",
]


def _feed(logger, calls, how, split="train"):
    method = logger.on_train_batch_end if split == "train" else logger.on_test_batch_end
    if how == "graph":
        traces = []

        @tf.function(reduce_retracing=True)
        def step(value, weight):
            traces.append(1)
            method(0, {"loss": value}, sample_weight=weight)

        for value, weight in calls:
            w = None if weight is None else tf.constant(weight)
            step(tf.constant(value), w)
        return traces
    for i, (value, weight) in enumerate(calls):
        if how == "tensors":
            value = tf.constant(value)
            weight = weight if weight is None or np.ndim(weight) == 0 else tf.constant(weight)
        elif how == "tensor_weights":
            value = tf.constant(value)
            weight = None if weight is None else tf.constant(weight)
        method(i, {"loss": value}, sample_weight=weight)
    return []


@pytest.mark.parametrize("how", ["tensors", "tensor_weights", "numpy", "graph"])
@pytest.mark.parametrize("kind", CASES)
def test_epoch_mean_is_exact_over_examples(tmp_path, read_events, kind, how):
    calls, reference = _case(kind)
    with LossLogger(tmp_path, fold_every=3) as logger:
        _feed(logger, calls, how)
        history = logger.on_epoch_end(0)
    assert history["loss"] == pytest.approx(reference, rel=1e-9)
    written = read_events(tmp_path, "train")["epoch_loss"]
    assert list(written) == [0]
    assert close_to(written[0], reference)


@pytest.mark.parametrize("fold_every", [13, 8192])
def test_long_float32_epoch_matches_float64_reference(tmp_path, read_events, fold_every):
    values = (1e3 + RNG.normal(scale=5.0, size=20_000)).astype(np.float32)
    reference = values.astype(np.float64).mean()
    with LossLogger(tmp_path, fold_every=fold_every) as logger:
        for i, v in enumerate(tf.unstack(tf.constant(values))):
            logger.on_train_batch_end(i, {"loss": v})
        history = logger.on_epoch_end(0)
    assert abs(history["loss"] - reference) / reference < 1e-12
    assert close_to(read_events(tmp_path, "train")["epoch_loss"][0], reference)
    # The sum of float32 batch values in float32, as the naive loop does, drifts well past that.
    naive = np.float32(0)
    for v in values:
        naive = np.float32(naive + v)
    assert abs(naive / len(values) - reference) / reference > 2e-7


def test_graph_and_eager_give_identical_numbers_without_retracing(tmp_path):
    calls, reference = _case("per_example_weights")
    eager = LossLogger(tmp_path / "eager")
    _feed(eager, calls * 5, "tensor_weights")
    graph = LossLogger(tmp_path / "graph")
    traces = []

    @tf.function
    def step(value, weight):
        traces.append(1)
        graph.on_train_batch_end(0, {"loss": value}, sample_weight=weight)

    for epoch in range(5):
        for value, weight in calls:
            step(tf.constant(value), tf.constant(weight))
        if epoch == 0:
            traced_in_first_epoch = len(traces)
    assert len(traces) == traced_in_first_epoch  # later batches and epochs reuse the traces
    assert graph.on_epoch_end(0)["loss"] == pytest.approx(eager.on_epoch_end(0)["loss"], rel=1e-12)
    for logger in (eager, graph):  # nothing left over after the epoch, and it says so
        with pytest.warns(RuntimeWarning, match=r"on_epoch_end\(1\): no batch was logged"):
            assert logger.on_epoch_end(1) == {}


def test_components_train_validation_and_history_names(tmp_path, read_events):
    train = {"loss": _batches(), "kl": _batches()}
    val = {"loss": _batches([20, 5])}
    with LossLogger(tmp_path) as logger:
        for epoch in range(2):
            for i in range(len(SIZES)):
                logger.on_train_batch_end(i, {k: tf.constant(v[i]) for k, v in train.items()})
            for i in range(2):
                logger.on_test_batch_end(i, {"loss": val["loss"][i]})
            history = logger.on_epoch_end(epoch, {"learning_rate": 0.5, "val_acc": 0.25})
    ref = {k: np.concatenate(v).astype(np.float64).mean() for k, v in train.items()}
    ref_val = np.concatenate(val["loss"]).astype(np.float64).mean()
    assert set(history) == {"loss", "kl", "val_loss", "learning_rate", "val_acc"}
    assert history["loss"] == pytest.approx(ref["loss"], rel=1e-9)
    assert history["val_loss"] == pytest.approx(ref_val, rel=1e-9)
    train_events = read_events(tmp_path, "train")
    val_events = read_events(tmp_path, "validation")
    assert set(train_events) == {"epoch_loss", "epoch_kl", "epoch_learning_rate"}
    assert set(val_events) == {"epoch_loss", "epoch_acc"}
    for epoch in range(2):
        assert close_to(train_events["epoch_kl"][epoch], ref["kl"])
        assert close_to(val_events["epoch_loss"][epoch], ref_val)
        assert val_events["epoch_acc"][epoch] == 0.25


def test_component_seen_in_some_batches_and_empty_component(tmp_path, read_events):
    with LossLogger(tmp_path) as logger:
        logger.on_train_batch_end(0, {"loss": 1.0, "aux": 10.0})
        logger.on_train_batch_end(1, {"loss": 3.0})
        logger.on_train_batch_end(2, {"loss": 5.0, "aux": 20.0})
        first = logger.on_epoch_end(0)
        logger.on_train_batch_end(0, {"loss": 7.0})
        second = logger.on_epoch_end(1)
    assert first == {"loss": 3.0, "aux": 15.0}
    assert second == {"loss": 7.0}  # no data for aux: neither returned nor written (never a 0)
    events = read_events(tmp_path, "train")
    assert events["epoch_aux"] == {0: 15.0}
    assert events["epoch_loss"] == {0: 3.0, 1: 7.0}


def test_no_validation_files_without_validation_data(tmp_path):
    with LossLogger(tmp_path) as logger:
        logger.on_train_batch_end(0, 1.0)  # a bare value is logged as "loss"
        assert logger.on_epoch_end(0) == {"loss": 1.0}
    # the run's own folder holds its train split and the saved batch count, no validation
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lossboard-batches", "train"]
    empty = tmp_path / "nothing"
    LossLogger(empty).close()
    assert list(empty.iterdir()) == []


def test_mid_epoch_result_is_exact(tmp_path):
    with LossLogger(tmp_path) as logger:
        logger.on_train_batch_end(0, {"loss": tf.constant([1.0, 2.0, 3.0])})
        assert float(logger.metrics["loss"].result()) == 2.0
        logger.on_train_batch_end(1, {"loss": tf.constant(6.0)})
        assert float(logger.metrics["loss"].result()) == 3.0
        logger.on_test_batch_end(0, {"loss": 4.0})
        assert float(logger.metrics["val_loss"].result()) == 4.0


@pytest.mark.parametrize("in_graph", [False, True])
def test_batch_curves_every_n_batches_across_epochs(tmp_path, read_events, in_graph):
    values = RNG.normal(size=(2, 5)).astype("float32")
    with LossLogger(tmp_path, update_freq=3) as logger:
        step = tf.function(lambda v: logger.on_train_batch_end(0, {"loss": v}))
        for epoch in range(2):
            for i in range(5):
                if in_graph:
                    step(tf.constant(values[epoch, i]))
                else:
                    logger.on_train_batch_end(i, {"loss": tf.constant(values[epoch, i])})
            logger.on_epoch_end(epoch)
        assert logger.global_batch == 10
    flat = values.ravel().astype(np.float64)
    batch = read_events(tmp_path, "train")["batch_loss"]
    assert sorted(batch) == [3, 6, 9]
    for step in (3, 6, 9):
        assert close_to(batch[step], flat[step - 3 : step].mean())


def test_component_may_first_appear_in_a_retrace(tmp_path, read_events):
    logger = LossLogger(tmp_path)

    @tf.function
    def step(x, extra):
        logs = {"loss": x}
        if extra:
            logs["aux"] = 10 * x
        logger.on_train_batch_end(0, logs)

    step(tf.constant(1.0), False)  # the first trace knows only "loss"
    step(tf.constant(2.0), True)  # a retrace adds "aux"
    step(tf.constant(3.0), True)
    assert logger.on_epoch_end(0) == {"loss": 2.0, "aux": 25.0}
    logger.close()
    assert read_events(tmp_path, "train")["epoch_aux"] == {0: 25.0}


@pytest.mark.parametrize("in_graph", [False, True])
def test_mixed_dtypes_in_one_batch(tmp_path, in_graph):
    logs = {
        "f32": tf.constant(1.5, tf.float32),
        "f64": tf.constant(2.25, tf.float64),
        "f16": tf.constant(0.5, tf.float16),
        "i32": tf.constant(3, tf.int32),
        "flag": tf.constant(True),
        "vec64": tf.constant([1.0, 2.0], tf.float64),
    }
    with LossLogger(tmp_path) as logger:
        step = tf.function(lambda logs: logger.on_train_batch_end(0, logs))
        for _ in range(3):
            step(logs) if in_graph else logger.on_train_batch_end(0, logs)
        history = logger.on_epoch_end(0)
    assert history == {"f32": 1.5, "f64": 2.25, "f16": 0.5, "i32": 3.0, "flag": 1.0, "vec64": 1.5}


def test_first_trace_creates_components(tmp_path, read_events):
    logger = LossLogger(tmp_path)

    @tf.function
    def step(x):
        logger.on_train_batch_end(0, {"loss": x, "double": 2 * x})

    for v in (1.0, 2.0, 6.0):
        step(tf.constant(v))
    assert logger.on_epoch_end(0) == {"loss": 3.0, "double": 6.0}
    logger.close()
    assert read_events(tmp_path, "train")["epoch_double"] == {0: 6.0}


@pytest.mark.parametrize(
    "logs, sample_weight, error, words",
    [
        ({"loss": "abc"}, None, TypeError, ["'loss'", "str"]),
        ({"loss": None}, None, TypeError, ["'loss'", "None"]),
        ({"loss": []}, None, ValueError, ["'loss'", "empty"]),
        ({"loss": tf.constant([], tf.float32)}, None, ValueError, ["'loss'", "empty"]),
        ({"loss": 1 + 2j}, None, TypeError, ["'loss'", "complex"]),
        ({"loss": tf.constant([1 + 1j])}, None, TypeError, ["'loss'", "complex"]),
        ({"loss": tf.constant(["a"])}, None, TypeError, ["'loss'", "string"]),
        ({"loss": tf.ones(4)}, {"loss": tf.ones(3)}, ValueError, ["'loss'", "(3,)", "(4,)"]),
        ({"loss": np.ones(4)}, {"loss": np.ones(3)}, ValueError, ["'loss'", "(3,)", "(4,)"]),
        ({"loss": tf.ones(4)}, {"loss": "heavy"}, TypeError, ["sample_weight", "'loss'"]),
        ({"loss": tf.ones(4)}, tf.ones(2), ValueError, ["'good'", "(2,)"]),
        ({"loss": 1.0}, {"los": 2.0}, ValueError, ["sample_weight", "los"]),
        ({3: 1.0}, None, TypeError, ["names must be strings", "3"]),
        ({"val_loss": 1.0}, None, ValueError, ["'val_loss'", "on_test_batch_end"]),
        # a lone surrogate cannot be written: refused at the call, never at every epoch end
        ({"bad\ud800": 1.0}, None, ValueError, ["'bad\\ud800'", "valid Unicode"]),
    ],
)
def test_bad_input_names_the_component_and_records_nothing(
    tmp_path, read_events, logs, sample_weight, error, words
):
    with LossLogger(tmp_path) as logger:
        logger.on_train_batch_end(0, {"good": 2.0, "loss": tf.constant([1.0, 3.0])})
        bad = {"good": 100.0, **logs}
        with pytest.raises(error) as info:
            logger.on_train_batch_end(1, bad, sample_weight=sample_weight)
        for word in words:
            assert word in str(info.value)
        assert logger.on_epoch_end(0) == {"good": 2.0, "loss": 2.0}
    assert read_events(tmp_path, "train") == {"epoch_good": {0: 2.0}, "epoch_loss": {0: 2.0}}


@pytest.mark.parametrize("in_graph", [False, True])
def test_val_prefix_in_the_validation_call_says_to_drop_the_prefix(tmp_path, read_events, in_graph):
    """on_test_batch_end({"val_loss": ...}) was told to use on_test_batch_end: the call was
    right, the name was not (validation components come without val_, as evaluate's logs)."""
    with LossLogger(tmp_path, verbose=0) as logger:
        record = tf.function(logger.on_test_batch_end) if in_graph else logger.on_test_batch_end
        with pytest.raises(ValueError) as info:
            record(0, {"val_loss": tf.constant(1.0)})
        message = str(info.value)
        assert message.startswith("on_test_batch_end: component 'val_loss' starts with 'val_'")
        assert "takes validation components under their plain names" in message
        assert "log 'loss'" in message and "returned as 'val_loss'" in message
        assert "with on_test_batch_end" not in message
        record(0, {"loss": tf.constant(1.5)})  # what the message says: written as val_loss
        logger.on_train_batch_end(0, {"loss": 2.0})
        assert logger.on_epoch_end(0) == {"loss": 2.0, "val_loss": 1.5}
    assert read_events(tmp_path, "validation") == {"epoch_loss": {0: 1.5}}


@pytest.mark.parametrize(
    "logs",
    [
        (tf.constant(0.5), tf.constant(0.7)),  # (loss, acc) returned by a step
        [np.float32(0.5), np.float32(0.7)],
        (np.ones(4), np.zeros(4)),
        ([0.5, 0.6], [0.7, 0.8]),
    ],
    ids=["tuple of tensors", "list of numpy scalars", "tuple of arrays", "tuple of lists"],
)
def test_a_tuple_of_components_is_refused_with_what_to_pass(tmp_path, read_events, logs):
    with LossLogger(tmp_path) as logger:
        logger.on_train_batch_end(0, {"loss": 2.0})
        with pytest.raises(TypeError, match=r"names each component, such as \{'loss'"):
            logger.on_train_batch_end(1, logs)
        logger.on_train_batch_end(2, [1.0, 3.0])  # a list of numbers: per-example losses
        assert logger.on_epoch_end(0) == {"loss": 2.0}
    assert read_events(tmp_path, "train") == {"epoch_loss": {0: 2.0}}


def test_unwritable_log_dir_fails_at_construction(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="a_file"):
        LossLogger(blocker / "run")


def test_closed_logger_refuses_calls_and_close_twice_is_fine(tmp_path):
    logger = LossLogger(tmp_path)
    logger.close()
    logger.close()
    with pytest.raises(RuntimeError, match="closed"):
        logger.on_train_batch_end(0, 1.0)


@pytest.mark.parametrize("in_graph", [False, True])
def test_the_batch_index_is_optional(tmp_path, read_events, in_graph):
    """Loops without enumerate: logs first or by name; an index alone logs nothing; a value in
    the index's place with no logs is refused, not dropped in silence."""
    batches = [np.array([1.0, 2.0, 3.0], np.float32), np.array([5.0], np.float32)]
    with LossLogger(tmp_path) as logger:

        def log(x):
            logger.on_train_batch_end({"loss": tf.reduce_mean(x)}, batch_size=tf.shape(x)[0])
            logger.on_test_batch_end(logs={"loss": x})
            logger.on_test_batch_end(tf.constant(7))  # an index alone (inside tf.function too)

        step = tf.function(log) if in_graph else log
        for x in batches:
            step(tf.constant(x))
        with pytest.raises(TypeError, match=r"as the batch index and no logs.*logs=\{'loss'"):
            logger.on_train_batch_end(tf.constant(0.5))
        history = logger.on_epoch_end(0)
    expected = np.concatenate(batches).astype(np.float64).mean()  # 11 / 4: exact over examples
    assert history["loss"] == pytest.approx(expected) and history["val_loss"] == pytest.approx(
        expected
    )
    assert read_events(tmp_path, "train")["epoch_loss"][0] == pytest.approx(expected, rel=2e-7)
    assert read_events(tmp_path, "validation")["epoch_loss"][0] == pytest.approx(expected, rel=2e-7)


_TRACED_STEPS = """
import sys
import tensorflow as tf
import lossboard

for update_freq in ("epoch", 2):
    logger = lossboard.LossLogger(sys.argv[1] + f"/run-{update_freq}", update_freq=update_freq)

    @tf.function
    def step(x):
        logger.on_train_batch_end(0, {"loss": x, "per_example": tf.fill([3], x)}, batch_size=3)
        logger.on_test_batch_end(0, {"loss": x})
        logger.metrics["loss"].update_state(x)

    for i in range(4):
        step(tf.constant(float(i)))
    logger.on_epoch_end(0)
    logger.close()

from lossboard.accumulate.accumulator import Accumulator  # the split's own entry, unmarked

acc = Accumulator()
tf.function(lambda x: acc.add_in_graph({"a": x}))(tf.constant(1.0))
assert acc.read()["a"].mean == 1.0
print("traced")
"""


def test_a_traced_step_makes_autograph_convert_every_call_it_reaches(tmp_path):
    """AutoGraph converts what a compiled step calls; a function it cannot convert costs
    the user a 'Please report this to the TensorFlow team' warning on stderr (a null
    object's docstring-only method did, reached from ``Accumulator.add_in_graph``). A fresh
    process: AutoGraph warns once per function."""
    import subprocess
    import sys

    script = tmp_path / "steps.py"  # a file: AutoGraph converts nothing it has no source of
    script.write_text(_TRACED_STEPS)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "traced" in proc.stdout, proc.stderr[-3000:]
    assert "AutoGraph could not transform" not in proc.stderr, proc.stderr[-3000:]


def test_an_epoch_whose_every_value_the_policy_left_out_says_only_that(tmp_path):
    """nonfinite='skip' and the only component's mean beyond float32: the one warning says
    it was not written; no second, false one about weights summing to 0."""
    import warnings

    with LossLogger(tmp_path, nonfinite="skip") as logger:
        logger.on_train_batch_end(logs={"loss": 1e39})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert logger.on_epoch_end(0) == {}
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "beyond float32's range" in said[0], said


@pytest.mark.parametrize("logged", ["host", "tensor"])
def test_a_component_whose_weights_sum_to_0_is_said_not_dropped(tmp_path, logged):
    """One component's sample_weight sums to 0 this epoch, the others' do not: it gets no
    mean, and a warning names it (it vanished without a word); a later epoch without it
    says nothing."""
    value = (lambda x: tf.constant(x)) if logged == "tensor" else np.asarray
    logger = LossLogger(tmp_path)
    logs = {"loss": value([1.0, 2.0]), "zw": value([3.0, 4.0])}
    logger.on_train_batch_end(logs=logs, sample_weight={"zw": value([0.0, 0.0])})
    with pytest.warns(LossboardWarning, match=r"component\(s\) \['zw'\].*sum to 0"):
        assert logger.on_epoch_end(0) == {"loss": 1.5}
    logger.on_train_batch_end(logs={"loss": value([1.0, 2.0])})
    assert logger.on_epoch_end(1) == {"loss": 1.5}
    logger.close()
    assert read_split(tmp_path, "train") == {"epoch_loss": {0: 1.5, 1: 1.5}}


@pytest.mark.parametrize("policy", ["raise", "warn"])
def test_a_nan_given_in_on_epoch_ends_logs_is_named_as_given_not_as_batches(tmp_path, policy):
    logger = LossLogger(tmp_path, nonfinite=policy)
    logger.on_train_batch_end(logs={"loss": 1.0})
    if policy == "raise":
        with pytest.raises(
            FloatingPointError, match=r"train 'lr' \(a NaN or an infinity, nan, given in"
        ):
            logger.on_epoch_end(0, logs={"lr": float("nan")})
    else:
        with pytest.warns(LossboardWarning, match=r"'lr': the value given in on_epoch_end's"):
            logger.on_epoch_end(0, logs={"lr": float("nan")})
    logger.close()
    got = read_split(tmp_path, "train")
    assert got["epoch_loss"] == {0: 1.0}
    assert ("epoch_lr" in got) == (policy == "warn")
