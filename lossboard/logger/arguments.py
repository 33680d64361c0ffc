"""Checks of ``LossLogger``'s arguments: what was given, what is expected, how to fix it."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from lossboard.accumulate import inputs as batch_lib
from lossboard.logger.keras_backend import keras
from lossboard.warn import warn

_KNOWN = (numbers.Real, np.ndarray, np.generic, tf.Tensor, tf.Variable)


def scalar(value: Any) -> float | None:
    """``value`` as a float if it is one real number (reads a tensor back), else None."""
    if isinstance(value, keras.Variable):
        value = value.value
    elif not isinstance(value, _KNOWN) and callable(getattr(value, "numpy", None)):
        value = value.numpy()  # another framework's variable (Keras 3.3's is not keras.Variable)
    if isinstance(value, tf.Tensor | tf.Variable):
        if value.shape != () or value.dtype.as_datatype_enum not in batch_lib.REAL_DTYPE_ENUMS:
            return None
        value = value.numpy()
    if isinstance(value, np.ndarray | np.generic):
        if value.shape != () or value.dtype.kind not in "biuf":
            return None
        value = value.item()
    if isinstance(value, numbers.Real):
        return float(value)
    return None


def check_update_freq(update_freq: Any) -> int | None:
    if update_freq == "epoch":
        return None
    if update_freq == "batch":  # as keras.callbacks.TensorBoard: every batch
        return 1
    if type(update_freq) is int and update_freq >= 1:
        return update_freq
    raise ValueError(
        f"update_freq: got {update_freq!r}; expected 'epoch', 'batch' or a positive int N "
        "(write batch curves every N train batches)."
    )


def check_components(components: Any) -> list[str]:
    if not isinstance(components, list | tuple) or not all(
        isinstance(c, str) and c for c in components
    ):
        raise TypeError(
            f"components: got {components!r}; expected a list of non-empty names, "
            "such as ['loss', 'kl']."
        )
    return list(components)


def check_hparams(hparams: Any) -> dict[str, bool | int | float | str]:
    if hparams is None:
        return {}
    if not isinstance(hparams, Mapping):
        raise TypeError(
            f"hparams: got {batch_lib.describe(hparams)}; expected a mapping such as "
            "{'lr': 1e-3, 'optimizer': 'adam'}."
        )
    out: dict[str, bool | int | float | str] = {}
    for name, value in hparams.items():
        if type(name) is not str or not name:
            raise TypeError(f"hparams: names must be non-empty strings, got {name!r}.")
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, bool | int | float | str):
            raise TypeError(
                f"hparams: {name!r} is {batch_lib.describe(value)}; TensorBoard's HParams "
                "dashboard takes bools, numbers and strings: pass str(value) if you need it."
            )
        if isinstance(value, int) and not isinstance(value, bool):
            _check_exact(name, value)
        out[name] = value
    return out


#: The largest integer whose float64 no other integer shares (JavaScript's MAX_SAFE_INTEGER).
MAX_EXACT_INT = 2**53 - 1


def _check_exact(name: str, value: int) -> None:
    """Warns when an int hparam cannot be told apart from its neighbours once stored.

    TensorBoard's HParams stores every number as a float64 (``number_value``), so
    ``2**53 + 1`` is stored as ``2**53``, and two runs differing only in it would be
    one configuration.

    Raises:
        ValueError: When ``value`` is beyond float64's range altogether.
    """
    if -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
        return
    try:
        stored = int(float(value))
    except OverflowError:
        raise ValueError(
            f"hparams: {name!r} = {value} is beyond the range of a float64, in which "
            "TensorBoard's HParams stores numbers; pass it as a string (str(value))."
        ) from None
    how = "exactly" if stored == value else f"as {stored}, not {value}"
    warn(
        f"hparams: {name!r} = {value} is stored {how}: TensorBoard's HParams stores numbers "
        f"as float64, which holds integers apart only up to 2**53 - 1 = {MAX_EXACT_INT}, so "
        f"the integers near it are stored as {stored} too and runs that differ only in "
        f"{name!r} read back as one configuration. Pass it as a string (str(value)) to keep "
        "it exact, or use a number within +/-(2**53 - 1)."
    )


#: The largest step of an event (an int64).
MAX_STEP = 2**63 - 1


def check_epoch(epoch: Any) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral | np.integer):
        raise TypeError(
            f"on_epoch_end: epoch must be an int (the TensorBoard step), got {epoch!r} "
            f"({type(epoch).__name__})."
        )
    step = int(epoch)
    if step < 0:
        raise ValueError(f"on_epoch_end: epoch must be >= 0, got {epoch}.")
    if step > MAX_STEP:
        raise ValueError(
            f"on_epoch_end: epoch {epoch} is beyond the largest step an event file holds "
            f"(2**63 - 1 = {MAX_STEP}); number epochs from 0 (or from logger.initial_epoch)."
        )
    return step


def given_logs(logs: Any) -> dict[str, float]:
    """Checks the scalars passed to ``on_epoch_end`` and returns them as floats."""
    if logs is None:
        return {}
    if not isinstance(logs, Mapping):
        raise TypeError(
            f"on_epoch_end: logs must be a mapping such as {{'lr': 1e-3}}, got "
            f"{batch_lib.describe(logs)}."
        )
    out = {}
    for name, value in logs.items():
        if type(name) is not str or not name:
            raise TypeError(f"on_epoch_end: log names must be non-empty strings, got {name!r}.")
        number = scalar(value)
        if number is None:
            raise TypeError(
                f"on_epoch_end: log {name!r}: got {batch_lib.describe(value)}; expected one "
                "real number (a scalar), such as a learning rate."
            )
        out[name] = number
    return out


def check_fold_every(fold_every: Any) -> None:
    if type(fold_every) is not int or fold_every < 1:
        raise ValueError(f"fold_every: got {fold_every!r}; expected an int >= 1, such as 16384.")


def check_eager(where: str) -> None:
    """Refuses a call made while a ``tf.function`` is traced (it reads values back)."""
    if tf.inside_function():
        raise RuntimeError(
            f"{where} was called inside a tf.function; it reads values back and writes them, "
            "so call it eagerly, after the step returns (outside tf.function). Inside a step, "
            "log values with on_train_batch_end or on_test_batch_end. The logger is unchanged."
        )


def batch_and_logs(batch: Any, logs: Any, where: str) -> Any:
    """The logs of a batch call, whose ``batch`` index is optional.

    ``on_train_batch_end(step, logs)`` is Keras' form; ``on_train_batch_end(logs)`` (a mapping
    first) and ``on_train_batch_end(logs=logs)`` log the same. Any other first argument
    without ``logs`` would log nothing in silence, so it is refused.
    """
    if logs is not None or batch is None:
        return logs
    if isinstance(batch, Mapping):
        return batch  # the logs, passed first: the batch index is not needed
    if isinstance(batch, numbers.Integral | np.integer) or _integer_tensor(batch):
        return None  # an index alone: nothing to log, as Keras' own hooks
    raise TypeError(
        f"{where}: got {batch_lib.describe(batch)} as the batch index and no logs. Pass the "
        f"losses as logs: {where}(step, {{'loss': loss}}) or {where}(logs={{'loss': loss}})."
    )


def _integer_tensor(value: Any) -> bool:
    """A scalar integer tensor or array: a step counter inside ``tf.function``, say."""
    if isinstance(value, tf.Tensor | tf.Variable):
        return value.dtype.is_integer and value.shape.rank == 0
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu"
