"""Scalars of every real and bool dtype are read back; other scalar summaries are warned about."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.scalar import metadata
from tensorboard.util import tensor_util

import lossboard
from lossboard.reader.read import EventFileWarning

INTEGERS = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
FLOATS = ["float16", "float32", "float64"]


def _values(dtype: str) -> list:
    """The values written for ``dtype``: its extremes and one in between."""
    if dtype == "bool":
        return [True, False]
    if dtype in INTEGERS:
        info = np.iinfo(dtype)
        return [int(info.min), int(info.max), int(info.max) // 3]
    if dtype == "bfloat16":
        return [-3.0e38, 1.0 / 3.0, 7.0]  # rounded to bfloat16 by TensorFlow
    info = np.finfo(dtype)
    return [float(info.min), float(info.max), 1.0 / 3.0, float(info.tiny)]


def _scalar_metadata():
    return metadata.create_summary_metadata(display_name="", description="")


def _write(run_dir, dtypes):
    """Each dtype's values under the tag of its name, at steps 0, 1, ...; returns what
    TensorFlow holds for each (``{(tag, step): float}``, computed by NumPy from the tensor)."""
    expected = {}
    writer = tf.summary.create_file_writer(os.fspath(run_dir))
    with writer.as_default():
        for dtype in dtypes:
            for step, value in enumerate(_values(dtype)):
                tensor = tf.constant(value, getattr(tf, dtype))
                tf.summary.write(dtype, tensor, step=step, metadata=_scalar_metadata())
                as_float = tf.cast(tensor, tf.float64) if dtype == "bfloat16" else tensor
                expected[(dtype, step)] = float(np.asarray(as_float.numpy()).astype(np.float64))
    writer.close()
    return expected


def _by_tensorboard(split_dir, unreadable=()) -> dict[tuple[str, int], float]:
    """What TensorBoard's own reader plots: ``make_ndarray(tensor).item()`` per point, for
    the tags but ``unreadable`` (on which make_ndarray raises)."""
    acc = ea.EventAccumulator(os.fspath(split_dir), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    out = {}
    for tag in set(acc.Tags()["tensors"]) - set(unreadable):
        for event in acc.Tensors(tag):
            out[(tag, event.step)] = float(tensor_util.make_ndarray(event.tensor_proto).item())
    return out


def _loaded(root) -> dict[tuple[str, int], float]:
    df = lossboard.load(root)
    return {(t, s): v for t, s, v in zip(df.tag.astype(str), df.step, df.value, strict=True)}


def test_every_real_and_bool_dtype_tensorflow_writes_is_read_as_tensorboard_reads_it(tmp_path):
    dtypes = INTEGERS + FLOATS + ["bool", "bfloat16"]
    split = tmp_path / "run" / "train"
    expected = _write(split, dtypes)
    got = _loaded(tmp_path)
    assert got == expected  # exact: every value is a float64 NumPy computes from the tensor
    assert got[("uint64", 1)] == float(2**64 - 1) and got[("bool", 0)] == 1.0
    # TensorBoard plots the same numbers; it cannot decode bfloat16 (lossboard reads it).
    tensorboard = _by_tensorboard(split, unreadable=["bfloat16"])
    assert tensorboard == {k: v for k, v in expected.items() if k[0] != "bfloat16"}
    with pytest.raises(TypeError):
        _by_tensorboard(split)


def _tensor(dtype: int, shape=(), **fields) -> tensor_pb2.TensorProto:
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in shape]
    return tensor_pb2.TensorProto(
        dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims), **fields
    )


def _write_protos(run_dir, tensors: dict[str, tensor_pb2.TensorProto]) -> None:
    """One point (step 3) per tag, each tensor as given, with the scalar plugin's metadata."""
    writer = tf.summary.create_file_writer(os.fspath(run_dir))
    with writer.as_default():
        for tag, tensor in tensors.items():
            value = summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=_scalar_metadata())
            raw = summary_pb2.Summary(value=[value]).SerializeToString()
            tf.summary.experimental.write_raw_pb(raw, step=3)
    writer.close()


# Values held in the dtype's own field rather than in tensor_content (other writers do so).
_BITS_OF_HALF = int(np.array(-2.5, np.float16).view(np.uint16))
_BITS_OF_BFLOAT16 = int(np.array(1.5, np.float32).view(np.uint32) >> 16)
IN_FIELDS = {
    "float32": (_tensor(types_pb2.DT_FLOAT, float_val=[0.25]), 0.25),
    "float64": (_tensor(types_pb2.DT_DOUBLE, double_val=[1 / 3]), 1 / 3),
    "float16": (_tensor(types_pb2.DT_HALF, half_val=[_BITS_OF_HALF]), -2.5),
    "bfloat16": (_tensor(types_pb2.DT_BFLOAT16, half_val=[_BITS_OF_BFLOAT16]), 1.5),
    "int8": (_tensor(types_pb2.DT_INT8, int_val=[-128]), -128.0),
    "uint8": (_tensor(types_pb2.DT_UINT8, int_val=[255]), 255.0),
    "int16": (_tensor(types_pb2.DT_INT16, int_val=[-32768]), -32768.0),
    "uint16": (_tensor(types_pb2.DT_UINT16, int_val=[65535]), 65535.0),
    "int32": (_tensor(types_pb2.DT_INT32, int_val=[-(2**31)]), float(-(2**31))),
    "uint32": (_tensor(types_pb2.DT_UINT32, uint32_val=[2**32 - 1]), float(2**32 - 1)),
    "int64": (_tensor(types_pb2.DT_INT64, int64_val=[2**53 + 2]), float(2**53 + 2)),
    "uint64": (_tensor(types_pb2.DT_UINT64, uint64_val=[2**64 - 1]), float(2**64 - 1)),
    "bool": (_tensor(types_pb2.DT_BOOL, bool_val=[True]), 1.0),
    "float32 of shape [1, 1]": (_tensor(types_pb2.DT_FLOAT, (1, 1), float_val=[0.5]), 0.5),
}


def test_values_in_the_dtypes_own_field_are_read_as_tensorboard_reads_them(tmp_path):
    split = tmp_path / "run" / "train"
    _write_protos(split, {tag: tensor for tag, (tensor, _) in IN_FIELDS.items()})
    expected = {(tag, 3): value for tag, (_, value) in IN_FIELDS.items()}
    assert _loaded(tmp_path) == expected
    # TensorBoard's make_ndarray reads the same, except the fields it has no case for.
    unreadable = ["bfloat16", "uint32", "uint64"]
    assert _by_tensorboard(split, unreadable) == {
        k: v for k, v in expected.items() if k[0] not in unreadable
    }


# Scalar summaries that are not one real number: neither TensorBoard nor lossboard plots them.
NOT_ONE_NUMBER = {
    "complex": (_tensor(types_pb2.DT_COMPLEX64, tensor_content=b"\0" * 8), "a complex64 tensor"),
    "text": (_tensor(types_pb2.DT_STRING, string_val=[b"0.5"]), "a string tensor"),
    "vector": (
        _tensor(types_pb2.DT_FLOAT, (2,), float_val=[1.0, 2.0]),
        "a float32 tensor of shape [2]",
    ),
    "quantized": (_tensor(types_pb2.DT_QINT8, tensor_content=b"\3"), "a qint8 tensor"),
    "empty": (_tensor(types_pb2.DT_FLOAT), "a float32 tensor holding 0 values"),
}


@pytest.mark.parametrize("tag", sorted(NOT_ONE_NUMBER))
def test_a_scalar_summary_that_is_not_one_number_is_warned_about_by_file_tag_and_dtype(
    tmp_path, tag
):
    tensor, what = NOT_ONE_NUMBER[tag]
    split = tmp_path / "run" / "train"
    _write_protos(split, {tag: tensor, "epoch_loss": _tensor(types_pb2.DT_FLOAT, float_val=[2])})
    (path,) = split.iterdir()
    with pytest.warns(EventFileWarning) as caught:
        got = _loaded(tmp_path)
    (warning,) = caught
    message = str(warning.message)
    assert os.fspath(path) in message and f"{tag!r} ({what}, 1 point)" in message, message
    assert got == {("epoch_loss", 3): 2.0}  # the rest of the file is read
    # A selection of other tags reads the file without a word about them.
    assert _loaded_selected(tmp_path, "epoch_*") == {("epoch_loss", 3): 2.0}


def _loaded_selected(root, tags):
    df = lossboard.load(root, tags=tags)
    return {(t, s): v for t, s, v in zip(df.tag.astype(str), df.step, df.value, strict=True)}
