"""Per-batch overhead of logging loss components, against the loops users write today.

Run: ``python benchmarks/overhead.py`` (5-10 minutes on 2 shared cores), ``--quick`` to check
that every section runs (under a minute), ``--sections NAME ...`` to run some sections alone.

Sections:

- ``overhead``: every variant trains the same compiled MLP step (784-256-10, batch 256, or
  ``--batch``: 64 gives a step of about 1 ms here) and differs only in what it does with the step's
  loss components afterwards, at 1, 4, 16 and 64 components (``--components``). Variants that
  change the loop itself (a ``MirroredStrategy``, an outer ``tf.function`` around the step) are
  compared with the same loop without the logger;
- ``epochs``: epochs of 1000 batches, each ended with ``on_epoch_end``, at 1, 16 and 64 components;
- ``curves``: batch curves (``update_freq=1`` and ``10``) with 4 components;
- ``shapes``: a per-pixel (32, 64, 64) and a per-token (64, 512) loss from small real models,
  logged eagerly with ``batch_size=``; each variant runs in a fresh process, so its peak RSS
  (``VmHWM``) is its own, and the table gives the logged run's peak minus the bare run's;
- ``epoch-end``: the time of ``on_epoch_end`` itself;
- ``memory``: RSS every tenth of a 100,000-batch epoch of eager calls;
- ``curve-memory`` (only when asked, or with ``--curve-points``): RSS while writing a million
  batch-curve points.

Variants are interleaved in one process, in a new random order each repeat, and each one's time is
divided by the bare loop's time *of the same repeat* (shared machines are noisy); tables show the
median over repeats. Every step (the step and its logging call) is timed on its own with
``time.perf_counter``, which gives p50 and p99 ratios to the bare loop besides the ratio of the
means; an epoch's (or pass's) end is added to its last step. The CPU time of the loop thread is the
steadier column. The devices TensorFlow sees are stated in the header; nothing forces the CPU, and
no variant reads a value on the host per batch (except ``nonfinite='raise_per_batch'``, which
documents it, and batch curves, which read each window's means when they write it). On a GPU, eager
calls dispatch asynchronously, so a per-step time is the time to enqueue the step and its logging,
not to run them; every pass ends with ``tf.test.experimental.sync_devices()`` (counted in its last
step), so the mean-based ratio includes the device's work.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import itertools
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from lossboard import LossLogger  # noqa: E402
from lossboard.accumulate import (
    pending,
    tf_private,  # noqa: E402
)

BATCH = 256
BARE = "bare loop"
STRATEGY_BARE = "bare loop under MirroredStrategy"
OUTER_BARE = "bare loop, the step wrapped in an outer tf.function"
SECTIONS = ("overhead", "epochs", "curves", "shapes", "epoch-end", "memory", "curve-memory")
DEFAULT_SECTIONS = SECTIONS[:-1]
QUICK = {  # --quick: every section tiny (explicit flags still win)
    "components": [1, 64],
    "steps": 20,
    "repeats": 2,
    "epoch_batches": 50,
    "shape_batches": 20,
    "shape_repeats": 1,
    "epoch_end_batches": [20, 100],
    "memory_batches": 2_000,
    "curve_points": 10_000,
}


# --------------------------------------------------------------------------- timing


@dataclasses.dataclass
class Variant:
    """One way of running a batch: ``batch(i, batch)``, then ``end()`` after each epoch."""

    batch: Callable[[int, object], object]
    end: Callable[[], object] | None = None
    baseline: str = BARE


@dataclasses.dataclass
class Timing:
    """One timed pass: seconds per step (an epoch's end added to its last step), per epoch end,
    in all (wall), and of the loop thread's CPU; ``peak_mib`` when the pass had a process alone."""

    steps: np.ndarray
    ends: np.ndarray
    wall: float
    cpu: float
    peak_mib: float | None = None

    def to_json(self) -> dict:
        arrays = {"steps": self.steps.tolist(), "ends": self.ends.tolist()}
        return {**dataclasses.asdict(self), **arrays}

    @classmethod
    def from_json(cls, data: dict) -> Timing:
        return cls(**{**data, "steps": np.array(data["steps"]), "ends": np.array(data["ends"])})


def time_pass(variant: Variant, batches: Sequence, steps: int, epochs: int = 1) -> Timing:
    """Runs ``epochs`` epochs of ``steps`` batches (cycling through ``batches``), timing each step.

    The only timing loop of this file. Each epoch ends with ``variant.end`` and a device sync.
    """
    times = np.full(steps * epochs, 0.0)  # written now, so it adds no RSS while the pass runs
    ends = np.full(epochs, 0.0)
    k = 0
    started, started_cpu = time.perf_counter(), time.thread_time()
    for epoch in range(epochs):
        for i in range(steps):
            batch = batches[i % len(batches)]
            t = time.perf_counter()
            variant.batch(i, batch)
            times[k] = time.perf_counter() - t
            k += 1
        t = time.perf_counter()
        if variant.end is not None:
            variant.end()
        tf.test.experimental.sync_devices()
        ends[epoch] = time.perf_counter() - t
        times[k - 1] += ends[epoch]
    return Timing(times, ends, time.perf_counter() - started, time.thread_time() - started_cpu)


def interleave(names: Sequence[str], run: Callable[[str], Timing], repeats: int) -> list[dict]:
    """``repeats`` rounds of ``run(name)`` for every name, in a new random order each round."""
    rounds = []
    order = list(names)
    for _ in range(repeats):
        random.shuffle(order)
        rounds.append({name: run(name) for name in order})
    return rounds


def compare(variants: Mapping[str, Variant], batches, steps, repeats, epochs=1) -> list[Row]:
    """Warms every variant up (3 steps), then times them interleaved; a row per variant."""
    for variant in variants.values():
        time_pass(variant, batches, 3)  # trace, build kernels
    rounds = interleave(
        list(variants), lambda name: time_pass(variants[name], batches, steps, epochs), repeats
    )
    return summarize(rounds, {name: v.baseline for name, v in variants.items()})


@dataclasses.dataclass
class Row:
    """A table row; ratios and overheads are against the variant's baseline of the same round."""

    name: str
    ms: float
    ratio: float
    spread: tuple[float, float] | None = None
    p50: float | None = None
    p99: float | None = None
    slowest_ms: float | None = None
    over_us: float | None = None
    cpu_us: float | None = None
    end_ms: float | None = None
    peak_mib: float | None = None
    growth_mib: float | None = None


def summarize(rounds: list[dict], baselines: Mapping[str, str]) -> list[Row]:
    """Medians over rounds of each variant's ratios to its baseline in the same round."""

    def med(f, name):
        return statistics.median(f(r[name], r[baselines[name]]) for r in rounds)

    def pct(q):
        return lambda t, b: np.percentile(t.steps, q) / np.percentile(b.steps, q)

    def per_step(t):
        return t.wall / len(t.steps)

    rows = []
    for name in baselines:
        ratio = med(lambda t, b: t.wall / b.wall, name)
        ratios = [r[name].wall / r[baselines[name]].wall for r in rounds]
        base_cpu = med(lambda t, b: b.cpu / len(b.steps), name)
        peaks = rounds[0][name].peak_mib is not None
        rows.append(
            Row(
                name=name,
                ms=med(lambda t, b: per_step(t), name) * 1e3,
                ratio=ratio,
                spread=tuple(np.percentile(ratios, [25, 75])),
                p50=med(pct(50), name),
                p99=med(pct(99), name),
                slowest_ms=max(r[name].steps.max() for r in rounds) * 1e3,
                over_us=(ratio - 1.0) * med(lambda t, b: per_step(b), name) * 1e6,
                cpu_us=(med(lambda t, b: t.cpu / len(t.steps), name) - base_cpu) * 1e6,
                end_ms=med(lambda t, b: float(np.median(t.ends)), name) * 1e3,
                peak_mib=med(lambda t, b: t.peak_mib, name) if peaks else None,
                growth_mib=med(lambda t, b: t.peak_mib - b.peak_mib, name) if peaks else None,
            )
        )
    return rows


COLUMNS = {  # field: (header, format)
    "ms": ("ms/step", "{:.2f}"),
    "ratio": ("ratio to bare", "{:.3f}x"),
    "spread": ("middle half of repeats", "{0[0]:.3f}-{0[1]:.3f}x"),
    "p50": ("p50 ratio", "{:.3f}x"),
    "p99": ("p99 ratio", "{:.3f}x"),
    "slowest_ms": ("slowest step (ms)", "{:.1f}"),
    "over_us": ("overhead, wall (µs/step)", "{:.0f}"),
    "cpu_us": ("overhead, CPU of the loop thread (µs/step)", "{:.0f}"),
    "end_ms": ("epoch end, median (ms)", "{:.1f}"),
    "peak_mib": ("peak RSS (MiB)", "{:.0f}"),
    "growth_mib": ("peak RSS growth over bare (MiB)", "{:+.0f}"),
}
BASIC = ("ms", "ratio", "spread", "p50", "p99", "slowest_ms", "over_us", "cpu_us")


def print_table(rows: Sequence[Row], fields: Sequence[str] = BASIC) -> None:
    """A Markdown table of ``rows``; a missing value is an empty cell."""
    print("| variant | " + " | ".join(COLUMNS[f][0] for f in fields) + " |")
    print("|---|" + "---:|" * len(fields))
    for row in rows:
        cells = [
            "" if getattr(row, f) is None else COLUMNS[f][1].format(getattr(row, f)) for f in fields
        ]
        print(f"| {row.name} | " + " | ".join(cells) + " |")
    print(flush=True)


# --------------------------------------------------------------------------- steps and loggers


def seeded_model(*layers):
    """A ``keras.Sequential`` of ``layers``, initialised the same way every time."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(list(layers))


def make_model():
    """The MLP (784-256-10) and its optimizer."""
    model = seeded_model(
        keras.Input((784,)), keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)
    )
    return model, keras.optimizers.SGD(1e-3)


def make_batches(steps):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(steps, BATCH, 784)).astype("float32"))
    y = tf.constant(rng.integers(0, 10, size=(steps, BATCH)))
    return list(zip(tf.unstack(x), tf.unstack(y), strict=True))


def compiled_step(model, optimizer, loss_fn, outputs, logger=None):
    """A compiled train step on ``mean(loss_fn(y, model(x)))`` returning ``outputs(loss)``,
    a dict of loss components; with ``logger``, it also logs them inside the step."""

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            per_element = loss_fn(y, model(x))
            loss = tf.reduce_mean(per_element)
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))
        logs = outputs(per_element)
        if logger is not None:
            logger.on_train_batch_end(0, logs)
        return logs

    return step


def make_step(model, optimizer, components, logger=None):
    """The MLP's compiled train step returning ``components`` scalar loss components."""
    return compiled_step(
        model,
        optimizer,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        lambda loss: {f"c{i}": loss * (1.0 + 0.01 * i) for i in range(components)},
        logger,
    )


def new_logger(logdir, name, **kwargs):
    """A silent ``LossLogger`` in its own directory under ``logdir``."""
    return LossLogger(os.path.join(logdir, name), verbose=0, **kwargs)


def epoch_ender(logger):
    """``end`` of a variant: ``logger.on_epoch_end`` with epochs 0, 1, 2, ..."""
    epochs = itertools.count()
    return lambda: logger.on_epoch_end(next(epochs))


def reader(logger):
    """``end`` of a variant: read ``c0``'s mean, which folds what is pending (part of the cost)."""
    return lambda: logger.metrics["c0"].result()


def eager(step, logger, end=None, baseline=BARE, **kwargs):
    """A variant that runs ``step`` and logs what it returns with an eager call."""
    return Variant(lambda i, b: logger.on_train_batch_end(i, step(*b), **kwargs), end, baseline)


def just(step, baseline=BARE):
    """A variant that only runs ``step`` (bare, or logging inside the step)."""
    return Variant(lambda i, b: step(*b), baseline=baseline)


# --------------------------------------------------------------------------- section: overhead


def variants(components, logdir):
    """name -> Variant, for the per-component tables."""
    model, opt = make_model()
    step = make_step(model, opt, components)
    totals = {}

    def summed(i, b):
        for k, v in step(*b).items():
            totals[k] = totals[k] + v if k in totals else v

    means = {f"c{i}": keras.metrics.Mean() for i in range(components)}

    def hand_means(i, b):
        for k, v in step(*b).items():
            means[k].update_state(v)

    held: list = []

    def floor(i, b):
        """The least an eager call can do: check each value's dtype and shape, and join
        every ~256 values into one tensor (no fold, no bookkeeping, no result)."""
        values = tuple(step(*b).values())
        tuple(map(tf_private.dtype_enum, values))
        tuple(map(tf_private.shape_tuple, values))
        held.append(values)
        if len(held) * components >= pending.CHUNK:
            joined = [v for row in held for v in row]
            held.clear()
            tf_private.join(joined, 0, tf_private.dtype_enum(joined[0]))

    eager_logger = new_logger(logdir, f"eager{components}")
    strict_logger = new_logger(logdir, f"strict{components}", nonfinite="raise_per_batch")
    in_step = make_step(model, opt, components, logger=new_logger(logdir, f"instep{components}"))
    outer_logger = new_logger(logdir, f"outer{components}")

    def wrapped(logger=None):
        """The step called from a ``tf.function`` of the user's (logging in it, with ``logger``)."""

        @tf.function
        def outer(x, y):
            logs = step(x, y)
            if logger is not None:
                logger.on_train_batch_end(0, logs)
            return logs

        return outer

    strategy_bare, in_replica = replica_variants(components, logdir)
    return {
        BARE: just(step),
        "summed batch tensors": Variant(summed, totals.clear),
        "one keras Mean per component": Variant(hand_means),
        "floor of an eager call: check and join each value, nothing else": Variant(
            floor, held.clear
        ),
        "LossLogger, eager call": eager(step, eager_logger, reader(eager_logger)),
        "LossLogger, eager, nonfinite='raise_per_batch' (a host read per value)": eager(
            step, strict_logger, reader(strict_logger)
        ),
        "LossLogger, inside the step": just(in_step),
        OUTER_BARE: just(wrapped(), OUTER_BARE),
        "LossLogger, in the outer tf.function (vs that loop)": just(
            wrapped(outer_logger), OUTER_BARE
        ),
        STRATEGY_BARE: just(strategy_bare, STRATEGY_BARE),
        "LossLogger, in-replica (vs the MirroredStrategy loop)": just(in_replica, STRATEGY_BARE),
    }


def replica_variants(components, logdir):
    """The same step under ``MirroredStrategy`` (default devices), bare and logging in-replica."""
    strategy = tf.distribute.MirroredStrategy()
    with strategy.scope():
        model, opt = make_model()
        logger = new_logger(logdir, f"replica{components}")
    bare_step = make_step(model, opt, components)
    logged_step = make_step(model, opt, components, logger=logger)

    def distributed(step):
        @tf.function
        def run(x, y):
            strategy.run(step, args=(x, y))

        return run

    return distributed(bare_step), distributed(logged_step)


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


def overhead_section(args, logdir):
    """One table per component count: every variant against the bare step."""
    batches = make_batches(args.steps)
    for components in args.components:
        print(f"### {components} component(s)\n")
        chosen = variants(components, logdir)
        if args.only:  # the variants named, and their baselines
            names = [n for n in chosen if any(part in n for part in args.only)]
            if not names:
                raise SystemExit(f"--only {args.only}: no variant matches; they are {list(chosen)}")
            keep = {chosen[n].baseline for n in names} | set(names)
            chosen = {n: v for n, v in chosen.items() if n in keep}
        rows = compare(chosen, batches, args.steps, args.repeats)
        if not args.only:
            bare_ms = rows[0].ms
            fit_ms = fit_ms_per_step(components, args.steps, logdir)
            rows.append(Row("model.fit + keras TensorBoard (reference)", fit_ms, fit_ms / bare_ms))
        print_table(rows)


# --------------------------------------------------------------------------- epochs and curves


def epochs_section(args, logdir):
    """Epochs of ``--epoch-batches`` batches ended by ``on_epoch_end``, eager call vs bare."""
    batches = make_batches(args.steps)  # cycled through
    print(
        f"### Epochs of {args.epoch_batches} batches, each ended with on_epoch_end "
        f"({args.epochs_per_pass} per pass)\n"
    )
    rows = []
    for components in (1, 16, 64):
        model, opt = make_model()
        step = make_step(model, opt, components)
        logger = new_logger(logdir, f"epochs{components}")
        bare = f"{BARE} ({components})"
        runs = {
            bare: just(step, bare),
            f"LossLogger, eager call + on_epoch_end ({components})": eager(
                step, logger, epoch_ender(logger), bare
            ),
        }
        rows += compare(runs, batches, args.epoch_batches, args.repeats, args.epochs_per_pass)
    print("Component counts in brackets; each row is against the bare loop of its count.\n")
    print_table(rows, BASIC + ("end_ms",))


def curves_section(args, logdir):
    """Batch curves (``update_freq``) with 4 components, eager call vs bare; a pass is an epoch."""
    batches = make_batches(args.steps)
    model, opt = make_model()
    step = make_step(model, opt, 4)
    runs = {BARE: just(step)}
    for freq in ("epoch", 10, 1):
        logger = new_logger(logdir, f"curves-{freq}", update_freq=freq)
        runs[f"LossLogger, eager call, update_freq={freq!r}"] = eager(
            step, logger, epoch_ender(logger)
        )
    print(f"### Batch curves, 4 components ({args.steps}-batch epochs ending with on_epoch_end)\n")
    print_table(compare(runs, batches, args.steps, args.repeats), BASIC + ("end_ms",))


# --------------------------------------------------------------------------- section: shapes


def random_inputs(x, y, count=8):
    """``count`` (input, target) pairs, each drawn by ``x(rng)`` and ``y(rng)``."""
    rng = np.random.default_rng(0)
    return [(tf.constant(x(rng)), tf.constant(y(rng))) for _ in range(count)]


def per_pixel_case():
    """A per-pixel MLP (4 -> 8 -> 1 channels) on 32 images of 64x64: squared error per pixel."""
    model = seeded_model(
        keras.Input((64, 64, 4)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)
    )
    inputs = random_inputs(
        lambda rng: rng.normal(size=(32, 64, 64, 4)).astype("float32"),
        lambda rng: rng.normal(size=(32, 64, 64)).astype("float32"),
    )
    return model, lambda y, p: tf.square(p[..., 0] - y), inputs


def per_token_case():
    """A token embedding (1000 x 16) and a logit per token on 64 x 512 tokens: binary
    cross-entropy per token."""
    model = seeded_model(
        keras.Input((512,), dtype="int32"), keras.layers.Embedding(1000, 16), keras.layers.Dense(1)
    )
    inputs = random_inputs(
        lambda rng: rng.integers(0, 1000, size=(64, 512)).astype("int32"),
        lambda rng: rng.integers(0, 2, size=(64, 512)).astype("float32"),
    )
    return model, lambda y, p: tf.nn.sigmoid_cross_entropy_with_logits(y, p[..., 0]), inputs


SHAPES = {"per-pixel (32, 64, 64)": per_pixel_case, "per-token (64, 512)": per_token_case}
SHAPE_LOGGED = "LossLogger, eager call with batch_size= + on_epoch_end"


def shape_child(spec):
    """In a fresh process: one pass of one variant of a shape case; prints its Timing as JSON."""
    case, logged, steps, epochs = spec
    model, loss_fn, inputs = SHAPES[case]()
    step = compiled_step(model, keras.optimizers.SGD(1e-3), loss_fn, lambda per: {"loss": per})
    batch_size = int(inputs[0][0].shape[0])
    with tempfile.TemporaryDirectory() as logdir:
        logger = new_logger(logdir, "shape") if logged else None
        if logged:
            variant = eager(step, logger, epoch_ender(logger), batch_size=batch_size)
        else:
            variant = just(step)
        time_pass(variant, inputs, 3)  # trace, build kernels
        timing = time_pass(variant, inputs, steps, epochs)
        timing.peak_mib = peak_rss_mib()
        if logger is not None:
            logger.close()
    print(json.dumps(timing.to_json()))


def peak_rss_mib():
    """This process's peak RSS (``VmHWM``). Not ``ru_maxrss``: Linux carries that across
    ``execve`` from the parent's (v)forked memory, so a child of a process that holds 800 MiB
    reports at least 800 MiB."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def run_shape_child(case, logged, steps, epochs):
    """``shape_child`` in a fresh Python process running this file."""
    spec = json.dumps([case, logged, steps, epochs])
    command = [sys.executable, os.path.abspath(__file__), "--shape-child", spec]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{out.stderr}")
    return Timing.from_json(json.loads(out.stdout.strip().splitlines()[-1]))


def shapes_section(args, logdir):
    """Large per-element losses: each variant of each case in a fresh process, interleaved."""
    print(
        f"### Per-pixel and per-token losses ({args.shape_epochs} x {args.shape_batches} batches, "
        f"a fresh process per variant, median of {args.shape_repeats} interleaved repeats)\n"
    )
    for case in SHAPES:

        def run(name, case=case):
            return run_shape_child(case, name != BARE, args.shape_batches, args.shape_epochs)

        rounds = interleave([BARE, SHAPE_LOGGED], run, args.shape_repeats)
        print(f"#### {case}\n")
        rows = summarize(rounds, {BARE: BARE, SHAPE_LOGGED: BARE})
        print_table(rows, BASIC + ("end_ms", "peak_mib", "growth_mib"))


# --------------------------------------------------------------------------- epoch end, memory


def scalar_logging(logger, components):
    """A variant that logs ``components`` copies of a ready-made scalar tensor eagerly."""
    names = [f"c{c}" for c in range(components)]
    return lambda i, value: logger.on_train_batch_end(i, dict.fromkeys(names, value))


def epoch_end_ms(components, batches, logdir, repeats=5):
    """Median time of ``on_epoch_end`` after ``batches`` eager batches of ``components`` scalars."""
    values = [tf.constant(float(i)) for i in range(100)]
    logger = new_logger(logdir, f"epoch-end-{components}-{batches}")
    variant = Variant(scalar_logging(logger, components), epoch_ender(logger))
    timing = time_pass(variant, values, batches, repeats + 1)
    logger.close()
    return statistics.median(timing.ends[1:]) * 1e3  # the first epoch end also builds kernels


def epoch_end_section(args, logdir):
    print("### on_epoch_end: time to read, write and flush an epoch\n")
    sizes = args.epoch_end_batches
    print("| components | " + " | ".join(f"after {n} batches (ms)" for n in sizes) + " |")
    print("|---:|" + "---:|" * len(sizes))
    for components in (1, 16, 64):
        times = (epoch_end_ms(components, n, logdir, args.epoch_end_repeats) for n in sizes)
        print(f"| {components} | " + " | ".join(f"{t:.1f}" for t in times) + " |", flush=True)
    print()


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_profile(batches, components, logdir, update_freq="epoch"):
    """RSS at every tenth of a long epoch of eager calls (values made ahead of time), and the
    Timing of those calls."""
    values = [tf.constant(float(i)) for i in range(1000)]
    logger = new_logger(logdir, f"memory-{update_freq}", update_freq=update_freq)
    samples = []
    variant = Variant(scalar_logging(logger, components), lambda: samples.append(rss_mb()))
    timing = time_pass(variant, values, batches // 10, epochs=10)  # an "epoch" is a tenth here
    logger.on_epoch_end(0)
    logger.close()
    return samples, timing


def print_memory(samples, timing):
    print("RSS (MiB) at each tenth: " + ", ".join(f"{s:.0f}" for s in samples))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process (ru_maxrss): {peak:.0f} MiB")
    print(f"growth from the first tenth to the end: {samples[-1] - samples[0]:+.1f} MiB")
    p50, p99 = (np.percentile(timing.steps, q) * 1e6 for q in (50, 99))
    print(
        f"eager call: {timing.wall:.1f} s in all, p50 {p50:.0f} µs, p99 {p99:.0f} µs, "
        f"slowest {timing.steps.max() * 1e3:.1f} ms\n",
        flush=True,
    )


def memory_section(args, logdir):
    print(f"### Memory: RSS over a {args.memory_batches:,}-batch epoch, 16 components\n")
    print_memory(*memory_profile(args.memory_batches, 16, logdir))


def curve_memory_section(args, logdir):
    batches = args.curve_points // 5
    print(
        f"### Memory: {batches * 5:,} batch-curve points "
        f"(5 components x {batches:,} batches, update_freq=1)\n"
    )
    print_memory(*memory_profile(batches, 5, logdir, update_freq=1))


# --------------------------------------------------------------------------- main


def device_summary():
    """The devices TensorFlow sees: kinds and counts, and each GPU's name."""
    kinds = collections.Counter(d.device_type for d in tf.config.list_logical_devices())
    gpus = [
        tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
        for gpu in tf.config.list_physical_devices("GPU")
    ]
    listed = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    return f"devices: {listed}; " + (f"GPU: {', '.join(gpus)}" if gpus else "no GPU")


RUNNERS = {
    "overhead": overhead_section,
    "epochs": epochs_section,
    "curves": curves_section,
    "shapes": shapes_section,
    "epoch-end": epoch_end_section,
    "memory": memory_section,
    "curve-memory": curve_memory_section,
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=None)
    parser.add_argument("--quick", action="store_true", help="every section tiny: a smoke test")
    parser.add_argument("--components", type=int, nargs="*", default=[1, 4, 16, 64])
    parser.add_argument(
        "--batch",
        type=int,
        default=BATCH,
        help="examples per batch of the MLP (sets the step time)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="TEXT",
        help="overhead section: only the variants whose name holds TEXT (and their baselines)",
    )
    parser.add_argument("--steps", type=int, default=150, help="batches per timed pass")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epoch-batches", type=int, default=1000)
    parser.add_argument("--epochs-per-pass", type=int, default=1)
    parser.add_argument("--shape-batches", type=int, default=400, help="batches per epoch")
    parser.add_argument("--shape-epochs", type=int, default=2)
    parser.add_argument("--shape-repeats", type=int, default=3)
    parser.add_argument("--epoch-end-batches", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--epoch-end-repeats", type=int, default=5)
    parser.add_argument("--memory-batches", type=int, default=100_000, help="0: no memory section")
    parser.add_argument(
        "--curve-points", type=int, default=None, help="run curve-memory with this many points"
    )
    parser.add_argument("--shape-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f"--batch {args.batch}: expected 1 or more examples per batch")
    if args.sections is None:  # --quick runs every section; --curve-points asks for curve-memory
        everything = args.quick or args.curve_points is not None
        args.sections = list(SECTIONS if everything else DEFAULT_SECTIONS)
    if args.quick:
        parser.set_defaults(**QUICK, sections=args.sections)
        args = parser.parse_args(argv)
    if not args.memory_batches and "memory" in args.sections:
        args.sections.remove("memory")
    if args.curve_points is None:
        args.curve_points = 1_000_000
    return args


def main(argv=None):
    global BATCH
    args = parse_args(argv)
    BATCH = args.batch
    if args.shape_child:
        shape_child(json.loads(args.shape_child))
        return 0
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, "
        f"{device_summary()}; MLP batches of {BATCH}; {args.steps} batches per pass, "
        f"median of {args.repeats} interleaved repeats; sections: {' '.join(args.sections)}.\n",
        flush=True,
    )
    logdir = tempfile.mkdtemp(prefix="lossboard-bench-")
    try:
        for section in SECTIONS:
            if section in args.sections:
                started = time.perf_counter()
                RUNNERS[section](args, logdir)
                print(f"({section}: {time.perf_counter() - started:.0f} s)\n", flush=True)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
