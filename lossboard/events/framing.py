"""TFRecord framing of event files: find and verify records with NumPy, without TensorFlow.

A record is ``uint64 length`` (little endian), the masked CRC32C of those 8
bytes, ``length`` bytes of data and the masked CRC32C of the data. Checking a
checksum byte by byte in Python costs about 20 us per record, so this module
checks many records at once with NumPy table look-ups, and finds the record
boundaries of a block of bytes without a Python step per record (see
``frame``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

HEADER = 12  # length + its checksum
OVERHEAD = 16  # header + data checksum
_EVENT_START = 0x09  # an Event's first field: wall_time, a double
_LONGEST_VECTORIZED = 512  # longer records are checked one by one
# Fewer records than this are checked one by one: the vectorized loop costs about 8 NumPy
# calls per 4 bytes whatever the number of records, Python about 80 ns a byte per record.
_FEWEST_VECTORIZED = 24


def _table() -> np.ndarray:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ poly, table >> 1).astype(np.uint32)
    return table


_TABLE = _table()
_TABLE_LIST = [int(x) for x in _TABLE]
# Slicing by 4: _SLICES[k][b] is the CRC of byte b followed by k zero bytes.
_SLICES = [_TABLE]
for _ in range(3):
    _SLICES.append((_SLICES[-1] >> np.uint32(8)) ^ _TABLE[_SLICES[-1] & np.uint32(0xFF)])


def _mask(crc: np.ndarray) -> np.ndarray:
    crc = crc.astype(np.uint32)
    return (((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(0xA282EAD8)).astype(
        np.uint32
    )


def masked_crc32c_at(block: np.ndarray, heads: np.ndarray, length: int) -> np.ndarray:
    """Masked CRC32C of ``block[h:h + length]`` for every ``h`` in ``heads``, at once.

    Examples:
        >>> import numpy as np
        >>> block = np.frombuffer(b"abcabc", np.uint8)
        >>> [hex(c) for c in masked_crc32c_at(block, np.array([0, 3]), 3)]
        ['0x21f1576e', '0x21f1576e']
    """
    if len(heads) < _FEWEST_VECTORIZED:
        # Fast path: a small file's few records cost ~5 us each in Python against ~120 us
        # for the NumPy loop (a 60-byte record), which dominated reading many small runs.
        crcs = [masked_crc32c(block[h : h + length].tobytes()) for h in heads.tolist()]
        return np.array(crcs, np.uint32)
    # Each record's bytes copied out in one gather (a row each), then crunched 4 at a time.
    block = np.ascontiguousarray(block)  # the windows below step one byte at a time
    windows = np.lib.stride_tricks.as_strided(
        block, (max(len(block) - length + 1, 0), length), (1, 1), writeable=False
    )
    rows = windows[heads]
    words = length // 4
    columns = np.ascontiguousarray(rows[:, : 4 * words]).view("<u4").T.copy()
    crc = np.full(len(heads), 0xFFFFFFFF, np.uint32)
    t0, t1, t2, t3 = _SLICES
    for column in columns:
        x = crc ^ column
        crc = t3[x & 0xFF] ^ t2[(x >> 8) & 0xFF] ^ t1[(x >> 16) & 0xFF] ^ t0[x >> 24]
    for byte in rows[:, 4 * words :].T:
        crc = t0[(crc ^ byte) & np.uint32(0xFF)] ^ (crc >> np.uint32(8))
    return _mask(crc ^ np.uint32(0xFFFFFFFF))


def masked_crc32c(data: bytes | memoryview) -> int:
    """Masked CRC32C of one message, in Python (for the rare record that is long)."""
    crc = 0xFFFFFFFF
    table = _TABLE_LIST
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def gather(block: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """``(n, width)`` bytes: row i is ``block[offsets[i]:offsets[i] + width]``."""
    out = np.empty((len(offsets), width), np.uint8)
    for k in range(width):
        out[:, k] = block[offsets + k]
    return out


def at(block: np.ndarray, offsets: np.ndarray, dtype: str) -> np.ndarray:
    """The number of ``dtype`` (e.g. ``"<u4"``) starting at each offset: one gather.

    Examples:
        >>> import numpy as np
        >>> at(np.arange(6, dtype=np.uint8), np.array([0, 2]), "<u2").tolist()
        [256, 770]
    """
    size = np.dtype(dtype).itemsize
    if len(block) < size:
        return np.zeros(len(offsets), dtype)
    windows = np.ndarray((len(block) - size + 1,), dtype, block, 0, (1,))  # overlapping, unaligned
    return windows[offsets]


def _u32(block: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return at(block, offsets, "<u4")


def _u64(block: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return at(block, offsets, "<u8")


def distinct(values: np.ndarray) -> list[int]:
    """The distinct values of a non-negative int array, sorted (counting when they are small).

    Examples:
        >>> distinct(np.array([52, 50, 52]))
        [50, 52]
    """
    if len(values) and int(values.max()) < 1 << 16:
        return np.flatnonzero(np.bincount(values)).tolist()
    return np.unique(values).tolist()


@dataclass
class Frames:
    """The records found in a block of bytes.

    Attributes:
        starts: Offset of each record's data in the block.
        lengths: Length of each record's data.
        end: Offset just past the last whole record with a valid length checksum.
        bad_header: Whether the header at ``end`` has a wrong checksum (corruption),
            as opposed to ending the block or being cut short by it.
    """

    starts: np.ndarray
    lengths: np.ndarray
    end: int
    bad_header: bool


def frame(block: np.ndarray) -> Frames:
    """Every whole record from the start of ``block``, with its length checksum verified.

    Record boundaries depend on each other (each length says where the next
    record starts), which would cost a Python step per record. Instead every
    position that could hold an event's header is checked at once (a header
    whose length checksum holds and whose data starts like an Event), and the
    chain of headers that point to each other from offset 0 is kept. Where the
    chain breaks, one record is read the slow way and the chain picks up again,
    so the result is exactly what reading record by record gives.

    Examples:
        >>> import numpy as np
        >>> frame(np.zeros(0, np.uint8)).end
        0
    """
    n = len(block)
    candidates = np.flatnonzero(block[HEADER:] == _EVENT_START).astype(np.int64)
    if n >= HEADER and (not len(candidates) or candidates[0] != 0):
        candidates = np.concatenate([[0], candidates]).astype(np.int64)
    lengths = _u64(block, candidates)
    small = lengths < np.uint64(1 << 32)  # lengths under 4 GiB
    candidates, lengths = candidates[small], lengths[small].astype(np.int64)
    ends = candidates + lengths + OVERHEAD
    stored = _u32(block, candidates + 8)
    ok = (ends <= n) & (stored == masked_crc32c_at(block, candidates, 8))
    heads, ends = candidates[ok], ends[ok]
    breaks = np.flatnonzero(ends[:-1] != heads[1:])  # the chain continues past i unless i breaks
    starts: list[np.ndarray] = []
    lens: list[np.ndarray] = []
    pos = 0
    while True:
        i = int(np.searchsorted(heads, pos))
        if i < len(heads) and heads[i] == pos:
            j = (
                int(breaks[np.searchsorted(breaks, i)])
                if breaks.size and breaks[-1] >= i
                else len(heads) - 1
            )
            starts.append(heads[i : j + 1] + HEADER)
            lens.append(ends[i : j + 1] - heads[i : j + 1] - OVERHEAD)
            pos = int(ends[j])
            continue
        if pos + HEADER > n:
            return _frames(starts, lens, pos, bad_header=False)
        raw = block[pos : pos + HEADER].tobytes()
        (length,) = struct.unpack("<Q", raw[:8])
        if masked_crc32c(raw[:8]) != struct.unpack("<I", raw[8:])[0]:
            return _frames(starts, lens, pos, bad_header=True)
        if pos + length + OVERHEAD > n:
            return _frames(starts, lens, pos, bad_header=False)
        starts.append(np.array([pos + HEADER], np.int64))
        lens.append(np.array([length], np.int64))
        pos += length + OVERHEAD


def _frames(starts: list[np.ndarray], lens: list[np.ndarray], end: int, bad_header: bool) -> Frames:
    empty = np.zeros(0, np.int64)
    return Frames(
        np.concatenate(starts) if starts else empty,
        np.concatenate(lens) if lens else empty,
        end,
        bad_header,
    )


def first_bad_data(block: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> int | None:
    """Index of the first record whose data checksum is wrong, or None."""
    where = np.flatnonzero(bad_data(block, starts, lengths))
    return int(where[0]) if where.size else None


def bad_data(block: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Whether each record's data checksum is wrong.

    Records of one length are checked together, one NumPy step per byte.
    """
    bad = np.zeros(len(starts), bool)
    for length in distinct(lengths):
        rows = np.flatnonzero(lengths == length)
        heads = starts[rows]
        if length <= _LONGEST_VECTORIZED or len(rows) > 64:
            expected = _u32(block, heads + length)
            bad[rows] = masked_crc32c_at(block, heads, int(length)) != expected
        else:
            for row, head in zip(rows, heads, strict=True):
                data = block[head : head + length]
                (stored,) = struct.unpack("<I", block[head + length : head + length + 4].tobytes())
                bad[row] = masked_crc32c(data.tobytes()) != stored
    return bad


def first_whole_record(block: np.ndarray, after: int = 0) -> int | None:
    """Offset of the first whole record (both checksums valid) starting after ``after``.

    For the bytes after a record that is cut short: a whole record inside them means
    writing went on after the cut, so the cut record will never be completed.

    Examples:
        >>> import numpy as np
        >>> first_whole_record(np.zeros(64, np.uint8)) is None
        True
    """
    n = len(block)
    heads = np.flatnonzero(block[after + 1 + HEADER :] == _EVENT_START).astype(np.int64)
    heads += after + 1
    lengths = _u64(block, heads)
    fits = lengths <= np.uint64(n)
    heads, lengths = heads[fits], lengths[fits].astype(np.int64)
    ok = (heads + lengths + OVERHEAD <= n) & (
        _u32(block, heads + 8) == masked_crc32c_at(block, heads, 8)
    )
    for head, length in zip(heads[ok].tolist(), lengths[ok].tolist(), strict=True):
        if first_bad_data(block, np.array([head + HEADER]), np.array([length])) is None:
            return head
    return None


def whole_prefix(data: bytes) -> int:
    """How many bytes at the start of ``data`` are whole records with valid length checksums.

    For what a writer just appended: a short write (a full disk) cuts a record, it does not
    change its bytes, so data checksums are not checked (in NumPy they cost 100-300 us a
    record; readers check them). A few records are walked in Python (about 3 us each).

    Examples:
        >>> whole_prefix(b"") , whole_prefix(b"\\0" * 11)
        (0, 0)
    """
    pos, n = 0, len(data)
    for _ in range(32):
        if pos + HEADER > n:
            return pos
        length, crc = struct.unpack_from("<QI", data, pos)
        if masked_crc32c(data[pos : pos + 8]) != crc or pos + length + OVERHEAD > n:
            return pos
        pos += length + OVERHEAD
    return pos + frame(np.frombuffer(data, np.uint8)[pos:]).end


def chains(block: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The records of many files laid end to end in ``block``, found in step.

    File ``k`` is ``block[bounds[k]:bounds[k + 1]]``. A file whose lengths chain from its
    first byte to its last is sound; one whose do not (cut or corrupt) is left out.
    Checksums are not checked here: ``masked_crc32c_at`` and ``bad_data`` check many files'
    records at once.

    Fast path: a record's start depends on the one before, which cost a Python step per
    record (2 us; 5 s for 4,000 runs of 100 epochs). Here all files take their k-th step
    together, one NumPy gather per step, so the cost follows the longest file's record count.

    Args:
        block: The files' bytes, followed by at least 8 bytes of padding.
        bounds: Where each file starts, and where the last one ends (``len(files) + 1``).

    Returns:
        ``starts`` and ``lengths`` of the sound files' records' data, in block order, and
            the index of the file that holds each (``owners``).

    Examples:
        >>> from lossboard.events.encode import record
        >>> laid = [record(b"ab") + record(b"c"), record(b"de")[:-1], record(b"f")]
        >>> block = np.frombuffer(b"".join(laid) + bytes(8), np.uint8)
        >>> bounds = np.cumsum([0] + [len(f) for f in laid])  # the second file is cut short
        >>> [x.tolist() for x in chains(block, bounds)]
        [[12, 30, 64], [2, 1, 1], [0, 0, 2]]
    """
    bounds = np.asarray(bounds, np.int64)
    pos, end = bounds[:-1].copy(), bounds[1:]
    sound = np.ones(len(pos), bool)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    words = np.ndarray((max(len(block) - 7, 0),), "<u8", block, 0, (1,))  # unaligned lengths
    alive = np.flatnonzero(pos < end)
    while alive.size:
        here, ends = pos[alive], end[alive]
        length = words[here].astype(np.int64)  # a header cut short reads the padding
        ok = (length >= 0) & (length <= ends - here - OVERHEAD)  # 2**63 and more: negative
        if not ok.all():
            sound[alive[~ok]] = False
            alive, here, ends, length = alive[ok], here[ok], ends[ok], length[ok]
        found.append((here + HEADER, length, alive))
        after = here + length + OVERHEAD
        pos[alive] = after
        going = after < ends
        if not going.all():
            alive = alive[going]
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts, lengths, owners = (np.concatenate(c) for c in zip(*found, strict=True))
    keep = np.argsort(starts, kind="stable")
    keep = keep[sound[owners[keep]]]
    return starts[keep], lengths[keep], owners[keep]
