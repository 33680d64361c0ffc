"""``Run``: the state one ``LossLogger`` keeps: directory, accumulators, writer, epochs on disk."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import tensorflow as tf

from lossboard.accumulate import Accumulator
from lossboard.curves import BatchCount, BatchCurves
from lossboard.layout import TRAIN, VALIDATION, epoch_tags_by_split
from lossboard.nonfinite import Nonfinite
from lossboard.reader import read_back
from lossboard.writer import prepare_run_dir, run_writer


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
    ):
        self.log_dir = prepare_run_dir(log_dir) if chief else os.fspath(log_dir)
        self.policy = policy
        self.writer = run_writer(self.log_dir, chief)
        self.splits = {
            TRAIN: Accumulator(
                policy, fold_every, capacity, strategy, batch_window=update_every is not None
            ),
            VALIDATION: Accumulator(policy, fold_every, capacity, strategy),
        }
        self.epochs_on_disk, last_batch = read_back(self.log_dir) if chief else (set(), 0)
        #: The epoch to continue from: one past the last epoch already on disk.
        self.initial_epoch = max(self.epochs_on_disk, default=-1) + 1
        self.curves = (
            BatchCount(last_batch)
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
            warnings.warn(
                f"epoch {step} of {self.log_dir!r} is already on disk: TensorBoard will show both "
                "points at that step (lossboard.load keeps the newest). Continue from "
                f"logger.initial_epoch ({self.initial_epoch}) to avoid it.",
                RuntimeWarning,
                stacklevel=4,
            )
        try:
            for split, values in epoch_tags_by_split(dict(history)).items():
                self.writer.scalars(split, values, step)
            self.writer.flush()
        except (tf.errors.OpError, OSError) as err:
            self.writer.discard()
            raise OSError(
                f"on_epoch_end: writing epoch {step} to {self.log_dir!r} failed "
                f"({getattr(err, 'message', err)}). Nothing was reset and what was written before "
                f"is intact: free the space or fix the path, then call on_epoch_end({step}) again."
            ) from err
        self.epochs_on_disk.add(step)
        self.initial_epoch = max(self.initial_epoch, step + 1)

    def reset(self) -> None:
        """Zeroes both splits: a new epoch starts."""
        for acc in self.splits.values():
            acc.reset()
