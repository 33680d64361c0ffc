"""Scalar points appended to an event file in bulk: no TensorFlow op per point.

A point written with ``tf.summary`` is an eager op (about 0.1 ms here), and
TensorFlow keeps 1-2 KB of memory for good per op it ran with a new step
(1M batch-curve points grew a process by 4 GB). ``PointsFile`` encodes many
points at once with NumPy, as the exact bytes ``tf.summary.scalar`` writes
(a float32 scalar tensor with the ``scalars`` plugin's metadata, one point per
event: TensorBoard and ``lossboard.load`` read them as Keras' own points),
frames them as records (length, its masked CRC32C, data, its masked CRC32C)
and appends them with one write.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import time
from typing import IO, Any, NamedTuple

import numpy as np

from lossboard.events import files
from lossboard.events.framing import HEADER, masked_crc32c, masked_crc32c_at

# An Event: wall_time (field 1, double), step (field 2, varint, left out when 0),
# summary (field 5) holding one Summary.Value: tag (1), tensor (8), metadata (9).
_FLOAT_TENSOR = bytes.fromhex("420a080112002204")  # dtype float, shape [], 4 bytes of content
SCALARS_METADATA = bytes.fromhex("4a0b0a090a07") + b"scalars"
_FILE_VERSION = b"\x1a\x0dbrain.Event:2"  # file_version (field 3)
_ids = itertools.count()


def varint(n: int) -> bytes:
    """Protobuf's base-128 encoding of a non-negative int."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _between(tag: str) -> bytes:
    """The bytes of a point's event between its step and its float32 value."""
    name = tag.encode()
    item_length = 1 + len(varint(len(name))) + len(name) + len(_FLOAT_TENSOR) + 4
    item_length += len(SCALARS_METADATA)
    summary_length = 1 + len(varint(item_length)) + item_length
    return (
        b"\x2a"
        + varint(summary_length)
        + b"\x0a"
        + varint(item_length)
        + b"\x0a"
        + varint(len(name))
        + name
        + _FLOAT_TENSOR
    )


def record(data: bytes) -> bytes:
    """``data`` framed as one record (the framing ``tf.io.TFRecordWriter`` writes)."""
    length = struct.pack("<Q", len(data))
    crcs = masked_crc32c(length), masked_crc32c(data)
    return length + struct.pack("<I", crcs[0]) + data + struct.pack("<I", crcs[1])


def hparams_record(values: dict[str, Any], trial_id: str, wall_time: float) -> bytes:
    """The record ``hp.hparams(values, trial_id=...)`` writes at step 0, without TensorFlow:
    an event holding TensorBoard's ``hparams_pb`` summary (the HParams dashboard's session
    start), for a run's own folder.

    Examples:
        >>> len(hparams_record({"lr": 0.1}, "run", 1.7e9)) > 16
        True
    """
    from tensorboard.plugins.hparams import summary_v2 as hp

    summary = hp.hparams_pb(dict(values), trial_id=trial_id).SerializeToString()
    event = b"\x09" + struct.pack("<d", wall_time) + b"\x2a" + varint(len(summary)) + summary
    return record(event)


class Points(NamedTuple):
    """Scalar points: point ``i`` is ``tags[tag[i]]`` = ``value[i]`` at ``step[i]``."""

    step: np.ndarray  # int64
    wall_time: np.ndarray  # float64, seconds since the epoch
    tag: np.ndarray  # int, an index into ``tags``
    value: np.ndarray  # float64 (written as float32, as tf.summary.scalar does)
    tags: list[str]


def _put(out: np.ndarray, starts: np.ndarray, rows: np.ndarray) -> None:
    """``out[starts[i]:starts[i] + k] = rows[i]`` for every i (``rows`` is ``(n, k)`` uint8)."""
    out[starts[:, None] + np.arange(rows.shape[1])] = rows


def encode(points: Points) -> bytes:
    """The records of ``points``, in their order, as one block of bytes.

    Every field is placed with a few NumPy operations per tag and per length
    of the step's varint, whatever the number of points.
    """
    n = len(points.step)
    if n == 0:
        return b""
    steps = np.asarray(points.step, np.int64)
    if steps.min() < 0:
        raise ValueError(f"steps must be >= 0; got {int(steps.min())}.")
    # varint bytes of each step; a step of 0 is left out of the event (proto3's default)
    step_bytes = np.where(steps > 0, 1 + (np.maximum(_bit_length(steps), 1) + 6) // 7, 0)
    betweens = [np.frombuffer(_between(t), np.uint8) for t in points.tags]
    tag = np.asarray(points.tag, np.intp)
    between_len = np.array([len(b) for b in betweens], np.int64)[tag]
    data_len = 9 + step_bytes + between_len + 4 + len(SCALARS_METADATA)
    start = np.zeros(n, np.int64)
    np.cumsum(data_len[:-1] + HEADER + 4, out=start[1:])
    out = np.zeros(int(start[-1] + data_len[-1] + HEADER + 4), np.uint8)
    _put(out, start, data_len.astype("<u8").view(np.uint8).reshape(n, 8))
    for length in np.unique(data_len).tolist():
        rows = data_len == length
        crc = masked_crc32c(struct.pack("<Q", length))
        _put(out, start[rows] + 8, np.full((int(rows.sum()), 1), crc, "<u4").view(np.uint8))
    body = start + HEADER
    out[body] = 0x09
    walls = np.asarray(points.wall_time, "<f8")
    _put(out, body + 1, walls.view(np.uint8).reshape(n, 8))
    out[body[step_bytes > 0] + 9] = 0x10
    for k in range(int(step_bytes.max()) - 1):  # base-128 digits, low first
        rows = step_bytes > k + 1
        digit = (steps[rows] >> (7 * k)) & 0x7F
        more = np.where(step_bytes[rows] > k + 2, 0x80, 0)
        out[body[rows] + 10 + k] = digit | more
    after_step = body + 9 + step_bytes
    for t, between in enumerate(betweens):
        rows = tag == t
        if rows.any():
            _put(out, after_step[rows], np.broadcast_to(between, (int(rows.sum()), len(between))))
    with np.errstate(over="ignore"):  # beyond float32: an infinity, as tf.summary.scalar writes
        values = np.asarray(points.value, np.float64).astype("<f4")
    value_at = after_step + between_len
    _put(out, value_at, values.view(np.uint8).reshape(n, 4))
    meta = np.frombuffer(SCALARS_METADATA, np.uint8)
    _put(out, value_at + 4, np.broadcast_to(meta, (n, len(meta))))
    for length in np.unique(data_len).tolist():
        rows = data_len == length
        crcs = masked_crc32c_at(out, body[rows], length).astype("<u4")
        _put(out, body[rows] + length, crcs.view(np.uint8).reshape(-1, 4))
    return out.tobytes()


def _bit_length(values: np.ndarray) -> np.ndarray:
    """Bits needed for each non-negative int64."""
    bits = np.zeros(len(values), np.int64)
    rest = values.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        big = rest >= (1 << shift)
        bits[big] += shift
        rest[big] >>= shift
    return bits + (rest > 0)


class PointsFile:
    """An event file of its own in ``directory``, to which points are appended in bulk.

    TensorBoard reads every ``events.out.tfevents.*`` file of a run's split
    folder, so these points show next to those of the split's ``tf.summary``
    writer. The file starts with the ``brain.Event:2`` version record, as
    TensorFlow's files do (TensorBoard then never takes a smaller step for a
    restart of the run).

    Args:
        directory: The folder (created if missing), local or ``scheme://``.

    Examples:
        >>> import numpy as np, lossboard.reader.read
        >>> f = PointsFile("logs/doc-points/train")
        >>> f.write(Points(np.array([1, 2]), np.array([1.7e9, 1.7e9]),
        ...                np.array([0, 0]), np.array([0.5, 0.25]), ["batch_loss"]))
        >>> f.close()
        >>> lossboard.load("logs/doc-points")["value"].tolist()
        [0.5, 0.25]
    """

    def __init__(self, directory: str):
        stamp, host, pid, uid = int(time.time()), socket.gethostname(), os.getpid(), next(_ids)
        name = f"events.out.tfevents.{stamp}.{host}.{pid}.{uid}.lossboard.v2"
        if files.is_remote(directory):
            import tensorflow as tf

            tf.io.gfile.makedirs(directory)
            self.path = files.join(directory, name)
            self._file: IO[bytes] | Any = tf.io.gfile.GFile(self.path, "wb")
        else:
            os.makedirs(directory, exist_ok=True)
            self.path = os.path.join(directory, name)
            self._file = open(self.path, "ab")  # noqa: SIM115 (kept open while the run lasts)
        self._closed = False
        self._good = 0  # bytes at the start of the file known to be whole records
        try:
            self._file.write(record(b"\x09" + struct.pack("<d", time.time()) + _FILE_VERSION))
            self.flush()
        except OSError:
            self.abandon()
            raise

    def write(self, points: Points) -> None:
        """Appends ``points`` (not yet flushed)."""
        self._file.write(encode(points))

    def write_record(self, framed: bytes) -> None:
        """Appends one framed record (``record`` or ``hparams_record``; not yet flushed)."""
        self._file.write(framed)

    def flush(self) -> None:
        """Pushes what was written to the file system (raises ``OSError`` when that fails,
        a full disk included: Python's file objects report a short write)."""
        self._file.flush()
        if not files.is_remote(self.path):
            self._good = self._file.tell()

    def abandon(self) -> None:
        """Closes the file after a failed write, and cuts what that write left of a record
        off its end (the points are written again to a new file); never raises."""
        try:
            self.close()
        except OSError:
            pass
        if files.is_remote(self.path):
            return
        try:
            if self._good == 0:
                os.remove(self.path)  # not even its version record: nothing to keep
            elif os.path.getsize(self.path) > self._good:
                os.truncate(self.path, self._good)
        except OSError:
            pass

    def exists(self) -> bool:
        """Whether the file is still there (a removed run folder takes it away)."""
        if files.is_remote(self.path):
            import tensorflow as tf

            return bool(tf.io.gfile.exists(self.path))
        return os.path.exists(self.path)

    def close(self) -> None:
        """Flushes and closes the file; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._file.close()
