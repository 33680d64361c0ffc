"""What lossboard needs to know about ``tf.distribute``: replicas, workers, the chief.

Only public API: workers are counted from the strategy's ``cluster_resolver``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def local_parts(value: Any) -> tuple | None:
    """The per-replica parts of a ``PerReplica`` value (this worker's), else None."""
    if isinstance(value, tf.distribute.DistributedValues):
        return tuple(value.values)
    return None


def check_supported(strategy: tf.distribute.Strategy) -> None:
    """Refuses strategies whose steps run on remote workers lossboard cannot follow.

    Raises:
        ValueError: For ``ParameterServerStrategy``.
    """
    unsupported = getattr(tf.distribute.experimental, "ParameterServerStrategy", ())
    if unsupported and isinstance(strategy, unsupported):
        raise ValueError(
            "LossLogger does not support ParameterServerStrategy: its steps run on remote "
            "workers through a ClusterCoordinator, whose values lossboard cannot sum exactly. "
            "Fetch each step's losses (coordinator.schedule(...).fetch()) and log them eagerly "
            "outside the strategy's scope, or use MirroredStrategy or "
            "MultiWorkerMirroredStrategy."
        )


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """How many worker processes the strategy's replicas span (1 without a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    cluster = resolver.cluster_spec().as_dict()
    return max(1, len(cluster.get("worker", ())) + len(cluster.get("chief", ())))


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """True for a strategy whose replicas span several processes."""
    return num_workers(strategy) > 1


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a multi-worker job's non-chief worker.

    The chief is the task ``chief``, or worker 0 in a cluster without one
    (as Keras decides where to write checkpoints and summaries).
    """
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
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
