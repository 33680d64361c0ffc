"""A job run by tests/test_distributed.py in fresh processes: logs under a tf.distribute strategy.

Usage: python distributed_job.py MODE LOGDIR OUT_JSON
  MODE is "mirrored" (one process, two logical CPUs), "mirrored-outside" (the same, with the
  loggers created outside the strategy's scope) or "multiworker" (TF_CONFIG set by the caller).

Writes OUT_JSON with the histories returned by on_epoch_end for three ways of logging, the NumPy
means they must equal, and this process's pid and chief status.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# Imported first, as users do: importing lossboard must not start TensorFlow's runtime, or the
# device configuration and MultiWorkerMirroredStrategy() below would fail.
from lossboard import LossLogger  # noqa: E402
from lossboard.accumulate.distribute import num_workers  # noqa: E402

EPOCHS = 2


def data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(1.0, 0.5, size=n).astype("float32")


def main(mode: str, logdir: str, out: str) -> None:
    if mode.startswith("mirrored"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()

    train, val = (
        data(101, 0),
        data(23, 1),
    )  # 101 = 10 batches of 10 and one of 1: a replica gets none
    global_batch = 10

    def dataset(x):
        def fn(ctx):
            ds = tf.data.Dataset.from_tensor_slices(x)
            ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
            return ds.batch(ctx.get_per_replica_batch_size(global_batch))

        if mode.startswith("mirrored"):
            return strategy.experimental_distribute_dataset(
                tf.data.Dataset.from_tensor_slices(x).batch(global_batch)
            )
        return strategy.distribute_datasets_from_function(fn)

    train_ds, val_ds = dataset(train), dataset(val)
    scope = contextlib.nullcontext() if mode == "mirrored-outside" else strategy.scope()
    with scope:
        loggers = {
            way: LossLogger(os.path.join(logdir, way))
            for way in ("in_replica", "in_replica_means", "per_replica_eager", "per_replica_graph")
        }

    def losses(x):
        return {"loss": x * x, "lin": x}

    @tf.function
    def in_replica(x, split):
        def replica_fn(x):
            logger = loggers["in_replica"]
            method = logger.on_train_batch_end if split == "train" else logger.on_test_batch_end
            method(0, losses(x))

        strategy.run(replica_fn, args=(x,))

    @tf.function
    def in_replica_means(x, split):
        """Scalar means of each replica's share, weighted by that share's size."""

        def replica_fn(x):
            logger = loggers["in_replica_means"]
            method = logger.on_train_batch_end if split == "train" else logger.on_test_batch_end
            means = {k: tf.reduce_mean(v) for k, v in losses(x).items()}
            method(0, means, batch_size=tf.shape(x)[0])  # 0 for a replica with no examples

        strategy.run(replica_fn, args=(x,))

    @tf.function
    def per_replica(x):
        return strategy.run(losses, args=(x,))

    @tf.function
    def per_replica_graph(x, split):
        logs = strategy.run(losses, args=(x,))
        logger = loggers["per_replica_graph"]
        method = logger.on_train_batch_end if split == "train" else logger.on_test_batch_end
        method(0, logs)

    histories = {way: [] for way in loggers}
    for epoch in range(EPOCHS):
        for split, ds in (("train", train_ds), ("validation", val_ds)):
            for x in ds:
                in_replica(x, split)
                in_replica_means(x, split)
                per_replica_graph(x, split)
                logger = loggers["per_replica_eager"]
                method = logger.on_train_batch_end if split == "train" else logger.on_test_batch_end
                method(0, per_replica(x))
        for way, logger in loggers.items():
            histories[way].append(logger.on_epoch_end(epoch))
    batches = {way: logger.global_batch for way, logger in loggers.items()}
    for logger in loggers.values():
        logger.close()
    refused = outside_the_scope(mode, strategy, train_ds, logdir)
    f64 = lambda a: a.astype(np.float64)  # noqa: E731 - the squares are float32, as in the step
    expected = {
        "loss": f64(train * train).mean(),
        "lin": f64(train).mean(),
        "val_loss": f64(val * val).mean(),
        "val_lin": f64(val).mean(),
    }
    with open(out, "w") as f:
        json.dump(
            {
                "histories": histories,
                "global_batch": batches,
                "refused": refused,
                "expected": expected,
                "pid": os.getpid(),
                "chief": loggers["in_replica"].is_chief,
                "replicas": strategy.num_replicas_in_sync,
                "workers": num_workers(strategy),
            },
            f,
        )


def outside_the_scope(mode, strategy, train_ds, logdir) -> dict:
    """What a logger made outside the strategy's scope refuses, when called in its replicas:
    update_freq=N (each replica's call would be a batch), and any call under a multi-worker
    strategy (each worker would write its own share). ``{case: error message or None}``."""
    cases = {"update_freq": {"update_freq": 2}, "epoch": {}}
    if mode == "mirrored":
        return {}
    refused = {}
    for case, options in cases.items():
        logger = LossLogger(os.path.join(logdir, f"outside-{case}"), verbose=0, **options)

        @tf.function
        def step(x, logger=logger):
            strategy.run(lambda x: logger.on_train_batch_end(0, {"loss": x}), args=(x,))

        try:
            for x in train_ds:
                step(x)
            refused[case] = None
        except ValueError as err:
            refused[case] = str(err)
        logger.close()
    return refused


if __name__ == "__main__":
    main(*sys.argv[1:4])
