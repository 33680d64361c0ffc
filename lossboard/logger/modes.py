"""The ways a ``LossLogger`` is driven, one small class each.

- ``CustomLoop``: the two calls in the user's own loop; batch values are
  accumulated and every epoch end writes their exact means.
- ``Fit``: a callback of ``model.fit``; Keras' batch logs are running
  means (used only for batch curves) and its epoch logs are written as given.

A standalone ``model.evaluate(callbacks=[logger])`` used as the validation
pass of a custom loop hands its final means to ``CustomLoop.evaluated``.
``LossLogger`` holds one mode at a time and routes its calls to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from lossboard.accumulate import inputs as batch_lib
from lossboard.accumulate.distribute import is_multi_worker
from lossboard.accumulate.nonfinite import Nonfinite
from lossboard.layout import SPLITS, VAL_PREFIX, VALIDATION, history_key, split_of
from lossboard.logger import arguments, keras_caller
from lossboard.logger.batch_curves import BatchCurves
from lossboard.logger.keras_caller import KerasCall
from lossboard.logger.progress import Progress
from lossboard.logger.run import EpochValues, Run
from lossboard.warn import LossboardRuntimeWarning, warn

_FLOAT32_MAX = float(np.finfo(np.float32).max)


class Mode:
    """What the logger's calls do. The base class ignores batches and writes epoch logs."""

    def __init__(self, run: Run):
        self.run = run

    def train_batch(self, logs: Any, sample_weight: Any, batch_size: Any) -> None:
        """``on_train_batch_end``."""

    def test_batch(self, logs: Any, sample_weight: Any, batch_size: Any) -> None:
        """``on_test_batch_end``."""

    def epoch_end(self, step: int, given: dict[str, float]) -> dict[str, float]:
        """``on_epoch_end``: writes the epoch and returns its History values."""
        history, bad = self.screen_given(step, given)
        self.run.write_epoch(history, step)
        refuse(step, bad)
        return history

    def screen_given(self, step: int, given: Mapping[str, float]) -> tuple[dict, list[str]]:
        """Values passed to ``on_epoch_end`` (or by ``fit``), by the non-finite policy."""
        history: dict[str, float] = {}
        bad: list[str] = []
        for key, value in given.items():
            split, name = split_of(key)
            nonfinite = 0 if math.isfinite(value) else 1
            if self.screen(step, split, name, value, nonfinite, 1.0, bad, given=True):
                history[key] = value
        return history, bad

    def screen(
        self, step: int, split: str, name: str, mean: float, nonfinite: int, weight: float,
        bad: list[str], given: bool = False,
    ) -> bool:  # fmt: skip
        """Whether one epoch value is written, by the non-finite policy.

        A value refused by the policy goes to ``bad`` (raised after the others
        are written); a value written or left out despite a NaN, an infinity or
        float32's range is warned about, saying what was written.
        """
        policy = self.run.policy
        where = f"epoch {step}, {split} component {name!r}"
        if nonfinite and given:  # passed to on_epoch_end (or by fit), not summed from batches
            if policy.raises:
                bad.append(
                    f"{split} {name!r} (a NaN or an infinity, {mean!r}, given in on_epoch_end's "
                    "logs)"
                )
                return False
            warn(
                f"{where}: the value given in on_epoch_end's logs is {mean!r}, a NaN or an "
                "infinity; it was written as given.",
                LossboardRuntimeWarning,
            )
            return True
        if nonfinite:
            if policy.raises:
                bad.append(
                    f"{split} {name!r} (a NaN or an infinity in the values or sample_weight of "
                    f"{nonfinite} batch(es))"
                )
                return False
            written = (
                f"the epoch mean was written as {mean!r}"
                if weight
                else "nothing was written for it this epoch"
            )
            warn(
                f"{where}: {nonfinite} batch(es) held a NaN or an infinity (or their float64 "
                f"sum overflowed) and were {policy.fate()} the epoch mean; {written}.",
                LossboardRuntimeWarning,
            )
            return bool(weight)
        if abs(mean) > _FLOAT32_MAX:  # finite, but an infinity once written as float32
            if policy.raises:
                bad.append(f"{split} {name!r} (mean {mean!r} is beyond float32's range)")
                return False
            keep = policy is Nonfinite.WARN
            outcome = ("it was written as " + ("inf" if mean > 0 else "-inf")) if keep else (
                "it was not written (nonfinite='skip')"
            )  # fmt: skip
            warn(
                f"{where}: the epoch mean {mean!r} is beyond float32's range, in which "
                f"TensorBoard's values are written; {outcome}.",
                LossboardRuntimeWarning,
            )
            return keep
        return True


def refuse(step: int, bad: list[str]) -> None:
    """Raises for the values the policy refused (after every other one was written)."""
    if bad:
        raise FloatingPointError(
            f"epoch {step}: not written: {', '.join(bad)}; every other value was. Check the "
            "loss and its sample_weight, lower the learning rate, or pass nonfinite='skip' or "
            "'warn' to LossLogger."
        )


def _created_outside_the_scope(run: Run, where: str) -> bool:
    """Whether this in-graph call runs in the replicas of a strategy the logger was not
    created under (``strategy.run`` of a logger made outside ``strategy.scope()``).

    Under ``MirroredStrategy`` that works for epoch values: every replica adds to the one
    (not mirrored) variable, and the sums are exact. Under a multi-worker strategy it does
    not: the sums would stay on each worker, and every worker would write its own share.

    Raises:
        ValueError: For a multi-worker strategy.
    """
    current = tf.distribute.get_strategy()  # in strategy.run: the strategy running the call
    if current is run.strategy or current.num_replicas_in_sync == 1:
        return False
    if is_multi_worker(current) and not is_multi_worker(run.strategy):
        raise ValueError(
            f"{where} was called inside strategy.run of a {type(current).__name__} whose "
            "replicas span several workers, but this LossLogger was created outside that "
            "strategy's scope: its sums would stay on this worker, and every worker would "
            "write its own share as the run's epoch values. Create the logger under the "
            "strategy's scope, as the model: `with strategy.scope(): logger = LossLogger(...)`."
        )
    return True


class CustomLoop(Mode):
    """The user's own loop: batch values are accumulated, epoch ends write exact means.

    Args:
        run: The run's state.
        progress: Prints epoch lines (and the live line).
    """

    def __init__(self, run: Run, progress: Progress):
        super().__init__(run)
        self._progress = progress
        self._checked: set[tuple] = set()
        self._warned_empty = False
        self._looked_for_fit = False  # once per logger: see _warn_if_forwarded_from_fit

    def train_batch(self, logs: Any, sample_weight: Any, batch_size: Any) -> None:
        logs, keys = self._checked_logs(logs, sample_weight, "on_train_batch_end")
        run = self.run
        if tf.inside_function():
            outside = _created_outside_the_scope(run, "on_train_batch_end")
            if outside and isinstance(run.curves, BatchCurves):
                raise ValueError(
                    "on_train_batch_end: update_freq=N batch curves cannot be written from "
                    "inside strategy.run: this LossLogger was created outside the strategy's "
                    "scope, so each replica's call would be a batch of its own (one replica's "
                    "share at each step). Use update_freq='epoch', or pass the PerReplica "
                    "values that strategy.run returns to on_train_batch_end eagerly."
                )
            run.curves.check_graph()
            run.train.add_in_graph(logs, sample_weight, batch_size)
            if not outside:  # each replica would count the batch (as under the scope: none)
                run.curves.graph_batch()
            return
        run.curves.check_eager()
        run.train.add(logs, sample_weight, keys, batch_size)
        run.curves.eager_batch()
        self._progress.batch()

    def test_batch(self, logs: Any, sample_weight: Any, batch_size: Any) -> None:
        logs, keys = self._checked_logs(logs, sample_weight, "on_test_batch_end")
        if tf.inside_function():
            _created_outside_the_scope(self.run, "on_test_batch_end")
            self.run.validation.add_in_graph(logs, sample_weight, batch_size)
        else:
            self.run.validation.add(logs, sample_weight, keys, batch_size)

    def _checked_logs(
        self, logs: Any, sample_weight: Any, where: str
    ) -> tuple[Mapping[str, Any], tuple | None]:
        """Checks the names in ``logs``; returns them as a mapping, and a dict's tuple of names.

        Fast path: a dict whose tuple of names was checked before is not checked
        again (benchmark rows "eager call"); the cache is capped at 256 tuples so a
        loop that logs ever-new names cannot grow it.
        """
        keys = tuple(logs) if type(logs) is dict else None
        if keys is not None and keys in self._checked:
            if sample_weight is not None:
                batch_lib.check_weight_names(sample_weight, logs, where)
            return logs, keys
        logs = batch_lib.components(logs, where)
        for name in logs:
            if name.startswith(VAL_PREFIX):
                plain = name[len(VAL_PREFIX) :]
                how = (
                    # this is already the validation call: only the name is wrong
                    f"on_test_batch_end takes validation components under their plain names, "
                    f"as Keras' evaluate logs them: log {plain!r}; it is written to "
                    f"<log_dir>/validation and returned as {name!r} by on_epoch_end."
                    if where == "on_test_batch_end"
                    else "log validation losses with on_test_batch_end under their plain "
                    f"name ({plain!r})."
                )
                raise ValueError(
                    f"{where}: component {name!r} starts with {VAL_PREFIX!r}, which Keras "
                    f"reserves for validation; {how}"
                )
        if sample_weight is not None:
            batch_lib.check_weight_names(sample_weight, logs, where)
        if not self._looked_for_fit:
            self._looked_for_fit = True
            self._warn_if_forwarded_from_fit(logs, where)
        if keys is not None and len(self._checked) < 256:
            self._checked.add(keys)
        return logs, keys

    @staticmethod
    def _warn_if_forwarded_from_fit(logs: Mapping[str, Any], where: str) -> None:
        """Host numbers logged while Keras' ``fit`` runs are its batch logs, passed on by a
        callback: running means over the epoch so far, which averaged again are wrong."""
        if not logs or not all(isinstance(v, float | np.floating) for v in logs.values()):
            return
        if keras_caller.fit_running():
            warn(
                f"{where} got plain numbers ({', '.join(map(repr, logs))}) while Keras' fit is "
                "running: fit's batch logs are running means over the epoch so far, and "
                "averaging them again gives a wrong epoch value. Pass the logger to fit itself "
                "(model.fit(..., callbacks=[logger])), which writes fit's own epoch means."
            )

    def evaluated(self, logs: Mapping[str, Any] | None) -> None:
        """Keeps the final means of a standalone ``model.evaluate`` as this epoch's validation.

        They are written at the next epoch end under ``validation`` (``val_*``),
        in place of any validation batches of the same names logged by hand.
        """
        values = arguments.given_logs(logs)
        self.run.evaluated = {history_key(VALIDATION, k): v for k, v in values.items()}

    def epoch_end(self, step: int, given: dict[str, float]) -> dict[str, float]:
        # An earlier epoch end committed and did not write (a write failed, or Ctrl-C):
        # its values go to disk first, at their own step.
        self.run.write_owed()
        history, bad, seen = self._means(step)
        if not (seen or given or self.run.evaluated):
            done = self.run.last_written
            if done is not None and done.step == step:
                return dict(done.history)  # a retried epoch end: its values are on disk
            self._nothing_logged(step)
            self.run.commit_epoch(None)
            return {}
        extra, extra_bad = self.screen_given(step, {**self.run.evaluated, **given})
        history.update(extra)
        bad += extra_bad
        # The commit: the epoch's values are kept and both splits start over, in one step.
        self.run.commit_epoch(EpochValues(step, history))
        self.run.write_owed()  # a failure leaves them owed: the next epoch end writes them
        self._progress.epoch(step, history)
        refuse(step, bad)
        return history

    def _nothing_logged(self, step: int) -> None:
        """An epoch with no batch changes nothing; the first one says why that may be."""
        if any(acc.received for acc in self.run.splits.values()):
            warn(
                f"on_epoch_end({step}): the batches logged to {self.run.log_dir!r} this epoch "
                "had weights that sum to 0 (sample_weight), so no mean exists and nothing was "
                "written.",
                LossboardRuntimeWarning,
            )
            return
        if self._warned_empty:
            return
        self._warned_empty = True
        warn(
            f"on_epoch_end({step}): no batch was logged to this LossLogger "
            f"({self.run.log_dir!r}) since the last epoch end, so nothing was written. If "
            "your step is a tf.function that calls a logger, it keeps calling the logger it "
            "was traced with: make the tf.function after creating this logger (or pass the "
            "logger to it as an argument), and it logs here.",
            LossboardRuntimeWarning,
        )

    def _means(self, step: int) -> tuple[dict[str, float], list[str], bool]:
        """The epoch's means by the non-finite policy, the components it refuses, and
        whether any component had values (all of them may be left out, each warned about)."""
        history: dict[str, float] = {}
        bad: list[str] = []
        seen = False
        for split in SPLITS:
            acc = self.run.splits[split]
            results = acc.read()
            for name, r in results.items():
                seen = True
                if self.screen(step, split, name, r.mean, r.nonfinite, r.weight, bad):
                    history[history_key(split, name)] = r.mean
            weightless = [name for name in acc.logged() if name not in results]
            if weightless and results:  # (all of them: said once, in _nothing_logged)
                warn(
                    f"epoch {step}, {split} component(s) {weightless}: the values logged this "
                    "epoch had weights that sum to 0 (sample_weight), so no mean exists and "
                    "nothing was written for them.",
                    LossboardRuntimeWarning,
                )
        return history, bad, seen


class Fit(Mode):
    """A callback of ``model.fit``: Keras' own epoch means are written as they are.

    Args:
        run: The run's state.
        model: The model being fitted (its optimizer's learning rate is written too,
            as Keras' ``TensorBoard`` callback does).
        call: The running ``fit``: when it is gone without ``on_train_end`` (an
            exception, Ctrl-C), the logger goes back to its custom loop.
    """

    def __init__(self, run: Run, model: Any, call: KerasCall):
        super().__init__(run)
        self._model = model
        self.call = call

    def train_batch(self, logs: Any, sample_weight: Any, batch_size: Any) -> None:
        self.run.curves.fit_batch(logs)

    def epoch_end(self, step: int, given: dict[str, float]) -> dict[str, float]:
        history, bad = self.screen_given(step, {**given, **self._learning_rates()})
        self.run.write_epoch(history, step)
        refuse(step, bad)
        return given

    def _learning_rates(self) -> dict[str, float]:
        """The optimizer's learning rate(s), as Keras' TensorBoard callback writes them."""
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
