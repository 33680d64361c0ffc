"""Keras' own machinery driving the logger: CallbackList by hand, fit, evaluate, interruptions.

What the logger does depends on who calls it (keras_caller): a hand-driven CallbackList is a
custom loop (its batches are logged); fit's logs are Keras' means (written as they are); a
standalone evaluate gives this epoch's validation values. Values are read back from disk and
compared with NumPy or with what Keras returned.
"""

from __future__ import annotations

import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import lossboard
from conftest import close_to, read_split
from lossboard import LossLogger

SIZES = (32, 32, 26)  # 90 examples: the last batch is short


def _model_and_data(seed=0):
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(sum(SIZES), 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    return model, x, y


def _custom_epoch(callbacks, model, x, y, epoch):
    """One epoch of a custom loop that reports per-example losses; returns them all."""
    losses = []
    start = 0
    for step, n in enumerate(SIZES):
        pred = model(x[start : start + n])
        per_example = np.mean((np.asarray(pred) - y[start : start + n]) ** 2, axis=-1)
        callbacks.on_train_batch_end(step, {"loss": per_example})
        losses.append(per_example.astype(np.float64))
        start += n
    callbacks.on_epoch_end(epoch)
    return np.concatenate(losses)


def test_hand_driven_callback_list_logs_every_batch(tmp_path):
    model, x, y = _model_and_data()
    logger = LossLogger(tmp_path)
    callbacks = keras.callbacks.CallbackList([logger], model=model)
    callbacks.on_train_begin()
    expected = [_custom_epoch(callbacks, model, x, y, epoch).mean() for epoch in range(2)]
    callbacks.on_train_end()
    written = read_split(tmp_path, "train")["epoch_loss"]
    assert sorted(written) == [0, 1]
    for epoch, value in enumerate(expected):
        assert close_to(written[epoch], value)


class _Interrupt(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            raise KeyboardInterrupt


def test_a_custom_loop_after_an_interrupted_fit_is_logged(tmp_path):
    model, x, y = _model_and_data()
    logger = LossLogger(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[logger, _Interrupt()])
    losses = _custom_epoch(logger, model, x, y, epoch=0)
    assert close_to(read_split(tmp_path, "train")["epoch_loss"][0], losses.mean())


def test_evaluate_as_the_validation_pass_of_a_custom_loop(tmp_path):
    model, x, y = _model_and_data()
    logger = LossLogger(tmp_path)
    losses = []
    for step, n in enumerate(SIZES):
        losses.append(float(np.mean((np.asarray(model(x[:n])) - y[:n]) ** 2)))
        logger.on_train_batch_end(step, {"loss": losses[-1]}, batch_size=n)
    result = model.evaluate(x, y, batch_size=32, verbose=0, callbacks=[logger], return_dict=True)
    history = logger.on_epoch_end(0)
    assert history["val_loss"] == result["loss"]  # what evaluate returned, not a re-average
    assert close_to(read_split(tmp_path, "validation")["epoch_loss"][0], result["loss"])
    pred = np.asarray(model(x)).astype(np.float64)
    assert result["loss"] == pytest.approx(np.mean((pred - y) ** 2), rel=1e-5)  # an exact mean
    assert close_to(history["loss"], np.average(losses, weights=SIZES))


def test_fit_validation_inside_fit_is_not_taken_as_a_standalone_evaluate(tmp_path):
    model, x, y = _model_and_data()
    logger = LossLogger(tmp_path)
    history = model.fit(
        x, y, batch_size=32, epochs=2, verbose=0, validation_data=(x, y), callbacks=[logger]
    ).history
    written = read_split(tmp_path, "validation")["epoch_loss"]
    assert written == {e: float(np.float32(v)) for e, v in enumerate(history["val_loss"])}
    # and the logger serves a custom loop afterwards
    losses = _custom_epoch(logger, model, x, y, epoch=2)
    assert close_to(read_split(tmp_path, "train")["epoch_loss"][2], losses.mean())


def _overfitting_setup(seed=11):
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(40, 10)).astype("float32")
    y = (x[:, :1] + rng.normal(size=(40, 1))).astype("float32")  # mostly noise: overfits fast
    model = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(0.03), "mse")
    return model, (x[:24], y[:24]), (x[24:], y[24:])


def test_exact_epoch_means_drive_early_stopping_as_fit_would(tmp_path):
    """The recipe of docs/migration.md: lossboard's epoch values feed Keras' own callbacks."""
    model, (x, y), (xv, yv) = _overfitting_setup()
    fit_stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2)
    fit_history = model.fit(
        x, y, batch_size=8, epochs=40, shuffle=False, verbose=0,
        validation_data=(xv, yv), validation_batch_size=5, callbacks=[fit_stop],
    ).history  # fmt: skip
    fit_epochs = len(fit_history["loss"])
    assert 3 <= fit_epochs < 40  # it did stop early

    model, (x, y), (xv, yv) = _overfitting_setup()  # the same start, trained by hand
    loss_fn = keras.losses.MeanSquaredError()

    @tf.function
    def train_step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        model.optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))
        return {"loss": loss}

    logger = LossLogger(tmp_path)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2)
    keras_callbacks = keras.callbacks.CallbackList([stop], model=model)
    keras_callbacks.on_train_begin()
    epochs = 0
    for epoch in range(40):
        for step in range(0, 24, 8):
            xb, yb = x[step : step + 8], y[step : step + 8]
            logger.on_train_batch_end(step, train_step(xb, yb), batch_size=len(xb))
        for step in range(0, 16, 5):  # batches of 5, 5, 5 and 1
            xb, yb = xv[step : step + 5], yv[step : step + 5]
            logger.on_test_batch_end(step, {"loss": loss_fn(yb, model(xb))}, batch_size=len(xb))
        history = logger.on_epoch_end(epoch)
        keras_callbacks.on_epoch_end(epoch, history)
        epochs += 1
        if model.stop_training:
            break
    assert epochs == fit_epochs
    written = read_split(tmp_path, "validation")["epoch_loss"]
    for epoch, value in enumerate(fit_history["val_loss"]):
        assert written[epoch] == pytest.approx(value, rel=1e-4)


class _OwnFit(keras.Sequential):
    """A Model subclass whose own ``fit`` runs a custom loop, driving a CallbackList by hand
    (a method named ``fit`` with the model as ``self``, but not Keras' ``fit``)."""

    def fit(self, x, y, epochs=1, callbacks=()):  # noqa: D102 - the pattern under test
        callbacks = keras.callbacks.CallbackList(list(callbacks), model=self)
        callbacks.on_train_begin()
        expected = [_custom_epoch(callbacks, self, x, y, epoch).mean() for epoch in range(epochs)]
        callbacks.on_train_end()
        return expected


def test_a_model_subclass_own_fit_with_a_hand_driven_callback_list_logs_its_batches(tmp_path):
    keras.utils.set_random_seed(0)
    model = _OwnFit([keras.Input((4,)), keras.layers.Dense(1)])
    _, x, y = _model_and_data()
    expected = model.fit(x, y, epochs=2, callbacks=[LossLogger(tmp_path)])
    written = read_split(tmp_path, "train")["epoch_loss"]
    assert sorted(written) == [0, 1]  # it used to write nothing: taken for Keras' fit
    for epoch, value in enumerate(expected):
        assert close_to(written[epoch], value)


class _Forward(keras.callbacks.Callback):
    """A user's callback that passes fit's batch logs on to a logger."""

    def __init__(self, logger):
        super().__init__()
        self.logger = logger

    def on_train_batch_end(self, batch, logs=None):
        self.logger.on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.logger.on_epoch_end(epoch)


def test_batch_logs_forwarded_from_fit_are_warned_about_once(tmp_path):
    """fit's batch logs are running means: averaged again they are wrong, so the logger says
    so (once, naming the fix) instead of writing a wrong epoch value in silence."""
    model, x, y = _model_and_data()
    logger = LossLogger(tmp_path, verbose=0)
    with pytest.warns(lossboard.LossboardWarning, match=r"callbacks=\[logger\]") as caught:
        model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[_Forward(logger)])
    assert len([w for w in caught if "while Keras' fit is running" in str(w.message)]) == 1
    logger.close()


def test_a_batch_call_while_fit_drives_checks_only_nearby_frames(tmp_path):
    """While fit drives the logger, each batch call finds fit's frame among the nearest ones
    (no walk of the whole stack per batch), and a fit that is gone is noticed."""
    from lossboard.logger import keras_caller

    model, x, y = _model_and_data()
    depths = []

    class Depth(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            frame, depth = sys._getframe(), 0
            methods = keras_caller.keras_methods()
            while methods.get(frame.f_code) != "fit":
                frame, depth = frame.f_back, depth + 1
            depths.append(depth)

    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[Depth()])
    assert depths and max(depths) + 2 < keras_caller._NEAR  # + the logger's own frames
