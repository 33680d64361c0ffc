"""Two writers of one run directory are told, whenever they start; a closed or dead one is not.

Event files are created lazily, so two processes started on one directory at the same time
could not see each other: the run directory is claimed at construction.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import lossboard
from lossboard import LossLogger
from lossboard.logger.sharing import CLAIM_NAME

ROOT = Path(__file__).resolve().parents[1]

# Waits for the test's signal files, so both processes make their logger at the same moment;
# then logs one epoch of its own values and closes when told.
WRITER = """
import json, os, sys, time, warnings
from lossboard import LossLogger

run, sync, name, value = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

def wait_for(signal):
    while not os.path.exists(os.path.join(sync, signal)):
        time.sleep(0.01)

open(os.path.join(sync, f"ready-{name}"), "w").close()
wait_for("go")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    logger = LossLogger(run, verbose=0)
print(json.dumps({"pid": os.getpid(), "warnings": [str(w.message) for w in caught]}), flush=True)
open(os.path.join(sync, f"made-{name}"), "w").close()
wait_for("end")
logger.on_train_batch_end(0, {"loss": value})
logger.on_epoch_end(0)
logger.close()
"""


def _start(run: Path, sync: Path, name: str, value: float) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run), str(sync), name, str(value)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, processes: list[subprocess.Popen], timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        for p in processes:
            if p.poll() is not None:
                raise AssertionError(f"a writer ended early: {p.stderr.read()[-3000:]}")
        assert time.monotonic() < end, f"timed out waiting for {path.name}"
        time.sleep(0.05)


def test_two_processes_started_at_once_on_one_directory_are_told(tmp_path):
    """Both make their logger at the same moment, before any event file exists: exactly one
    of them is warned, naming the directory and the other's pid and host."""
    run, sync = tmp_path / "run", tmp_path / "sync"
    sync.mkdir()
    processes = [_start(run, sync, name, v) for name, v in (("a", 1.0), ("b", 2.0))]
    try:
        for name in ("a", "b"):
            _wait_for(sync / f"ready-{name}", processes)
        (sync / "go").touch()
        for name in ("a", "b"):
            _wait_for(sync / f"made-{name}", processes)
        (sync / "end").touch()
        outs = [p.communicate(timeout=240) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(processes, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    warned = [r for r in reports if r["warnings"]]
    assert len(warned) == 1, reports
    (other,) = [r for r in reports if not r["warnings"]]
    (message,) = warned[0]["warnings"]
    assert message.startswith(f"{str(run)!r} is being written by process {other['pid']} ")
    assert f"on host {socket.gethostname()!r}" in message
    # the claim is gone with its holder, and the reader never looked at it
    assert not (run / CLAIM_NAME).exists()
    table = lossboard.load(run)
    assert table["value"].tolist() in ([1.0], [2.0])  # the same step, one process's value


def test_a_resumed_logger_and_a_dead_process_claim_are_not_warned(tmp_path):
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for epoch in (0, 1):  # closed, then made again in this process: a resume
            with LossLogger(run, verbose=0) as logger:
                assert (run / CLAIM_NAME).exists()
                logger.on_train_batch_end(0, {"loss": float(epoch)})
                logger.on_epoch_end(epoch)
            assert not (run / CLAIM_NAME).exists()
        # a process that crashed while holding the claim
        dead = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.DEVNULL
        )
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        claim = {"pid": dead.pid, "host": socket.gethostname(), "token": "crashed"}
        (run / CLAIM_NAME).write_text(json.dumps(claim))
        with LossLogger(run, verbose=0) as logger:
            assert json.loads((run / CLAIM_NAME).read_text())["pid"] == os.getpid()
            logger.on_train_batch_end(0, {"loss": 2.0})
            logger.on_epoch_end(2)
        assert not (run / CLAIM_NAME).exists()
    table = lossboard.load(run)
    np.testing.assert_array_equal(table["value"].to_numpy(), [0.0, 1.0, 2.0])


@pytest.mark.parametrize("fresh", [True, False])
def test_another_hosts_claim_warns_while_it_is_fresh(tmp_path, fresh):
    """A pid of another host cannot be checked: its claim counts while epoch ends refresh it."""
    run = tmp_path / "run"
    run.mkdir()
    claim = run / CLAIM_NAME
    claim.write_text(json.dumps({"pid": 4242, "host": "elsewhere", "token": "x"}))
    if not fresh:
        old = time.time() - 2 * 3600
        os.utime(claim, (old, old))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            LossLogger(run, verbose=0).close()
        assert not claim.exists()  # taken over, then released
        return
    with pytest.warns(lossboard.LossboardWarning, match="process 4242 on host 'elsewhere'"):
        logger = LossLogger(run, verbose=0)
    logger.close()
    assert json.loads(claim.read_text())["host"] == "elsewhere"  # never removed by another


def test_a_logger_collected_while_another_claims_its_directory_never_deadlocks(tmp_path):
    """A logger dropped without close() releases its directory from a finalizer; the garbage
    collector may run it in the middle of another logger's claim, on the same thread, with
    the registry's lock held (it deadlocked there under TF 2.16). Here a collection is forced
    inside the claim."""
    import gc
    import threading

    from lossboard.logger import sharing

    def dropped() -> None:
        logger = LossLogger(tmp_path / "dropped")  # never closed: its finalizer releases it
        logger.cycle = logger  # freed by the garbage collector only, as a real loop's often is

    real_create = sharing._create

    def create_with_a_collection(path, claim):
        gc.collect()  # the dropped logger's finalizer runs here, inside the claim
        return real_create(path, claim)

    done = []

    def make() -> None:
        dropped()
        sharing._create = create_with_a_collection
        try:
            LossLogger(tmp_path / "second").close()
            done.append(True)
        finally:
            sharing._create = real_create

    worker = threading.Thread(target=make, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert done == [True], "the second logger's construction did not return (a deadlock)"
