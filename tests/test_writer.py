"""The event-file layout: lazy per-split writers, through tf.io.gfile (any TF file system)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from lossboard import LossLogger
from lossboard.logger.writer import NoopRunWriter, RunWriter, prepare_run_dir, run_writer


def _gfile_scalars(pattern: str) -> dict[tuple[str, str, int], float]:
    """Reads event files with TensorFlow's own record reader, through tf.io.gfile."""
    out = {}
    for path in tf.io.gfile.glob(pattern):
        split = path.split("/")[-2]
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                out[(split, value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    return out


def test_a_tensorflow_file_system_that_is_not_local(tmp_path):
    run = f"ram://lossboard-test/{tmp_path.name}/run"  # TensorFlow's in-memory file system
    batches = [np.array([1.0, 2.0, 3.0], "float32"), np.array([5.0], "float32")]
    with LossLogger(run) as logger:
        for step, b in enumerate(batches):
            logger.on_train_batch_end(step, {"loss": b})
        logger.on_test_batch_end(0, {"loss": 7.0})
        assert logger.on_epoch_end(0) == {"loss": 2.75, "val_loss": 7.0}
    assert _gfile_scalars(run + "/*/*") == {
        ("train", "epoch_loss", 0): 2.75,
        ("validation", "epoch_loss", 0): 7.0,
    }


def test_writers_are_created_only_when_written_to(tmp_path):
    writer = RunWriter(prepare_run_dir(tmp_path / "run"))
    writer.scalars("validation", {}, step=0)  # nothing to write: no file
    assert list((tmp_path / "run").iterdir()) == []
    writer.scalars("validation", {"epoch_loss": 0.5}, step=3)
    writer.flush()
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["validation"]
    writer.close()
    writer.close()  # twice is fine


def test_a_non_chief_writer_writes_nothing_even_inside_tf_function(tmp_path):
    writer = run_writer(prepare_run_dir(tmp_path / "run"), chief=False)
    assert isinstance(writer, NoopRunWriter)
    writer.scalars("train", {"epoch_loss": 1.0}, step=0)
    writer.hparams({"lr": 0.1})

    @tf.function
    def summary_in_graph():
        with writer.writer("train").as_default(), tf.summary.record_if(True):
            return tf.summary.scalar("batch_loss", 1.0, step=1)

    assert not bool(summary_in_graph())  # a no-op writer records nothing
    writer.flush()
    writer.close()
    assert list((tmp_path / "run").iterdir()) == []


def test_close_closes_every_writer_even_when_one_fails(tmp_path):
    writer = RunWriter(prepare_run_dir(tmp_path / "run"))
    writer.scalars("train", {"epoch_loss": 1.0}, step=0)
    writer.scalars("validation", {"epoch_loss": 2.0}, step=0)
    train, validation = writer.writer("train"), writer.writer("validation")
    original_close = train.close

    def failing_close():
        original_close()
        raise OSError("disk went away")

    train.close = failing_close
    with pytest.raises(OSError, match="disk went away"):
        writer.close()
    # validation was closed too: its value is on disk, and writing to it now fails
    assert _gfile_scalars(str(tmp_path / "run" / "validation" / "*")) == {
        ("validation", "epoch_loss", 0): 2.0
    }
    with pytest.raises(RuntimeError, match="already closed"):
        with validation.as_default():
            tf.summary.scalar("x", 1.0, step=0)


@pytest.mark.parametrize("bad", [3, None, b"logs"])
def test_prepare_run_dir_rejects_non_paths(bad):
    with pytest.raises(TypeError, match="log_dir"):
        prepare_run_dir(bad)


def test_a_relative_log_dir_stays_where_it_was_when_the_directory_changes(tmp_path, monkeypatch):
    """os.chdir after the logger was made: every epoch goes to the folder named at creation
    (it split over two folders, with a false 'files removed' warning), and close leaves
    nothing of the logger's own behind."""
    from conftest import read_split

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    logger = LossLogger("rel/run")
    for epoch, value in enumerate([1.0, 2.0, 4.0]):
        logger.on_train_batch_end(logs={"loss": value})
        logger.on_epoch_end(epoch)
        monkeypatch.chdir(tmp_path / "elsewhere")
    logger.close()
    assert logger.log_dir == str(tmp_path / "rel" / "run")
    assert read_split(tmp_path / "rel" / "run", "train") == {"epoch_loss": {0: 1.0, 1: 2.0, 2: 4.0}}
    assert not (tmp_path / "elsewhere" / "rel").exists()
    assert sorted(p.name for p in (tmp_path / "rel" / "run").iterdir()) == [
        ".lossboard-batches", "train",
    ]  # fmt: skip
