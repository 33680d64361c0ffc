"""Exact global means under real tf.distribute strategies, each in fresh processes.

MirroredStrategy runs over two logical CPU devices; MultiWorkerMirroredStrategy runs as two worker
processes on 127.0.0.1. Both run tests/distributed_job.py, which logs four ways (in-replica calls
inside strategy.run, with per-example values or with scalar means and batch_size; PerReplica values
passed eagerly; PerReplica values passed inside tf.function).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import read_split

pytestmark = pytest.mark.slow
JOB = Path(__file__).with_name("distributed_job.py")
WAYS = ("in_replica", "in_replica_means", "per_replica_eager", "per_replica_graph")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _check_histories(result):
    expected = result["expected"]
    for way in WAYS:
        for epoch, history in enumerate(result["histories"][way]):
            assert set(history) == set(expected), way
            for key, value in expected.items():
                # batch means are float32 means (the user's reduce_mean): exact to float32
                rel = 1e-6 if way == "in_replica_means" else 1e-9
                assert history[key] == pytest.approx(value, rel=rel), (way, epoch, key)


def _check_events(logdir, expected, writer_pid):
    for way in WAYS:
        for split, prefix in (("train", ""), ("validation", "val_")):
            files = sorted((Path(logdir) / way / split).iterdir())
            assert len(files) == 1 and f".{writer_pid}." in files[0].name, files  # one writer
            events = read_split(Path(logdir) / way, split)
            for name in ("loss", "lin"):
                value = expected[prefix + name]
                assert events[f"epoch_{name}"][1] == pytest.approx(value, rel=2e-7)


def _check_batch_counts(result, outside=False):
    # batches logged in the replicas are not counted (each replica would count them),
    # whether the logger was made under the strategy's scope or not; in a tf.function, in
    # cross-replica context, only a logger made outside the scope (which has no strategy)
    # counts them
    assert result["global_batch"] == {
        "in_replica": 0,
        "in_replica_means": 0,
        "per_replica_eager": 22,  # 11 batches (the last of 1 example) x 2 epochs
        "per_replica_graph": 22 if outside else 0,
    }


@pytest.mark.parametrize("mode", ["mirrored", "mirrored-outside"])
def test_mirrored_strategy_two_logical_cpus(tmp_path, mode):
    """Under the scope or outside it (docs/distributed.md): the same exact epoch values.
    Outside it, every replica adds to one variable rather than to its own copy."""
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(JOB), mode, str(tmp_path / "logs"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["replicas"] == 2 and result["workers"] == 1
    _check_histories(result)
    _check_events(tmp_path / "logs", result["expected"], result["pid"])
    _check_batch_counts(result, outside=mode == "mirrored-outside")
    if mode == "mirrored-outside":
        # batch curves in the replicas of a logger made outside the scope: each replica's
        # call would be a batch of its own (steps 1, 3, 5... each one replica's share)
        assert (
            "update_freq=N batch curves cannot be written from inside strategy.run: this "
            "LossLogger was created outside the strategy's scope"
            in result["refused"]["update_freq"]
        )
        assert result["refused"]["epoch"] is None


def test_multi_worker_two_processes_one_writer(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs, outs = [], []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        }
        outs.append(tmp_path / f"worker{index}.json")
        procs.append(
            subprocess.Popen(
                [sys.executable, str(JOB), "multiworker", str(tmp_path / "logs"), str(outs[-1])],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        errors = [p.communicate(timeout=600)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-3000:] for e in errors)
    results = [json.loads(o.read_text()) for o in outs]
    assert [r["chief"] for r in results] == [True, False]
    assert results[0]["replicas"] == 2
    assert [r["workers"] for r in results] == [2, 2]  # counted from the cluster resolver
    for result in results:
        _check_histories(result)  # every worker returns the same, global, means
    assert results[0]["histories"] == results[1]["histories"]
    _check_events(tmp_path / "logs", results[0]["expected"], results[0]["pid"])
    for result in results:
        _check_batch_counts(result)
        # made outside the scope, each worker would write its own share: refused
        for case in ("update_freq", "epoch"):
            assert (
                "but this LossLogger was created outside that strategy's scope"
                in (result["refused"][case])
            ), case


PSS_SCRIPT = """
import os, socket
import tensorflow as tf

def port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

spec = tf.train.ClusterSpec({job: [f"localhost:{port()}"] for job in ("chief", "worker", "ps")})
servers = [
    tf.distribute.Server(spec, job_name=job, task_index=0, protocol="grpc", start=True)
    for job in ("worker", "ps")
]
resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
    spec, rpc_layer="grpc", task_type="chief", task_id=0
)
strategy = tf.distribute.experimental.ParameterServerStrategy(resolver)
from lossboard import LossLogger
with strategy.scope():
    LossLogger(LOGDIR)
"""


def test_parameter_server_strategy_is_refused_with_what_to_do(tmp_path):
    """A real in-process cluster (a worker and a parameter server on 127.0.0.1)."""
    script = PSS_SCRIPT.replace("LOGDIR", repr(str(tmp_path / "run")))
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 1
    assert "ValueError: LossLogger does not support ParameterServerStrategy" in proc.stderr
    assert "MultiWorkerMirroredStrategy" in proc.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was created
