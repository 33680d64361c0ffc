"""``Run``: the state one ``LossLogger`` keeps: directory, accumulators, writer, epochs on disk."""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import tensorflow as tf

from lossboard.accumulate.accumulator import Accumulator
from lossboard.accumulate.nonfinite import Nonfinite
from lossboard.accumulate.windows import NO_WINDOWS, BatchWindows
from lossboard.layout import TRAIN, VALIDATION, epoch_tags_by_split
from lossboard.logger import sharing
from lossboard.logger.batch_curves import (
    BatchCount,
    BatchCurves,
    Unwritten,
    read_count,
    save_count,
)
from lossboard.logger.writer import prepare_run_dir, run_writer, set_aside_hparams_files
from lossboard.reader.read import read_back, read_table
from lossboard.warn import LossboardRuntimeWarning, warn


class EpochValues(NamedTuple):
    """An epoch's History values, committed at its end and written to disk after."""

    step: int
    history: dict[str, float]


def _nothing() -> None:
    """What closing a non-chief worker's run releases: nothing."""


def _warn_if_named_like_a_split(log_dir: str) -> None:
    """Warns when the run's own folder is named ``train`` or ``validation``, a split's name.

    TensorBoard then lists its splits as ``train/train``, ``train/validation`` beside the
    other runs' ``train`` splits, and until the run holds a split folder of its own, a
    reader takes its folder for the ``train`` split of the folder above it.
    """
    parts = log_dir.replace(os.sep, "/").rstrip("/").rsplit("/", 1)
    name = parts[-1]
    if name not in (TRAIN, VALIDATION):
        return
    above = parts[0] + "/" if len(parts) > 1 else ""
    warn(
        f"log_dir {log_dir!r} ends in {name!r}, the name of a split folder the logger writes "
        f"inside a run: TensorBoard shows this run's splits as '{name}/{TRAIN}' and "
        f"'{name}/{VALIDATION}' next to the '{TRAIN}' splits of other runs, and the folder "
        "reads as a split of its parent until it holds a split of its own. Name the run's "
        f"folder otherwise, such as {above + name + '-run'!r}."
    )


def _hparams_changed(log_dir: str, hparams: Mapping[str, Any], shared: bool) -> None:
    """Warns when a resumed run is given another hparams set than the newest on disk, and
    sets the old set's files aside so that TensorBoard shows the new one.

    The new set is written and read back (``lossboard.load``, ``lossboard compare``) whole.
    TensorBoard's HParams dashboard shows the first set of a run it reads: files that hold
    only old sets are renamed out of its sight (not while another writer has the run open).
    """
    if not tf.io.gfile.isdir(log_dir):
        return
    old = read_table(log_dir, tags=(), splits=()).hparams.get(".")  # the run's own folder
    if not old or old == dict(hparams):
        return
    changes = [f"added {k}={hparams[k]!r}" for k in hparams if k not in old]
    changes += [f"removed {k}={old[k]!r}" for k in old if k not in hparams]
    changes += [
        f"changed {k}: {old[k]!r} -> {hparams[k]!r}"
        for k in hparams
        if k in old and old[k] != hparams[k]
    ]
    renamed, kept = ([], []) if shared else set_aside_hparams_files(log_dir)
    if kept or shared:
        board = (
            "TensorBoard's HParams dashboard still shows the first set it reads (the old one): "
            + (
                "another writer has the run open"
                if shared
                else f"{', '.join(map(os.path.basename, kept))} also hold(s) other summaries"
            )
            + "."
        )
    else:
        board = (
            f"So that TensorBoard's HParams dashboard (which shows the first set of a run it "
            f"reads) shows the new set, the old set's file(s) were renamed to "
            f"{', '.join(map(os.path.basename, renamed))}; rename back to restore them."
        )
    warn(
        f"{log_dir!r} was written with hparams {old!r} and is now resumed with "
        f"{dict(hparams)!r} ({'; '.join(changes)}). The new set is written and is what "
        "lossboard.load (attrs['hparams']) and lossboard compare read back for the whole "
        f"run, although its earlier epochs were trained with the old one. {board} To keep "
        "both, write the new configuration to its own run directory (lossboard.new_run_dir).",
        LossboardRuntimeWarning,
    )


class Run:
    """The state of one run, shared by the ways a ``LossLogger`` is driven.

    Args:
        log_dir: The run directory; created on the chief.
        chief: False on a multi-worker job's other workers: nothing is written.
        policy: The non-finite policy.
        fold_every: Pending entries folded at once.
        capacity: Components the in-graph sums hold.
        strategy: The ``tf.distribute`` strategy.
        update_every: N of ``update_freq=N``, or None for epoch values only.
        hparams: The run's hyperparameters, written now (and again if the run
            directory has to be re-created).
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        *,
        chief: bool,
        policy: Nonfinite,
        fold_every: int,
        capacity: int,
        strategy: tf.distribute.Strategy,
        update_every: int | None,
        hparams: Mapping[str, Any] | None = None,
    ):
        self.log_dir = prepare_run_dir(log_dir) if chief else os.fspath(log_dir)
        self.policy = policy
        #: The ``tf.distribute`` strategy in scope when the logger was created.
        self.strategy = strategy
        self.hparams = dict(hparams or {})
        self.writer = run_writer(self.log_dir, chief)
        release: Callable[[], None] = _nothing
        shared = False
        if chief:
            _warn_if_named_like_a_split(self.log_dir)
            shared = sharing.warn_if_shared(self.log_dir)
            release = functools.partial(sharing.release, self.log_dir)
        # Unregistered at close, or when the logger is garbage collected without close.
        self._release = weakref.finalize(self, release)
        if self.hparams:
            if chief:
                _hparams_changed(self.log_dir, self.hparams, shared)
            self.writer.hparams(self.hparams)
        #: The one lock of the run: its splits' state and the logger's calls.
        self.lock = threading.RLock()
        self.chief = chief
        self.epochs_on_disk, last_batch = read_back(self.log_dir) if chief else (set(), 0)
        if chief:  # an epoch-only run writes no batch step: its count is saved beside it
            last_batch = max(last_batch, read_count(self.log_dir))
        #: The epoch to continue from: one past the last epoch already on disk.
        self.initial_epoch = max(self.epochs_on_disk, default=-1) + 1
        # Batch curves: the train split's windows go to points the run writes.
        unwritten = Unwritten(last_batch, skip=policy.skips)
        windows = NO_WINDOWS if update_every is None else BatchWindows(unwritten.take, capacity)
        self.splits = {
            TRAIN: Accumulator(
                policy, fold_every, capacity, strategy, windows=windows, lock=self.lock
            ),
            VALIDATION: Accumulator(policy, fold_every, capacity, strategy, lock=self.lock),
        }
        #: An epoch's values committed by ``commit_epoch`` and not yet on disk.
        self.owed: EpochValues | None = None
        #: The epoch values ``write_owed`` wrote last.
        self.last_written: EpochValues | None = None
        self._zero_graphs: Any = None  # a tf.function, made at the first epoch end
        #: A standalone ``model.evaluate``'s final means, written with the next epoch.
        self.evaluated: dict[str, float] = {}
        self.curves = (
            BatchCount(last_batch, strategy)
            if update_every is None
            else BatchCurves(
                update_every, self.splits[TRAIN], self.writer, strategy, unwritten, last_batch
            )
        )

    @property
    def train(self) -> Accumulator:
        return self.splits[TRAIN]

    @property
    def validation(self) -> Accumulator:
        return self.splits[VALIDATION]

    def write_epoch(self, history: Mapping[str, float], step: int) -> None:
        """Writes History-named values to their split at ``step`` and flushes them to disk.

        Raises:
            OSError: When writing fails. The event files in use are dropped (a
                later write starts new ones, so a half-written record cannot
                hide what follows it) and the epoch's values are kept: calling
                ``on_epoch_end`` again (or ``close``) writes the same epoch.
        """
        if step < self.initial_epoch and step in self.epochs_on_disk:
            warn(
                f"epoch {step} of {self.log_dir!r} is already on disk, and now written again: "
                "TensorBoard's default loader shows one of the two points at that step "
                "(lossboard.load keeps the newest). Continue from logger.initial_epoch "
                f"({self.initial_epoch}) to avoid it.",
                LossboardRuntimeWarning,
            )
        by_split = epoch_tags_by_split(dict(history))
        try:
            self.curves.write()  # batch-curve points of the epoch first: all on disk by its end
            self._write(by_split, step)
            lost = self.writer.lost_files()
            if lost:
                self._recreate(lost, by_split, step)
        except (tf.errors.OpError, OSError) as err:
            self.writer.discard()
            raise OSError(
                f"on_epoch_end: writing epoch {step} to {self.log_dir!r} failed "
                f"({getattr(err, 'message', err)}). The epoch's values are kept and what was "
                "written before is intact: free the space or fix the path, then call "
                f"on_epoch_end({step}) again (or close()): it writes them."
            ) from err
        sharing.touch(self.log_dir)  # our claim is fresh: another host sees the run in use
        if self.chief:
            self._save_count()
        if history:
            self.epochs_on_disk.add(step)
            self.initial_epoch = max(self.initial_epoch, step + 1)

    def _save_count(self) -> None:
        """Saves the global batch count beside the event files (the epoch is on disk already:
        a failure here costs a resumed logger its batch steps, said in a warning)."""
        try:
            save_count(self.log_dir, self.curves.global_batch)
        except (tf.errors.OpError, OSError) as err:
            warn(
                f"the global batch count of {self.log_dir!r} could not be saved "
                f"({getattr(err, 'message', err)}); the epoch is on disk, but a logger resumed "
                "on this run would number its batch-curve steps from the last one written.",
                LossboardRuntimeWarning,
            )

    def _write(self, by_split: Mapping[str, Mapping[str, float]], step: int) -> None:
        for split, values in by_split.items():
            self.writer.scalars(split, values, step)
        self.writer.flush()

    def _recreate(self, lost: dict[str, str], by_split: Mapping, step: int) -> None:
        """Event files of the run were removed while it was written: start new ones for those
        splits (the hparams too), and write this epoch's values of those splits again.

        Raises:
            OSError: When the directory cannot be made again, or the new files are gone too.
        """
        self.writer.discard(list(lost))
        try:
            prepare_run_dir(self.log_dir)
        except (ValueError, TypeError) as err:
            raise OSError(str(err)) from err
        if "" in lost and self.hparams:
            self.writer.hparams(self.hparams)
        self._write({s: v for s, v in by_split.items() if s in lost}, step)
        if self.writer.lost_files():
            raise OSError(f"the event files of {self.log_dir!r} disappear as they are written")
        warn(
            f"{len(lost)} event file(s) of {self.log_dir!r} were removed while the run was being "
            f"written ({', '.join(lost.values())}); lossboard started new ones and wrote epoch "
            f"{step} there. What was written before into the removed files is not on disk "
            "any more.",
            LossboardRuntimeWarning,
        )

    def commit_epoch(self, values: EpochValues | None) -> None:
        """Keeps an epoch's values to be written, and starts both splits over: one step.

        Both splits' new states, ``values`` and an empty ``evaluated`` are assigned in one
        statement (its stores run with no call between them), after the
        in-graph sums are zeroed by one TensorFlow call: an interrupt (Ctrl-C) before
        that line leaves the epoch as it was (the next epoch end computes it again), and
        after it the values are kept in ``owed`` until ``write_owed`` has written them.
        """
        t, v = self.train, self.validation
        fresh = t.next_epoch(), v.next_epoch()
        # One physical line: a statement split over lines runs a line event between its
        # calls and its stores, where Ctrl-C lands (tests/test_logger_resilience.py).
        self.owed, self.evaluated, t.state, v.state = values, {}, *self._zeroed_graphs(fresh)

    def _zeroed_graphs(self, then: tuple) -> tuple:
        """Zeroes both splits' in-graph sums in one compiled call; returns ``then``.

        Across workers the epoch end's all-reduce has zeroed them already.
        """
        if self.train.collective:
            return then
        if self._zero_graphs is None:
            graphs = [acc.graph for acc in self.splits.values()]
            with self.strategy.scope():
                self._zero_graphs = tf.function(lambda: [g.zero_op() for g in graphs])
                self._zero_graphs.get_concrete_function()
        return (self._zero_graphs(), *then)[1:]  # nothing of lossboard runs after the op

    def write_owed(self) -> EpochValues | None:
        """Writes the epoch values committed and not yet on disk (if any); returns them.

        Raises:
            OSError: As ``write_epoch``; the values stay owed, written by the next call.
        """
        owed = self.owed
        if owed is None:
            return None
        if owed is not self.last_written:  # a write interrupted after its end is not made twice
            self.write_epoch(owed.history, owed.step)
            self.last_written = owed
        self.owed = None
        return owed

    def close(self) -> None:
        """Writes the epoch values and batch-curve points still waiting, flushes and closes
        the event files; the directory is free for another logger (even when a write fails)."""
        for acc in self.splits.values():  # its metrics refuse values that could never be written
            acc.closed = f"its LossLogger (log_dir {self.log_dir!r}) is closed"
        try:
            self.write_owed()
            self.curves.write()
        finally:
            try:
                self.writer.close()
            finally:
                self._release()
