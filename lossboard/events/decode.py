"""Event records -> scalars: many records at once with NumPy, the rest with the protos.

``tf.summary.scalar`` writes every point in one layout (the tag, a float32 or
float64 scalar tensor, the ``scalars`` plugin's metadata), so its records are
decoded field by field for all records at once (``scalar_layout``). Any
record in another layout (hparams, Keras' model config, TF1 ``simple_value``,
a writer that orders fields differently, a scalar of another dtype) is parsed
with the protos that the ``tensorboard`` package ships (``decode``), which gives
the same values. Scalars of every real and bool dtype are read, as TensorBoard's
Scalars dashboard reads them; a ``scalars`` value that is not one real number
is reported to the caller, to be warned about, never dropped in silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, types_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from lossboard.events.framing import at, distinct

# The dtypes of a scalar TensorBoard's Scalars dashboard plots (its Python loader reads a
# value as ``tensor_util.make_ndarray(tensor).item()``): every real and bool dtype. Each with
# the NumPy dtype of its ``tensor_content`` (TensorFlow's writers use that field) and the
# field that holds its values otherwise. bfloat16 too (TensorBoard's own loader cannot decode
# it): its bits are the high half of a float32's.
_REAL_DTYPES = {
    types_pb2.DT_FLOAT: ("<f4", "float_val"),
    types_pb2.DT_DOUBLE: ("<f8", "double_val"),
    types_pb2.DT_HALF: ("<f2", "half_val"),
    types_pb2.DT_BFLOAT16: ("<u2", "half_val"),
    types_pb2.DT_INT8: ("<i1", "int_val"),
    types_pb2.DT_UINT8: ("<u1", "int_val"),
    types_pb2.DT_INT16: ("<i2", "int_val"),
    types_pb2.DT_UINT16: ("<u2", "int_val"),
    types_pb2.DT_INT32: ("<i4", "int_val"),
    types_pb2.DT_UINT32: ("<u4", "uint32_val"),
    types_pb2.DT_INT64: ("<i8", "int64_val"),
    types_pb2.DT_UINT64: ("<u8", "uint64_val"),
    types_pb2.DT_BOOL: ("?", "bool_val"),
}
_DTYPE_NAMES = {types_pb2.DT_HALF: "float16", types_pb2.DT_FLOAT: "float32"}
_DTYPE_NAMES[types_pb2.DT_DOUBLE] = "float64"
# Field keys and fixed bytes of the layout tf.summary.scalar writes.
_WALL_TIME, _STEP, _SUMMARY, _VALUE, _TAG = 0x09, 0x10, 0x2A, 0x0A, 0x0A
# tensor (field 8) of 10 or 14 bytes: dtype float/double, shape [], tensor_content of 4 or 8 bytes
_FLOAT_TENSOR = int.from_bytes(bytes.fromhex("420a080112002204"), "little")
_DOUBLE_TENSOR = int.from_bytes(bytes.fromhex("420e080212002208"), "little")
_SCALARS_METADATA = bytes.fromhex("4a0b0a090a07") + b"scalars"  # metadata (field 9), 13 bytes
_METADATA_HEAD = int.from_bytes(_SCALARS_METADATA[:8], "little")
_METADATA_TAIL = int.from_bytes(_SCALARS_METADATA[-8:], "little")
_LONGEST_STEP = 5  # varint bytes: steps up to 2**35
PAD = 64  # zero bytes after a block, so that reads past a record stay in bounds


def padded(block: np.ndarray) -> bool:
    """Whether ``block`` is a view of the start of an array with ``PAD`` more bytes."""
    base = block.base
    return (
        isinstance(base, np.ndarray)
        and base.ndim == 1
        and len(base) >= len(block) + PAD
        and base.__array_interface__["data"][0] == block.__array_interface__["data"][0]
    )


class NotAnEvent(ValueError):
    """A record whose checksums hold but which is not an Event proto."""


@dataclass
class Layout:
    """Where the fields are in the records written in ``tf.summary.scalar``'s layout.

    ``ok[i]`` says whether record i is in that layout; the other arrays hold its
    fields (meaningless where ``ok`` is False). ``block`` is the block, padded.
    """

    block: np.ndarray
    starts: np.ndarray
    ok: np.ndarray
    step_size: np.ndarray
    tag_start: np.ndarray
    tag_length: np.ndarray
    content: np.ndarray
    is_float: np.ndarray

    def step(self, rows: np.ndarray) -> np.ndarray:
        """Steps of the records ``rows`` (0 where the step field is left out)."""
        size = self.step_size[rows]
        return _varint_value(self.block, self.starts[rows] + 10, size)

    def wall_time(self, rows: np.ndarray) -> np.ndarray:
        """Wall times of the records ``rows``."""
        return at(self.block, self.starts[rows] + 1, "<f8")

    def value(self, rows: np.ndarray) -> np.ndarray:
        """Values of the records ``rows``, as float64 (float32 ones converted exactly)."""
        offsets = self.content[rows]
        single = at(self.block, offsets, "<f4").astype(np.float64)
        return np.where(self.is_float[rows], single, at(self.block, offsets, "<f8"))


def _varint_size(block: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Byte counts of varints of at most ``_LONGEST_STEP`` bytes (0: longer)."""
    size = np.zeros(len(offsets), np.int64)
    going = np.ones(len(offsets), bool)
    for k in range(_LONGEST_STEP):
        ends = going & (block[offsets + k] < 0x80)
        size[ends] = k + 1
        going &= ~ends
    return size


def _varint_value(block: np.ndarray, offsets: np.ndarray, size: np.ndarray) -> np.ndarray:
    value = np.zeros(len(offsets), np.int64)
    for k in range(_LONGEST_STEP):
        byte = (block[offsets + k] & 0x7F).astype(np.int64)
        value += np.where(k < size, byte << (7 * k), 0)
    return value


def scalar_layout(block: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> Layout:
    """Finds the fields of every record of ``block`` in ``tf.summary.scalar``'s layout.

    A record is accepted only if it is exactly: wall_time, an optional step,
    and a summary holding one value of a tag, a float32/float64 scalar tensor
    and the ``scalars`` plugin metadata, each length ending where it should.
    Such bytes are a valid Event with that one scalar; everything else gets
    ``ok`` False and goes to ``decode``. Only positions and steps are
    computed here; values and wall times are read for the rows asked for.
    """
    n = len(block)
    ends = starts + lengths
    pad = np.concatenate([block, np.zeros(PAD, np.uint8)]) if not padded(block) else block.base
    assert isinstance(pad, np.ndarray)
    ok = (lengths >= 40) & (pad[starts] == _WALL_TIME)
    pos = starts + 9
    has_step = pad[pos] == _STEP
    size = _varint_size(pad, pos + 1)
    ok &= ~has_step | (size > 0)
    size[~has_step] = 0
    pos = np.minimum(pos + (size > 0) + size, n)
    summary_length = pad[pos + 1].astype(np.int64)
    ok &= (pad[pos] == _SUMMARY) & (summary_length < 0x80) & (pos + 2 + summary_length == ends)
    ok &= (pad[pos + 2] == _VALUE) & (pad[pos + 3] == summary_length - 2)
    ok &= (pad[pos + 4] == _TAG) & (pad[pos + 5] < 0x80)
    tag_start = pos + 6
    tag_length = pad[pos + 5].astype(np.int64)
    tensor = np.minimum(tag_start + tag_length, n)
    head = at(pad, tensor, "<u8")
    is_float = head == _FLOAT_TENSOR
    ok &= is_float | (head == _DOUBLE_TENSOR)
    metadata = np.minimum(tensor + np.where(is_float, 12, 16), n)
    ok &= (at(pad, metadata, "<u8") == _METADATA_HEAD) & (
        at(pad, metadata + 5, "<u8") == _METADATA_TAIL
    )
    ok &= metadata + len(_SCALARS_METADATA) == ends
    return Layout(pad, starts, ok, size, tag_start, tag_length, tensor + 8, is_float)


def _factorize(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(index of a first occurrence of each distinct key, each key's group)``.

    A block holds a handful of tags in many records: look the keys up among the
    distinct ones of a prefix (cheap), and sort them all only if that misses some.
    """
    known = np.unique(key[:256])
    for _ in range(4):
        group = np.minimum(np.searchsorted(known, key), len(known) - 1)
        missing = known[group] != key
        if not missing.any():
            break
        known = np.union1d(known, np.unique(key[missing][:4096]))
    else:
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return first, inverse.ravel()
    if len(known) > 64:
        _, first = np.unique(group, return_index=True)
        return first, group.astype(np.int64)
    first = np.array([int(np.argmax(group == g)) for g in range(len(known))], np.int64)
    return first, group.astype(np.int64)


def group_tags(layout: Layout, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Groups the records ``rows`` by tag: ``(a row of each tag, each row's group)``.

    Tags are compared as 64-bit words (hashed when longer than 8 bytes, and the
    grouping checked word by word, so a hash collision cannot merge two tags).
    """
    firsts: list[np.ndarray] = []
    group_of = np.empty(len(rows), np.int64)
    lengths = layout.tag_length[rows]
    for length in distinct(lengths):
        members = np.flatnonzero(lengths == length)
        starts = layout.tag_start[rows[members]]
        words = [np.zeros(len(members), np.uint64)]
        for k in range(0, length, 8):
            word = at(layout.block, starts + k, "<u8")
            if length - k < 8:
                word = word & np.uint64((1 << (8 * (length - k))) - 1)
            words.append(word)
        key = words[0]
        for word in words[1:]:
            key = (key * np.uint64(0x9E3779B97F4A7C15)) ^ word
        first, inverse = _factorize(key)
        if not all(
            np.array_equal(w, w[first][inverse]) for w in words
        ):  # a collision: compare bytes
            raw = np.stack([layout.block[starts + k] for k in range(length)], axis=1)
            _, first, inverse = np.unique(raw, axis=0, return_index=True, return_inverse=True)
            inverse = inverse.ravel()
        group_of[members] = inverse + sum(len(f) for f in firsts)
        firsts.append(rows[members[first]])
    return (np.concatenate(firsts) if firsts else np.zeros(0, np.int64)), group_of


def decode(
    record: bytes, plugin_of: dict[str, str], skipped: dict[str, list] | None = None
) -> tuple[list[tuple], dict[str, Any]]:
    """``[(tag, step, value, wall_time), ...]`` and hparams of one record, via the protos.

    ``plugin_of`` maps each tag to the plugin its metadata named; it is updated,
    since TF2 may write a tag's metadata with its first value only.
    ``skipped``, when given, collects the values of the ``scalars`` plugin that
    are not one real number (a string, a complex number, several numbers):
    ``{tag: [what the tensor is, how many]}``, for the caller to warn about.

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
        number: float | None = None
        if value.HasField("simple_value"):
            number = value.simple_value
        elif value.HasField("tensor") and plugin in ("scalars", ""):
            number, what = _scalar(value.tensor)
            if number is None and plugin == "scalars" and skipped is not None:
                skipped.setdefault(value.tag, [what, 0])[1] += 1
        if number is not None:
            points.append((value.tag, event.step, number, event.wall_time))
    return points, hparams


def dtype_name(dtype: int) -> str:
    """TensorFlow's name of a ``DataType``: ``float32``, ``uint8``, ``complex64``...

    Examples:
        >>> dtype_name(types_pb2.DT_FLOAT), dtype_name(types_pb2.DT_UINT64), dtype_name(999)
        ('float32', 'uint64', 'dtype 999')
    """
    if dtype in _DTYPE_NAMES:
        return _DTYPE_NAMES[dtype]
    try:
        return types_pb2.DataType.Name(dtype)[3:].lower()
    except ValueError:
        return f"dtype {dtype}"


def _scalar(tensor: Any) -> tuple[float | None, str]:
    """The value of a ``TensorProto`` that holds one real number (a bool counts as 0 or 1), or
    None; and what the tensor is (``"a complex64 tensor"``), to say why it was not read.

    Reads what TensorBoard's Scalars dashboard plots: a tensor of one element (any shape,
    as ``make_ndarray(tensor).item()``) of a real or bool dtype, from ``tensor_content`` or
    from the dtype's own field.
    """
    dims = [d.size for d in tensor.tensor_shape.dim]
    what = f"a {dtype_name(tensor.dtype)} tensor"
    if dims:
        what += f" of shape [{', '.join(map(str, dims))}]"
    known = _REAL_DTYPES.get(tensor.dtype)
    if known is None or int(np.prod(dims, dtype=np.int64)) != 1:
        return None, what
    dtype, field = known
    if tensor.tensor_content:
        if len(tensor.tensor_content) != np.dtype(dtype).itemsize:
            return None, f"{what} of {len(tensor.tensor_content)} bytes"
        array = np.frombuffer(tensor.tensor_content, dtype)
    else:
        values = getattr(tensor, field)
        if len(values) != 1:
            return None, f"{what} holding {len(values)} values"
        array = np.array(values, np.uint16 if field == "half_val" else None)
        if tensor.dtype == types_pb2.DT_HALF:
            array = array.view(np.float16)
    if tensor.dtype == types_pb2.DT_BFLOAT16:
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return float(array[0]), what


def _hparams(content: bytes) -> dict[str, Any]:
    data = plugin_data_pb2.HParamsPluginData()
    try:
        data.ParseFromString(content)
    except Exception:  # noqa: BLE001 - malformed hparams are not scalars either
        return {}
    if not data.HasField("session_start_info"):
        return {}
    out: dict[str, Any] = {}
    for name, value in sorted(data.session_start_info.hparams.items()):  # a map: no order
        kind = value.WhichOneof("kind")
        out[name] = getattr(value, kind) if kind else None
    return out
