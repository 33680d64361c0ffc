"""The event-file layout of a run: the one ``keras.callbacks.TensorBoard`` uses.

``<run>/train`` and ``<run>/validation`` each get their own event files,
created only when a value is first written there, with tags ``epoch_<name>``
(step = epoch) and ``batch_<name>`` (step = global batch index). Values are
written as ``tf.summary.scalar`` does (float32 tensors), so TensorBoard and
``lossboard.load`` read them back as Keras' own callback's values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from lossboard.events import files, framing
from lossboard.events.encode import Points, PointsFile
from lossboard.run_dirs import trial_id


def prepare_run_dir(log_dir: str | os.PathLike) -> str:
    """Creates ``log_dir`` (through ``tf.io.gfile``) and returns it as a string (absolute,
    for a local path).

    Raises:
        TypeError: When ``log_dir`` is not a path.
        ValueError: When it is empty or cannot be created.
    """
    if not isinstance(log_dir, str | os.PathLike):
        raise TypeError(
            f"log_dir: got {log_dir!r} ({type(log_dir).__name__}); expected a directory "
            "path (str or os.PathLike), such as 'logs/baseline'."
        )
    path = os.fspath(log_dir)
    if not path:
        raise ValueError("log_dir is empty; expected a run directory such as 'logs/baseline'.")
    if "://" not in path:  # a local path: fixed now, a later os.chdir must not move the run
        path = os.path.abspath(path)
    try:
        tf.io.gfile.makedirs(path)
    except (tf.errors.OpError, OSError) as err:
        raise ValueError(
            f"log_dir {path!r} cannot be created ({err.__class__.__name__}: "
            f"{getattr(err, 'message', err)}); pass a directory you may write to."
        ) from err
    if not tf.io.gfile.isdir(path):
        raise ValueError(f"log_dir {path!r} exists but is not a directory; pass a directory.")
    return path


def scalars_summary(values: Mapping[str, float]) -> bytes:
    """A serialized ``Summary`` of float32 scalars, as ``tf.summary.scalar`` writes each one
    (a scalar tensor with the scalar plugin's metadata), under the tags as given."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.scalar import metadata

    plugin = metadata.create_summary_metadata("", "")
    summary = summary_pb2.Summary()
    with np.errstate(over="ignore"):  # beyond float32: an infinity, as tf.summary.scalar writes
        for tag, value in values.items():
            item = summary.value.add(tag=tag)
            item.metadata.CopyFrom(plugin)
            item.tensor.dtype = 1  # DT_FLOAT
            item.tensor.tensor_shape.SetInParent()
            item.tensor.float_val.append(float(np.float32(value)))
    return summary.SerializeToString()


def write_scalar(tag: str, value: Any, step: Any) -> tf.Tensor:
    """``tf.summary.scalar`` under the tag as given, whatever the caller's name scope.

    ``tf.summary.scalar`` prefixes the tag with the enclosing name scopes (a
    user's ``tf.name_scope("train")``, or ``cond/cond/`` inside ``tf.cond``);
    this writes the same float32 scalar with the scalar plugin's metadata
    under the tag as given, as Keras' tags are. Eagerly or in a graph.
    """
    from tensorboard.plugins.scalar import metadata

    return tf.summary.write(
        tag,
        tf.cast(tf.constant(value, tf.float64) if isinstance(value, float) else value, tf.float32),
        step=step,
        metadata=metadata.create_summary_metadata("", ""),
    )


#: What an event file of a run's own folder holding only a superseded hparams set becomes:
#: a name without "tfevents", which TensorBoard and lossboard's reader skip.
SUPERSEDED_PREFIX = "hparams-superseded"


def set_aside_hparams_files(log_dir: str) -> tuple[list[str], list[str]]:
    """Renames the event files of ``log_dir`` itself that hold only hparams (and the file
    version): TensorBoard's HParams dashboard shows the first set of a run it reads, so a
    new set is shown only once the old ones are out of its sight.

    ``events.out.tfevents.<rest>`` becomes ``hparams-superseded.<rest>``: renaming it back
    restores it. Files that hold anything else are left as they are.

    Returns:
        ``(renamed files, kept files)``, each the new (or unchanged) path.
    """
    from tensorboard.compat.proto import event_pb2

    from lossboard.reader.read import records

    renamed, kept = [], []
    for path in sorted(RunWriter._event_files(log_dir)):
        only_hparams = True
        for record in records(path):
            event = event_pb2.Event.FromString(record)
            if event.HasField("file_version"):
                continue
            values = event.summary.value if event.HasField("summary") else []
            if not values or any(v.metadata.plugin_data.plugin_name != "hparams" for v in values):
                only_hparams = False
                break
        name = os.path.basename(path)
        target = os.path.join(log_dir, name.replace("events.out.tfevents", SUPERSEDED_PREFIX, 1))
        if only_hparams and target != path:
            try:
                tf.io.gfile.rename(path, target)
                renamed.append(target)
                continue
            except (tf.errors.OpError, OSError):
                pass
        kept.append(path)
    return renamed, kept


def run_writer(log_dir: str, chief: bool = True) -> RunWriter:
    """The writer of a run: a ``RunWriter`` on the chief, else a ``NoopRunWriter``."""
    return RunWriter(log_dir) if chief else NoopRunWriter(log_dir)


class RunWriter:
    """Lazily created ``tf.summary`` writers, one per split of one run.

    Args:
        log_dir: The run directory (already created).

    Examples:
        >>> w = RunWriter(prepare_run_dir("logs/doc-writer"))
        >>> w.scalars("validation", {"epoch_loss": 0.5}, step=0)
        >>> w.flush()
        >>> w.close()
    """

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self._trial = trial_id(log_dir)  # now: a later chdir must not change it
        self._writers: dict[str, tf.summary.SummaryWriter] = {}
        self._files: dict[str, str] = {}  # split -> the event file its writer created
        self._points: dict[str, PointsFile] = {}  # split -> its file of bulk-written points
        # split -> bytes at the start of its event file read back as whole records (``verify``)
        self._checked: dict[str, int] = {}
        self._written: set[str] = set()  # splits given values since their file was checked

    def _create(self, path: str) -> tf.summary.SummaryWriter:
        return tf.summary.create_file_writer(path)

    def writer(self, split: str) -> tf.summary.SummaryWriter:
        """The writer of ``split``, created on first use."""
        w = self._writers.get(split)
        if w is None:
            with tf.init_scope():
                path = os.path.join(self.log_dir, split) if split else self.log_dir
                before = set(self._event_files(path))
                w = self._create(path)
                created = sorted(set(self._event_files(path)) - before)
            if len(created) == 1:
                self._files[split] = created[0]
            self._writers[split] = w
        return w

    @staticmethod
    def _event_files(path: str) -> list[str]:
        try:
            return tf.io.gfile.glob(os.path.join(path, "events.out.tfevents.*"))
        except (tf.errors.OpError, OSError):
            return []

    def lost_files(self) -> dict[str, str]:
        """``{split: event file}`` of files this writer created that are no longer on disk.

        A writer keeps writing to a file that was unlinked (a removed run
        directory): its values reach no file anyone can read.
        """
        lost = {s: f for s, f in self._files.items() if not tf.io.gfile.exists(f)}
        for split, points in self._points.items():
            if not points.exists():
                lost[split] = f"{lost[split]}, {points.path}" if split in lost else points.path
        return lost

    def scalars(self, split: str, values: Mapping[str, float], step: int) -> None:
        """Writes ``{tag: value}`` to ``split`` at ``step`` (always recorded)."""
        if not values:
            return
        # Fast path: one Summary of every value, written by one op (one tf.summary.write per
        # value cost about 0.4 ms each: 25 ms of a 64-component on_epoch_end, benchmark table
        # "on_epoch_end" of benchmarks/overhead.py). TensorBoard reads the values as Keras'.
        summary = scalars_summary(values)
        with self.writer(split).as_default(), tf.summary.record_if(True):
            tf.summary.experimental.write_raw_pb(
                tf.constant(summary), step=tf.constant(step, tf.int64)
            )
        self._written.add(split)

    def points(self, split: str, points: Points) -> None:
        """Appends many points to ``split`` and flushes them to disk.

        Fast path: batch-curve points are encoded with NumPy and appended to an
        event file of their own with one write, with no TensorFlow op per point
        (benchmark rows "update_freq=1": an op per point cost about 0.1 ms, and
        TensorFlow kept about 1 KB per op for good).

        Raises:
            OSError: When writing fails; that file is dropped (the next call
                starts a new one, so a half-written record hides nothing).
        """
        if len(points.step) == 0:
            return
        file = self._points.get(split)
        try:
            if file is None:
                path = os.path.join(self.log_dir, split) if split else self.log_dir
                file = self._points[split] = PointsFile(path)
            file.write(points)
            file.flush()
        except (tf.errors.OpError, OSError):
            dropped = self._points.pop(split, None)
            if dropped is not None:
                dropped.abandon()
            raise

    def hparams(self, values: Mapping[str, Any]) -> None:
        """Records the run's hyperparameters for TensorBoard's HParams dashboard.

        Written in the run's own directory (not a split), as Keras users do
        with ``hp.hparams``; the dashboard then lists the run with its
        ``train``/``validation`` ``epoch_*`` tags as metrics.

        Raises:
            OSError: When writing fails (a full disk included, see ``verify``).
        """
        from tensorboard.plugins.hparams import api as hp

        if "" not in self._writers:
            self._sort_after_existing_files(self.log_dir)
        try:
            with self.writer("").as_default():
                hp.hparams(dict(values), trial_id=self._trial)
            self._written.add("")
            self.flush()
        except (tf.errors.OpError, OSError) as err:
            self.discard([""])  # a cut record is cut off; the next hparams go to a new file
            raise OSError(
                f"writing the hparams to {self.log_dir!r} failed "
                f"({getattr(err, 'message', err)}); free the space or fix the path."
            ) from err

    def _sort_after_existing_files(self, path: str) -> None:
        """Waits (under a second) until a new event file in ``path`` sorts after the others.

        TensorFlow names an event file by the second it was created, then host, pid and a
        counter; readers take a run's files in name order and its newest hparams set from the
        last one. A run resumed within the second its last file was created (a short run
        resumed at once) would otherwise get a name that may sort before the older file's.
        """
        import time

        stamps = []
        for name in self._event_files(path):
            parts = os.path.basename(name).split(".")
            if len(parts) > 3 and parts[3].isdigit():
                stamps.append(int(parts[3]))
        wait = max(stamps, default=0) + 1 - time.time()
        if 0 < wait <= 1:  # later than that: another clock, which waiting does not fix
            time.sleep(wait)

    def flush(self) -> None:
        """Pushes everything written so far to disk, and checks that it is there.

        Raises:
            OSError: When writing fails, also when TensorFlow does not say so (see
                ``verify``).
        """
        for w in self._writers.values():
            w.flush()
        for points in self._points.values():
            points.flush()
        self.verify()

    def verify(self) -> None:
        """Reads back what TensorFlow appended to each event file since the last check.

        TensorFlow's summary writer does not raise when the disk fills up during its flush
        (``ENOSPC``): the file then ends inside a record, and the next records appended after
        it cannot be read either. So after each flush the bytes appended to each local event
        file are read back (one small read per split: 15-25 us per split for an epoch's
        values) and must be whole records with valid checksums, and a split given values must
        have grown. Files of remote file systems (``gs://``) are not read back.

        Raises:
            OSError: When they are not, or cannot be read. Call ``discard`` then: the next
                write starts new files, and the cut record is cut off the old one.
        """
        for split, path in list(self._files.items()):
            if files.is_remote(path):
                continue
            start = self._checked.get(split, 0)
            try:
                data = files.read_from(path, start)
            except FileNotFoundError:
                continue  # removed while written: lost_files() reports it
            except OSError as err:
                raise OSError(
                    f"{path} cannot be read back to check what was written: {err}"
                ) from err
            good = framing.whole_prefix(data)
            if good != len(data):
                raise OSError(
                    f"{path} ends inside a record: {len(data) - good} of the {len(data)} bytes "
                    f"TensorFlow appended at byte {start} are not whole records (the disk is "
                    "full or a file size limit was reached; TensorFlow's flush did not say so)"
                )
            if not data and split in self._written:
                raise OSError(
                    f"nothing was appended to {path} although values were written to it (the "
                    "disk is full or a file size limit was reached; TensorFlow's flush did not "
                    "say so)"
                )
            self._checked[split] = start + len(data)
            self._written.discard(split)

    def discard(self, splits: list[str] | None = None) -> None:
        """Drops the writers (of ``splits``, or all) after a failed write; the next write
        opens new files."""
        chosen = [*self._writers, *self._points] if splits is None else splits
        writers: list[Any] = [self._writers.pop(s) for s in chosen if s in self._writers]
        points = [self._points.pop(s) for s in chosen if s in self._points]
        dropped = [
            (self._files.pop(s), self._checked.pop(s, 0)) for s in chosen if s in self._files
        ]
        self._written.difference_update(chosen)
        for w in writers:
            try:
                w.close()
            except (tf.errors.OpError, OSError):
                pass
        for file in points:
            file.abandon()
        for path, checked in dropped:
            files.cut_broken_tail(path, checked)

    def close(self) -> None:
        """Flushes and closes every writer, even when one fails; safe to call twice.

        Raises:
            The first error a writer raised, after every writer was closed.
        """
        writers: list[Any] = [*self._writers.values(), *self._points.values()]
        self._writers, self._points, self._files = {}, {}, {}
        self._checked, self._written = {}, set()
        _close_all(writers)


def _close_all(writers: list[Any]) -> None:
    """Closes ``writers[0]``, and the rest even if that raises (as CLU's ``AsyncWriter``)."""
    if not writers:
        return
    try:
        writers[0].close()
    finally:
        _close_all(writers[1:])


class NoopRunWriter(RunWriter):
    """The writer of a non-chief worker: the same calls, nothing written.

    As Orbit does, its split writers are ``tf.summary.create_noop_writer()``,
    so summaries written inside a ``tf.function`` need no special case.
    """

    def _create(self, path: str) -> tf.summary.SummaryWriter:
        return tf.summary.create_noop_writer()

    @staticmethod
    def _event_files(path: str) -> list[str]:
        return []

    def scalars(self, split: str, values: Mapping[str, float], step: int) -> None:
        """Writes nothing."""

    def points(self, split: str, points: Points) -> None:
        """Writes nothing."""

    def hparams(self, values: Mapping[str, Any]) -> None:
        """Writes nothing."""
