"""Who else writes a run directory: another logger of this process, or another live process.

Two writers of one run interleave their points; TensorBoard's default loader
then shows one point per step, taken from either. Nothing is refused (a
resumed run after a crash is legitimate), but the second writer is told.

Event files are created lazily (on the first value), so two processes started on one
directory at the same time cannot see each other's files. The chief therefore claims a local
run directory at construction: ``<run>/.lossboard-writer`` holds its pid, host and a token,
created atomically (only one process can create it) and removed at ``close``. A second
process finds the claim and is warned, naming the holder. A claim whose holder is gone is
taken over without a warning: a dead pid on this host, our own pid with no logger of ours
open (a restarted container reuses pids), or a claim from another host not refreshed (each
epoch end touches it) for ``RECENT_SECONDS``. The reader reads only ``*tfevents*`` files.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid

from lossboard.layout import SPLITS
from lossboard.warn import LossboardRuntimeWarning, warn

_OPEN: dict[str, int] = {}
_CLAIMS: dict[str, str] = {}  # key -> the token of the claim file this process wrote
# Re-entrant: a logger garbage collected without close() releases its directory from a
# finalizer, which can run on this thread while the lock is held (a collection during the
# claim's json.dump): a plain Lock deadlocked there.
_LOCK = threading.RLock()
#: An event file (or another host's claim) touched this recently counts as being written.
RECENT_SECONDS = 3600.0
#: The claim file of a run directory (not an event file: readers and TensorBoard skip it).
CLAIM_NAME = ".lossboard-writer"


def _key(log_dir: str) -> str:
    return log_dir if "://" in log_dir else os.path.realpath(log_dir)


def warn_if_shared(log_dir: str) -> bool:
    """Registers ``log_dir`` as written by this process; warns if someone writes it already.

    Returns:
        Whether another writer (a logger of this process, or another process) was found.
    """
    key = _key(log_dir)
    with _LOCK:
        mine = _OPEN.get(key, 0)
        _OPEN[key] = mine + 1
        holder = None if mine else _claim(log_dir, key)
    writers = [f"another LossLogger of this process (pid {os.getpid()})"] if mine else []
    claimed_pid = None
    if holder is not None:
        claimed_pid = holder.get("pid") if holder.get("host") == socket.gethostname() else None
        writers.append(_describe(holder, log_dir))
    writers += [f"process {pid}" for pid in _live_writers(log_dir) if pid != claimed_pid]
    if not writers:
        return False
    try:
        warn(
            f"{log_dir!r} is being written by {' and '.join(writers)}: the points of both would "
            "interleave, and TensorBoard's default loader shows one of them per step. Give each "
            "run its own directory (lossboard.new_run_dir), or close the other logger first.",
            LossboardRuntimeWarning,
        )
    except BaseException:  # a filter made it an error: no logger is made, none registered
        release(log_dir)
        raise
    return True


def release(log_dir: str) -> None:
    """Unregisters one logger of ``log_dir`` (at ``close``); the last one removes our claim."""
    key = _key(log_dir)
    with _LOCK:
        count = _OPEN.get(key, 0) - 1
        if count > 0:
            _OPEN[key] = count
            return
        _OPEN.pop(key, None)
        token = _CLAIMS.pop(key, None)
    if token is not None:
        path = os.path.join(log_dir, CLAIM_NAME)
        if (_read_claim(path) or {}).get("token") == token:  # never another process's claim
            try:
                os.remove(path)
            except OSError:
                pass


def touch(log_dir: str) -> None:
    """Refreshes our claim (at each epoch end): another host sees its holder is alive."""
    if _key(log_dir) in _CLAIMS:
        try:
            os.utime(os.path.join(log_dir, CLAIM_NAME))
        except OSError:
            pass


def _claim(log_dir: str, key: str) -> dict | None:
    """Claims ``log_dir`` for this process; returns the live claim of another one, if any.

    Best effort: a directory where the claim cannot be written (remote, read-only) is not
    claimed, and nothing is refused.
    """
    if "://" in log_dir:
        return None
    path = os.path.join(log_dir, CLAIM_NAME)
    token = uuid.uuid4().hex
    me = {"pid": os.getpid(), "host": socket.gethostname(), "token": token}
    for _ in range(3):  # a stale claim moved away, then created again; a race lost is a claim
        if _create(path, me):
            _CLAIMS[key] = token
            return None
        holder = _read_claim(path)
        if holder is None:  # gone meanwhile, or unreadable: try again
            time.sleep(0.05)
            continue
        if not _stale(holder, path):
            return holder
        _remove_stale(path)
    return None


def _create(path: str, claim: dict) -> bool:
    """Creates the claim file with its whole content at once; False if it exists (or fails)."""
    temporary = f"{path}.{claim['token']}"
    try:
        with open(temporary, "x", encoding="utf-8") as f:
            json.dump({**claim, "started": time.time()}, f)
    except OSError:
        return False
    try:
        os.link(temporary, path)  # atomic, and refuses an existing claim
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links here: an exclusive create, then the content
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except OSError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({**claim, "started": time.time()}, f)
        return True
    finally:
        try:
            os.remove(temporary)
        except OSError:
            pass


def _read_claim(path: str) -> dict | None:
    for _ in range(10):  # an exclusive create (no hard links) writes its content just after
        try:
            with open(path, encoding="utf-8") as f:
                claim = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            time.sleep(0.02)
            continue
        return claim if isinstance(claim, dict) else {}
    return {}


def _stale(holder: dict, path: str) -> bool:
    """Whether the holder of a claim is gone (see the module docstring)."""
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int):
        return pid == os.getpid() or not _alive(pid)  # ours: no logger of ours is open
    try:
        return time.time() - os.stat(path).st_mtime > RECENT_SECONDS
    except OSError:
        return True


def _remove_stale(path: str) -> None:
    """Moves a stale claim away, then deletes it: of two processes taking it over at once,
    one moves it; the other finds no claim, or the new one."""
    aside = f"{path}.stale.{uuid.uuid4().hex}"
    try:
        os.rename(path, aside)
    except OSError:
        return
    try:
        os.remove(aside)
    except OSError:
        pass


def _describe(holder: dict, log_dir: str) -> str:
    pid, host = holder.get("pid", "?"), holder.get("host", "?")
    started = holder.get("started")
    when = (
        time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(started))
        if isinstance(started, int | float)
        else ""
    )
    claim = os.path.join(log_dir, CLAIM_NAME)
    return (
        f"process {pid} on host {host!r}{when} (it claimed the directory in {claim!r}; if that "
        "process is gone, delete that file)"
    )


def _live_writers(log_dir: str) -> set[int]:
    """Pids of other live processes on this host with recently written event files in the run.

    TensorFlow names event files ``events.out.tfevents.<time>.<host>.<pid>.<n>.v2``.
    """
    if "://" in log_dir:
        return set()
    host, now, pids = socket.gethostname(), time.time(), set()
    for split in ("", *SPLITS):
        folder = os.path.join(log_dir, split)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            parts = name.split(".")
            if not name.startswith("events.out.tfevents.") or len(parts) < 6:
                continue
            file_host, pid_text = ".".join(parts[4:-3]), parts[-3]
            if file_host != host or not pid_text.isdigit() or int(pid_text) == os.getpid():
                continue
            try:
                recent = now - os.stat(os.path.join(folder, name)).st_mtime < RECENT_SECONDS
            except OSError:
                continue
            if recent and _alive(int(pid_text)):
                pids.add(int(pid_text))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
