"""A real custom training loop that logs with ``LossLogger``: ``lossboard demo``.

It trains a small regression model on data it generates (no network), with
two loss components besides the total (per-example ``mse`` and an ``l2`` weight
penalty, one number per batch), ``batch_size=len(x)`` so that the short last
batch counts exactly and ``loss == mse + l2`` per epoch, a validation set, and
two learning rates, each trained over a few seeds: ready to compare in
TensorBoard, and configuration by configuration with ``lossboard compare --over seed``.
Every invocation writes its runs into a new folder, so running it again never adds
epochs to earlier runs.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np

#: The runs the demo trains: run name -> hyperparameters.
DEMO_RUNS: dict[str, dict[str, Any]] = {
    "lr_0.003": {"learning_rate": 3e-3, "l2": 1e-4},
    "lr_0.03": {"learning_rate": 3e-2, "l2": 1e-4},
}


def make_data(n: int, features: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy non-linear regression problem, generated on the spot."""
    w = np.random.default_rng(12345).normal(size=(features, 1)).astype("float32")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = np.tanh(x @ w) + 0.1 * rng.normal(size=(n, 1)).astype("float32")
    return x, y


#: The seeds each configuration is trained with.
DEMO_SEEDS = (0, 1)


def train_run(
    run_dir: str,
    learning_rate: float,
    l2: float,
    epochs: int = 8,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, float]:
    """Trains one run with a custom loop; returns the last epoch's averages.

    ``seed`` sets the initial weights and the shuffling order (the data stay the same).
    """
    import keras
    import tensorflow as tf

    from lossboard import LossLogger

    keras.utils.set_random_seed(seed)
    x, y = make_data(1000)  # 1000 is not a multiple of 64: the last batch is short
    x_val, y_val = make_data(300, seed=1)
    train_ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000, seed=seed).batch(batch_size)
    val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(batch_size)
    model = keras.Sequential(
        [
            keras.Input((x.shape[1],)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    optimizer = keras.optimizers.Adam(learning_rate)

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
    hparams = {"learning_rate": learning_rate, "l2": l2, "batch_size": batch_size, "seed": seed}
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


def main(logdir: str = "logs", epochs: int = 8) -> int:
    """Trains every demo configuration over :data:`DEMO_SEEDS` in a new folder under ``logdir``.

    Prints the runs, the table of configurations (mean ± std over the seeds) and the
    commands to look at them.

    Raises:
        ValueError: When ``epochs`` is below 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs: got {epochs}; expected 1 or more, such as 8.")
    from lossboard import grouped, reader
    from lossboard.quiet import import_tensorflow_quietly
    from lossboard.runs import new_run_dir

    started = time.perf_counter()
    import_tensorflow_quietly()
    root = new_run_dir(logdir, "demo")
    for name, hp in DEMO_RUNS.items():
        for seed in DEMO_SEEDS:
            run = f"{name}-seed{seed}"
            history = train_run(os.path.join(root, run), epochs=epochs, seed=seed, **hp)
            print(
                f"{run:>15}: loss {history['loss']:.4f}  val_loss {history['val_loss']:.4f}  "
                f"({epochs} epochs)"
            )
    points, hparams = reader.read_root(root, tags=["epoch_*"])
    table = grouped.summarize_groups(points, hparams, ["seed"])
    count = len(DEMO_RUNS) * len(DEMO_SEEDS)
    print(
        f"\nWrote {count} runs ({len(DEMO_RUNS)} learning rates x {len(DEMO_SEEDS)} seeds) to "
        f"{root}/ in {time.perf_counter() - started:.0f} s.\n"
    )
    print(grouped.as_text(table))
    lossboard, mean = _script("lossboard"), os.path.join(root, "mean")
    print(
        f"\nOpen them in TensorBoard (Scalars, HParams):  {_script('tensorboard')} --logdir {root}"
    )
    print(f"Compare them again:  {lossboard} compare {root} --over seed")
    print(f"One mean run per learning rate:  {lossboard} aggregate {root} --over seed -o {mean}")
    print(
        f"Plot them (needs matplotlib: pip install matplotlib):  "
        f"{lossboard} plot {root} --over seed -o curves.png"
    )
    return 0
