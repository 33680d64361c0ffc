"""lossboard.load / read_root: every scalar under a root, ours and Keras', read without TF."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import lossboard
from lossboard import LossLogger
from lossboard.reader import COLUMNS, read_root

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
    last_written = max(complete, key=lambda p: p.wall_time)
    assert set(cut) == set(complete) - {last_written}  # only the cut record is lost


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
