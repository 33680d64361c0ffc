"""The private TensorFlow API lossboard uses (lossboard/tf_private.py) is still there.

When a TensorFlow release renames one, this fails first; lossboard itself falls back to the
public, slower equivalent, so the numbers stay right (the per-batch cost rises).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from lossboard import tf_private


def test_the_fast_path_api_is_present():
    assert tf_private.HAS_FAST_PATH, f"TensorFlow {tf.__version__} moved EagerTensor internals"


@pytest.mark.parametrize(
    "value", [tf.constant(1.5), tf.constant([1, 2, 3], tf.int64), tf.zeros((2, 0, 3), tf.bfloat16)]
)
def test_private_and_public_reads_agree(value):
    assert tf_private.is_eager_tensor(value)
    assert tf_private.dtype_enum(value) == value.dtype.as_datatype_enum
    assert tuple(tf_private.shape_tuple(value)) == tuple(value.shape)
    assert tf_private._public_dtype_enum(value) == tf_private.dtype_enum(value)
    assert tf_private._public_shape_tuple(value) == tuple(tf_private.shape_tuple(value))


@pytest.mark.parametrize("value", [1.0, np.float32(2.0), np.ones(3), tf.Variable(1.0)])
def test_values_that_are_not_eager_tensors_raise_type_error(value):
    assert not tf_private.is_eager_tensor(value)
    with pytest.raises(TypeError):
        tf_private.dtype_enum(value)
    with pytest.raises(TypeError):
        tf_private._public_dtype_enum(value)
