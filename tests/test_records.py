"""Damaged and odd event files: the reader verifies, skips what it cannot trust, never crashes."""

from __future__ import annotations

import os
import shutil
import struct
import threading
import warnings

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

import lossboard
from lossboard import LossLogger
from lossboard.reader.read import EventFileWarning, read_back, read_root, records

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

LOSSES = [np.float32([1.25, 3.5]), np.float32([0.3125, -2.0, 7.0]), np.float32([1e-3])]


def _expected_means() -> dict[tuple[str, int], float]:
    """Epoch means of LOSSES as float32 (what the event file stores), computed with NumPy."""
    out = {}
    for epoch, batch in enumerate(LOSSES):
        mean = batch.astype(np.float64).mean()
        out[("epoch_loss", epoch)] = float(np.float32(mean))
        out[("epoch_half", epoch)] = float(np.float32(mean / 2))
    return out


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> tuple[bytes, list[tuple[int, int, set]]]:
    """A real event file of a few hundred bytes and, per record, (start, end, its points).

    Record boundaries and points come from TensorFlow's own record reader.
    """
    run = tmp_path_factory.mktemp("small") / "run"
    with LossLogger(run) as logger:
        for epoch, batch in enumerate(LOSSES):
            logger.on_train_batch_end(0, {"loss": batch, "half": batch / 2})
            logger.on_epoch_end(epoch)
    (path,) = (run / "train").iterdir()
    layout, start = [], 0
    for record in tf.compat.v1.io.tf_record_iterator(os.fspath(path)):
        event = event_pb2.Event.FromString(record)
        points = {
            (v.tag, event.step, float(tf.make_ndarray(v.tensor))) for v in event.summary.value
        }
        end = start + len(record) + 16
        layout.append((start, end, points))
        start = end
    data = path.read_bytes()
    assert start == len(data)
    written = set().union(*(p for _, _, p in layout))
    assert {(t, s): v for t, s, v in written} == _expected_means()
    return data, layout


def _load_one(root, data: bytes) -> tuple[set, list]:
    """Writes ``data`` as root/run/train/<event file>, loads root; (points, warnings)."""
    train = root / "run" / "train"
    shutil.rmtree(root / "run", ignore_errors=True)
    train.mkdir(parents=True)
    (train / "events.out.tfevents.1.host").write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = lossboard.load(root)
    got = set(zip(df.tag.astype(str), df.step.tolist(), df.value.tolist(), strict=True))
    return got, [w for w in caught if issubclass(w.category, EventFileWarning)]


def _points_before(layout, offset: int) -> set:
    return set().union(set(), *(p for start, end, p in layout if end <= offset))


def test_every_flipped_byte_is_caught_and_only_written_points_come_back(tmp_path, small_file):
    data, layout = small_file
    written = _points_before(layout, len(data))
    for at in range(len(data)):
        damaged = bytearray(data)
        damaged[at] ^= 0x01 if at % 2 else 0xFF
        got, caught = _load_one(tmp_path, bytes(damaged))
        assert got <= written, f"byte {at}: values that were never written"
        start = next(s for s, e, _ in layout if s <= at < e)
        assert got == _points_before(layout, start), f"byte {at}"
        assert len(caught) == 1, f"byte {at}: {[str(w.message) for w in caught]}"
        assert f"at byte {start}" in str(caught[0].message)
        assert "events.out.tfevents.1.host" in str(caught[0].message)


def test_a_file_cut_anywhere_keeps_its_whole_records_silently(tmp_path, small_file):
    data, layout = small_file
    for size in range(len(data) + 1):
        got, caught = _load_one(tmp_path, data[:size])
        assert got == _points_before(layout, size), f"cut at {size}"
        assert caught == [], f"cut at {size}: a writer at work is not corruption"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(0, 10**6),
)
def test_random_damage_never_yields_an_unwritten_value(tmp_path, small_file, edits, cut):
    data, layout = small_file
    damaged = bytearray(data)
    for at, byte in edits:
        damaged[at % len(data)] = byte
    damaged = damaged[: max(cut % (len(data) + 1), 1)]
    got, caught = _load_one(tmp_path, bytes(damaged))
    assert got <= _points_before(layout, len(data))
    if damaged != data[: len(damaged)]:
        first = next(i for i, (a, b) in enumerate(zip(damaged, data, strict=False)) if a != b)
        start, end = next((s, e) for s, e, _ in layout if s <= first < e)
        if end <= len(damaged):  # the damaged record is whole: it must be reported
            assert len(caught) == 1


def _record(data: bytes, length: int | None = None) -> bytes:
    """A record framed by hand, with correct checksums for ``length`` (default: the real one)."""
    header = struct.pack("<Q", len(data) if length is None else length)
    return header + struct.pack("<I", masked_crc32c(header)) + data + _crc(data)


def _crc(data: bytes) -> bytes:
    return struct.pack("<I", masked_crc32c(data))


def test_random_bytes_named_like_an_event_file_warn_and_read_nothing(tmp_path):
    blob = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    got, caught = _load_one(tmp_path, blob)
    assert got == set()
    assert len(caught) == 1 and "at byte 0" in str(caught[0].message)


@pytest.mark.parametrize("crc_ok", [False, True], ids=["bad-crc", "good-crc"])
def test_a_huge_length_header_is_not_an_allocation(tmp_path, small_file, crc_ok):
    data, layout = small_file
    header = struct.pack("<Q", 2**62)
    crc = masked_crc32c(header) if crc_ok else masked_crc32c(header) ^ 1
    got, caught = _load_one(tmp_path, data + header + struct.pack("<I", crc) + b"\0" * 40)
    assert got == _points_before(layout, len(data))
    # A valid header claiming more than the file holds is a record still being written.
    assert len(caught) == (0 if crc_ok else 1)


def test_a_record_that_is_not_an_event_ends_the_file_with_a_warning(tmp_path, small_file):
    data, layout = small_file
    got, caught = _load_one(tmp_path, data + _record(b"\xff\xff\xff\xff") + data[-68:])
    assert got == _points_before(layout, len(data))
    assert len(caught) == 1 and f"at byte {len(data)}" in str(caught[0].message)


def _odd_entries(train) -> list[str]:
    """Things named like event files that are not readable ones; returns their names."""
    blob = np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()
    (train / "events.out.tfevents.9.random").write_bytes(blob)
    header = struct.pack("<Q", 2**40)
    (train / "events.out.tfevents.9.huge").write_bytes(header + _crc(header)[::-1] + b"x" * 99)
    (train / "events.out.tfevents.9.dangling").symlink_to(train / "missing")
    os.mkfifo(train / "events.out.tfevents.9.fifo")
    (train / "events.out.tfevents.9.folder").mkdir()
    return ["random", "huge", "dangling", "fifo", "folder"]


def test_unreadable_entries_are_skipped_with_a_warning_each_and_never_block(tmp_path, small_file):
    data, layout = small_file
    train = tmp_path / "run" / "train"
    train.mkdir(parents=True)
    (train / "events.out.tfevents.1.host").write_bytes(data)
    names = _odd_entries(train)
    result: dict = {}

    def read():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result["points"], _ = read_root(tmp_path)
        result["warnings"] = [str(w.message) for w in caught if w.category is EventFileWarning]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(60)
    assert not reader.is_alive(), "reading blocked (a FIFO opened?)"
    got = {(p.tag, p.step, p.value) for p in result["points"]}
    assert got == _points_before(layout, len(data))
    assert len(result["warnings"]) == len(names)
    for name in names:
        assert sum(f"events.out.tfevents.9.{name}" in m for m in result["warnings"]) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_a_file_without_read_permission_is_skipped_with_a_warning(tmp_path, small_file):
    data, _ = small_file
    train = tmp_path / "run" / "train"
    train.mkdir(parents=True)
    locked = train / "events.out.tfevents.1.locked"
    locked.write_bytes(data)
    locked.chmod(0)
    with pytest.warns(EventFileWarning, match="locked"):
        points, _ = read_root(tmp_path)
    assert points == []


def test_records_stops_at_the_damage(tmp_path, small_file):
    data, layout = small_file
    damaged = bytearray(data)
    start, end, _ = layout[3]
    damaged[start + 20] ^= 0x40
    path = tmp_path / "events.out.tfevents.1"
    path.write_bytes(bytes(damaged))
    with pytest.warns(EventFileWarning, match=f"at byte {start}"):
        got = list(records(os.fspath(path)))
    assert got == [data[s + 12 : e - 4] for s, e, _ in layout[:3]]


def test_logger_resumes_from_the_good_epochs_beside_damaged_files(tmp_path):
    run = tmp_path / "run"
    with LossLogger(run) as logger:
        for epoch, batch in enumerate(LOSSES):
            logger.on_train_batch_end(0, {"loss": batch})
            logger.on_epoch_end(epoch)
    (path,) = (run / "train").iterdir()
    data = bytearray(path.read_bytes())
    # Damage epoch 2's record (the last one): the file then holds epochs 0 and 1.
    starts, at = [], 0
    for record in tf.compat.v1.io.tf_record_iterator(os.fspath(path)):
        starts.append(at)
        at += len(record) + 16
    data[starts[-1] + 30] ^= 0xFF
    path.write_bytes(bytes(data))
    _odd_entries(run / "train")
    with pytest.warns(EventFileWarning) as caught:
        logger = LossLogger(run)
    logger.close()
    assert logger.initial_epoch == 2
    assert len([w for w in caught if w.category is EventFileWarning]) == 6
    with pytest.warns(EventFileWarning):
        assert read_back(os.fspath(run)) == ({0, 1}, 0)


@pytest.mark.parametrize("block", [40, 997, 1 << 20])
def test_records_across_block_boundaries_read_the_same(tmp_path, monkeypatch, block):
    run = tmp_path / "run"
    with LossLogger(run, update_freq=1, hparams={"lr": 0.1}) as logger:
        for epoch in range(3):
            for i in range(100):
                logger.on_train_batch_end(i, {"loss": float(i + 100 * epoch)})
            logger.on_epoch_end(epoch)
    monkeypatch.setattr(lossboard.reader.read, "_BLOCK", block)  # records longer than a block, too
    points, hparams = read_root(tmp_path)
    assert hparams == {"run": {"lr": 0.1}}
    batch = [(p.step, p.value) for p in points if p.tag == "batch_loss"]
    assert batch == [(s + 1, float(s)) for s in range(300)]
    epochs = [(p.step, p.value) for p in points if p.tag == "epoch_loss"]
    assert epochs == [(e, np.arange(100).mean() + 100 * e) for e in range(3)]
    # Damage a record in the middle: the offset is the file's, not the block's.
    (path,) = (run / "train").glob("*.lossboard.v2")  # the batch curves' file
    starts, at = [], 0
    for record in tf.compat.v1.io.tf_record_iterator(os.fspath(path)):
        starts.append(at)
        at += len(record) + 16
    data = bytearray(path.read_bytes())
    data[starts[150] + 20] ^= 0x04
    path.write_bytes(bytes(data))
    with pytest.warns(EventFileWarning, match=f"at byte {starts[150]} "):
        damaged, _ = read_root(tmp_path)
    kept = [(p.step, p.value) for p in damaged if p.tag == "batch_loss"]
    # Records: the file version, then batches 1-300: record 150 is batch 150.
    assert kept == batch[:149]
    assert [(p.step, p.value) for p in damaged if p.tag == "epoch_loss"] == epochs  # other file


def _cut_then(data: bytes, layout, more: bytes) -> tuple[bytes, int, int]:
    """``data``'s first two records, then a long real record cut after 40 of its bytes, then
    ``more``: what a write cut by a full disk, followed by later writes, leaves.
    Returns ``(bytes, offset of the cut record, offset where ``more`` starts)``."""
    first = data[: layout[1][1]]
    event = event_pb2.Event(wall_time=1.7e9, step=9)
    for i in range(40):
        event.summary.value.add(tag=f"epoch_c{i}").simple_value = float(i)
    cut = _record(event.SerializeToString())[:40]
    return first + cut + more, len(first), len(first) + len(cut)


def test_a_cut_record_with_whole_records_after_it_warns_with_file_offset_and_bytes(
    tmp_path, small_file
):
    data, layout = small_file
    later = data[layout[2][0] : layout[2][1]]  # a whole record, written after the cut
    damaged, at, more_at = _cut_then(data, layout, later)
    got, caught = _load_one(tmp_path, damaged)
    assert got == _points_before(layout, layout[1][1])
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "events.out.tfevents.1.host" in message
    assert f"the record at byte {at} is cut short" in message
    assert f"a whole record starts inside it, at byte {more_at}" in message
    assert f"Skipped the {len(damaged) - at} bytes" in message


def test_a_cut_record_ending_a_file_warns_only_when_a_later_file_exists(tmp_path, small_file):
    data, layout = small_file
    damaged, at, _ = _cut_then(data, layout, b"")
    got, caught = _load_one(tmp_path, damaged)  # the newest file: a writer at work, silent
    assert (got, caught) == (_points_before(layout, layout[1][1]), [])
    train = tmp_path / "run" / "train"
    (train / "events.out.tfevents.2.host").write_bytes(data[: layout[0][1]])  # a later file
    with pytest.warns(EventFileWarning) as caught:
        lossboard.load(tmp_path)
    (message,) = [str(w.message) for w in caught]
    assert "events.out.tfevents.1.host: the record at byte" in message
    assert "a later event file of its folder exists and this one is not growing" in message
    assert f"Skipped the {len(damaged) - at} bytes from byte {at}" in message
