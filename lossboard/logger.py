"""``LossLogger``: exact epoch averages of every loss component from two calls."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from lossboard import arguments
from lossboard import batch as batch_lib
from lossboard.accumulate import NONFINITE_POLICIES, Accumulator
from lossboard.distribute import is_chief
from lossboard.graph import GraphSums
from lossboard.mean import ComponentMean
from lossboard.progress import Progress, resolve_verbose
from lossboard.reader import read_back
from lossboard.writer import TRAIN, VALIDATION, RunWriter, prepare_run_dir, scalar_in_graph

_VAL = "val_"


class LossLogger(keras.callbacks.Callback):
    """Epoch averages of every loss component, written to TensorBoard as Keras does.

    Add two calls to an existing training loop: ``on_train_batch_end`` after
    each batch and ``on_epoch_end`` after each epoch. Each component (each key
    of ``logs``) gets its own float64 :class:`~lossboard.ComponentMean`; the
    epoch value is the weighted mean over every element it received, so a
    short last batch of per-example losses counts exactly as much as it should.

    Runs land in Keras' TensorBoard layout (``<log_dir>/train``,
    ``<log_dir>/validation``, tags ``epoch_<name>``), so a custom-loop run and
    a ``model.fit`` run overlay in TensorBoard. The same object works as a
    callback in ``model.fit(callbacks=[logger])``.

    Args:
        log_dir: The run directory (local, or any file system ``tf.io.gfile``
            supports). Created now; a directory that cannot be created raises.
        update_freq: ``"epoch"`` (default), or an int N: every N train
            batches, also write ``batch_<name>``, the mean over those N
            batches, at step = global batch index (1-based, across epochs).
        components: Names to create accumulators for now. Optional: names are
            discovered from ``logs``. Needed only with more than 128 components
            of which some first appear while a ``tf.function`` is retraced.
        hparams: The run's hyperparameters, such as ``{"lr": 1e-3, "optimizer":
            "adam"}``, recorded for TensorBoard's HParams dashboard (which then
            lists the run with its epoch losses as metrics) and for
            ``lossboard compare``. Values are bools, numbers or strings.
        nonfinite: What a NaN or infinity does. ``"raise"`` (default): at
            ``on_epoch_end``, every finite component is written first, then
            ``FloatingPointError`` names the others. ``"warn"``: write NaN and
            warn. ``"skip"``: leave such batches out of the mean and warn with
            their count. ``"raise_per_batch"``: check each eager batch (one
            host read per component per batch) and raise at that call.
        verbose: ``0`` silent; ``1`` prints a line per epoch with its
            averages; ``2`` also keeps a live line of running train means
            while the epoch trains (refreshed at most 4 times a second, each
            refresh one host read). ``"auto"`` (default): 1 on an interactive
            terminal, 0 otherwise. Nothing is printed under ``model.fit``,
            which has its own progress bar.
        fold_every: Pending entries (one per component per batch) folded at
            once. Bounds memory; the default suits most loops.

    Example:
        >>> import numpy as np
        >>> from lossboard import LossLogger
        >>> with LossLogger("logs/doc-run") as logger:
        ...     for step, losses in enumerate([np.ones(4), np.zeros(2)]):
        ...         logger.on_train_batch_end(step, {"loss": losses})
        ...     history = logger.on_epoch_end(0)
        >>> round(history["loss"], 4)
        0.6667
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        *,
        update_freq: str | int = "epoch",
        components: list[str] | tuple[str, ...] | None = None,
        hparams: Mapping[str, bool | int | float | str] | None = None,
        nonfinite: str = "raise",
        verbose: int | str = "auto",
        fold_every: int = 16384,
    ):
        super().__init__()
        self._update_every = arguments.check_update_freq(update_freq)
        arguments.check_nonfinite(nonfinite, NONFINITE_POLICIES)
        arguments.check_fold_every(fold_every)
        self.hparams = arguments.check_hparams(hparams)
        verbose_level = resolve_verbose(verbose, sys.stdout)
        names = [] if components is None else arguments.check_components(components)
        # Every argument is checked above: nothing is created for a rejected call.
        self.update_freq = update_freq
        self.nonfinite = nonfinite
        strategy = tf.distribute.get_strategy()
        self.is_chief = is_chief(strategy)
        # Under a multi-worker strategy only the chief writes (one curve per run).
        self.log_dir = prepare_run_dir(log_dir) if self.is_chief else os.fspath(log_dir)
        self._writer = RunWriter(self.log_dir, enabled=self.is_chief)
        if self.hparams:
            self._writer.hparams(self.hparams)
        capacity = max(128, 2 * len(names))
        self._splits = {
            TRAIN: Accumulator(nonfinite, fold_every, capacity, strategy),
            VALIDATION: Accumulator(nonfinite, fold_every, capacity, strategy),
        }
        self._splits[TRAIN].track_window = self._update_every is not None
        self._epochs_on_disk, last_batch = read_back(self.log_dir) if self.is_chief else (set(), 0)
        #: The epoch to continue from: one past the last epoch already on disk.
        self.initial_epoch = max(self._epochs_on_disk, default=-1) + 1
        self._train_batches = last_batch
        self._checked_names: set[tuple] = set()
        self._strategy = strategy
        # Batch curves of in-graph calls: a step counter and window sums made now (eagerly).
        self._graph_step: tf.Variable | None = None
        self._graph_batches_used = False
        if self._update_every:
            with tf.init_scope():
                self._graph_step = tf.Variable(
                    tf.constant(self._train_batches, tf.int64), trainable=False, name="global_batch"
                )
            self._splits[TRAIN].graph_window = GraphSums(capacity)
        self._progress = Progress(verbose_level, self._splits[TRAIN].running_means)
        self._fit = False
        self._closed = False
        self._splits[TRAIN].ensure(names)

    # ------------------------------------------------------------------ state
    @property
    def metrics(self) -> dict[str, ComponentMean]:
        """Each component's accumulator, named as in Keras' History.

        Train components keep their names; validation ones get ``val_``.
        ``result()`` on any of them is exact mid-epoch.
        """
        out = dict(self._splits[TRAIN].metrics)
        out.update({_VAL + k: m for k, m in self._splits[VALIDATION].metrics.items()})
        return out

    @property
    def global_batch(self) -> int:
        """Train batches seen so far, across epochs (the ``batch_*`` step)."""
        if self._graph_batches_used and self._graph_step is not None:
            return int(self._graph_step.numpy())
        return self._train_batches

    # ------------------------------------------------------------------ batch calls
    @tf.autograph.experimental.do_not_convert
    def on_train_batch_end(
        self, batch: Any, logs: Any = None, *, sample_weight: Any = None
    ) -> None:
        """Records the loss components of one training batch (call 1 of 2).

        Args:
            batch: The batch index within the epoch (not used for the values).
            logs: A mapping from component name to value, or a single value
                (logged as ``"loss"``). A value is a Python or NumPy number, a
                scalar tensor, or a tensor of per-example losses of any shape.
            sample_weight: As in ``tf.keras.metrics.Mean.update_state``; a
                number, a tensor, or a mapping from component name to weight.

        Raises:
            TypeError, ValueError: For bad input, naming the component; the
                batch is then not recorded at all.
        """
        self._check_open("on_train_batch_end")
        if self._fit:
            self._fit_batch(logs)
            return
        logs, keys = self._batch_logs(logs, sample_weight, "on_train_batch_end")
        if tf.inside_function():
            self._splits[TRAIN].add_in_graph(logs, sample_weight)
            if self._update_every:
                self._batch_curves_in_graph()
            return
        self._splits[TRAIN].add(logs, sample_weight, keys)
        self._train_batches += 1
        self._progress.batch()
        if self._update_every and self._train_batches % self._update_every == 0:
            self._write_batch_window()

    @tf.autograph.experimental.do_not_convert
    def on_test_batch_end(self, batch: Any, logs: Any = None, *, sample_weight: Any = None) -> None:
        """Records the loss components of one validation batch.

        Takes the same arguments as :meth:`on_train_batch_end`; the averages
        are written under ``<log_dir>/validation`` and returned with ``val_``.
        """
        self._check_open("on_test_batch_end")
        if self._fit:
            return
        logs, keys = self._batch_logs(logs, sample_weight, "on_test_batch_end")
        if tf.inside_function():
            self._splits[VALIDATION].add_in_graph(logs, sample_weight)
        else:
            self._splits[VALIDATION].add(logs, sample_weight, keys)

    def _batch_logs(
        self, logs: Any, sample_weight: Any, where: str
    ) -> tuple[Mapping[str, Any], tuple | None]:
        """Checks the names in ``logs`` (once per distinct set of names).

        Returns the logs as a mapping and, for a dict, its tuple of names.
        """
        keys = tuple(logs) if type(logs) is dict else None
        if keys is not None and keys in self._checked_names:
            if sample_weight is not None:
                batch_lib.check_weight_names(sample_weight, logs, where)
            return logs, keys
        logs = batch_lib.components(logs, where)
        for name in logs:
            if name.startswith(_VAL):
                raise ValueError(
                    f"{where}: component {name!r} starts with 'val_', which Keras reserves "
                    "for validation; log validation losses with on_test_batch_end under "
                    f"their plain name ({name[len(_VAL) :]!r})."
                )
        if sample_weight is not None:
            batch_lib.check_weight_names(sample_weight, logs, where)
        if keys is not None and len(self._checked_names) < 256:
            self._checked_names.add(keys)
        return logs, keys

    def _batch_curves_in_graph(self) -> None:
        """In-graph calls with ``update_freq=N``: count batches, write every N in the graph."""
        if self._strategy.num_replicas_in_sync > 1:
            raise ValueError(
                "update_freq=N batch curves are written from eager calls, or from tf.function "
                "calls without a tf.distribute strategy; under a strategy use update_freq='epoch', "
                "or pass the PerReplica values that strategy.run returns to on_train_batch_end "
                "eagerly."
            )
        train = self._splits[TRAIN]
        if self._graph_step is None or train.graph_window is None:
            raise RuntimeError("internal: batch-curve state was not created with the logger")
        window = train.graph_window
        step = self._graph_step.assign_add(1)
        names = train.names
        writer = self._writer.writer(TRAIN) if self._writer.enabled else None

        def write() -> tf.Tensor:
            sums, counts = window.read_and_zero()
            if writer is not None:
                with writer.as_default(), tf.summary.record_if(True):
                    for i, name in enumerate(names):
                        tf.cond(
                            counts[i] > 0,
                            lambda i=i, name=name: scalar_in_graph(
                                f"batch_{name}", sums[i] / counts[i], step
                            ),
                            lambda: tf.constant(False),
                        )
            return tf.constant(True)

        tf.cond(step % self._update_every == 0, write, lambda: tf.constant(False))
        self._graph_batches_used = True

    def _write_batch_window(self) -> None:
        means = self._splits[TRAIN].take_window()
        self._writer.scalars(
            TRAIN, {f"batch_{k}": v for k, v in means.items()}, step=self._train_batches
        )

    # ------------------------------------------------------------------ epoch call
    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> dict[str, float]:
        """Writes the epoch's averages, flushes them to disk, and starts a new epoch.

        Args:
            epoch: The epoch number, used as the TensorBoard step.
            logs: Extra scalars to write as given (say ``{"lr": 1e-3}``);
                ``val_``-prefixed keys go to the validation split. A key that
                is also a logged component replaces its average.

        Returns:
            The averages in Keras' History naming, e.g.
            ``{"loss": 0.3, "kl": 0.1, "val_loss": 0.4}``, plus ``logs``.

        Raises:
            FloatingPointError: With ``nonfinite="raise"``, after writing every
                finite component, when some component held a NaN or infinity.
        """
        self._check_open("on_epoch_end")
        step = arguments.check_epoch(epoch)
        given = arguments.given_logs(logs)
        if self._fit:
            self._write_history({**given, **self._fit_learning_rates()}, step)
            self.initial_epoch = max(self.initial_epoch, step + 1)
            return given
        history: dict[str, float] = {}
        bad: list[str] = []
        for split, prefix in ((TRAIN, ""), (VALIDATION, _VAL)):
            for name, (mean, count, nonfinite) in self._splits[split].read().items():
                if nonfinite and self.nonfinite == "raise":
                    bad.append(f"{split} {name!r} ({nonfinite} batch(es))")
                    continue
                if nonfinite:
                    what = "left out of" if self.nonfinite == "skip" else "made NaN"
                    warnings.warn(
                        f"epoch {step}, {split} component {name!r}: {nonfinite} batch(es) held "
                        f"a NaN or infinity and were {what} the epoch mean.",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    if not count:
                        continue
                history[prefix + name] = mean
        history.update(given)
        self._write_history(history, step)  # raises on a write failure, before any reset
        for acc in self._splits.values():
            acc.reset()
        self.initial_epoch = max(self.initial_epoch, step + 1)
        self._progress.epoch(step, history)
        if bad:
            raise FloatingPointError(
                f"epoch {step}: non-finite values (NaN or infinity) in {', '.join(bad)}; "
                "those components were not written, every finite one was. Lower the learning "
                "rate or check the loss, or pass nonfinite='skip' or 'warn' to LossLogger."
            )
        return history

    def _write_history(self, history: Mapping[str, float], step: int) -> None:
        """Writes History-named values to their split and flushes them to disk.

        Raises:
            OSError: When writing fails. The event files in use are dropped (a
                later write starts new ones, so a half-written record cannot
                hide what follows it) and nothing is reset: calling
                ``on_epoch_end`` again writes the same epoch.
        """
        if step < self.initial_epoch and self._written_before(step):
            warnings.warn(
                f"epoch {step} of {self.log_dir!r} is already on disk: TensorBoard will show both "
                "points at that step (lossboard.load keeps the newest). Continue from "
                f"logger.initial_epoch ({self.initial_epoch}) to avoid it.",
                RuntimeWarning,
                stacklevel=3,
            )
        train = {f"epoch_{k}": v for k, v in history.items() if not k.startswith(_VAL)}
        val = {f"epoch_{k[len(_VAL) :]}": v for k, v in history.items() if k.startswith(_VAL)}
        try:
            self._writer.scalars(TRAIN, train, step)
            self._writer.scalars(VALIDATION, val, step)
            self._writer.flush()
        except (tf.errors.OpError, OSError) as err:
            self._writer.discard()
            raise OSError(
                f"on_epoch_end: writing epoch {step} to {self.log_dir!r} failed "
                f"({getattr(err, 'message', err)}). Nothing was reset and what was written before "
                f"is intact: free the space or fix the path, then call on_epoch_end({step}) again."
            ) from err
        self._epochs_on_disk.add(step)

    def _written_before(self, step: int) -> bool:
        return step in self._epochs_on_disk

    # ------------------------------------------------------------------ model.fit
    def on_train_begin(self, logs: Any = None) -> None:
        """Under ``model.fit``: Keras' logs already hold epoch means; use them."""
        self._check_open("on_train_begin")
        self._fit = self._model is not None
        if self._fit:
            self._progress.level = 0  # fit prints its own progress

    def on_train_end(self, logs: Any = None) -> None:
        self._fit = False
        self._writer.flush()

    def _fit_learning_rates(self) -> dict[str, float]:
        """The optimizer's learning rate(s), written as Keras' TensorBoard callback does."""
        optimizer = getattr(self._model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        if optimizer is None:
            return {}
        if hasattr(optimizer, "optimizers"):
            pairs = [(f"learning_rate_{o.name}", o) for o in optimizer.optimizers]
        else:
            pairs = [("learning_rate", optimizer)]
        rates = {k: arguments.scalar(getattr(o, "learning_rate", None)) for k, o in pairs}
        return {k: v for k, v in rates.items() if v is not None}

    def _fit_batch(self, logs: Any) -> None:
        self._train_batches += 1
        if self._update_every and self._train_batches % self._update_every == 0 and logs:
            numbers_ = {k: arguments.scalar(v) for k, v in logs.items()}
            values = {f"batch_{k}": v for k, v in numbers_.items() if v is not None}
            self._writer.scalars(TRAIN, values, step=self._train_batches)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Flushes and closes the event files. Safe to call twice.

        Values of an epoch that did not reach ``on_epoch_end`` are not written.
        """
        if not self._closed:
            self._closed = True
            self._writer.close()

    def __enter__(self) -> LossLogger:
        self._check_open("__enter__")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self, where: str) -> None:
        if self._closed:
            raise RuntimeError(
                f"{where}: this LossLogger (log_dir {self.log_dir!r}) is closed; create a new "
                "LossLogger on the same directory to continue the run."
            )

    def __repr__(self) -> str:
        return f"LossLogger({self.log_dir!r}, update_freq={self.update_freq!r})"
