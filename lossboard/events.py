"""Event records -> scalars: many records at once with NumPy, the rest with the protos.

``tf.summary.scalar`` writes every point in one layout (the tag, a float32 or
float64 scalar tensor, the ``scalars`` plugin's metadata), so its records are
decoded field by field for all records at once (:func:`scalar_layout`). Any
record in another layout (hparams, Keras' model config, TF1 ``simple_value``,
a writer that orders fields differently) is parsed with the protos that the
``tensorboard`` package ships (:func:`decode`), which gives the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, types_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from lossboard.records import gather

_NUMPY_DTYPES = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_HALF: np.float16,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
}
# Field keys and fixed bytes of the layout tf.summary.scalar writes.
_WALL_TIME, _STEP, _SUMMARY, _VALUE, _TAG, _TENSOR, _METADATA = (
    0x09,
    0x10,
    0x2A,
    0x0A,
    0x0A,
    0x42,
    0x4A,
)
_FLOAT_TENSOR = bytes.fromhex("0801120022 04".replace(" ", ""))  # dtype, shape [], content
_DOUBLE_TENSOR = bytes.fromhex("0802120022 08".replace(" ", ""))
_SCALARS_METADATA = bytes.fromhex("4a0b0a090a07") + b"scalars"
_LONGEST_STEP = 5  # varint bytes: steps up to 2**35


class NotAnEvent(ValueError):
    """A record whose checksums hold but which is not an Event proto."""


@dataclass
class Layout:
    """Fields of the records written in ``tf.summary.scalar``'s layout.

    ``ok[i]`` says whether record i is in that layout; the other arrays hold its
    fields (meaningless where ``ok`` is False).
    """

    ok: np.ndarray
    wall_time: np.ndarray
    step: np.ndarray
    tag_start: np.ndarray
    tag_length: np.ndarray
    value: np.ndarray


def _bytes_equal(block: np.ndarray, offsets: np.ndarray, expected: bytes) -> np.ndarray:
    ok = np.ones(len(offsets), bool)
    for k, byte in enumerate(expected):
        ok &= block[offsets + k] == byte
    return ok


def _varint(block: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and byte counts of varints of at most ``_LONGEST_STEP`` bytes (count 0: longer)."""
    value = np.zeros(len(offsets), np.int64)
    size = np.zeros(len(offsets), np.int64)
    going = np.ones(len(offsets), bool)
    for k in range(_LONGEST_STEP):
        byte = block[offsets + k].astype(np.int64)
        value += np.where(going, (byte & 0x7F) << (7 * k), 0)
        ends = going & (byte < 0x80)
        size[ends] = k + 1
        going &= ~ends
    return value, size


def scalar_layout(block: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> Layout:
    """Decodes every record of ``block`` that is in ``tf.summary.scalar``'s layout.

    A record is accepted only if it is exactly: wall_time, an optional step,
    and a summary holding one value of a tag, a float32/float64 scalar tensor
    and the ``scalars`` plugin metadata, each length ending where it should.
    Such bytes are a valid Event with that one scalar; everything else gets
    ``ok`` False and goes to :func:`decode`.
    """
    n = len(block)
    ends = starts + lengths
    # Reads past a record stay inside the block (clipped) and are rejected by the checks.
    pad = np.concatenate([block, np.zeros(64, np.uint8)])
    ok = (lengths >= 40) & (pad[starts] == _WALL_TIME)
    wall_time = gather(pad, starts + 1, 8).view("<f8").ravel()
    pos = starts + 9
    has_step = pad[pos] == _STEP
    step, size = _varint(pad, pos + 1)
    ok &= ~has_step | (size > 0)
    step = np.where(has_step, step, 0)
    pos = np.where(has_step, pos + 1 + size, pos)
    pos = np.minimum(pos, n)
    ok &= (pad[pos] == _SUMMARY) & (pad[pos + 1] < 0x80) & (pos + 2 + pad[pos + 1] == ends)
    ok &= (pad[pos + 2] == _VALUE) & (pad[pos + 3].astype(np.int64) == pad[pos + 1] - 2)
    ok &= (pad[pos + 4] == _TAG) & (pad[pos + 5] < 0x80)
    tag_start = pos + 6
    tag_length = pad[pos + 5].astype(np.int64)
    tensor = np.minimum(tag_start + tag_length, n)
    is_float = (pad[tensor + 1] == 10) & _bytes_equal(pad, tensor + 2, _FLOAT_TENSOR)
    is_double = (pad[tensor + 1] == 14) & _bytes_equal(pad, tensor + 2, _DOUBLE_TENSOR)
    ok &= (pad[tensor] == _TENSOR) & (is_float | is_double)
    content = tensor + 8
    value = np.where(
        is_float,
        gather(pad, content, 4).view("<f4").ravel().astype(np.float64),
        gather(pad, content, 8).view("<f8").ravel(),
    )
    metadata = np.minimum(tensor + 2 + pad[tensor + 1], n)
    ok &= _bytes_equal(pad, metadata, _SCALARS_METADATA)
    ok &= metadata + len(_SCALARS_METADATA) == ends
    return Layout(ok, wall_time, step, tag_start, tag_length, value)


def decode(record: bytes, plugin_of: dict[str, str]) -> tuple[list[tuple], dict[str, Any]]:
    """``[(tag, step, value, wall_time), ...]`` and hparams of one record, via the protos.

    ``plugin_of`` maps each tag to the plugin its metadata named; it is updated,
    since TF2 may write a tag's metadata with its first value only.

    Raises:
        NotAnEvent: When the bytes do not parse as an Event.
    """
    event = event_pb2.Event()
    try:
        event.ParseFromString(record)
    except Exception as error:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise NotAnEvent(str(error)) from error
    points: list[tuple] = []
    hparams: dict[str, Any] = {}
    if not event.HasField("summary"):
        return points, hparams
    for value in event.summary.value:
        if value.HasField("metadata") and value.metadata.plugin_data.plugin_name:
            plugin_of[value.tag] = value.metadata.plugin_data.plugin_name
        plugin = plugin_of.get(value.tag, "")
        if plugin == "hparams":
            hparams.update(_hparams(value.metadata.plugin_data.content))
            continue
        if value.HasField("simple_value"):
            number: float | None = value.simple_value
        elif value.HasField("tensor") and plugin in ("scalars", ""):
            number = _scalar(value.tensor)
        else:
            number = None
        if number is not None:
            points.append((value.tag, event.step, number, event.wall_time))
    return points, hparams


def _scalar(tensor: Any) -> float | None:
    """The value of a scalar ``TensorProto``, or None if it is not one real number."""
    if tensor.tensor_shape.dim:
        return None
    for field in ("float_val", "double_val", "int_val", "int64_val", "half_val"):
        values = getattr(tensor, field)
        if values:
            if field == "half_val":
                return float(np.array(values[0], np.uint16).view(np.float16))
            return float(values[0])
    dtype = _NUMPY_DTYPES.get(tensor.dtype)
    if dtype is not None and len(tensor.tensor_content) >= np.dtype(dtype).itemsize:
        return float(np.frombuffer(tensor.tensor_content, dtype)[0])
    return None


def _hparams(content: bytes) -> dict[str, Any]:
    data = plugin_data_pb2.HParamsPluginData()
    try:
        data.ParseFromString(content)
    except Exception:  # noqa: BLE001 - malformed hparams are not scalars either
        return {}
    if not data.HasField("session_start_info"):
        return {}
    out: dict[str, Any] = {}
    for name, value in data.session_start_info.hparams.items():
        kind = value.WhichOneof("kind")
        out[name] = getattr(value, kind) if kind else None
    return out
