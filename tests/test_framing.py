"""Record framing without TensorFlow (``lossboard/events/framing.py``): files found in step,
checksums many at a time, against a record-by-record reading in plain Python."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lossboard.events import framing
from lossboard.events.encode import record

FILES = st.lists(
    st.tuples(
        st.lists(st.binary(max_size=40), max_size=6),  # the records' data
        st.sampled_from(["whole", "cut", "extra", "huge length"]),
        st.integers(1, 40),
    ),
    max_size=12,
)


def _walk(data: bytes) -> list[tuple[int, int]] | None:
    """``(data start, length)`` of each record, one at a time; None unless they chain from
    the first byte to the last."""
    out, pos = [], 0
    while pos < len(data):
        if pos + 12 > len(data):
            return None
        (length,) = struct.unpack_from("<Q", data, pos)
        if pos + 16 + length > len(data):
            return None
        out.append((pos + 12, length))
        pos += 16 + length
    return out


@settings(max_examples=300, deadline=None)
@given(FILES)
def test_chains_finds_each_sound_files_records_as_a_walk_would(drawn):
    laid = []
    for datas, damage, k in drawn:
        data = b"".join(record(d) for d in datas)
        if damage == "cut" and data:
            data = data[: max(len(data) - k, 0)]
        elif damage == "extra":
            data += bytes(k)  # zeros after the last record: a length of 0 that cannot fit
        elif damage == "huge length":
            data = struct.pack("<Q", 2**64 - k) + data
        laid.append(data)
    block = np.frombuffer(b"".join(laid) + bytes(framing.HEADER), np.uint8)
    bounds = np.cumsum([0] + [len(d) for d in laid])
    starts, lengths, owners = framing.chains(block, bounds)
    expected = []
    for k, data in enumerate(laid):
        for start, length in _walk(data) or []:
            expected.append((int(bounds[k]) + start, length, k))
    got = list(zip(starts.tolist(), lengths.tolist(), owners.tolist(), strict=True))
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=70), min_size=1, max_size=60),
       st.integers(0, 70))  # fmt: skip
def test_checksums_at_once_are_each_records_checksum(chunks, length):
    # 24 or more heads take the vectorized path, fewer the per-record one: both are drawn.
    data = b"".join(chunks) + bytes(length)
    block = np.frombuffer(data, np.uint8)
    heads = np.unique(np.array([len(b"".join(chunks[:i])) for i in range(len(chunks))]))
    heads = heads[heads + length <= len(data)]
    got = framing.masked_crc32c_at(block, heads, length).tolist()
    assert got == [framing.masked_crc32c(data[h : h + length]) for h in heads.tolist()]


def test_checksums_of_a_strided_view_are_its_bytes_checksums():
    data = bytes(range(256)) * 4
    block = np.frombuffer(data, np.uint8)[::2]  # every other byte: not contiguous
    heads = np.arange(0, 400, 13)
    got = framing.masked_crc32c_at(block, heads, 40).tolist()
    view = block.tobytes()
    assert got == [framing.masked_crc32c(view[h : h + 40]) for h in heads.tolist()]
