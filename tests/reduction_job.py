"""The reduction contract, path by path: run by tests/test_reduction.py in its own process.

Its own process, because ``MirroredStrategy`` needs the CPU split into two logical
devices before TensorFlow starts. Hypothesis draws batches; each is fed through every
path lossboard has, and each path's ``Sums`` must be *identical* (not close) to
``reduction.reference`` applied to the units that path receives: whole batches, or
under a strategy each replica's shard (a replica's shard is its batch, as for Keras'
own metrics). Values are eighths and weights quarters, so every float64 sum is exact
in any order: a difference is a real difference, never rounding.

Prints ``examples: N`` and exits 0 when every example held.
"""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lossboard.accumulate import reduction, staging, tf_private  # noqa: E402
from lossboard.accumulate.accumulator import Accumulator  # noqa: E402

NAMES = ["s", "v", "w"]  # a scalar, per-example values, weighted per-example values
STRATEGY = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
SPECIAL = [np.nan, np.inf, -np.inf]


@st.composite
def element(draw, scale: float, low: int, high: int):
    if draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from(SPECIAL))
    return draw(st.integers(low, high)) * scale


@st.composite
def batch(draw):
    n = draw(st.integers(1, 5))
    eighth = element(1 / 8, -64, 64)
    return {
        "s": np.float32(draw(eighth)),
        "v": np.array(draw(st.lists(eighth, min_size=n, max_size=n)), np.float32),
        "w": np.array(draw(st.lists(eighth, min_size=n, max_size=n)), np.float32),
        "w_weight": np.array(draw(st.lists(element(1 / 4, 0, 8), min_size=n, max_size=n))),
    }


def reference(units: list[dict], skip: bool, names: list[str]) -> np.ndarray:
    """``[3, components]``: the contract applied to each unit, in float64 NumPy."""
    out = np.zeros((3, len(NAMES)))
    for unit in units:
        for name in names:
            if name not in unit or np.size(unit[name]) == 0:
                continue  # a replica that got no examples adds nothing
            weight = unit["w_weight"] if name == "w" else None
            got = reduction.reference(unit[name], weight)
            c = NAMES.index(name)
            if got.finite or not skip:
                out[0, c] += got.total
                out[1, c] += got.weight
            out[2, c] += not got.finite
    return out


def sums_of(acc: Accumulator) -> np.ndarray:
    running = acc.running()
    return np.stack([v.numpy()[: len(NAMES)] for v in running])


def eager(batches, policy, *, host=False, fold_every=16384) -> np.ndarray:
    acc = Accumulator(policy, fold_every=fold_every)
    acc.ensure(NAMES)
    const = (lambda x: x) if host else tf.constant
    for b in batches:
        acc.add({"s": const(b["s"]), "v": const(b["v"])})  # steady rows when shapes repeat
        acc.add({"w": const(b["w"])}, sample_weight={"w": const(b["w_weight"])})  # entries
    return sums_of(acc)


def in_graph(batches, policy) -> np.ndarray:
    acc = Accumulator(policy)
    acc.ensure(NAMES)

    @tf.function(reduce_retracing=True)
    def step(s, v, w, w_weight):
        acc.add_in_graph({"s": s, "v": v, "w": w}, sample_weight={"w": w_weight})

    for b in batches:
        step(*(tf.constant(b[k]) for k in ("s", "v", "w", "w_weight")))
    return sums_of(acc)


def shards(b: dict) -> list[dict]:
    """A batch's examples split between the two replicas (the second may get none)."""
    k = (len(b["v"]) + 1) // 2
    return [
        {key: b[key][part] for key in ("v", "w", "w_weight")}
        for part in (slice(0, k), slice(k, None))
    ]


def per_replica(parts: list[dict], key: str):
    return STRATEGY.experimental_distribute_values_from_function(
        lambda ctx: tf.constant(parts[ctx.replica_id_in_sync_group][key])
    )


def replicas(batches, policy, *, graph: bool) -> np.ndarray:
    with STRATEGY.scope():
        acc = Accumulator(policy, strategy=STRATEGY)
    acc.ensure(NAMES)

    @tf.function(reduce_retracing=True)
    def step(v, w, w_weight):
        acc.add_in_graph({"v": v, "w": w}, sample_weight={"w": w_weight})

    for b in batches:
        parts = shards(b)
        v, w, w_weight = (per_replica(parts, key) for key in ("v", "w", "w_weight"))
        if graph:
            STRATEGY.run(step, args=(v, w, w_weight))
        else:
            acc.add({"v": v, "w": w}, sample_weight={"w": w_weight})
    return sums_of(acc)


def public(batches, policy) -> np.ndarray:
    """The same eager path on TensorFlow's public API: segment sums, no column sums."""
    tf_private.use_public_api()
    try:
        return eager(batches, policy)
    finally:
        tf_private.use_public_api(False)


def large(batches, policy) -> np.ndarray:
    """Every tensor value reduced at the call, as values of 2048+ elements are."""
    limit = staging.LARGE
    staging.LARGE = 1
    try:
        return eager(batches, policy)
    finally:
        staging.LARGE = limit


EXAMPLES = []


#: One example per replica: the second replica gets no examples, and no weights (an
#: empty weight was refused inside the compiled step, found by this test).
ONE_EXAMPLE = {
    "s": np.float32(0.5),
    "v": np.array([1.0], np.float32),
    "w": np.array([2.0], np.float32),
    "w_weight": np.array([0.25]),
}


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(batch(), min_size=1, max_size=6), st.sampled_from(["warn", "skip"]))
@example([ONE_EXAMPLE, ONE_EXAMPLE], "skip")
def every_path_gives_the_reference(batches, policy):
    skip = policy == "skip"
    whole = reference(batches, skip, NAMES)
    by_shard = reference([p for b in batches for p in shards(b)], skip, ["v", "w"])
    paths = {
        "eager rows and entries (column sums)": (eager(batches, policy), whole),
        "eager, public API (segment sums)": (public(batches, policy), whole),
        "host values": (eager(batches, policy, host=True), whole),
        "large values (summed at the call)": (large(batches, policy), whole),
        "a fold after every batch (merges)": (eager(batches, policy, fold_every=1), whole),
        "inside tf.function": (in_graph(batches, policy), whole),
        "MirroredStrategy, eager PerReplica": (replicas(batches, policy, graph=False), by_shard),
        "MirroredStrategy, in-replica tf.function": (
            replicas(batches, policy, graph=True),
            by_shard,
        ),
    }
    for path, (got, expected) in paths.items():
        if not np.array_equal(got, expected, equal_nan=True):
            raise AssertionError(f"{path}:\n got {got.tolist()}\n expected {expected.tolist()}")
    EXAMPLES.append(len(batches))


if __name__ == "__main__":
    every_path_gives_the_reference()
    print(f"examples: {len(EXAMPLES)}")
    sys.exit(0)
