"""A run resumed with another hparams set: the newest set is what is read back and shown.

lossboard.load merged the old and new sets ({"lr": 0.2} after {"lr": 0.1, "dropout": 0.5} read
back {"dropout": 0.5, "lr": 0.2}), silently; TensorBoard's HParams dashboard showed the old set
(it keeps the first session_start_info of a run it reads).
"""

from __future__ import annotations

import os
import warnings

import pytest
import tensorflow as tf

import lossboard
from lossboard import LossLogger
from lossboard.reader.read import read_root


def _epoch(run, hparams, epoch, loss):
    with LossLogger(run, hparams=hparams, verbose=0) as logger:
        logger.on_train_batch_end(0, {"loss": loss})
        logger.on_epoch_end(epoch)


def _dashboard_hparams(run) -> dict:
    """The set TensorBoard's HParams dashboard shows for ``run``: the session_start_info its
    event accumulator keeps for the run's own folder (the first it reads)."""
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea
    from tensorboard.plugins.hparams import metadata

    acc = pea.EventAccumulator(str(run))
    acc.Reload()
    content = acc.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content
    info = metadata.parse_session_start_info_plugin_data(content)
    return {k: getattr(v, v.WhichOneof("kind")) for k, v in info.hparams.items()}


@pytest.mark.parametrize(
    "old, new, changes",
    [
        (
            {"lr": 0.1, "dropout": 0.5},
            {"lr": 0.2},
            "(removed dropout=0.5; changed lr: 0.1 -> 0.2)",
        ),
        ({"lr": 0.1}, {"lr": 0.1, "opt": "adam"}, "(added opt='adam')"),
        ({"opt": "sgd", "bn": True}, {"opt": "adam", "bn": True}, "(changed opt: 'sgd' -> 'adam')"),
    ],
)
def test_the_newest_set_is_read_back_and_shown_with_a_warning(tmp_path, old, new, changes):
    run = tmp_path / "run"
    _epoch(run, old, 0, 1.0)
    with pytest.warns(lossboard.LossboardWarning) as caught:
        _epoch(run, new, 1, 2.0)
    (message,) = [str(w.message) for w in caught]
    assert message.startswith(f"{str(run)!r} was written with hparams ")
    assert f"is now resumed with {new!r} {changes}" in message
    assert "renamed to hparams-superseded." in message
    assert lossboard.load(tmp_path).attrs["hparams"] == {"run": new}
    assert read_root(tmp_path)[1] == {"run": new}
    assert _dashboard_hparams(run) == pytest.approx(new)
    assert lossboard.load(run)["value"].tolist() == [1.0, 2.0]  # both epochs are kept


def test_the_same_set_again_warns_nothing_and_renames_nothing(tmp_path):
    run = tmp_path / "run"
    _epoch(run, {"lr": 0.1}, 0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _epoch(run, {"lr": 0.1}, 1, 2.0)
    assert not [n for n in os.listdir(run) if n.startswith("hparams-superseded")]
    assert lossboard.load(tmp_path).attrs["hparams"] == {"run": {"lr": 0.1}}


def test_a_root_file_with_other_summaries_is_kept_and_the_warning_says_so(tmp_path):
    """A file that holds more than hparams is never renamed: the reader still reads the new
    set (the new file sorts last, even when resumed within the same second), and the warning
    says that the dashboard keeps showing the old one."""
    run = tmp_path / "run"
    with LossLogger(run, hparams={"lr": 0.1}, verbose=0) as logger:
        with logger._run.writer.writer("").as_default():
            tf.summary.text("notes", "first try", step=0)
        logger.on_train_batch_end(0, {"loss": 1.0})
        logger.on_epoch_end(0)
    with pytest.warns(lossboard.LossboardWarning, match="still shows the first set it reads"):
        _epoch(run, {"lr": 0.2}, 1, 2.0)
    assert lossboard.load(tmp_path).attrs["hparams"] == {"run": {"lr": 0.2}}
    assert _dashboard_hparams(run) == {"lr": 0.1}
