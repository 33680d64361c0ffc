"""lossboard.load / read_root: every scalar under a root, ours and Keras', read without TF."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lossboard
from lossboard import LossLogger
from lossboard.reader import read as reader
from lossboard.reader.read import COLUMNS, read_root

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _custom_run(path, losses, val_losses=None, hparams=None):
    """One run: epoch e gets the batches losses[e]; returns the NumPy epoch means."""
    with LossLogger(path, hparams=hparams) as logger:
        for epoch, batches in enumerate(losses):
            for i, b in enumerate(batches):
                logger.on_train_batch_end(i, {"loss": b, "half": b / 2})
            for i, b in enumerate((val_losses or [[]] * len(losses))[epoch]):
                logger.on_test_batch_end(i, {"loss": b})
            logger.on_epoch_end(epoch)


def test_load_reads_every_point_with_its_run_and_split(tmp_path):
    rng = np.random.default_rng(0)
    train = [[rng.normal(size=n).astype("float32") for n in (8, 8, 3)] for _ in range(3)]
    val = [[rng.normal(size=n).astype("float32") for n in (5, 2)] for _ in range(3)]
    _custom_run(tmp_path / "group" / "a", train, val, hparams={"lr": 0.1})
    _custom_run(tmp_path / "b", train[:2])
    df = lossboard.load(tmp_path)
    assert list(df.columns) == COLUMNS
    assert sorted(df.run.unique()) == ["b", "group/a"]
    a_loss = df[(df.run == "group/a") & (df.tag == "epoch_loss")]
    for epoch in range(3):
        expected = np.concatenate(train[epoch]).astype(np.float64).mean()
        got = a_loss[(a_loss.split == "train") & (a_loss.step == epoch)].value
        assert got.item() == pytest.approx(expected, rel=2e-7)
        expected_val = np.concatenate(val[epoch]).astype(np.float64).mean()
        got_val = a_loss[(a_loss.split == "validation") & (a_loss.step == epoch)].value
        assert got_val.item() == pytest.approx(expected_val, rel=2e-7)
    assert set(df[df.run == "b"].split) == {"train"}
    assert len(df[(df.run == "b") & (df.tag == "epoch_half")]) == 2
    assert df.attrs["hparams"] == {"group/a": {"lr": 0.1}}
    assert (df.wall_time > 0).all()


def test_load_reads_keras_tensorboard_runs(tmp_path):
    x = np.random.default_rng(1).normal(size=(64, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    history = model.fit(
        x,
        x[:, :1],
        epochs=2,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[keras.callbacks.TensorBoard(tmp_path / "keras_run")],
    ).history
    df = lossboard.load(tmp_path)
    loss = df[(df.tag == "epoch_loss") & (df.split == "validation")].sort_values("step")
    assert loss.value.tolist() == pytest.approx(history["val_loss"], rel=1e-6)
    assert "keras" not in set(df.tag)  # the model-config text summary is not a scalar


def test_truncated_last_record_and_stray_files_are_tolerated(tmp_path):
    _custom_run(tmp_path / "run", [[np.ones(4, "float32")], [np.zeros(4, "float32")]])
    (tmp_path / "run" / "notes.txt").write_text("not an event file")
    (tmp_path / "empty_run" / "train").mkdir(parents=True)
    (path,) = [p for p in (tmp_path / "run" / "train").iterdir()]
    complete, _ = read_root(tmp_path)
    assert {(p.tag, p.step, p.value) for p in complete} == {
        ("epoch_loss", 0, 1.0),
        ("epoch_half", 0, 0.5),
        ("epoch_loss", 1, 0.0),
        ("epoch_half", 1, 0.0),
    }
    path.write_bytes(path.read_bytes()[:-7])  # a writer killed mid-record
    cut, _ = read_root(tmp_path)
    newest = max(p.wall_time for p in complete)  # the last record: one epoch's values
    last_record = {p for p in complete if p.wall_time == newest}
    assert last_record and set(cut) == set(complete) - last_record  # only the cut record is lost


def test_relogged_epoch_keeps_the_newest_value(tmp_path):
    run = tmp_path / "run"
    _custom_run(run, [[np.ones(2, "float32")], [np.ones(2, "float32")]])
    with LossLogger(run) as logger:  # a resumed run logs epoch 1 again
        logger.on_train_batch_end(0, {"loss": 5.0})
        with pytest.warns(RuntimeWarning, match="already on disk"):
            logger.on_epoch_end(1)
    df = lossboard.load(tmp_path)
    loss = df[df.tag == "epoch_loss"].set_index("step").value
    assert loss.to_dict() == {0: 1.0, 1: 5.0}


def test_load_missing_root_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder that holds your runs"):
        lossboard.load(tmp_path / "nope")


def test_reader_does_not_import_tensorflow(tmp_path):
    _custom_run(tmp_path / "r", [[np.ones(2, "float32")]])
    code = (
        "import sys, lossboard; df = lossboard.load(sys.argv[1]); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; print(len(df))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, os.fspath(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == 2  # epoch_loss and epoch_half at step 0


def _epoch_means(batches_per_epoch) -> list[float]:
    return [np.concatenate(b).astype(np.float64).mean() for b in batches_per_epoch]


def test_runs_on_a_tensorflow_file_system_load_and_resume(tmp_path):
    rng = np.random.default_rng(2)
    train = [[rng.normal(size=n).astype("float32") for n in (4, 3)] for _ in range(3)]
    root = f"ram://{tmp_path.name}/logs"
    _custom_run(f"{root}/a", train, hparams={"lr": 0.5})
    with LossLogger(f"{root}/b", update_freq=1) as logger:  # batch curves: 5 steps
        for i in range(5):
            logger.on_train_batch_end(i, {"loss": float(i)})
        logger.on_epoch_end(0)
    df = lossboard.load(root)
    a = df[(df.run == "a") & (df.tag == "epoch_loss")].sort_values("step")
    assert a.value.tolist() == pytest.approx(_epoch_means(train), rel=2e-7)
    assert df.attrs["hparams"] == {"a": {"lr": 0.5}}
    points, hparams = read_root(root, tags="batch_*")
    assert [(p.run, p.step, p.value) for p in points] == [("b", i + 1, float(i)) for i in range(5)]
    assert reader.read_back(f"{root}/a") == ({0, 1, 2}, 0)
    assert reader.read_back(f"{root}/b") == ({0}, 5)
    for run, epochs in (("a", 3), ("b", 1)):
        with LossLogger(f"{root}/{run}") as resumed:
            assert resumed.initial_epoch == epochs


def test_tags_and_splits_select_what_is_read(tmp_path):
    rng = np.random.default_rng(3)
    train = [[rng.normal(size=4).astype("float32")] for _ in range(2)]
    val = [[rng.normal(size=3).astype("float32")] for _ in range(2)]
    _custom_run(tmp_path / "a", train, val, hparams={"units": 8})
    everything, hparams = read_root(tmp_path)

    def expect(keep):
        return [p for p in everything if keep(p)]

    cases = [
        ({"tags": "epoch_loss"}, lambda p: p.tag == "epoch_loss"),
        ({"tags": ["epoch_h*", "nothing"]}, lambda p: p.tag == "epoch_half"),
        ({"splits": "validation"}, lambda p: p.split == "validation"),
        ({"tags": "epoch_*", "splits": ["train"]}, lambda p: p.split == "train"),
        ({"tags": []}, lambda p: False),
    ]
    for selection, keep in cases:
        points, selected_hparams = read_root(tmp_path, **selection)
        assert points == expect(keep), selection
        assert selected_hparams == hparams == {"a": {"units": 8}}
    df = lossboard.load(tmp_path, tags="epoch_loss", splits="validation")
    assert df.value.tolist() == pytest.approx(_epoch_means(val), rel=2e-7)


def test_load_builds_columns_not_python_objects(tmp_path):
    _custom_run(tmp_path / "a", [[np.ones(2, "float32")]] * 3)
    _custom_run(tmp_path / "b", [[np.zeros(2, "float32")]] * 2)
    df = lossboard.load(tmp_path)
    assert {c: str(df[c].dtype) for c in COLUMNS} == {
        "run": "category",
        "split": "category",
        "tag": "category",
        "step": "int64",
        "value": "float64",
        "wall_time": "float64",
    }
    assert list(df.run.cat.categories) == ["a", "b"]
    assert {str(df[c].cat.codes.dtype) for c in ("run", "split", "tag")} == {"int8"}
    empty = lossboard.load(tmp_path, tags="no_such_tag")
    assert len(empty) == 0 and list(empty.columns) == COLUMNS


_FLOATS = st.floats(width=32, allow_nan=True, allow_infinity=True)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    points=st.lists(
        st.tuples(st.sampled_from(["a", "épsilon", "x" * 120]), st.integers(0, 2**62), _FLOATS),
        min_size=1,
        max_size=20,
    ),
    simple=st.booleans(),
)
def test_values_are_bit_identical_to_what_tensorflow_wrote(tmp_path_factory, points, simple):
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2, summary_pb2

    directory = tmp_path_factory.mktemp("bits")
    writer = tf.summary.create_file_writer(os.fspath(directory / "run" / "train"))
    with writer.as_default():
        for tag, step, value in points:
            if simple:  # a TF1-style simple_value, read by the protos rather than by layout
                raw = summary_pb2.Summary(value=[{"tag": tag, "simple_value": value}])
                tf.summary.experimental.write_raw_pb(raw.SerializeToString(), step=step)
            else:
                tf.summary.scalar(tag, value, step=step)
    writer.close()
    newest = {(tag, step): value for tag, step, value in points}  # the last write of a step wins
    df = lossboard.load(directory)
    got = {(t, s): v for t, s, v in zip(df.tag.astype(str), df.step, df.value, strict=True)}
    assert got.keys() == newest.keys()
    for key, value in newest.items():  # numerically (TF's constant cache may swap 0.0 and -0.0)
        assert got[key] == np.float32(value) or (np.isnan(got[key]) and np.isnan(value)), key
    # Bit for bit what TensorFlow's own record reader and tensor decoding give.
    (path,) = (directory / "run" / "train").iterdir()
    by_tf = {}
    for record in tf.compat.v1.io.tf_record_iterator(os.fspath(path)):
        event = event_pb2.Event.FromString(record)
        for v in event.summary.value:
            number = v.simple_value if simple else tf.make_ndarray(v.tensor)
            by_tf[(v.tag, event.step)] = np.float64(np.float32(number)).tobytes()
    assert {k: np.float64(v).tobytes() for k, v in got.items()} == by_tf


def test_only_epoch_tags_skip_a_damaged_batch_record_unread(tmp_path):
    import tensorflow as tf

    run = tmp_path / "run" / "train"
    writer = tf.summary.create_file_writer(os.fspath(run))
    with writer.as_default():
        tf.summary.scalar("batch_loss", 4.0, step=1)
        tf.summary.scalar("epoch_loss", 2.0, step=0)
    writer.close()
    (path,) = run.iterdir()
    sizes = [len(r) + 16 for r in tf.compat.v1.io.tf_record_iterator(os.fspath(path))]
    data = bytearray(path.read_bytes())
    data[sizes[0] + 49] ^= 0xFF  # batch_loss's value: its checksum no longer holds
    path.write_bytes(bytes(data))
    points, _ = read_root(tmp_path, tags="epoch_*")  # no warning: the record is never decoded
    assert [(p.tag, p.step, p.value) for p in points] == [("epoch_loss", 0, 2.0)]
    with pytest.warns(reader.EventFileWarning, match=f"at byte {sizes[0]}"):
        points, _ = read_root(tmp_path)
    assert points == []


def _table_and_warnings(root, **kwargs):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = reader.read_table(root, **kwargs)
    return table, sorted(str(w.message) for w in caught)


@pytest.mark.parametrize("tags", [None, ["epoch_*"]])
def test_small_files_read_many_at_once_equal_the_file_by_file_path(tmp_path, monkeypatch, tags):
    """The batch of small files (``_read_batch``) against the vectorized path one file at a
    time, forced by ``_SMALL = -1``: the same table, hparams and warnings, on runs of every
    kind (ours with batch curves and hparams, Keras' fit with its graph and model config,
    a resumed run, an empty file, a cut file among later files, a corrupt file)."""
    rng = np.random.default_rng(3)
    for i in range(6):
        losses = [[rng.normal(size=4).astype("float32")] for _ in range(3)]
        _custom_run(tmp_path / f"ours{i}", losses, losses, hparams={"lr": 0.1 * i, "seed": i})
    with LossLogger(tmp_path / "curves", update_freq=1) as logger:
        for step in range(5):
            logger.on_train_batch_end(step, {"loss": float(step)})
        logger.on_epoch_end(0)
    with LossLogger(tmp_path / "ours0", hparams={"lr": 9.0, "seed": 0}) as logger:  # resumed
        logger.on_train_batch_end(0, {"loss": 7.0})
        with pytest.warns(RuntimeWarning):
            logger.on_epoch_end(2)
    x = rng.normal(size=(32, 3)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, x[:, :1], epochs=2, batch_size=8, validation_split=0.25, verbose=0,
              callbacks=[keras.callbacks.TensorBoard(tmp_path / "keras_run")])  # fmt: skip
    (tmp_path / "ours1" / "train" / "events.out.tfevents.0.empty").write_bytes(b"")
    (good,) = (tmp_path / "ours2" / "train").iterdir()
    data = good.read_bytes()
    (tmp_path / "ours2" / "train" / "events.out.tfevents.0.cut").write_bytes(data[:-5])
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF
    (tmp_path / "ours3" / "train" / "events.out.tfevents.9.corrupt").write_bytes(bytes(corrupt))
    one_by_one = []
    read_points = reader._read_points

    def counted(path, *args):
        one_by_one.append(os.path.basename(path))
        return read_points(path, *args)

    monkeypatch.setattr(reader, "_read_points", counted)
    fast, fast_warnings = _table_and_warnings(tmp_path, tags=tags)
    files_read = len(list(reader.event_files(str(tmp_path))))
    assert files_read > 20 and sorted(one_by_one)[:2] == [
        "events.out.tfevents.0.cut",
        "events.out.tfevents.0.empty",
    ]
    assert "events.out.tfevents.9.corrupt" in one_by_one and len(one_by_one) <= 5, one_by_one
    monkeypatch.setattr(reader, "_SMALL", -1)
    slow, slow_warnings = _table_and_warnings(tmp_path, tags=tags)
    for column in ("run", "split", "tag", "step", "value", "wall_time"):
        assert np.array_equal(getattr(fast, column), getattr(slow, column)), column
    assert (fast.runs, fast.splits, fast.tags) == (slow.runs, slow.splits, slow.tags)
    assert fast.hparams == slow.hparams and fast.hparams["ours0"]["lr"] == 9.0
    assert fast_warnings == slow_warnings and len(fast_warnings) == 2  # the cut, the corrupt
    assert len(fast) > 50
