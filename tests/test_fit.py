"""LossLogger as a callback in model.fit: it writes what History holds, as Keras' callback does."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lossboard import LossLogger

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _fit(callbacks, epochs=3):
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 4)).astype("float32")  # 90 = 2 full batches of 32 + one of 26
    y = x @ rng.normal(size=(4, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae"])
    return model.fit(
        x,
        y,
        batch_size=32,
        epochs=epochs,
        validation_data=(x[:40], y[:40]),
        verbose=0,
        callbacks=callbacks,
    )


def test_fit_matches_history_and_keras_tensorboard(tmp_path, read_events):
    ours, theirs = tmp_path / "ours", tmp_path / "keras"
    history = _fit([LossLogger(ours), keras.callbacks.TensorBoard(theirs)]).history
    for split, prefix in (("train", ""), ("validation", "val_")):
        mine, keras_events = read_events(ours, split), read_events(theirs, split)
        keras_epoch = {t: v for t, v in keras_events.items() if t.startswith("epoch_")}
        assert set(mine) == set(keras_epoch)  # tag for tag
        for tag, points in keras_epoch.items():
            assert mine[tag] == points  # the same float32 values at the same steps
        for key, values in history.items():
            if key.startswith(prefix) and (prefix or not key.startswith("val_")):
                tag = "epoch_" + key[len(prefix) :]
                expected = {e: float(np.float32(v)) for e, v in enumerate(values)}
                assert mine[tag] == expected
    assert "epoch_learning_rate" in read_events(ours, "train")


def test_fit_batch_curves_follow_keras_steps(tmp_path, read_events):
    ours, theirs = tmp_path / "ours", tmp_path / "keras"
    _fit([LossLogger(ours, update_freq=2), keras.callbacks.TensorBoard(theirs, update_freq=2)])
    mine, keras_events = read_events(ours, "train"), read_events(theirs, "train")
    assert sorted(mine["batch_loss"]) == [2, 4, 6, 8]  # 3 epochs x 3 batches, every 2nd
    if KERAS >= (3, 4):  # Keras 3.3's own callback writes one batch point, at step 0
        assert mine["batch_loss"] == keras_events["batch_loss"]


KERAS = tuple(int(p) for p in keras.__version__.split(".")[:2])
