"""The reduction contract (``lossboard/accumulate/reduction.py``), held by every path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lossboard.accumulate import reduction

JOB = Path(__file__).with_name("reduction_job.py")


@pytest.mark.parametrize("onednn", ["0", "1"])
def test_every_path_gives_identical_sums(onednn):
    """Hypothesis batches through eager rows (column sums and segment sums), entries, host
    values, large values, folds after every batch, tf.function, and MirroredStrategy on two
    logical CPUs (eager PerReplica and in-replica): each path's sums, weights and non-finite
    counts equal the contract's float64 reference exactly (tests/reduction_job.py)."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, str(JOB)], capture_output=True, text=True, timeout=900, env=env
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-6000:]
    assert "examples: 31" in proc.stdout, proc.stdout[-2000:]


@pytest.mark.parametrize(
    ("value", "weight", "expected"),
    [
        ([1.0, 3.0], [1.0, 2.0], (7.0, 3.0, True)),
        ([1.0, 3.0], None, (4.0, 2.0, True)),
        ([1.0, np.nan], None, (np.nan, 2.0, False)),
        ([1.0, 2.0], [1.0, np.inf], (np.inf, np.inf, False)),  # an infinite weight: non-finite
        # an overflow is no error; finite elements: the read flags the infinite sum
        ([1e308, 1e308], None, (np.inf, 2.0, True)),
        ([], None, (0.0, 0.0, True)),  # no examples: adds nothing
    ],
)
def test_reference_is_the_contract(value, weight, expected):
    got = reduction.reference(np.array(value), None if weight is None else np.array(weight))
    np.testing.assert_array_equal(np.array(got[:2]), np.array(expected[:2]))
    assert got.finite is expected[2]
