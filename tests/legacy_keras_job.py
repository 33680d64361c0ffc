"""Run by tests/test_legacy_keras.py with TF_USE_LEGACY_KERAS=1: lossboard under tf_keras (Keras 2).

Usage: python legacy_keras_job.py LOGDIR OUT_JSON
Fits a tf_keras model with LossLogger beside tf_keras' own TensorBoard callback, then drives a
tf_keras CallbackList by hand in a custom loop; writes what Keras returned and the per-example
losses of the custom loop to OUT_JSON.
"""

from __future__ import annotations

import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from lossboard import LossLogger  # noqa: E402


def main(logdir: str, out: str) -> None:
    keras = tf.keras
    assert keras.__name__.startswith("tf_keras"), keras.__name__
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 4)).astype("float32")  # batches of 32, 32 and 26
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(4,))])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    history = model.fit(
        x,
        y,
        batch_size=32,
        epochs=2,
        verbose=0,
        validation_data=(x[:40], y[:40]),
        callbacks=[
            LossLogger(os.path.join(logdir, "fit"), update_freq=2),
            keras.callbacks.TensorBoard(os.path.join(logdir, "keras"), update_freq=2),
        ],
    ).history

    logger = LossLogger(os.path.join(logdir, "custom"))
    callbacks = keras.callbacks.CallbackList([logger], model=model)
    callbacks.on_train_begin()
    per_example = []
    for step, start in enumerate(range(0, 90, 32)):
        xb, yb = x[start : start + 32], y[start : start + 32]
        callbacks.on_train_batch_begin(step)  # tf_keras' CallbackList times each batch
        loss = tf.reduce_mean(tf.square(model(xb) - yb), axis=-1)  # per example
        callbacks.on_train_batch_end(step, {"loss": loss})
        per_example += loss.numpy().tolist()
    returned = logger.on_epoch_end(0)
    callbacks.on_train_end()
    with open(out, "w") as f:
        json.dump({"history": history, "per_example": per_example, "returned": returned}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
