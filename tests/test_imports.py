"""Importing lossboard leaves TensorFlow's runtime alone: GPU and multi-worker set-up still work.

Users import first and configure devices after; a module-level tensor would start TensorFlow's
eager context, after which device configuration raises "cannot be modified after being
initialized". The 2-worker MultiWorkerMirroredStrategy job of tests/test_distributed.py imports
lossboard first too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import importlib, pkgutil
import lossboard
for module in pkgutil.iter_modules(lossboard.__path__):
    if module.name != "__main__":
        importlib.import_module("lossboard." + module.name)
for name in lossboard.__all__:
    getattr(lossboard, name)

import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.set_soft_device_placement(True)
assert len(tf.config.list_logical_devices("CPU")) == 2

from lossboard import LossLogger
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    logger = LossLogger(LOGDIR)
per_replica = strategy.run(lambda: tf.constant([1.0, 2.0]))
logger.on_train_batch_end(0, {"loss": per_replica})
print(logger.on_epoch_end(0))
"""


def test_every_import_then_device_configuration(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    script = SCRIPT.replace("LOGDIR", repr(str(tmp_path / "run")))
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "{'loss': 1.5}"
