"""LossLogger under legacy Keras (tf_keras, TF_USE_LEGACY_KERAS=1), in a fresh process.

In that process tf.keras is Keras 2, whose CallbackList asks callbacks for its own protocol
(lossboard/legacy_keras.py). Values are read back from disk and compared with tf_keras' History,
its own TensorBoard callback, and a NumPy mean of the custom loop's per-example losses.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import close_to, read_split

JOB = Path(__file__).with_name("legacy_keras_job.py")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tf_keras") is None,
    reason="tf_keras is not installed (pip install -e '.[test]' installs it)",
)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    root = tmp_path_factory.mktemp("legacy")
    out = root / "out.json"
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    proc = subprocess.run(
        [sys.executable, str(JOB), str(root / "logs"), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root / "logs", json.loads(out.read_text())


def test_fit_under_tf_keras_equals_history_and_its_tensorboard(job):
    logs, result = job
    history = result["history"]
    for split, prefix in (("train", ""), ("validation", "val_")):
        ours, theirs = read_split(logs / "fit", split), read_split(logs / "keras", split)
        expected = {e: float(np.float32(v)) for e, v in enumerate(history[prefix + "loss"])}
        assert ours["epoch_loss"] == expected == theirs["epoch_loss"]
    ours, theirs = read_split(logs / "fit", "train"), read_split(logs / "keras", "train")
    assert ours["batch_loss"] == theirs["batch_loss"] and sorted(ours["batch_loss"]) == [2, 4, 6]


def test_custom_loop_with_a_tf_keras_callback_list(job):
    logs, result = job
    expected = np.mean(np.asarray(result["per_example"], np.float64))
    assert len(result["per_example"]) == 90
    assert result["returned"]["loss"] == pytest.approx(expected, rel=1e-6)
    assert close_to(read_split(logs / "custom", "train")["epoch_loss"][0], expected)
