"""Per-batch overhead of logging loss components, against the loops users write today.

Run: ``python benchmarks/overhead.py`` (about 3 minutes on 2 cores).

Every variant trains the same compiled MLP step (784-256-10, batch 256) and
differs only in what it does with the step's loss components afterwards. The
variants are interleaved in one process, in a new random order each repeat,
and each one's time is divided by the bare loop's time *of the same repeat*
(shared machines are noisy); the table shows the median over repeats.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from lossboard import LossLogger  # noqa: E402

BATCH = 256


def make_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((784,)), keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)]
    )
    return model, keras.optimizers.SGD(1e-3)


def make_batches(steps):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(steps, BATCH, 784)).astype("float32"))
    y = tf.constant(rng.integers(0, 10, size=(steps, BATCH)))
    return list(zip(tf.unstack(x), tf.unstack(y), strict=True))


def make_step(model, optimizer, components, logger=None):
    """A compiled train step returning ``components`` scalar loss components."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))
        logs = {f"c{i}": loss * (1.0 + 0.01 * i) for i in range(components)}
        if logger is not None:
            logger.on_train_batch_end(0, logs)
        return logs

    return step


def variants(components, batches, logdir):
    """name -> callable(batches) that runs one timed pass."""
    model, opt = make_model()
    step = make_step(model, opt, components)

    def bare(bs):
        for x, y in bs:
            step(x, y)

    def summed(bs):
        totals = None
        for x, y in bs:
            logs = step(x, y)
            totals = dict(logs) if totals is None else {k: totals[k] + v for k, v in logs.items()}

    means = {f"c{i}": keras.metrics.Mean() for i in range(components)}

    def hand_means(bs):
        for x, y in bs:
            for k, v in step(x, y).items():
                means[k].update_state(v)

    eager_logger = LossLogger(os.path.join(logdir, f"eager{components}"))

    def lossboard_eager(bs):
        for i, (x, y) in enumerate(bs):
            eager_logger.on_train_batch_end(i, step(x, y))
        eager_logger.metrics["c0"].result()  # fold what is pending: part of the cost

    strict_logger = LossLogger(
        os.path.join(logdir, f"strict{components}"), nonfinite="raise_per_batch"
    )

    def lossboard_strict(bs):
        for i, (x, y) in enumerate(bs):
            strict_logger.on_train_batch_end(i, step(x, y))
        strict_logger.metrics["c0"].result()

    in_logger = LossLogger(os.path.join(logdir, f"instep{components}"))
    in_step = make_step(model, opt, components, logger=in_logger)

    def lossboard_in_step(bs):
        for x, y in bs:
            in_step(x, y)

    strategy_bare, in_replica = replica_variants(components, logdir)
    runs = {
        "bare loop": bare,
        "summed batch tensors": summed,
        "one keras Mean per component": hand_means,
        "LossLogger, eager call": lossboard_eager,
        "LossLogger, eager, nonfinite='raise_per_batch' (a host read per value)": lossboard_strict,
        "LossLogger, inside the step": lossboard_in_step,
        STRATEGY_BARE: strategy_bare,
        "LossLogger, in-replica (vs the MirroredStrategy loop)": in_replica,
    }
    for run in runs.values():
        run(batches[:3])  # trace and warm up
    return runs


STRATEGY_BARE = "bare loop under MirroredStrategy"


def replica_variants(components, logdir):
    """The same step under ``MirroredStrategy`` (this CPU), bare and logging in-replica."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model, opt = make_model()
        logger = LossLogger(os.path.join(logdir, f"replica{components}"))
    bare_step = make_step(model, opt, components)
    logged_step = make_step(model, opt, components, logger=logger)

    def loop(step):
        @tf.function
        def distributed(x, y):
            strategy.run(step, args=(x, y))

        def run(bs):
            for x, y in bs:
                distributed(x, y)

        return run

    return loop(bare_step), loop(logged_step)


def fit_ms_per_step(components, steps, logdir):
    """``model.fit`` with ``keras.callbacks.TensorBoard``: per-step time, for reference."""
    model, opt = make_model()
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    metrics = [
        keras.metrics.MeanMetricWrapper(lambda yt, yp: 0.0 * tf.reduce_mean(yp), name=f"m{i}")
        for i in range(components - 1)
    ]
    model.compile(opt, loss_fn, metrics=metrics)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * BATCH, 784)).astype("float32")
    y = rng.integers(0, 10, size=(steps * BATCH,))
    cb = keras.callbacks.TensorBoard(os.path.join(logdir, f"fit{components}"))
    model.fit(x[: 3 * BATCH], y[: 3 * BATCH], batch_size=BATCH, epochs=1, verbose=0, callbacks=[cb])
    started = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[cb])
    return (time.perf_counter() - started) / steps * 1e3


def baseline(name):
    """The variant a variant is compared with: the strategy loop for in-replica logging."""
    return STRATEGY_BARE if "MirroredStrategy" in name else "bare loop"


def measure(components, steps, repeats, logdir):
    """Rows of (variant, wall ms/step, wall ratio to bare, wall overhead us, CPU overhead us).

    The CPU overhead is the calling thread's CPU time per step minus the bare
    loop's: everything lossboard does on the eager path runs in that thread,
    and CPU time is not inflated by other processes the way wall time is.
    """
    batches = make_batches(steps)
    runs = variants(components, batches, logdir)
    wall = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    ratios = {name: [] for name in runs}
    order = list(runs)
    for _ in range(repeats):
        random.shuffle(order)
        this = {}
        for name in order:
            started, started_cpu = time.perf_counter(), time.thread_time()
            runs[name](batches)
            this[name] = (time.perf_counter() - started, time.thread_time() - started_cpu)
        for name, (w, c) in this.items():
            wall[name].append(w / steps * 1e3)
            cpu[name].append(c / steps * 1e6)
            ratios[name].append(w / this[baseline(name)][0])
    rows = []
    bare_ms = statistics.median(wall["bare loop"])
    for name in runs:
        ratio = statistics.median(ratios[name])
        base = baseline(name)
        rows.append(
            (
                name,
                statistics.median(wall[name]),
                ratio,
                (ratio - 1.0) * statistics.median(wall[base]) * 1e3,
                statistics.median(cpu[name]) - statistics.median(cpu[base]),
            )
        )
    fit_ms = fit_ms_per_step(components, steps, logdir)
    rows.append(("model.fit + keras TensorBoard (reference)", fit_ms, fit_ms / bare_ms, None, None))
    return rows


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_profile(batches, components, logdir):
    """RSS every 10% of a long epoch of eager calls (values made ahead of time)."""
    values = [tf.constant(float(i)) for i in range(1000)]
    logger = LossLogger(os.path.join(logdir, "memory"))
    samples = []
    for i in range(batches):
        v = values[i % 1000]
        logger.on_train_batch_end(i, {f"c{c}": v for c in range(components)})
        if (i + 1) % (batches // 10) == 0:
            samples.append(rss_mb())
    logger.on_epoch_end(0)
    logger.close()
    return samples


def epoch_end_ms(components, batches, logdir, repeats=5):
    """Median time of ``on_epoch_end`` after ``batches`` eager batches of ``components`` scalars."""
    values = [tf.constant(float(i)) for i in range(100)]
    logger = LossLogger(os.path.join(logdir, f"epoch-end-{components}-{batches}"), verbose=0)
    times = []
    for epoch in range(repeats + 1):
        for i in range(batches):
            logger.on_train_batch_end(i, {f"c{c}": values[i % 100] for c in range(components)})
        started = time.perf_counter()
        logger.on_epoch_end(epoch)
        times.append((time.perf_counter() - started) * 1e3)
    logger.close()
    return statistics.median(times[1:])  # the first epoch end also builds kernels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, nargs="*", default=[1, 4, 16, 64])
    parser.add_argument("--steps", type=int, default=150, help="batches per timed pass")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--memory-batches", type=int, default=100_000)
    args = parser.parse_args(argv)
    logdir = tempfile.mkdtemp(prefix="lossboard-bench-")
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs; "
        f"{args.steps} batches per pass, median of {args.repeats} interleaved repeats.\n"
    )
    for components in args.components:
        print(f"### {components} component(s)\n")
        print(
            "| variant | ms/step | ratio to bare | overhead, wall (µs/step) "
            "| overhead, CPU of the loop thread (µs/step) |"
        )
        print("|---|---:|---:|---:|---:|")
        for name, ms, ratio, over, over_cpu in measure(
            components, args.steps, args.repeats, logdir
        ):
            over_s = "" if over is None else f"{over:.0f}"
            cpu_s = "" if over_cpu is None else f"{over_cpu:.0f}"
            print(f"| {name} | {ms:.2f} | {ratio:.3f}x | {over_s} | {cpu_s} |")
        print(flush=True)
    print("### on_epoch_end: time to read, write and flush an epoch\n")
    print("| components | after 200 batches (ms) | after 1000 batches (ms) |")
    print("|---:|---:|---:|")
    for components in (1, 16, 64):
        short, long = (epoch_end_ms(components, n, logdir) for n in (200, 1000))
        print(f"| {components} | {short:.1f} | {long:.1f} |", flush=True)
    print()
    if args.memory_batches:
        samples = memory_profile(args.memory_batches, 16, logdir)
        print(f"### Memory: RSS over a {args.memory_batches:,}-batch epoch, 16 components\n")
        print("RSS (MiB) at each tenth: " + ", ".join(f"{s:.0f}" for s in samples))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of the process (ru_maxrss): {peak:.0f} MiB")
        print(f"growth from the first tenth to the end: {samples[-1] - samples[0]:+.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
