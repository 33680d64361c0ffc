"""Never lose a finished epoch: crashes, resume, NaN, bad input, resources, disk trouble."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
import tensorflow as tf

import lossboard
from conftest import read_split
from lossboard import LossLogger


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args], env=env, text=True, **kwargs
    )


# ----------------------------------------------------------------------------- crashes
def test_finished_epochs_survive_sigkill(tmp_path):
    child = _python(
        """
        import sys, time
        import numpy as np
        from lossboard import LossLogger
        logger = LossLogger(sys.argv[1])
        for epoch in range(100):
            for step in range(5):
                logger.on_train_batch_end(step, {"loss": np.full(3, epoch + step, "float32")})
            logger.on_epoch_end(epoch)
            print("finished", epoch, flush=True)
            if epoch == 1:
                time.sleep(600)  # killed here, mid-run, writers never closed
        """,
        str(tmp_path / "run"),
        stdout=subprocess.PIPE,
    )
    try:
        lines = [child.stdout.readline().split() for _ in range(2)]
        assert lines == [["finished", "0"], ["finished", "1"]]
        with pytest.warns(RuntimeWarning, match=f"being written by process {child.pid}"):
            LossLogger(tmp_path / "run").close()  # a second writer while the child lives
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LossLogger(tmp_path / "run").close()  # the writer is gone: resuming is not warned
    expected = {0: 2.0, 1: 3.0}  # mean of epoch + (0..4)
    assert read_split(tmp_path / "run", "train")["epoch_loss"] == expected
    df = lossboard.load(tmp_path)
    assert df[df.tag == "epoch_loss"].set_index("step").value.to_dict() == expected


# ----------------------------------------------------------------------------- resume
def test_resume_continues_epochs_and_batch_steps(tmp_path):
    run = tmp_path / "run"
    with LossLogger(run, update_freq=2) as first:
        assert first.initial_epoch == 0
        for epoch in range(2):
            for step in range(3):
                first.on_train_batch_end(step, {"loss": float(10 * epoch + step)})
            first.on_epoch_end(epoch)
    with LossLogger(run, update_freq=2) as second:  # e.g. after restoring a checkpoint
        assert second.initial_epoch == 2
        assert second.global_batch == 6
        for epoch in range(second.initial_epoch, 3):
            for step in range(3):
                second.on_train_batch_end(step, {"loss": float(10 * epoch + step)})
            second.on_epoch_end(epoch)
    events = read_split(run, "train")
    assert events["epoch_loss"] == {0: 1.0, 1: 11.0, 2: 21.0}
    assert sorted(events["batch_loss"]) == [2, 4, 6, 8]  # no overlapping steps
    assert events["batch_loss"][8] == 20.5  # batches 7 and 8: 20.0 and 21.0


def test_relogging_an_epoch_warns_and_load_keeps_the_newest(tmp_path):
    run = tmp_path / "run"
    with LossLogger(run) as logger:
        logger.on_train_batch_end(0, 1.0)
        logger.on_epoch_end(0)
    with LossLogger(run) as again:
        again.on_train_batch_end(0, 7.0)
        with pytest.warns(RuntimeWarning, match="epoch 0 of .* is already on disk"):
            again.on_epoch_end(0)
    df = lossboard.load(tmp_path)
    assert df[df.tag == "epoch_loss"].value.tolist() == [7.0]


# ----------------------------------------------------------------------------- NaN and Inf
def _nan_epoch(logger, in_graph=False):
    values = [1.0, float("nan"), 3.0, float("inf")]
    step = tf.function(
        lambda v: logger.on_train_batch_end(0, {"loss": v, "fine": tf.zeros_like(v) + 2.0})
    )
    for v in values:
        if in_graph:
            step(tf.constant(v))
        else:
            logger.on_train_batch_end(0, {"loss": tf.constant(v), "fine": 2.0})
    logger.on_test_batch_end(0, {"loss": 5.0})


@pytest.mark.parametrize("in_graph", [False, True])
def test_nonfinite_raise_writes_finite_components_first(tmp_path, in_graph):
    logger = LossLogger(tmp_path)
    _nan_epoch(logger, in_graph)
    with pytest.raises(FloatingPointError) as info:
        logger.on_epoch_end(3)
    message = str(info.value)
    for part in (
        "epoch 3",
        "train 'loss' (a NaN or an infinity in the values or sample_weight of 2 batch(es))",
        "nonfinite='skip'",
    ):
        assert part in message
    assert "fine" not in message
    assert read_split(tmp_path, "train") == {"epoch_fine": {3: 2.0}}
    assert read_split(tmp_path, "validation") == {"epoch_loss": {3: 5.0}}
    logger.on_train_batch_end(0, {"loss": 4.0})  # the next epoch starts clean
    assert logger.on_epoch_end(4) == {"loss": 4.0}


def test_nonfinite_skip_leaves_batches_out_and_counts_them(tmp_path):
    logger = LossLogger(tmp_path, nonfinite="skip")
    _nan_epoch(logger)
    with pytest.warns(RuntimeWarning, match=r"'loss': 2 batch\(es\) .* left out"):
        history = logger.on_epoch_end(0)
    assert history == {"loss": 2.0, "fine": 2.0, "val_loss": 5.0}
    assert read_split(tmp_path, "train")["epoch_loss"] == {0: 2.0}


def test_nonfinite_warn_writes_nan(tmp_path):
    logger = LossLogger(tmp_path, nonfinite="warn")
    _nan_epoch(logger)
    with pytest.warns(
        RuntimeWarning, match="included in the epoch mean; the epoch mean was written as nan"
    ):
        history = logger.on_epoch_end(0)
    assert np.isnan(history["loss"]) and history["fine"] == 2.0
    assert np.isnan(read_split(tmp_path, "train")["epoch_loss"][0])


def test_nonfinite_raise_per_batch_stops_at_the_batch(tmp_path):
    logger = LossLogger(tmp_path, nonfinite="raise_per_batch")
    logger.on_train_batch_end(0, {"loss": tf.constant([1.0, 3.0])})
    with pytest.raises(FloatingPointError, match="'loss': this batch holds a NaN"):
        logger.on_train_batch_end(1, {"loss": tf.constant([1.0, np.nan])})
    assert logger.on_epoch_end(0) == {"loss": 2.0}


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"log_dir": 3}, TypeError, ["log_dir", "3", "path"]),
        ({"log_dir": ""}, ValueError, ["log_dir is empty"]),
        ({"update_freq": "batches"}, ValueError, ["update_freq", "'batches'", "'epoch'"]),
        ({"update_freq": 0}, ValueError, ["update_freq", "positive int"]),
        ({"update_freq": 2.5}, ValueError, ["update_freq", "2.5"]),
        ({"components": "loss"}, TypeError, ["components", "list of non-empty names"]),
        ({"components": ["loss", 3]}, TypeError, ["components"]),
        ({"hparams": [("lr", 1)]}, TypeError, ["hparams", "mapping"]),
        ({"hparams": {"layers": [1, 2]}}, TypeError, ["'layers'", "bools, numbers and strings"]),
        ({"hparams": {1: 2}}, TypeError, ["hparams", "names"]),
        ({"nonfinite": "explode"}, ValueError, ["nonfinite", "'explode'", "'skip'"]),
        ({"fold_every": 0}, ValueError, ["fold_every", ">= 1"]),
        ({"fold_every": "many"}, ValueError, ["fold_every", "'many'"]),
    ],
)
def test_bad_constructor_arguments(tmp_path, kwargs, error, words):
    kwargs = {"log_dir": tmp_path / "run", **kwargs}
    with pytest.raises(error) as info:
        LossLogger(**kwargs)
    for word in words:
        assert word in str(info.value)
    assert not (tmp_path / "run").exists()  # a rejected call creates nothing


@pytest.mark.parametrize(
    "epoch, logs, error, words",
    [
        (1.5, None, TypeError, ["epoch must be an int", "1.5"]),
        ("1", None, TypeError, ["epoch must be an int", "'1'"]),
        (True, None, TypeError, ["epoch must be an int"]),
        (None, None, TypeError, ["epoch must be an int"]),
        (-1, None, ValueError, [">= 0", "-1"]),
        (2**63, None, ValueError, ["epoch 9223372036854775808", "2**63 - 1"]),
        (np.uint64(2**64 - 1), None, ValueError, ["epoch 18446744073709551615", "2**63 - 1"]),
        (0, [1.0], TypeError, ["logs must be a mapping"]),
        (0, {"lr": "fast"}, TypeError, ["'lr'", "one real number"]),
        (0, {"lr": np.ones(2)}, TypeError, ["'lr'", "shape (2,)"]),
    ],
)
def test_bad_epoch_end_arguments_lose_nothing(tmp_path, epoch, logs, error, words):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, {"loss": 4.0})
    with pytest.raises(error) as info:
        logger.on_epoch_end(epoch, logs)
    for word in words:
        assert word in str(info.value)
    assert logger.on_epoch_end(0) == {"loss": 4.0}  # the epoch is still there
    logger.close()
    with pytest.raises(RuntimeError, match="closed"):
        logger.on_epoch_end(1)
    with pytest.raises(RuntimeError, match="closed"):
        logger.on_test_batch_end(0, 1.0)
    logger.close()


def test_the_largest_step_is_written_and_read_back(tmp_path):
    with LossLogger(tmp_path / "run") as logger:
        logger.on_train_batch_end(0, {"loss": 4.0})
        logger.on_epoch_end(2**63 - 1)
    df = lossboard.load(tmp_path / "run")
    assert df.step.tolist() == [2**63 - 1] and df.value.tolist() == [4.0]


# ----------------------------------------------------------------------------- resources
def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_sweep_of_300_loggers_leaks_no_files_or_threads(tmp_path):
    def one(i):
        with LossLogger(tmp_path / f"run{i}", hparams={"i": i}) as logger:
            logger.on_train_batch_end(0, {"loss": float(i)})
            logger.on_test_batch_end(0, {"loss": float(i)})
            logger.on_epoch_end(0)

    one(-1)  # warm up TensorFlow's own lazily created state
    fds, threads = _open_fds(), threading.active_count()
    for i in range(300):
        one(i)
    assert _open_fds() <= fds + 2
    assert threading.active_count() <= threads
    df = lossboard.load(tmp_path)
    assert len(df[(df.tag == "epoch_loss") & (df.split == "validation")]) == 301


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_memory_stays_flat_over_100_epochs(tmp_path):
    values = tf.constant(np.ones(64, "float32"))
    logger = LossLogger(tmp_path, update_freq=10)

    def epochs(n, start):
        for epoch in range(start, start + n):
            for step in range(50):
                logger.on_train_batch_end(step, {"loss": values, "kl": values[0]})
            logger.on_test_batch_end(0, {"loss": values})
            logger.on_epoch_end(epoch)

    epochs(20, 0)  # warm up
    before = _rss_mb()
    epochs(100, 20)
    assert _rss_mb() - before < 25  # MiB, generous: no per-epoch growth
    logger.close()


def test_two_processes_writing_one_run_get_separate_files(tmp_path):
    code = """
        import sys
        from lossboard import LossLogger
        with LossLogger(sys.argv[1]) as logger:
            for epoch in range(20):
                logger.on_train_batch_end(0, {sys.argv[2]: float(epoch)})
                logger.on_epoch_end(epoch)
        """
    children = [_python(code, str(tmp_path / "run"), name) for name in ("a", "b")]
    assert [c.wait(timeout=300) for c in children] == [0, 0]
    files = os.listdir(tmp_path / "run" / "train")
    assert len(files) == 2
    events = read_split(tmp_path / "run", "train")
    assert events["epoch_a"] == events["epoch_b"] == {e: float(e) for e in range(20)}


# ----------------------------------------------------------------------------- disk trouble
def test_write_failure_raises_and_a_retry_writes_the_epoch(tmp_path):
    child = _python(
        """
        import json, os, resource, signal, sys
        from lossboard import LossLogger
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full disk: writes fail with EFBIG
        run = sys.argv[1]
        logger = LossLogger(run)
        logger.on_train_batch_end(0, {"loss": 1.0})
        logger.on_epoch_end(0)
        size = max(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(run) for f in fs)
        logger.on_train_batch_end(0, {"loss": 2.0})
        logger.on_train_batch_end(1, {"loss": 4.0})
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 8, resource.RLIM_INFINITY))
        try:
            logger.on_epoch_end(1)
            failed = None
        except OSError as err:
            failed = str(err)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        retried = logger.on_epoch_end(1)
        logger.close()
        print(json.dumps({"failed": failed, "retried": retried}))
        """,
        str(tmp_path / "run"),
        stdout=subprocess.PIPE,
    )
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0
    result = json.loads(out)
    assert "writing epoch 1" in result["failed"] and "on_epoch_end(1) again" in result["failed"]
    assert result["retried"] == {"loss": 3.0}
    assert read_split(tmp_path / "run", "train")["epoch_loss"] == {0: 1.0, 1: 3.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = lossboard.load(tmp_path)
    assert sorted(df[df.tag == "epoch_loss"].step) == [0, 1]


def _event_accumulator_epochs(split_dir) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` of the ``epoch_*`` scalars TensorBoard's own loader reads."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(os.fspath(split_dir), size_guidance={"tensors": 0})
    acc.Reload()
    return {
        tag: {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)}
        for tag in acc.Tags()["tensors"]
        if tag.startswith("epoch_")
    }


@pytest.mark.parametrize("room", [8, 3000])  # bytes left: the record's header cut, or its data
def test_a_write_the_disk_cuts_short_raises_and_every_epoch_is_read_back(tmp_path, room):
    # TensorFlow's summary writer does not raise when its flush hits a full disk: the record
    # was cut short, and records appended after it could not be read either (two epochs lost).
    child = _python(
        """
        import json, os, resource, signal, sys
        from lossboard import LossLogger
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail: EFBIG
        run, room = sys.argv[1], int(sys.argv[2])
        logger = LossLogger(run, verbose=0, hparams={"lr": 0.5})
        logger.on_train_batch_end(0, {"loss": 1.0})
        logger.on_epoch_end(0)
        size = max(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(run) for f in fs)
        logger.on_train_batch_end(0, {f"c{i:03}": float(i) for i in range(200)})
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + room, resource.RLIM_INFINITY))
        failures = []
        try:
            logger.on_epoch_end(1)
        except OSError as err:
            failures.append(str(err))
        try:
            logger.on_epoch_end(1)  # still full: raises again, the values stay owed
        except OSError as err:
            failures.append(str(err))
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        retried = logger.on_epoch_end(1)
        logger.on_train_batch_end(0, {"c000": 3.0})
        logger.on_epoch_end(2)
        logger.close()
        print(json.dumps({"failures": failures, "retried": len(retried)}))
        """,
        str(tmp_path / "run"),
        str(room),
        stdout=subprocess.PIPE,
    )
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0
    result = json.loads(out)
    assert len(result["failures"]) == 2, result
    for failure in result["failures"]:
        assert "on_epoch_end: writing epoch 1" in failure and "on_epoch_end(1) again" in failure
    assert result["retried"] == 200
    expected = {f"epoch_c{i:03}": {1: float(i)} for i in range(200)}
    expected["epoch_c000"] = {1: 0.0, 2: 3.0}
    expected["epoch_loss"] = {0: 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the cut record was cut off the dropped file
        df = lossboard.load(tmp_path)
    got: dict[str, dict[int, float]] = {}
    for tag, step, value in zip(df.tag.astype(str), df.step, df.value, strict=True):
        got.setdefault(tag, {})[int(step)] = value
    assert got == expected
    assert df.attrs["hparams"] == {"run": {"lr": 0.5}}
    assert _event_accumulator_epochs(tmp_path / "run" / "train") == expected


def test_hparams_the_disk_cuts_short_raise_and_leave_no_broken_record(tmp_path):
    child = _python(
        """
        import resource, signal, sys
        from lossboard import LossLogger
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, resource.RLIM_INFINITY))
        try:
            LossLogger(sys.argv[1], verbose=0, hparams={"lr": 0.5, "name": "x" * 200})
            print("no error")
        except OSError as err:
            print(err)
        """,
        str(tmp_path / "run"),
        stdout=subprocess.PIPE,
    )
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0
    assert "writing the hparams to" in out and "failed" in out, out
    with LossLogger(tmp_path / "run", verbose=0, hparams={"lr": 0.5}) as logger:
        logger.on_train_batch_end(0, {"loss": 1.0})
        logger.on_epoch_end(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = lossboard.load(tmp_path)
    assert df.attrs["hparams"] == {"run": {"lr": 0.5}}
    assert df.value.tolist() == [1.0]


def test_batch_curve_points_the_disk_cuts_short_raise_and_are_written_again(tmp_path):
    child = _python(
        """
        import json, os, resource, signal, sys
        from lossboard import LossLogger
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        run = sys.argv[1]
        logger = LossLogger(run, verbose=0, update_freq=1)
        logger.on_train_batch_end(0, {"loss": 1.0})
        logger.on_epoch_end(0)
        size = max(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(run) for f in fs)
        for step in range(300):
            logger.on_train_batch_end(step, {"loss": float(step)})
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 500, resource.RLIM_INFINITY))
        try:
            logger.on_epoch_end(1)
            failed = None
        except OSError as err:
            failed = str(err)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        logger.on_epoch_end(1)
        logger.close()
        print(json.dumps(failed))
        """,
        str(tmp_path / "run"),
        stdout=subprocess.PIPE,
    )
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0
    failed = json.loads(out)
    assert failed is not None and "writing epoch 1" in failed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = lossboard.load(tmp_path)
    batch = df[df.tag == "batch_loss"]
    assert batch.step.tolist() == list(range(1, 302))
    assert batch.value.tolist() == [1.0] + [float(s) for s in range(300)]
    epoch = df[df.tag == "epoch_loss"].set_index("step").value.to_dict()
    assert epoch == {0: 1.0, 1: 149.5}
    for path in (tmp_path / "run" / "train").iterdir():  # the dropped file's cut record is cut off
        whole = sum(len(r) + 16 for r in tf.compat.v1.io.tf_record_iterator(os.fspath(path)))
        assert whole == path.stat().st_size, path.name


def test_a_removed_run_directory_is_recreated_and_the_epoch_is_on_disk(tmp_path):
    import shutil

    run = tmp_path / "run"
    logger = LossLogger(run, hparams={"lr": 0.1})
    logger.on_train_batch_end(0, {"loss": 1.0})
    logger.on_epoch_end(0)
    shutil.rmtree(run)  # a cleanup job, a moved folder
    logger.on_train_batch_end(0, {"loss": 2.0})
    with pytest.warns(
        RuntimeWarning, match=r"removed while the run was being written.*epoch 1 there"
    ):
        assert logger.on_epoch_end(1) == {"loss": 2.0}
    assert read_split(run, "train") == {"epoch_loss": {1: 2.0}}  # on disk before it returned
    logger.on_train_batch_end(0, {"loss": 3.0})
    logger.on_epoch_end(2)
    logger.close()
    assert read_split(run, "train") == {"epoch_loss": {1: 2.0, 2: 3.0}}
    assert lossboard.load(tmp_path).attrs["hparams"] == {"run": {"lr": 0.1}}


@pytest.mark.parametrize(
    "nonfinite, written, words",
    [
        ("raise", None, "beyond float32's range"),
        ("warn", np.inf, "written as inf"),
        ("skip", None, "not written"),
    ],
)
def test_a_mean_beyond_float32_follows_the_policy_and_never_wedges(
    tmp_path, nonfinite, written, words
):
    logger = LossLogger(tmp_path, nonfinite=nonfinite)
    logger.on_train_batch_end(0, {"loss": 1e300, "fine": 1.0})  # finite in float64
    if nonfinite == "raise":
        with pytest.raises(FloatingPointError, match=words):
            logger.on_epoch_end(0)
    else:
        with pytest.warns(RuntimeWarning, match=words):
            logger.on_epoch_end(0)
    epoch0 = read_split(tmp_path, "train")
    assert epoch0["epoch_fine"] == {0: 1.0}
    assert ("epoch_loss" in epoch0) == (written is not None)
    if written is not None:
        assert epoch0["epoch_loss"][0] == written
    logger.on_train_batch_end(0, {"loss": 2.0})
    assert logger.on_epoch_end(1) == {"loss": 2.0}  # the next epoch is fine


@pytest.mark.parametrize("weight", [np.nan, np.inf])
def test_a_nonfinite_weight_is_a_nonfinite_batch(tmp_path, weight):
    logger = LossLogger(tmp_path, nonfinite="skip")
    logger.on_train_batch_end(0, {"loss": 1.0}, sample_weight=weight)
    logger.on_train_batch_end(
        1, {"loss": tf.constant([3.0, 5.0])}, sample_weight=tf.constant([weight, 1.0])
    )
    logger.on_train_batch_end(2, {"loss": 7.0})
    with pytest.warns(RuntimeWarning, match=r"'loss': 2 batch\(es\)"):
        assert logger.on_epoch_end(0) == {"loss": 7.0}


def test_a_float64_sum_that_overflows_is_nonfinite(tmp_path):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, {"loss": 1.5e308, "fine": 1.0})
    logger.on_train_batch_end(1, {"loss": 1.5e308})
    with pytest.raises(FloatingPointError, match="'loss'"):
        logger.on_epoch_end(0)
    assert read_split(tmp_path, "train") == {"epoch_fine": {0: 1.0}}


def test_two_loggers_on_one_run_directory_warn(tmp_path):
    first = LossLogger(tmp_path / "run")
    first.on_train_batch_end(0, 1.0)
    first.on_epoch_end(0)
    with pytest.warns(RuntimeWarning, match="another LossLogger of this process"):
        second = LossLogger(tmp_path / "run")
    second.close()
    first.close()
    LossLogger(tmp_path / "run").close()  # after close, the directory is free: no warning


@pytest.mark.parametrize("weight", [np.nan, np.inf])
def test_raise_per_batch_refuses_a_nonfinite_weight_at_the_call(tmp_path, weight):
    logger = LossLogger(tmp_path, nonfinite="raise_per_batch")
    with pytest.raises(FloatingPointError, match="'s'.*values or weights"):
        logger.on_train_batch_end(0, {"s": tf.constant([1.0, 2.0])}, sample_weight=weight)
    logger.on_train_batch_end(1, {"s": tf.constant([1.0, 2.0])})
    assert logger.on_epoch_end(0) == {"s": 1.5}


@pytest.mark.parametrize("value, words", [(np.nan, "NaN or an infinity"), (1e39, "float32")])
def test_values_given_to_on_epoch_end_follow_the_policy(tmp_path, value, words):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, {"ok": 1.0})
    with pytest.raises(FloatingPointError, match=f"'lr'.*{words}"):
        logger.on_epoch_end(0, logs={"lr": value})
    assert read_split(tmp_path, "train") == {"epoch_ok": {0: 1.0}}
    warned = LossLogger(tmp_path / "warn", nonfinite="warn")
    warned.on_train_batch_end(0, {"ok": 1.0})
    with pytest.warns(RuntimeWarning, match="'lr'"):
        warned.on_epoch_end(0, logs={"lr": value})


def test_fit_follows_the_nonfinite_policy(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    x = np.ones((8, 2), "float32") * 1e20
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1e30), "mse")
    with pytest.raises(FloatingPointError, match="'loss'"):
        model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[LossLogger(tmp_path)])
    assert "epoch_loss" not in read_split(tmp_path, "train")


def test_a_removed_validation_folder_is_recreated_alone(tmp_path):
    import shutil

    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, {"loss": 1.0})
    logger.on_test_batch_end(0, {"loss": 1.0})
    logger.on_epoch_end(0)
    shutil.rmtree(tmp_path / "validation")
    logger.on_train_batch_end(0, {"loss": 2.0})
    logger.on_test_batch_end(0, {"loss": 5.0})
    with pytest.warns(RuntimeWarning, match="1 event file"):
        logger.on_epoch_end(1)
    assert read_split(tmp_path, "train") == {"epoch_loss": {0: 1.0, 1: 2.0}}  # no duplicate
    assert read_split(tmp_path, "validation") == {"epoch_loss": {1: 5.0}}


def test_a_run_directory_replaced_by_a_file_raises_oserror_and_a_retry_works(tmp_path):
    import shutil

    run = tmp_path / "run"
    logger = LossLogger(run)
    logger.on_train_batch_end(0, {"s": 1.0})
    logger.on_epoch_end(0)
    shutil.rmtree(run)
    run.write_text("x")
    logger.on_train_batch_end(0, {"s": 2.0})
    with pytest.raises(OSError, match=r"on_epoch_end\(1\) again"):
        logger.on_epoch_end(1)
    run.unlink()
    assert logger.on_epoch_end(1) == {"s": 2.0}  # the retry writes into new files
    assert read_split(run, "train") == {"epoch_s": {1: 2.0}}


def test_batches_whose_weights_sum_to_zero_are_told_apart_from_no_batch(tmp_path):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, {"s": 1.0}, sample_weight=0.0)
    with pytest.warns(RuntimeWarning, match="weights that sum to 0"):
        assert logger.on_epoch_end(0) == {}


def test_a_logger_dropped_without_close_frees_its_directory(tmp_path):
    import gc

    first = LossLogger(tmp_path / "run")
    del first
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LossLogger(tmp_path / "run").close()  # no 'another LossLogger of this process'


def test_warnings_made_errors_never_leave_the_logger_stuck(tmp_path):
    """With lossboard's warnings turned into errors, an epoch that warns raises once its values
    are on disk and its state is reset: later epochs are written, nothing is lost."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", lossboard.LossboardWarning)
        logger = LossLogger(tmp_path / "run", nonfinite="warn", verbose=0)
        logger.on_train_batch_end(0, {"loss": 1.0, "a": float("nan"), "z": 2.0})
        with pytest.raises(lossboard.LossboardWarning, match="epoch 0, train component 'a'"):
            logger.on_epoch_end(0)
        for epoch in (1, 2):
            logger.on_train_batch_end(0, {"loss": 3.0 + epoch, "a": 0.5, "z": 2.0})
            assert logger.on_epoch_end(epoch) == {"loss": 3.0 + epoch, "a": 0.5, "z": 2.0}
        logger.close()
        # a second logger on the same folder is refused by the filter and leaves no trace
        first = LossLogger(tmp_path / "shared")
        with pytest.raises(lossboard.LossboardWarning, match="is being written by"):
            LossLogger(tmp_path / "shared")
        first.close()
        LossLogger(tmp_path / "shared").close()  # nothing left registered: no warning
    train = read_split(tmp_path / "run", "train")
    assert train["epoch_loss"] == {0: 1.0, 1: 4.0, 2: 5.0}
    assert train["epoch_z"] == {0: 2.0, 1: 2.0, 2: 2.0}
    assert np.isnan(train["epoch_a"][0])  # written as NaN, as nonfinite="warn" says
    assert train["epoch_a"][1] == 0.5 and train["epoch_a"][2] == 0.5


def test_an_epoch_error_is_not_replaced_by_a_warning_made_an_error(tmp_path):
    """nonfinite="raise" and a warning in one epoch end, warnings as errors: the
    FloatingPointError is what the caller gets, with every finite value written."""
    with LossLogger(tmp_path / "run") as first:
        first.on_train_batch_end(0, {"loss": 1.0})
        first.on_epoch_end(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", lossboard.LossboardWarning)
        logger = LossLogger(tmp_path / "run", verbose=0)
        logger.on_train_batch_end(0, {"loss": 2.0, "a": float("nan")})
        with pytest.raises(FloatingPointError, match="'a'"):
            logger.on_epoch_end(0)  # epoch 0 again: warned about, after the error
        logger.close()
    assert read_split(tmp_path / "run", "train")["epoch_loss"] == {0: 2.0}


def _epoch_of_batches(logger, step_in_graph, epoch: int) -> None:
    """Six eager train batches (rows and host values) and four validation batches (three
    inside a tf.function): values are quarters, so every mean is exact."""
    for i in range(6):
        v = (epoch * 10 + i) / 4
        logger.on_train_batch_end(i, {"loss": tf.constant(v), "aux": [v, v + 1.0]})
    for i in range(3):
        step_in_graph(tf.constant((epoch * 10 + i) / 4))
    logger.on_test_batch_end(3, {"loss": (epoch * 10 + 3) / 4})


def _expected_epoch(*epochs: int) -> dict[tuple[str, str], float]:
    """The means of the batches of ``epochs`` (several: epoch ends that never committed)."""
    train = np.array([(e * 10 + i) / 4 for e in epochs for i in range(6)])
    validation = np.array([(e * 10 + i) / 4 for e in epochs for i in range(4)])
    return {
        ("train", "epoch_loss"): train.mean(),
        ("train", "epoch_aux"): np.concatenate([train, train + 1.0]).mean(),
        ("validation", "epoch_loss"): validation.mean(),
    }


@pytest.mark.parametrize("then", ["retry", "go on"])
def test_ctrl_c_at_any_line_of_an_epoch_end_loses_nothing_and_counts_nothing_twice(tmp_path, then):
    """Ctrl-C at every line of lossboard's state code (accumulate/, logger/) that an epoch
    end runs: the user then calls on_epoch_end again ("retry"), or goes on to the next
    epoch. Every epoch's values on disk equal NumPy's means of its own batches (going on
    after a Ctrl-C before the epoch end's commit, that epoch is not written and its
    batches count in the next one: once), and the batch curve has each step once with
    the mean of its two batches."""
    import warnings

    from conftest import Interrupter

    logger = LossLogger(tmp_path / "run", update_freq=2)

    @tf.function
    def step_in_graph(x):
        logger.on_test_batch_end(0, {"loss": x})

    _epoch_of_batches(logger, step_in_graph, 0)
    logger.on_epoch_end(0)
    _epoch_of_batches(logger, step_in_graph, 1)
    dry = Interrupter()  # a steady epoch end: the lines any epoch end runs
    dry.run(logger.on_epoch_end, 1)
    # Each line at each of its first three runs: a statement is entered again after a call
    # returns into it (the stores of a multi-line assignment run after its calls).
    seen: dict[str, int] = {}
    lines = []
    for _, where in dry.lines:
        seen[where] = seen.get(where, 0) + 1
        if where.startswith(("accumulate/", "logger/")) and seen[where] <= 3:
            lines.append((where, seen[where]))
    assert len(lines) > 300
    epoch, missing = 2, []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for line in lines:
            _epoch_of_batches(logger, step_in_graph, epoch)
            interrupter = Interrupter(at=line)
            interrupter.run(logger.on_epoch_end, epoch)
            if not interrupter.fired:
                missing.append(line)  # not run by this epoch end (a first-time branch)
            if then == "retry":
                logger.on_epoch_end(epoch)
            epoch += 1
        if then == "go on":  # one epoch end at last that nothing interrupts (maybe no batch)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "on_epoch_end.*no batch was logged")
                logger.on_epoch_end(epoch)
        logger.close()
    assert len(missing) < len(lines) // 3, missing
    # Only the honest note that an epoch was written twice (a write interrupted after it
    # ended): same values, one point per step for lossboard.load.
    unexpected = [str(w.message) for w in caught if "already on disk" not in str(w.message)]
    assert not unexpected, unexpected[:3]
    df = lossboard.load(tmp_path / "run")
    got = df.groupby(["split", "tag", "step"], observed=True)["value"].last()
    last, carried = epoch - 1, []
    for e in range(last + 2 if then == "go on" else last + 1):
        if e <= last:
            carried.append(e)
        if then == "go on" and (("train", "epoch_loss", e) not in got.index):
            continue  # Ctrl-C before its commit: its batches count in a later epoch, once
        for (split, tag), value in _expected_epoch(*carried).items():
            assert got[(split, tag, e)] == value, (e, split, tag, carried)
        carried = []
    assert carried == []
    batch = got.loc["train", "batch_loss"]
    values = [(e * 10 + i) / 4 for e in range(last + 1) for i in range(6)]
    assert list(batch.index) == list(range(2, 6 * (last + 1) + 1, 2))
    np.testing.assert_array_equal(batch.to_numpy(), np.reshape(values, (-1, 2)).mean(axis=1))
    from tensorboard.backend.event_processing import event_accumulator as ea

    reader = ea.EventAccumulator(str(tmp_path / "run" / "train"), size_guidance={ea.TENSORS: 0})
    reader.Reload()
    written: dict[int, set] = {}  # every point, as TensorBoard reads them
    for event in reader.Tensors("batch_loss"):
        written.setdefault(event.step, set()).add(tf.make_ndarray(event.tensor_proto).item())
    assert sorted(written) == list(batch.index)
    # A point written twice (Ctrl-C after its write, before it was marked written) has the
    # same value both times: never a second, different value at a step.
    assert all(len(values) == 1 for values in written.values())
