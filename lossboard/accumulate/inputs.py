"""What one batch's ``logs`` may hold, and the clear errors for what it may not.

Everything here runs on the host and reads only static facts (types, dtypes,
static shapes): nothing here copies a tensor's value from the device.
"""

from __future__ import annotations

import decimal
import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from lossboard.accumulate import reduction
from lossboard.accumulate.distribute import local_parts
from lossboard.accumulate.sums import HostSum

#: The name a bare value (not a mapping) is logged under, as Keras does.
DEFAULT_COMPONENT = "loss"

#: TensorFlow dtypes accepted as loss values: real numbers and booleans.
REAL_DTYPE_ENUMS = frozenset(
    d.as_datatype_enum
    for d in (
        tf.float16,
        tf.bfloat16,
        tf.float32,
        tf.float64,
        tf.int8,
        tf.int16,
        tf.int32,
        tf.int64,
        tf.uint8,
        tf.uint16,
        tf.uint32,
        tf.uint64,
        tf.bool,
    )
)

_EXPECTED = (
    "expected a real number: a Python or NumPy number, a scalar tensor, "
    "or a non-empty tensor of per-example losses"
)


def components(logs: Any, where: str) -> Mapping[str, Any]:
    """Returns ``logs`` as a mapping from component name to value.

    Args:
        logs: A mapping from component name to value, a single value (logged
            as ``"loss"``), or None (nothing to log).
        where: The calling method, for error messages.

    Raises:
        TypeError: When a key is not a string.
        ValueError: When a key is empty.
    """
    if logs is None:
        return {}
    if not isinstance(logs, Mapping):
        if isinstance(logs, tuple | list) and any(
            hasattr(v, "dtype") or isinstance(v, tuple | list) for v in logs
        ):
            raise TypeError(
                f"{where}: logs is a {type(logs).__name__} of {len(logs)} tensors or arrays, "
                "which would be read as one component's per-example values. Pass a dict that "
                "names each component, such as {'loss': loss, 'acc': acc}."
            )
        return {DEFAULT_COMPONENT: logs}
    plain = True
    for name in logs:
        if type(name) is not str:
            if not isinstance(name, str):
                raise TypeError(
                    f"{where}: component names must be strings, got {name!r} "
                    f"({type(name).__name__}). Use keys like 'loss' or 'kl'."
                )
            plain = False  # a str subclass, such as a NumPy string: used as its text
        if not name:
            raise ValueError(f"{where}: a component name is empty; name every component.")
        if not name.isascii():  # Fast path: ASCII names are always valid tag names
            _check_text(name, where)
    return logs if plain else {str(name): value for name, value in logs.items()}


def _check_text(name: str, where: str) -> None:
    """Refuses a name that cannot be written as UTF-8 (a lone surrogate), at the call."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"{where}: component name {name!r} cannot be written to an event file "
            f"({e.reason} at position {e.start}); use a name of valid Unicode text."
        ) from None


def describe(value: Any) -> str:
    """A short description of ``value`` for error messages."""
    if isinstance(value, tf.Tensor | tf.Variable):
        return f"a {value.dtype.name} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def label(name: str, weight: bool = False) -> str:
    """How errors name a component's values (or its ``sample_weight``)."""
    return f"sample_weight of component {name!r}" if weight else f"component {name!r}"


def bad_value(what: str, value: Any, why: str) -> TypeError | ValueError:
    """Builds the error for a rejected value; ``what`` comes from ``label``."""
    cls = ValueError if why.startswith("empty") else TypeError
    return cls(
        f"{what}: got {describe(value)}: {why}; {_EXPECTED}. Nothing from this batch was recorded."
    )


def check_tensor(what: str, value: tf.Tensor, allow_empty: bool = False) -> None:
    """Checks the dtype and static shape of a tensor value."""
    if value.dtype.as_datatype_enum not in REAL_DTYPE_ENUMS:
        kind = "complex" if value.dtype.is_complex else value.dtype.name
        raise bad_value(what, value, f"{kind} values have no mean")
    if value.shape.num_elements() == 0 and not allow_empty:
        raise bad_value(what, value, "empty tensor")


def host_array(what: str, value: Any) -> np.ndarray:
    """Returns a host value (number, NumPy value, list) as a float64 array.

    Python numbers NumPy keeps as objects (an int beyond int64 such as ``2**70``, a
    ``fractions.Fraction``, a ``decimal.Decimal``) are taken as ``float(value)``: the nearest
    float64, as an int64 value beyond 2**53 is too. That rounding is far finer than the
    float32 the epoch value is written in, so nothing is warned.

    Raises:
        TypeError: For strings, None, complex numbers and other non-numbers.
        ValueError: For empty lists and arrays, and numbers beyond float64's range.
    """
    if value is None or isinstance(value, str | bytes):
        raise bad_value(what, value, "not a number")
    if np.ma.isMaskedArray(value):  # its data would be averaged, masked elements included
        raise TypeError(
            f"{what}: got a NumPy masked array; its masked elements would be averaged in. Pass "
            "value.compressed() (the unmasked elements), or the data with "
            "sample_weight=~value.mask (weight 0 where masked). Nothing from this batch was "
            "recorded."
        )
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        raise bad_value(what, value, "complex values have no mean")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise bad_value(what, value, f"not convertible to an array ({err})") from None
    if array.dtype.kind == "O":
        array = _python_numbers(what, value, array)
    if array.dtype.kind not in "biuf":
        kind = "complex" if array.dtype.kind == "c" else f"{array.dtype} data"
        raise bad_value(what, value, f"{kind} values have no mean")
    if array.size == 0:
        raise bad_value(what, value, "empty list or array")
    return array.astype(np.float64, copy=False)


def _python_numbers(what: str, value: Any, array: np.ndarray) -> np.ndarray:
    """An object array (Python numbers NumPy has no dtype for) as float64, each ``float(x)``.

    Raises:
        TypeError: For an element that is not a real number, naming it.
        ValueError: For an element beyond float64's range, naming it.
    """
    flat = array.reshape(-1)
    whole = array.ndim == 0  # the value is the one number: the message names it once
    out = np.empty(flat.shape, np.float64)
    for i, item in enumerate(flat.tolist()):
        if isinstance(item, bool | numbers.Real | decimal.Decimal):
            try:
                out[i] = float(item)
                continue
            except OverflowError:
                given = (
                    _short(item)
                    if whole
                    else f"a {type(value).__name__} of {array.size} values holding {_short(item)}"
                )
                raise ValueError(
                    f"{what}: got {given}: beyond float64's "
                    "range (about 1.8e308), in which lossboard sums values; log a value within "
                    "it (a loss this large is written as inf in float32 anyway). Nothing from "
                    "this batch was recorded."
                ) from None
            except ValueError:  # a signaling NaN Decimal
                pass
        why = (
            "complex values have no mean"
            if isinstance(item, numbers.Complex)
            else "not a real number"
            if whole
            else f"it holds {describe(item)}, which is not a real number"
        )
        raise bad_value(what, value, why)
    return out.reshape(array.shape)


def _short(item: Any) -> str:
    """A number too long to show whole (``10**400``): its type and size."""
    if isinstance(item, int) and item.bit_length() > 200:  # str() refuses over 4300 digits
        return f"an int of about {round(item.bit_length() * math.log10(2))} digits"
    return describe(item)


def weight_for(name: str, sample_weight: Any) -> Any:
    """Picks the weight of component ``name`` from a per-call ``sample_weight``.

    A mapping gives each component its own weight (components it does not
    name are unweighted); any other value applies to every component.
    """
    if isinstance(sample_weight, Mapping):
        return sample_weight.get(name)
    return sample_weight


def check_batch_size(batch_size: Any, sample_weight: Any, where: str) -> Any:
    """Checks ``batch_size``: a positive int (NumPy ints become ints) or an integer tensor,
    or a mapping of them from component name to that component's example count.

    Raises:
        TypeError: For a value that is not an integer.
        ValueError: For an int below 1, or a non-mapping ``sample_weight`` as well.
    """
    if isinstance(batch_size, Mapping):
        # Components over different example counts in one step (a GAN's discriminator loss
        # over real and fake images, its generator loss over the fakes only).
        checked = {
            name: check_batch_size(n, None, f"{where}: batch_size[{name!r}]")
            for name, n in batch_size.items()
        }
        if not checked:
            raise ValueError(
                f"{where}: batch_size is an empty mapping; give each component its number of "
                "examples ({'d_loss': n_real + n_fake, 'g_loss': n_fake}), or one int for all."
            )
        batch_size = checked
    elif isinstance(batch_size, np.integer):
        batch_size = int(batch_size)
    elif (
        isinstance(batch_size, tf.Tensor | tf.Variable)
        and batch_size.dtype.is_integer
        and batch_size.shape.rank == 0
        and not tf.inside_function()
    ):
        # One scalar read: batch sizes come from shapes (tf.shape), which live on the host.
        batch_size = int(batch_size.numpy())
    if type(batch_size) is int:
        if batch_size < 1:
            raise ValueError(
                f"{where}: batch_size={batch_size}; expected the number of examples in this "
                "batch (>= 1), such as len(x)."
            )
    elif not isinstance(batch_size, dict) and not (
        isinstance(batch_size, tf.Tensor | tf.Variable)
        and batch_size.dtype.is_integer
        and batch_size.shape.rank == 0
    ):
        raise TypeError(
            f"{where}: batch_size is {describe(batch_size)}; expected the number of examples "
            "in this batch as an int (len(x), x.shape[0]) or, inside tf.function, an integer "
            "scalar tensor (tf.shape(x)[0])."
        )
    if sample_weight is not None and not isinstance(sample_weight, Mapping):
        raise ValueError(
            f"{where}: got both batch_size and sample_weight={describe(sample_weight)}. "
            "batch_size weights each scalar component by the batch's size and counts each "
            "per-example value once; sample_weight weights every value as Keras' Mean does. "
            "Pass one, or a sample_weight mapping for the components that need their own weight."
        )
    return batch_size


def weight_with_batch_size(
    name: str, value: Any, weight: Any, batch_size: Any, parts: tuple | None = None
) -> Any:
    """The weight of one component when the call passes ``batch_size``.

    A component with its own weight keeps it; a scalar (one mean per batch) is
    weighted by ``batch_size``; per-example values (rank >= 1) are unweighted,
    and their leading dimension must be ``batch_size`` where both are known.
    ``parts`` are the replicas' parts of a ``PerReplica`` value, refused here.
    """
    if parts is not None:
        raise ValueError(
            f"component {name!r}: batch_size with a PerReplica value; pass batch_size inside "
            "strategy.run (each replica's own share), or log per-example losses. Nothing from "
            "this batch was recorded."
        )
    if weight is not None:
        return weight
    shape = value.shape if isinstance(value, tf.Tensor | tf.Variable | np.ndarray) else None
    if shape is None:
        rank = np.ndim(value) if isinstance(value, list | tuple) else 0
        shape = np.shape(value) if rank else ()
    shape = tuple(shape)
    if not shape:
        return batch_size
    if type(batch_size) is int and shape[0] is not None and shape[0] != batch_size:
        raise ValueError(
            f"component {name!r}: got values of shape {shape}, whose leading dimension "
            f"{shape[0]} is not batch_size={batch_size}. With batch_size, log each component "
            "as one mean per batch (a scalar) or one value per example (leading dimension "
            "batch_size). Nothing from this batch was recorded."
        )
    return None


def weights_of_batch_sizes(
    logs: Mapping[str, Any], sample_weight: Any, batch_size: Mapping[str, Any]
) -> dict[str, Any]:
    """A per-component ``batch_size`` as the ``sample_weight`` mapping that weights each
    component the same way (``weight_with_batch_size``, component by component).

    Raises:
        ValueError: When the mapping misses a logged component or names one not logged.
    """
    missing = [name for name in logs if name not in batch_size]
    extra = [name for name in batch_size if name not in logs]
    if missing or extra:
        said = f"batch_size names {sorted(batch_size)} and the logs hold {list(logs)}"
        raise ValueError(
            f"{said}: "
            + (f"no batch size for {missing}; " if missing else "")
            + (f"{extra} not logged in this call; " if extra else "")
            + "give every logged component its number of examples, and only those. Nothing "
            "from this batch was recorded."
        )
    own = sample_weight if isinstance(sample_weight, Mapping) else {}
    return {
        name: weight_with_batch_size(
            name, value, own.get(name), batch_size[name], local_parts(value)
        )
        for name, value in logs.items()
    }


def graph_batch_size_checks(logs: Mapping[str, Any], batch_size: Any) -> list:
    """In a graph, the run-time checks of a tensor ``batch_size``: not negative (0 is a
    replica's empty share of a short last batch: it adds nothing), and the leading
    dimension of every per-example value. The batch's updates depend on them, so a
    failed check records nothing."""
    if isinstance(batch_size, Mapping):
        return [c for n, v in logs.items() for c in graph_batch_size_checks({n: v}, batch_size[n])]
    if not (isinstance(batch_size, tf.Tensor) and tf.inside_function()):
        return []
    checks = [tf.debugging.assert_non_negative(batch_size, message="batch_size")]
    for name, value in logs.items():
        if isinstance(value, tf.Tensor) and value.shape.rank:
            checks.append(
                tf.debugging.assert_equal(
                    tf.shape(value, out_type=batch_size.dtype)[0],
                    batch_size,
                    message=f"component {name!r}: the leading dimension is not batch_size",
                )
            )
    return checks


def check_weight_names(sample_weight: Any, logs: Mapping[str, Any], where: str) -> None:
    """Rejects a ``sample_weight`` mapping that names components not logged."""
    if isinstance(sample_weight, Mapping):
        unknown = sorted(set(sample_weight) - set(logs))
        if unknown:
            raise ValueError(
                f"{where}: sample_weight names {unknown} but this call logs "
                f"{sorted(logs)}; give weights only for components in logs."
            )


def weight_shape_plan(
    name: str, value_shape: tuple[int | None, ...], weight_shape: tuple[int | None, ...]
) -> tuple[int, int, int]:
    """How a weight of ``weight_shape`` spreads over a value of ``value_shape``.

    Follows ``tf.keras.metrics.Mean``: a weight with one dimension more or
    fewer whose extra last dimension is 1 is squeezed; a weight of lower rank
    covers the leading dimensions of the value (one weight per example); a
    weight of equal rank broadcasts as NumPy does.

    Returns:
        ``(squeeze_value, squeeze_weight, expand_weight)``: how many trailing
        size-1 dimensions to drop from the value and from the weight, then how
        many trailing dimensions to add to the weight before broadcasting it
        to the value's shape.

    Raises:
        ValueError: When the shapes do not fit.
    """
    vrank, wrank = len(value_shape), len(weight_shape)
    if wrank == 0:
        return 0, 0, 0
    squeeze_value = squeeze_weight = 0
    if vrank == wrank + 1 and value_shape[-1] == 1:
        squeeze_value, vrank, value_shape = 1, vrank - 1, value_shape[:-1]
    elif wrank == vrank + 1 and weight_shape[-1] == 1:
        squeeze_weight, wrank, weight_shape = 1, wrank - 1, weight_shape[:-1]
    if wrank > vrank:
        raise _weight_error(name, value_shape, weight_shape)
    expand = vrank - wrank
    padded = tuple(weight_shape) + (1,) * expand
    for v, w in zip(value_shape, padded, strict=True):
        if v is not None and w is not None and w not in (1, v):
            raise _weight_error(name, value_shape, weight_shape)
    return squeeze_value, squeeze_weight, expand


def _weight_error(name: str, value_shape: tuple, weight_shape: tuple) -> ValueError:
    return ValueError(
        f"component {name!r}: sample_weight of shape {tuple(weight_shape)} does not fit "
        f"values of shape {tuple(value_shape)}; expected a scalar, one weight per example "
        f"(shape {tuple(value_shape[:1])}), or a shape that broadcasts to "
        f"{tuple(value_shape)}. Nothing from this batch was recorded."
    )


def host_weighted(name: str, value: np.ndarray, weight: Any) -> HostSum:
    """Weighted sum, weight total and finiteness of a host value (``reduction.reference``)."""
    if weight is None:
        return reduction.reference(value)
    w = host_array(label(name, weight=True), weight)
    squeeze_v, squeeze_w, expand = weight_shape_plan(name, value.shape, w.shape)
    v = value.reshape(value.shape[: value.ndim - squeeze_v])
    w = w.reshape(w.shape[: w.ndim - squeeze_w] + (1,) * expand)
    return reduction.reference(v, np.broadcast_to(w, v.shape))


def flat_weighted(name: str, value: tf.Tensor, weight: Any) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Flattens a tensor value and its weight (broadcast as Keras' ``Mean`` does).

    Works eagerly and in a graph; shapes are checked statically.

    Returns:
        ``(values, weights)``, both rank 1 with one weight per element, or
        ``(values, None)`` when there is no weight.
    """
    if weight is None:
        return tf.reshape(value, [-1]), None
    # A replica that got no examples has no values and no weights: both may be empty.
    empty = value.shape.num_elements() in (0, None)
    weight = as_tensor(label(name, weight=True), weight, allow_empty=empty)
    squeeze_v, squeeze_w, expand = weight_shape_plan(name, tuple(value.shape), tuple(weight.shape))
    if squeeze_v:
        value = tf.squeeze(value, axis=-1)
    if squeeze_w:
        weight = tf.squeeze(weight, axis=-1)
    for _ in range(expand):
        weight = tf.expand_dims(weight, -1)
    weight = tf.broadcast_to(weight, tf.shape(value))
    return tf.reshape(value, [-1]), tf.reshape(weight, [-1])


def as_tensor(what: str, value: Any, allow_empty: bool = False) -> tf.Tensor:
    """A checked tensor (a snapshot, for variables) from any accepted value."""
    if isinstance(value, tf.Variable):
        value = tf.convert_to_tensor(value)
    if not isinstance(value, tf.Tensor):
        array = host_array(what, value)
        value = tf.constant(array)
    check_tensor(what, value, allow_empty)
    return value
