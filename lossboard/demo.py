"""A real custom training loop that logs with ``LossLogger``: ``lossboard demo``.

It trains a small regression model on data it generates (no network), with
two loss components besides the total (per-example ``mse`` and an ``l2`` weight
penalty, one number per batch), ``batch_size=len(x)`` so that the short last
batch counts exactly and ``loss == mse + l2`` per epoch, a validation set, and
:data:`DEMO_CONFIGS` (two learning rates), each trained over :data:`DEMO_SEEDS`
for :data:`DEMO_EPOCHS` epochs. Every invocation writes a new folder under the
log directory (running it again never adds epochs to earlier runs)::

    logs/<time>-demo/seeds/lr=0.003/seed0/{train,validation}   one run per seed
    logs/<time>-demo/mean/lr=0.003/{train,validation}          the mean over the seeds

The seeds and their means are two folders, each for its own ``tensorboard --logdir``, so
the means never clutter the seeds' curves.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
import time
from typing import Any

import numpy as np

#: The configurations the demo trains: folder name -> hyperparameters (besides the seed).
DEMO_CONFIGS: dict[str, dict[str, Any]] = {
    "lr=0.003": {"lr": 3e-3, "l2": 1e-4},
    "lr=0.03": {"lr": 3e-2, "l2": 1e-4},
}
#: The seeds each configuration is trained with.
DEMO_SEEDS = (0, 1)
#: Epochs per run.
DEMO_EPOCHS = 8
#: Examples in the training set: not a multiple of the batch size, so the last batch is short.
DEMO_EXAMPLES = 1000
DEMO_BATCH_SIZE = 64


def shape(epochs: int = DEMO_EPOCHS) -> str:
    """What the demo trains, in the words the docs use ("4 runs: 2 learning rates x ...").

    Examples:
        >>> shape()
        '4 runs: 2 learning rates x 2 seeds, 8 epochs each'
    """
    runs = len(DEMO_CONFIGS) * len(DEMO_SEEDS)
    return (
        f"{runs} runs: {len(DEMO_CONFIGS)} learning rates x {len(DEMO_SEEDS)} seeds, "
        f"{_epochs(epochs)} each"
    )


def _epochs(count: int) -> str:
    return f"{count} epoch{'' if count == 1 else 's'}"


def make_data(n: int, features: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy non-linear regression problem, generated on the spot."""
    w = np.random.default_rng(12345).normal(size=(features, 1)).astype("float32")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = np.tanh(x @ w) + 0.1 * rng.normal(size=(n, 1)).astype("float32")
    return x, y


def train_run(
    run_dir: str,
    lr: float,
    l2: float,
    epochs: int = DEMO_EPOCHS,
    batch_size: int = DEMO_BATCH_SIZE,
    seed: int = 0,
) -> dict[str, float]:
    """Trains one run with a custom loop; returns the last epoch's averages.

    ``seed`` sets the initial weights and the shuffling order (the data stay the same).
    """
    import tensorflow as tf

    from lossboard import LossLogger
    from lossboard.logger.keras_backend import keras

    keras.utils.set_random_seed(seed)
    x, y = make_data(DEMO_EXAMPLES)  # not a multiple of the batch size: a short last batch
    x_val, y_val = make_data(300, seed=1)
    train_ds = (
        tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).batch(batch_size)
    )
    val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(batch_size)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    optimizer = keras.optimizers.Adam(lr)

    def losses(xb, yb):
        per_example = tf.reduce_mean(tf.square(model(xb) - yb), axis=-1)  # shape (batch,)
        penalty = l2 * tf.add_n([tf.reduce_sum(tf.square(w)) for w in model.trainable_weights])
        return {"loss": per_example + penalty, "mse": per_example, "l2": penalty}  # l2: a scalar

    @tf.function
    def train_step(xb, yb):
        with tf.GradientTape() as tape:
            logs = losses(xb, yb)
            objective = tf.reduce_mean(logs["loss"])
        grads = tape.gradient(objective, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))
        return logs

    val_step = tf.function(lambda xb, yb: losses(xb, yb))
    history: dict[str, float] = {}
    hparams = {"lr": lr, "l2": l2, "batch_size": batch_size, "seed": seed}
    with LossLogger(run_dir, hparams=hparams, verbose=0) as logger:
        for epoch in range(epochs):
            for step, (xb, yb) in enumerate(train_ds):
                logger.on_train_batch_end(step, train_step(xb, yb), batch_size=len(xb))
            for step, (xb, yb) in enumerate(val_ds):
                logger.on_test_batch_end(step, val_step(xb, yb), batch_size=len(xb))
            history = logger.on_epoch_end(epoch)
    return history


def _script(name: str) -> str:
    """How to start this environment's ``name`` command from the current directory."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(path):
        return name
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else path


def train_all(seeds_dir: str, epochs: int = DEMO_EPOCHS, quiet: bool = False) -> None:
    """Trains every configuration over every seed into ``seeds_dir/<config>/seed<N>``."""
    for name, hp in DEMO_CONFIGS.items():
        for seed in DEMO_SEEDS:
            run = f"{name}/seed{seed}"
            history = train_run(os.path.join(seeds_dir, run), epochs=epochs, seed=seed, **hp)
            if not quiet:
                print(
                    f"{run:>15}: loss {history['loss']:.4f}  val_loss {history['val_loss']:.4f}  "
                    f"({_epochs(epochs)})"
                )


def main(logdir: str = "logs", epochs: int = DEMO_EPOCHS) -> int:
    """Trains every demo configuration over :data:`DEMO_SEEDS` in a new folder under ``logdir``.

    Writes the runs to ``<folder>/seeds`` and their means over the seeds to ``<folder>/mean``;
    prints the runs, the table of configurations (means over the seeds with their intervals)
    and the commands
    to look at them.

    Raises:
        ValueError: When ``epochs`` is below 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs: got {epochs}; expected 1 or more, such as {DEMO_EPOCHS}.")
    from lossboard.compare import config_table as grouped
    from lossboard.compare.aggregate import aggregate_root
    from lossboard.logger.quiet import import_tensorflow_quietly
    from lossboard.reader import read as reader
    from lossboard.run_dirs import new_run_dir

    started = time.perf_counter()
    import_tensorflow_quietly()
    folder = new_run_dir(logdir, "demo")
    seeds, mean = os.path.join(folder, "seeds"), os.path.join(folder, "mean")
    train_all(seeds, epochs)
    points = reader.read_table(seeds, tags=["epoch_*"])
    hparams = points.hparams
    aggregate_root(points, hparams, ["seed"], mean, source=seeds)
    table = grouped.summarize_groups(points, hparams, ["seed"])
    print(
        f"\nWrote {shape(epochs)}, to {seeds}/, and their means over the seeds to {mean}/ "
        f"in {time.perf_counter() - started:.0f} s.\n"
    )
    print(grouped.as_text(table))
    lossboard, tensorboard = _script("lossboard"), _script("tensorboard")
    seeds, mean = shlex.quote(seeds), shlex.quote(mean)  # paste-able with spaces in the path
    print(f"\nOpen the runs in TensorBoard (Scalars, HParams):  {tensorboard} --logdir {seeds}")
    print(
        f"Open their configurations, with bands over the seeds:  {tensorboard} --logdir {seeds}"
        "  then the lossboard tab (http://localhost:6006/#lossboard)"
    )
    print(f"Open the means over the seeds:  {tensorboard} --logdir {mean}")
    print(f"Compare them again:  {lossboard} compare {seeds} --over seed")
    print(f"A table for a paper:  {lossboard} compare {seeds} --over seed --latex table.tex")
    plot = (
        f"{lossboard} plot {seeds} --over seed -o {shlex.quote(os.path.join(folder, 'curves.png'))}"
    )
    if importlib.util.find_spec("matplotlib") is None:
        print(f"Plot them (needs matplotlib: {_script('pip')} install matplotlib):  {plot}")
    else:
        print(f"Plot them:  {plot}")
    return 0
