"""What lossboard needs to know about ``tf.distribute``: replicas, workers, the chief."""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def local_parts(value: Any) -> tuple | None:
    """The per-replica parts of a ``PerReplica`` value (this worker's), else None."""
    if isinstance(value, tf.distribute.DistributedValues):
        return tuple(value.values)
    return None


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """True for a strategy whose replicas span several processes."""
    return bool(getattr(strategy.extended, "_num_workers", 1) > 1)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a multi-worker job's non-chief worker.

    The chief is the task ``chief``, or worker 0 in a cluster without one
    (as Keras decides where to write checkpoints and summaries).
    """
    if not is_multi_worker(strategy):
        return True
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return True
    cluster = resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return True
    return (
        resolver.task_type in (None, "worker") and resolver.task_id == 0 and "chief" not in cluster
    )


def updates_go_to_primary(variable: Any) -> bool:
    """Whether an add to a sum-on-read ``variable`` must target one replica's copy.

    In a replica context of the strategy (inside ``strategy.run``) each
    replica adds to its own copy; anywhere else (cross-replica context, or
    outside the strategy's scope) one add must count once, so it goes to the
    first local copy only, and reads still sum all copies.
    """
    if not isinstance(variable, tf.distribute.DistributedValues):
        return False
    return not (tf.distribute.has_strategy() and tf.distribute.get_replica_context() is not None)
