"""Who else writes a run directory: another logger of this process, or another live process.

Two writers of one run interleave their points; TensorBoard's default loader
then shows one point per step, taken from either. Nothing is refused (a
resumed run after a crash is legitimate), but the second writer is told.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from lossboard.layout import SPLITS
from lossboard.warn import LossboardRuntimeWarning, warn

_OPEN: dict[str, int] = {}
_LOCK = threading.Lock()
#: An event file touched this recently by a live process counts as being written.
RECENT_SECONDS = 3600.0


def _key(log_dir: str) -> str:
    return log_dir if "://" in log_dir else os.path.realpath(log_dir)


def warn_if_shared(log_dir: str) -> None:
    """Registers ``log_dir`` as written by this process; warns if someone writes it already."""
    key = _key(log_dir)
    with _LOCK:
        mine = _OPEN.get(key, 0)
        _OPEN[key] = mine + 1
    writers = [f"another LossLogger of this process (pid {os.getpid()})"] if mine else []
    writers += [f"process {pid}" for pid in _live_writers(log_dir)]
    if not writers:
        return
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


def release(log_dir: str) -> None:
    """Unregisters one logger of ``log_dir`` (at ``close``)."""
    key = _key(log_dir)
    with _LOCK:
        count = _OPEN.get(key, 0) - 1
        if count > 0:
            _OPEN[key] = count
        else:
            _OPEN.pop(key, None)


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
