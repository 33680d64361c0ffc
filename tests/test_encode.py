"""Points written in bulk: tf.summary.scalar's bytes, read back by TensorFlow and TensorBoard."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2

from lossboard.events.encode import Points, PointsFile, encode, record
from lossboard.reader import read as reader


def proto_bytes(wall: float, step: int, tag: str, value: float) -> bytes:
    """The Event that tf.summary.scalar writes, serialized by the protos."""
    with np.errstate(over="ignore"):
        content = struct.pack("<f", np.float32(value))
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=content)
    tensor.tensor_shape.SetInParent()
    item = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    item.metadata.plugin_data.plugin_name = "scalars"
    summary = summary_pb2.Summary(value=[item])
    return event_pb2.Event(wall_time=wall, step=step, summary=summary).SerializeToString()


points_strategy = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 2**63 - 1), min_size=n, max_size=n),
        st.lists(st.floats(1e-3, 4e9), min_size=n, max_size=n),  # a real wall time: not 0
        st.lists(st.integers(0, 2), min_size=n, max_size=n),
        st.lists(st.floats(allow_nan=False, width=64), min_size=n, max_size=n),
        st.lists(st.text(min_size=1, max_size=150), min_size=3, max_size=3),
    )
)


@settings(max_examples=60, deadline=None)
@given(points_strategy)
def test_encode_is_the_protos_bytes(drawn):
    steps, walls, tags, values, names = drawn
    points = Points(
        np.array(steps, np.int64), np.array(walls), np.array(tags), np.array(values), names
    )
    expected = b"".join(
        record(proto_bytes(w, s, names[t], v))
        for s, w, t, v in zip(steps, walls, tags, values, strict=True)
    )
    assert encode(points) == expected


@pytest.mark.parametrize("value", [0.5, float("nan"), float("inf"), 1e300, -1e-320])
@pytest.mark.parametrize("step", [0, 1, 127, 128, 2**35, 2**63 - 1])
def test_encode_edges(step, value):
    points = Points(np.array([step]), np.array([1.5]), np.array([0]), np.array([value]), ["t"])
    assert encode(points) == record(proto_bytes(1.5, step, "t", value))


def test_record_framing_is_tensorflows(tmp_path):
    import tensorflow as tf

    path = str(tmp_path / "records")
    data = [b"", b"x", bytes(range(256)) * 3]
    with tf.io.TFRecordWriter(path) as w:
        for d in data:
            w.write(d)
    with open(path, "rb") as f:
        assert f.read() == b"".join(record(d) for d in data)


def test_negative_step_is_refused():
    with pytest.raises(ValueError, match="steps must be >= 0"):
        encode(Points(np.array([-1]), np.array([0.0]), np.array([0]), np.array([1.0]), ["a"]))


def test_points_file_reads_back_everywhere(tmp_path, read_events):
    """TensorFlow's record reader checks every CRC; TensorBoard's reader and lossboard.load
    give the values (float32) at their steps."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    n = 3000
    steps = np.repeat(np.arange(1, n // 3 + 1), 3)
    values = rng.normal(size=n)
    tags = np.tile([0, 1, 2], n // 3)
    names = ["batch_loss", "batch_kl", "batch_a/b"]
    file = PointsFile(str(tmp_path / "run" / "train"))
    half = n // 2
    for part in (slice(0, half), slice(half, n)):
        file.write(Points(steps[part], np.full(n, 1.7e9)[part], tags[part], values[part], names))
    file.flush()
    file.close()
    file.close()  # twice is fine
    raw = list(tf.data.TFRecordDataset(file.path).as_numpy_iterator())  # raises on a bad CRC
    assert len(raw) == n + 1
    assert event_pb2.Event.FromString(raw[0]).file_version == "brain.Event:2"
    events = read_events(tmp_path / "run", "train")
    for t, name in enumerate(names):
        mine = tags == t
        expected = dict(
            zip(steps[mine].tolist(), values[mine].astype(np.float32).tolist(), strict=True)
        )
        assert events[name] == expected
    frame = reader.load(str(tmp_path))
    assert len(frame) == n
    got = frame.sort_values(["step", "tag"]).value.to_numpy()
    assert np.array_equal(np.sort(got), np.sort(values.astype(np.float32)))


def test_points_file_name_is_an_event_file(tmp_path):
    file = PointsFile(str(tmp_path))
    assert os.path.basename(file.path).startswith("events.out.tfevents.")
    assert file.exists()
    os.remove(file.path)
    assert not file.exists()
    file.close()
