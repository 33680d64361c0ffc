"""verbose=: an epoch line like Keras' fit, and a live line that never reads per batch."""

from __future__ import annotations

import io
import time

import pytest
import tensorflow as tf

from lossboard import LossLogger
from lossboard.logger.progress import Progress, resolve_verbose


def test_verbose_1_prints_one_line_per_epoch(tmp_path, capsys):
    with LossLogger(tmp_path, verbose=1) as logger:
        for epoch in range(2):
            for step in range(3):
                logger.on_train_batch_end(step, {"loss": float(step + epoch), "kl": 0.5})
            logger.on_test_batch_end(0, {"loss": 9.0})
            logger.on_epoch_end(epoch)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Epoch 0: 3 batches - ")
    assert lines[0].endswith("loss: 1.0000 - kl: 0.5000 - val_loss: 9.0000")
    assert lines[1].endswith("loss: 2.0000 - kl: 0.5000 - val_loss: 9.0000")


def test_auto_is_silent_when_not_interactive(tmp_path, capsys):
    with LossLogger(tmp_path) as logger:  # pytest's captured stdout is not a terminal
        logger.on_train_batch_end(0, 1.0)
        logger.on_epoch_end(0)
    assert capsys.readouterr().out == ""
    assert resolve_verbose("auto", io.StringIO()) == 0


def test_live_line_refreshes_by_time_not_by_batch():
    reads = []
    now = [100.0]

    def running_means():
        reads.append(now[0])
        return {"loss": 0.25}

    out = io.StringIO()
    progress = Progress(2, running_means, out, interval=1.0, clock=lambda: now[0])
    for _ in range(1000):
        now[0] += 0.0005  # 1000 batches of 0.5 ms: half the interval, no read yet
        progress.batch()
    assert reads == [] and out.getvalue() == ""
    now[0] += 0.6  # the interval has passed: the next batch reads once
    progress.batch()
    progress.batch()
    assert reads == [now[0]]
    assert "\r1001 batches - 1.1s - loss: 0.2500" in out.getvalue()
    now[0] += 1.0
    progress.batch()
    assert len(reads) == 2 and "\r1003 batches - 2.1s" in out.getvalue()
    progress.epoch(0, {"loss": 0.25})
    assert out.getvalue().endswith("Epoch 0: 1003 batches - 2.1s - loss: 0.2500\x1b[K\n")


def test_verbose_2_live_line_shows_exact_running_means(tmp_path, capsys):
    logger = LossLogger(tmp_path, verbose=2)
    logger.on_train_batch_end(0, {"loss": tf.constant([1.0, 2.0])})
    time.sleep(0.3)  # more than the 0.25 s between refreshes: the next batch refreshes
    logger.on_train_batch_end(1, {"loss": tf.constant(6.0)})
    live = capsys.readouterr().out
    assert "\r2 batches" in live and "loss: 3.0000" in live
    logger.on_epoch_end(0)
    out = capsys.readouterr().out
    assert "Epoch 0: 2 batches" in out and "loss: 3.0000" in out
    logger.close()


@pytest.mark.parametrize("verbose", [3, -1, True, "loud"])
def test_bad_verbose(tmp_path, verbose):
    with pytest.raises(ValueError, match="verbose"):
        LossLogger(tmp_path / "run", verbose=verbose)
    assert not (tmp_path / "run").exists()  # rejected before anything was created
