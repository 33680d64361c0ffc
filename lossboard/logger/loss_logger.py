"""``LossLogger``: exact epoch averages of every loss component from two calls."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from lossboard.accumulate import inputs as batch_lib
from lossboard.accumulate import tf_private
from lossboard.accumulate.component_mean import ComponentMean
from lossboard.accumulate.distribute import check_supported, is_chief
from lossboard.accumulate.nonfinite import Nonfinite
from lossboard.layout import TRAIN, VALIDATION, history_key
from lossboard.logger import arguments, keras_caller
from lossboard.logger.keras_backend import keras
from lossboard.logger.keras_caller import KerasCall
from lossboard.logger.legacy_keras import LegacyKerasHooks
from lossboard.logger.modes import CustomLoop, Fit, Mode
from lossboard.logger.progress import Progress, resolve_verbose
from lossboard.logger.run import Run
from lossboard.warn import held


class LossLogger(LegacyKerasHooks, keras.callbacks.Callback):
    """Epoch averages of every loss component, written to TensorBoard as Keras does.

    Add two calls to an existing training loop: ``on_train_batch_end`` after
    each batch and ``on_epoch_end`` after each epoch. Each component (each key
    of ``logs``) gets its own float64 ``ComponentMean``; the
    epoch value is the weighted mean over every element it received, so a
    short last batch of per-example losses counts exactly as much as it should.

    Runs land in Keras' TensorBoard layout (``<log_dir>/train``,
    ``<log_dir>/validation``, tags ``epoch_<name>``), so a custom-loop run and
    a ``model.fit`` run overlay in TensorBoard. The same object is a Keras 3
    ``keras.callbacks.Callback``: it works as a callback in
    ``model.fit(callbacks=[logger])``. Under legacy Keras (``tf_keras``) it speaks
    ``tf_keras``' callback protocol, so ``fit`` and ``CallbackList`` drive it, but
    it is not an instance of ``tf_keras.callbacks.Callback``.

    Args:
        log_dir: The run directory (local, or any file system ``tf.io.gfile``
            supports). Created now; a directory that cannot be created raises.
        update_freq: ``"epoch"`` (default), ``"batch"`` (as 1), or an int N:
            every N train batches, also write ``batch_<name>``, the mean over
            those N batches, at step = global batch index (1-based, across
            epochs).
        components: Names to create accumulators for now. Optional: names are
            discovered from ``logs``. Needed only with more than 128 components
            of which some first appear while a ``tf.function`` is retraced.
        hparams: The run's hyperparameters, such as ``{"lr": 1e-3, "optimizer":
            "adam"}``, recorded for TensorBoard's HParams dashboard (which then
            lists the run with its epoch losses as metrics) and for
            ``lossboard compare``. Values are bools, numbers or strings.
        nonfinite: What a NaN or an infinity (in a value, a weight, or a mean
            beyond float32's range, in which values are written) does.
            ``"raise"`` (default): at ``on_epoch_end``, every other value is
            written first, then ``FloatingPointError`` names the refused ones.
            ``"warn"``: write it (NaN or inf) and warn. ``"skip"``: leave such
            batches out of the mean and warn with their count.
            ``"raise_per_batch"``: also check each eager batch (one host read
            per component per batch) and raise at that call. The same policy
            applies to ``model.fit``'s epoch logs and to ``on_epoch_end(logs=)``.
        verbose: ``0`` silent; ``1`` prints a line per epoch with its
            averages; ``2`` also keeps a live line of running train means
            while the epoch trains (refreshed at most 4 times a second, each
            refresh one host read). ``"auto"`` (default): 1 on an interactive
            terminal, 0 otherwise. Nothing is printed under ``model.fit``,
            which has its own progress bar.
        fold_every: Pending entries (one per component per batch) folded at
            once; pending tensors are also folded once they hold 1 MiB, so
            memory stays bounded for any loss shape. The default suits most loops.

    Examples:
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
        update_every = arguments.check_update_freq(update_freq)
        policy = Nonfinite.parse(nonfinite)
        arguments.check_fold_every(fold_every)
        self.hparams = arguments.check_hparams(hparams)
        verbose_level = resolve_verbose(verbose, sys.stdout)
        names = [] if components is None else arguments.check_components(components)
        # Every argument is checked above: nothing is created for a rejected call.
        self.update_freq = update_freq
        self.nonfinite = nonfinite
        strategy = tf.distribute.get_strategy()
        check_supported(strategy)
        self.is_chief = is_chief(strategy)
        # Under a multi-worker strategy only the chief writes (one curve per run).
        self._run = Run(
            log_dir,
            chief=self.is_chief,
            policy=policy,
            fold_every=fold_every,
            capacity=max(128, 2 * len(names)),
            strategy=strategy,
            update_every=update_every,
            hparams=self.hparams,
        )
        self.log_dir = self._run.log_dir
        self._progress = Progress(verbose_level, self._run.train.running_means)
        self._custom_loop = CustomLoop(self._run, self._progress)
        self._mode: Mode = self._custom_loop
        self._evaluate: KerasCall | None = None
        # One logger may be fed (and read) from several threads: each call is applied whole,
        # under the run's one lock, which its accumulators' results take too.
        self._lock = self._run.lock
        self._closed = False
        self._run.train.ensure(names)

    # ------------------------------------------------------------------ state
    @property
    def initial_epoch(self) -> int:
        """The epoch to continue from: one past the last epoch already on disk."""
        return self._run.initial_epoch

    @property
    def metrics(self) -> dict[str, ComponentMean]:
        """Each component's accumulator, named as in Keras' History.

        Train components keep their names; validation ones get ``val_``.
        ``result()`` on any of them is exact mid-epoch.
        """
        return {
            history_key(split, name): mean
            for split in (TRAIN, VALIDATION)
            for name, mean in self._run.splits[split].metrics.items()
        }

    @property
    def global_batch(self) -> int:
        """Train batches seen so far, across epochs (the ``batch_*`` step)."""
        return self._run.curves.global_batch

    # ------------------------------------------------------------------ batch calls
    @tf_private.not_converted
    def on_train_batch_end(
        self,
        batch: Any = None,
        logs: Any = None,
        *,
        sample_weight: Any = None,
        batch_size: Any = None,
    ) -> None:
        """Records the loss components of one training batch (call 1 of 2).

        Args:
            batch: The batch index within the epoch (not used for the values; optional:
                ``on_train_batch_end(logs, batch_size=n)`` and ``logs=`` work too).
            logs: A mapping from component name to value, or a single value
                (logged as ``"loss"``). A value is a Python or NumPy number, a
                scalar tensor, or a tensor of per-example losses of any shape.
            sample_weight: As in ``tf.keras.metrics.Mean.update_state``; a
                number, a tensor, or a mapping from component name to weight.
            batch_size: The number of examples in *this* batch (``len(x)``;
                ``tf.shape(x)[0]`` inside ``tf.function``). Each scalar
                component then counts as the mean of that many examples, so a
                short last batch weighs what it holds; per-example components
                count each example once (their first dimension must be
                ``batch_size``). The exact idiom for steps that return means.
                Components that are means over different examples (a GAN's
                discriminator and generator losses) take a mapping:
                ``batch_size={"d_loss": n_real + n_fake, "g_loss": n_fake}``.

        Raises:
            TypeError, ValueError: For bad input, naming the component; the
                batch is then not recorded at all.
        """
        logs, batch_size = self._batch_call(
            "on_train_batch_end", batch, logs, sample_weight, batch_size
        )
        with self._lock:
            self._current_mode().train_batch(logs, sample_weight, batch_size)

    def _batch_call(
        self, where: str, batch: Any, logs: Any, sample_weight: Any, batch_size: Any
    ) -> tuple[Any, Any]:
        """What both batch calls check first: open, the logs, ``batch_size``."""
        self._check_open(where)
        logs = arguments.batch_and_logs(batch, logs, where)
        if batch_size is not None:
            batch_size = batch_lib.check_batch_size(batch_size, sample_weight, where)
        return logs, batch_size

    @tf_private.not_converted
    def on_test_batch_end(
        self,
        batch: Any = None,
        logs: Any = None,
        *,
        sample_weight: Any = None,
        batch_size: Any = None,
    ) -> None:
        """Records the loss components of one validation batch.

        Takes the same arguments as ``on_train_batch_end``; the averages
        are written under ``<log_dir>/validation`` and returned with ``val_``.
        """
        logs, batch_size = self._batch_call(
            "on_test_batch_end", batch, logs, sample_weight, batch_size
        )
        if self._evaluate is not None:
            if self._evaluate.running():
                return  # Keras' running means; its final means come with on_test_end
            self._evaluate = None  # an evaluate that was interrupted
        with self._lock:
            self._current_mode().test_batch(logs, sample_weight, batch_size)

    # ------------------------------------------------------------------ epoch call
    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> dict[str, float]:
        """Writes the epoch's averages, flushes them to disk, and starts a new epoch.

        Args:
            epoch: The epoch number, used as the TensorBoard step.
            logs: Extra scalars to write as given (say ``{"lr": 1e-3}``);
                ``val_``-prefixed keys go to the validation split. A key that
                is also a logged component replaces its average.

        Returns:
            The epoch's averages in Keras' History naming (such as ``loss``, ``kl`` and
                ``val_loss``, each a float), plus ``logs``.

        Raises:
            FloatingPointError: With ``nonfinite="raise"``, after writing every
                finite component, when some component held a NaN or infinity.
        """
        self._check_open("on_epoch_end")
        arguments.check_eager("on_epoch_end")
        step = arguments.check_epoch(epoch)
        given = arguments.given_logs(logs)
        with self._lock, held():  # warnings once the epoch is on disk and reset
            history = self._current_mode().epoch_end(step, given)
        if isinstance(logs, dict):
            # Callbacks after this one in a keras.callbacks.CallbackList (EarlyStopping,
            # ReduceLROnPlateau, ...) see the epoch's values in the logs they are given.
            logs.update(history)
        return history

    def _current_mode(self) -> Mode:
        mode = self._mode
        if isinstance(mode, Fit) and not mode.call.running():
            mode = self._mode = self._custom_loop  # a fit that ended without on_train_end
        return mode

    # ------------------------------------------------------------------ Keras' hooks
    def on_train_begin(self, logs: Any = None) -> None:
        """Called by ``model.fit`` (whose logs hold epoch means: they are written as
        they are), or by a ``CallbackList`` in a custom loop (batches are logged)."""
        self._check_open("on_train_begin")
        call = keras_caller.find(self._model)
        if call is not None and call.method == keras_caller.FIT:
            self._mode = Fit(self._run, self._model, call)
        else:
            self._mode = self._custom_loop

    def on_train_end(self, logs: Any = None) -> None:
        """Ends ``fit``'s use of the logger: later calls are a custom loop's."""
        self._mode = self._custom_loop
        self._run.curves.write()
        self._run.writer.flush()

    def on_test_begin(self, logs: Any = None) -> None:
        """Called by ``model.evaluate``: alone, its final means become this epoch's
        validation values (written at the next ``on_epoch_end``); inside ``fit``, nothing."""
        self._check_open("on_test_begin")
        call = keras_caller.find(self._model)
        self._evaluate = call if call is not None and call.method == keras_caller.EVALUATE else None

    def on_test_end(self, logs: Any = None) -> None:
        """Takes a standalone ``model.evaluate``'s final means (see ``on_test_begin``)."""
        if self._evaluate is not None:
            self._evaluate = None
            self._custom_loop.evaluated(logs)

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Flushes and closes the event files. Safe to call twice.

        Values of an epoch that did not reach ``on_epoch_end`` are not written.
        """
        if not self._closed:
            self._closed = True
            self._run.close()

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
