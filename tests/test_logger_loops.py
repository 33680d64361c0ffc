"""The loops people write, made exact by the documented idiom: ``batch_size=`` this batch's size.

Loops shaped like Keras' guide "Writing a training loop from scratch" (written here from
scratch): a plain eager loop, a loop with metrics, a tf.function step, a GAN with two optimizers.
6000 examples in batches of 64 leave a short last batch of 48. Each loop returns scalar batch
means; the reference is the float64 mean of the per-example losses computed in the same loop.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import close_to, read_split
from lossboard import LossLogger

N, BATCH = 6000, 64  # 93 batches of 64 and one of 48


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 8)).astype("float32")
    y = (np.tanh(x @ rng.normal(size=(8, 1))) + 0.1 * rng.normal(size=(N, 1))).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)]
    )


def _per_example_mse(y, pred):
    return np.mean((np.asarray(y, np.float64) - np.asarray(pred, np.float64)) ** 2, axis=-1)


@pytest.mark.parametrize("where", ["eager", "compiled_step_logged_outside", "inside_step"])
def test_scalar_batch_means_are_exact_with_batch_size(tmp_path, where):
    model, optimizer = _model(), keras.optimizers.SGD(0.05)
    loss_fn = keras.losses.MeanSquaredError()  # a scalar batch mean, as in the guide
    mae = keras.metrics.MeanAbsoluteError()
    logger = LossLogger(tmp_path)

    def step(x, y):
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = loss_fn(y, pred)
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))
        logs = {"loss": loss, "mae": tf.reduce_mean(tf.abs(y - pred))}
        if where == "inside_step":
            logger.on_train_batch_end(0, logs, batch_size=tf.shape(x)[0])
        return logs, pred

    if where != "eager":
        step = tf.function(step)
    for epoch in range(2):
        ref_loss, ref_mae = [], []
        for i, (x, y) in enumerate(_data()):
            logs, pred = step(x, y)
            if where != "inside_step":
                logger.on_train_batch_end(i, logs, batch_size=len(x))
            mae.update_state(y, pred)
            ref_loss.append(_per_example_mse(y, pred))
            ref_mae.append(np.abs(np.asarray(y, np.float64) - np.asarray(pred, np.float64)))
        history = logger.on_epoch_end(epoch)
        expected = {"loss": np.concatenate(ref_loss).mean(), "mae": np.concatenate(ref_mae).mean()}
        naive = np.mean([b.mean() for b in ref_loss])  # the mean of batch means
        assert abs(naive - expected["loss"]) > 1e-6 * expected["loss"]  # the idiom matters here
        for name, value in expected.items():
            assert history[name] == pytest.approx(value, rel=1e-5), (name, epoch)
            assert close_to(read_split(tmp_path, "train")[f"epoch_{name}"][epoch], history[name])
        assert history["mae"] == pytest.approx(float(mae.result()), rel=1e-5)
        mae.reset_state()


def test_gan_with_two_optimizers(tmp_path):
    """Discriminator and generator losses are scalar means over each batch's examples."""
    keras.utils.set_random_seed(3)
    gen = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
    disc = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    g_opt, d_opt = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    real_data = np.random.default_rng(4).normal(size=(N, 8)).astype("float32")

    @tf.function
    def step(real):
        n = tf.shape(real)[0]
        noise = tf.random.normal((n, 4))
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = gen(noise)
            real_logits, fake_logits = disc(real), disc(fake)
            d_loss = 0.5 * (bce(tf.ones_like(real_logits), real_logits)) + 0.5 * bce(
                tf.zeros_like(fake_logits), fake_logits
            )
            g_loss = bce(tf.ones_like(fake_logits), fake_logits)
        d_opt.apply_gradients(zip(d_tape.gradient(d_loss, disc.trainable_weights),
                                  disc.trainable_weights, strict=True))  # fmt: skip
        g_opt.apply_gradients(zip(g_tape.gradient(g_loss, gen.trainable_weights),
                                  gen.trainable_weights, strict=True))  # fmt: skip
        return {"d_loss": d_loss, "g_loss": g_loss}, real_logits, fake_logits

    def per_example_bce(label, logits):
        z = np.asarray(logits, np.float64)[:, 0]
        return np.maximum(z, 0) - z * label + np.log1p(np.exp(-np.abs(z)))

    logger = LossLogger(tmp_path)
    ref = {"d_loss": [], "g_loss": []}
    for i, real in enumerate(tf.data.Dataset.from_tensor_slices(real_data).batch(BATCH)):
        logs, real_logits, fake_logits = step(real)
        logger.on_train_batch_end(i, logs, batch_size=len(real))
        ref["d_loss"].append(
            0.5 * per_example_bce(1.0, real_logits) + 0.5 * per_example_bce(0.0, fake_logits)
        )
        ref["g_loss"].append(per_example_bce(1.0, fake_logits))
    history = logger.on_epoch_end(0)
    for name, parts in ref.items():
        assert history[name] == pytest.approx(np.concatenate(parts).mean(), rel=1e-5), name


@pytest.mark.parametrize("in_graph", [False, True])
def test_mixed_per_example_and_scalar_components_add_up(tmp_path, in_graph):
    """Per-example ``mse`` plus a scalar ``l2`` penalty: epoch_loss == epoch_mse + epoch_l2."""
    model = _model(5)
    logger = LossLogger(tmp_path)

    def losses(x, y):
        mse = tf.reduce_mean(tf.square(model(x) - y), axis=-1)  # shape (batch,)
        l2 = 1e-2 * tf.add_n([tf.reduce_sum(tf.square(w)) for w in model.trainable_weights])
        return {"loss": mse + l2, "mse": mse, "l2": l2}

    def log(i, x, y):
        logger.on_train_batch_end(i, losses(x, y), batch_size=tf.shape(x)[0])

    log = tf.function(log) if in_graph else log
    per_example = []
    for i, (x, y) in enumerate(_data(6)):
        log(i, x, y)
        per_example.append(_per_example_mse(y, model(x)))
    history = logger.on_epoch_end(0)
    assert history["loss"] == pytest.approx(history["mse"] + history["l2"], rel=2e-7)
    assert history["mse"] == pytest.approx(np.concatenate(per_example).mean(), rel=1e-5)
    written = read_split(tmp_path, "train")
    total = np.float32(written["epoch_mse"][0]) + np.float32(written["epoch_l2"][0])
    assert written["epoch_loss"][0] == pytest.approx(float(total), rel=2e-7)


def test_sample_weight_on_a_mixed_batch_says_what_it_does(tmp_path):
    logger = LossLogger(tmp_path)
    with pytest.warns(UserWarning, match=r"pass batch_size=3 instead"):
        logger.on_train_batch_end(0, {"mse": np.ones(3), "l2": 0.5}, sample_weight=3)
    logger.on_train_batch_end(1, {"mse": np.ones(3), "l2": 0.5}, sample_weight=3)  # once


@pytest.mark.parametrize("where", ["eager", "inside_step"])
def test_components_over_different_example_counts_take_a_batch_size_each(tmp_path, where):
    """A GAN step: the discriminator loss is a mean over real + fake examples, the generator
    loss over the fakes only; with a short last batch of reals, one batch_size for both
    weights them wrongly. batch_size={name: count} weights each by its own count."""
    rng = np.random.default_rng(5)
    reals, fakes = [32, 32, 32, 7], 16
    logger = LossLogger(tmp_path)

    @tf.function
    def log_inside(d_examples, g_examples):
        logger.on_train_batch_end(
            logs={"d_loss": tf.reduce_mean(d_examples), "g_loss": tf.reduce_mean(g_examples)},
            batch_size={"d_loss": tf.shape(d_examples)[0], "g_loss": tf.shape(g_examples)[0]},
        )

    d_all, g_all = [], []
    for n_real in reals:
        d = rng.normal(size=n_real + fakes).astype("float32")
        g = rng.normal(size=fakes).astype("float32")
        d_all.append(d)
        g_all.append(g)
        if where == "eager":
            logs = {"d_loss": tf.reduce_mean(d), "g_loss": tf.reduce_mean(g)}
            logger.on_train_batch_end(logs, batch_size={"d_loss": n_real + fakes, "g_loss": fakes})
        else:
            log_inside(tf.constant(d), tf.constant(g))
    logger.on_epoch_end(0)
    got = read_split(tmp_path, "train")
    for tag, parts in (("epoch_d_loss", d_all), ("epoch_g_loss", g_all)):
        expected = np.concatenate(parts).astype(np.float64).mean()  # per example, float64
        assert close_to(got[tag][0], expected, rel=1e-5), tag


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"batch_size": {"mse": 3}}, ValueError, r"no batch size for \['l2'\]"),
        ({"batch_size": {"mse": 3, "l2": 3, "kl": 3}}, ValueError, r"\['kl'\] not logged"),
        ({"batch_size": {}}, ValueError, "empty mapping"),
        ({"batch_size": {"mse": 3, "l2": 0}}, ValueError, r"batch_size\['l2'\]: batch_size=0"),
        ({"batch_size": {"mse": 4, "l2": 3}}, ValueError, "leading dimension 3 is not"),
        ({"batch_size": 0}, ValueError, "batch_size=0"),
        ({"batch_size": 2.0}, TypeError, "batch_size is 2.0"),
        ({"batch_size": True}, TypeError, "batch_size is True"),
        ({"batch_size": 4}, ValueError, "leading dimension 3 is not batch_size=4"),
        ({"batch_size": 3, "sample_weight": 3}, ValueError, "both batch_size and sample_weight"),
    ],
)
def test_bad_batch_size_is_refused_and_records_nothing(tmp_path, kwargs, error, words):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, {"mse": np.ones(3), "l2": 2.0}, batch_size=3)
    with pytest.raises(error, match=words):
        logger.on_train_batch_end(1, {"mse": np.zeros(3), "l2": 0.0}, **kwargs)
    assert logger.on_epoch_end(0) == {"mse": 1.0, "l2": 2.0}


@pytest.mark.parametrize("kind", ["int", "numpy", "tensor"])
def test_batch_size_kinds_and_the_steady_state_row(tmp_path, kind):
    """The row fast path takes batch_size too: the short last batch changes only the weight."""
    rng = np.random.default_rng(8)
    logger = LossLogger(tmp_path)
    sizes = [64] * 20 + [48]
    convert = {"int": int, "numpy": np.int64, "tensor": tf.constant}[kind]
    means, per_example = [], []
    for i, n in enumerate(sizes):
        values = rng.normal(size=n).astype("float32")
        per_example.append(values.astype(np.float64))
        mean = tf.reduce_mean(tf.constant(values))
        means.append(float(mean))
        logger.on_train_batch_end(
            i, {"loss": mean, "each": tf.constant(values)}, batch_size=convert(n)
        )
    history = logger.on_epoch_end(0)
    assert history["loss"] == pytest.approx(np.average(means, weights=sizes), rel=1e-12)
    assert history["each"] == pytest.approx(np.concatenate(per_example).mean(), rel=1e-12)


def test_names_do_not_depend_on_the_callers_name_scope_and_numpy_strings_work(tmp_path):
    logger = LossLogger(tmp_path)
    with tf.name_scope("outer"):
        logger.on_train_batch_end(0, {np.str_("loss"): 1.0, "a b/c": 2.0})
        logger.on_epoch_end(0)
    assert set(read_split(tmp_path, "train")) == {"epoch_loss", "epoch_a b/c"}


def test_batch_curves_in_graph_keep_a_component_of_a_later_trace(tmp_path):
    logger = LossLogger(tmp_path, update_freq=2)

    @tf.function
    def step(x, extra):
        logs = {"loss": tf.reduce_mean(x)}
        if extra:  # a Python bool: a second trace with a new component
            logs["kl"] = 2.0 * tf.reduce_mean(x)
        logger.on_train_batch_end(0, logs)

    values = [1.0, 3.0, 5.0, 7.0, 9.0, 11.0]
    for i, v in enumerate(values):
        step(tf.constant([v]), extra=i >= 2)
    assert logger.global_batch == 6
    curves = read_split(tmp_path, "train")
    assert curves["batch_loss"] == {2: 2.0, 4: 6.0, 6: 10.0}
    assert curves["batch_kl"] == {4: 12.0, 6: 20.0}  # first logged by the later trace


@pytest.mark.parametrize("update_freq", ["epoch", 2])
def test_jit_compiled_steps(tmp_path, update_freq):
    logger = LossLogger(tmp_path, update_freq=update_freq)

    @tf.function(jit_compile=True)
    def step(x):
        logger.on_train_batch_end(0, {"loss": tf.reduce_mean(x)}, batch_size=tf.shape(x)[0])

    batches = [np.array([1.0, 2.0], "float32"), np.array([4.0], "float32")]
    if update_freq == "epoch":
        for b in batches:
            step(tf.constant(b))
        assert logger.on_epoch_end(0) == {"loss": pytest.approx(7.0 / 3)}
        assert logger.global_batch == 2
    else:
        with pytest.raises(ValueError, match="XLA"):
            step(tf.constant(batches[0]))


def test_eager_only_calls_inside_tf_function_leave_the_logger_usable(tmp_path):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, {"loss": 2.0})
    for call in (lambda: logger.on_epoch_end(0), logger.metrics["loss"].reset_state):
        with pytest.raises(RuntimeError, match="eagerly"):
            tf.function(call)()
    assert logger.on_epoch_end(0) == {"loss": 2.0}
    assert read_split(tmp_path, "train")["epoch_loss"] == {0: 2.0}


def test_raise_per_batch_is_never_weaker_than_raise_inside_a_graph(tmp_path):
    logger = LossLogger(tmp_path, nonfinite="raise_per_batch")
    step = tf.function(lambda x: logger.on_train_batch_end(0, {"loss": x, "fine": 1.0}))
    step(tf.constant(np.nan))
    with pytest.raises(FloatingPointError, match="'loss'"):
        logger.on_epoch_end(0)
    assert read_split(tmp_path, "train") == {"epoch_fine": {0: 1.0}}


def test_an_epoch_with_no_batch_changes_nothing(tmp_path):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, {"loss": 1.0})
    logger.on_epoch_end(0)
    with pytest.warns(RuntimeWarning, match="no batch was logged"):
        assert logger.on_epoch_end(1) == {}
    assert logger.initial_epoch == 1
    assert read_split(tmp_path, "train") == {"epoch_loss": {0: 1.0}}


def test_a_compiled_step_traced_with_an_earlier_logger_is_reported(tmp_path):
    """A sweep reassigning a global logger: the step keeps calling the one it was traced with."""
    loggers = [LossLogger(tmp_path / "run0")]

    @tf.function
    def step(x):
        loggers[-1].on_train_batch_end(0, {"loss": x})

    step(tf.constant(1.0))
    assert loggers[0].on_epoch_end(0) == {"loss": 1.0}
    loggers.append(LossLogger(tmp_path / "run1"))
    step(tf.constant(2.0))  # no retrace: still the first logger's
    with pytest.warns(RuntimeWarning, match="traced with"):
        assert loggers[1].on_epoch_end(0) == {}


def test_one_logger_fed_from_several_threads_counts_every_batch(tmp_path):
    import threading

    logger = LossLogger(tmp_path, fold_every=64)
    rng = np.random.default_rng(9)
    chunks = [rng.normal(size=(500, 3)).astype("float32") for _ in range(4)]

    def feed(chunk):
        for row in chunk:
            logger.on_train_batch_end(0, {"loss": tf.constant(row), "first": float(row[0])})

    threads = [threading.Thread(target=feed, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = np.concatenate(chunks).astype(np.float64)
    history = logger.on_epoch_end(0)
    assert history["loss"] == pytest.approx(everything.mean(), rel=1e-12)
    assert history["first"] == pytest.approx(everything[:, 0].mean(), rel=1e-12)
    assert float(logger.metrics["loss"].count) == 0.0  # reset after the epoch


def test_a_weight_mapping_with_batch_size_is_honoured_after_the_steady_state(tmp_path):
    """Found in review: the row fast path ignored a sample_weight mapping given with batch_size."""
    logger = LossLogger(tmp_path)
    for _ in range(2):  # the steady state: a row signature for batch_size calls
        logger.on_train_batch_end(0, {"s": tf.constant(1.0), "pe": tf.constant([1.0, 1.0])},
                                  batch_size=2)  # fmt: skip
    logger.on_train_batch_end(
        0,
        {"s": tf.constant(5.0), "pe": tf.constant([9.0, 9.0])},
        sample_weight={"pe": tf.constant([0.0, 0.0])},
        batch_size=2,
    )
    history = logger.on_epoch_end(0)
    assert history["s"] == pytest.approx((1 * 2 + 1 * 2 + 5 * 2) / 6)  # scalars weigh 2 each
    assert history["pe"] == pytest.approx(1.0)  # the zero weights are honoured


@pytest.mark.parametrize("in_graph", [False, True])
@pytest.mark.parametrize(
    "value, batch_size",
    [([1.0, 2.0, 3.0], 5), ([1.0, 2.0, 3.0], 0), (4.0, -3), (4.0, 0)],
)
def test_tensor_batch_sizes_are_checked_like_ints(tmp_path, in_graph, value, batch_size):
    logger = LossLogger(tmp_path)
    logger.on_train_batch_end(0, {"loss": 2.0}, batch_size=2)

    def call(v, n):
        logger.on_train_batch_end(0, {"loss": v}, batch_size=n)

    call = tf.function(call) if in_graph else call
    if in_graph and batch_size == 0 and np.ndim(value) == 0:
        call(tf.constant(value), tf.constant(0))  # a replica's empty share: adds nothing
    else:
        error = (ValueError, tf.errors.InvalidArgumentError)
        with pytest.raises(error, match="batch_size"):
            call(tf.constant(value), tf.constant(batch_size))
    assert logger.on_epoch_end(0) == {"loss": 2.0}  # nothing of the refused batch


def test_the_mixed_dict_note_suggests_a_call_that_works(tmp_path):
    logger = LossLogger(tmp_path)
    with pytest.warns(UserWarning, match=r"pass batch_size=3 instead") as record:
        logger.on_train_batch_end(0, {"mse": np.ones(3), "l2": 0.5}, sample_weight=3.0)
    assert "batch_size=3.0" not in str(record[0].message)
    logger.on_train_batch_end(1, {"mse": np.ones(3), "l2": 0.5}, batch_size=3)  # that call works


def test_update_freq_batch_as_keras(tmp_path):
    logger = LossLogger(tmp_path, update_freq="batch")
    for i, v in enumerate([1.0, 3.0]):
        logger.on_train_batch_end(i, {"loss": v})
    logger.on_epoch_end(0)
    assert read_split(tmp_path, "train")["batch_loss"] == {1: 1.0, 2: 3.0}


def test_a_logger_inside_a_callback_list_fills_the_logs_for_the_callbacks_after_it(tmp_path):
    model = _model()
    logger = LossLogger(tmp_path)
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0)
    callbacks = keras.callbacks.CallbackList([logger, stop], model=model)
    callbacks.on_train_begin()
    for epoch, value in enumerate([1.0, 0.5, 0.7]):
        callbacks.on_train_batch_end(0, {"loss": value})
        callbacks.on_epoch_end(epoch, {})
        if getattr(model, "stop_training", False):
            break
    assert epoch == 2 and stop.stopped_epoch == 2  # it saw 0.7 > 0.5 and stopped
