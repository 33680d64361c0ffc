"""Memory and pauses for large loss shapes: per-pixel, per-token and long per-example epochs.

Run: ``python benchmarks/memory.py`` (a few minutes on 2 cores).

Each case runs in a fresh process twice, alternately: the bare loop (a compiled step that makes a
loss tensor of the given shape from a new input each batch) and the same loop logging that tensor
with ``LossLogger.on_train_batch_end`` and ending each epoch with ``on_epoch_end``. A process
reports its peak RSS (``ru_maxrss``) and its step times; the table gives the logged loop's peak RSS
growth over the bare loop's, its slowest step over the bare loop's, and p50/p99 ratios. The device
is stated (the same script runs on a GPU when one is visible).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CASES = {  # name: (loss shape, batches per epoch, epochs)
    "per-pixel (32, 64, 64)": ((32, 64, 64), 800, 1),
    "per-token (64, 512)": ((64, 512), 1000, 2),
    "per-example (4096,)": ((4096,), 20000, 1),
    "64 scalars, 1000-batch epochs": ((), 1000, 3),
}

CHILD = r"""
import json, os, resource, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
from lossboard import LossLogger

shape, batches, epochs, logged, logdir = json.loads(sys.argv[1])
shape = tuple(shape)
components = 64 if shape == () else 1

@tf.function
def step(seed):
    x = tf.random.stateless_normal(shape or (1,), seed=tf.stack([seed, 0]))
    loss = tf.square(x) if shape else tf.reduce_mean(tf.square(x))
    return {f"c{i}": loss * (1.0 + 0.01 * i) for i in range(components)}

logger = LossLogger(logdir, verbose=0) if logged else None
step(tf.constant(0))
times = []
for epoch in range(epochs):
    for i in range(batches):
        start = time.perf_counter()
        logs = step(tf.constant(i))
        if logger is not None:
            logger.on_train_batch_end(i, logs)
        times.append(time.perf_counter() - start)
    if logger is not None:
        start = time.perf_counter()
        logger.on_epoch_end(epoch)
        times[-1] += time.perf_counter() - start
device = tf.config.list_logical_devices("GPU")
print(json.dumps({
    "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "times": times,
    "device": device[0].name if device else "CPU",
}))
"""


def run(shape, batches, epochs, logged, logdir):
    args = json.dumps([list(shape), batches, epochs, logged, logdir])
    out = subprocess.run(
        [sys.executable, "-c", CHILD, args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args(argv)
    print(
        "| case | device | peak RSS bare (MiB) | growth logged (MiB) | p50 ratio | p99 ratio "
        "| slowest step, bare / logged (ms) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in args.cases:
        shape, batches, epochs = CASES[name]
        results = {False: [], True: []}
        for r in range(args.repeats):
            for logged in (False, True) if r % 2 == 0 else (True, False):
                with tempfile.TemporaryDirectory() as logdir:
                    results[logged].append(run(shape, batches, epochs, logged, logdir))
        bare = min(x["peak_mib"] for x in results[False])
        logged = min(x["peak_mib"] for x in results[True])

        def pct(runs, q):
            return float(np.median([np.percentile(x["times"][10:], q) for x in runs]))

        slow_b = max(max(x["times"][10:]) for x in results[False]) * 1e3
        slow_l = max(max(x["times"][10:]) for x in results[True]) * 1e3
        print(
            f"| {name} | {results[True][0]['device']} | {bare:.0f} | {logged - bare:+.0f} "
            f"| {pct(results[True], 50) / pct(results[False], 50):.3f}x "
            f"| {pct(results[True], 99) / pct(results[False], 99):.3f}x "
            f"| {slow_b:.1f} / {slow_l:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
