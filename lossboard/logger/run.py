"""``Run``: the state one ``LossLogger`` keeps: directory, accumulators, writer, epochs on disk."""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from lossboard.accumulate.accumulator import Accumulator
from lossboard.accumulate.nonfinite import Nonfinite
from lossboard.layout import TRAIN, VALIDATION, epoch_tags_by_split
from lossboard.logger import sharing
from lossboard.logger.batch_curves import BatchCount, BatchCurves
from lossboard.logger.writer import prepare_run_dir, run_writer, set_aside_hparams_files
from lossboard.reader.read import read_back, read_table
from lossboard.warn import LossboardRuntimeWarning, warn


def _nothing() -> None:
    """What closing a non-chief worker's run releases: nothing."""


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
        window = update_every is not None
        self.splits = {
            TRAIN: Accumulator(
                policy, fold_every, capacity, strategy, batch_window=window, lock=self.lock
            ),
            VALIDATION: Accumulator(policy, fold_every, capacity, strategy, lock=self.lock),
        }
        self.epochs_on_disk, last_batch = read_back(self.log_dir) if chief else (set(), 0)
        #: The epoch to continue from: one past the last epoch already on disk.
        self.initial_epoch = max(self.epochs_on_disk, default=-1) + 1
        self.curves = (
            BatchCount(last_batch, strategy)
            if update_every is None
            else BatchCurves(update_every, self.splits[TRAIN], self.writer, strategy, last_batch)
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
                hide what follows it) and nothing is reset: calling
                ``on_epoch_end`` again writes the same epoch.
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
                f"({getattr(err, 'message', err)}). Nothing was reset and what was written before "
                f"is intact: free the space or fix the path, then call on_epoch_end({step}) again."
            ) from err
        sharing.touch(self.log_dir)  # our claim is fresh: another host sees the run in use
        if history:
            self.epochs_on_disk.add(step)
            self.initial_epoch = max(self.initial_epoch, step + 1)

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

    def reset(self) -> None:
        """Zeroes both splits: a new epoch starts."""
        for acc in self.splits.values():
            acc.reset()

    def close(self) -> None:
        """Writes the batch-curve points still waiting, flushes and closes the event files;
        the directory is free for another logger (even when a write fails)."""
        try:
            self.curves.write()
        finally:
            try:
                self.writer.close()
            finally:
                self._release()
