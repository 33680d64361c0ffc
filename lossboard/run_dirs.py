"""Run directories: unique, sortable, readable names under a root."""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Mapping
from typing import Any

from lossboard.events import files

_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,-]+")


def _clean(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-")


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def new_run_dir(
    root: str | os.PathLike,
    name: str | None = None,
    hparams: Mapping[str, Any] | None = None,
    *,
    now: _dt.datetime | None = None,
) -> str:
    """Creates and returns a new run directory under ``root``.

    The name starts with the local time (``20261125-142630``), so runs sort
    by start, then ``name`` and the hparams (``lr=0.001,opt=adam``) if given.
    Two runs started in the same second get ``-2``, ``-3``...: the directory
    is created atomically, so two processes never share one.

    Args:
        root: Where runs live (created if needed).
        name: A readable label, such as ``"baseline"``.
        hparams: Hyperparameters to show in the name (sorted by key).
        now: The time to use (defaults to now).

    Returns:
        The path of the created directory.

    Examples:
        >>> import os
        >>> import lossboard
        >>> path = lossboard.new_run_dir("logs/doc-runs", "mlp", {"lr": 0.01})
        >>> os.path.basename(path)[15:]
        '-mlp-lr=0.01'
    """
    if hparams is not None and not isinstance(hparams, Mapping):
        raise TypeError(f"hparams: got {hparams!r}; expected a mapping such as {{'lr': 1e-3}}.")
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    parts = [stamp]
    if name:
        parts.append(_clean(str(name)))
    if hparams:
        parts.append(_clean(",".join(f"{k}={_format(v)}" for k, v in sorted(hparams.items()))))
    base = os.path.join(os.fspath(root), "-".join(p for p in parts if p))
    os.makedirs(os.fspath(root), exist_ok=True)
    for attempt in range(1, 10_000):
        path = base if attempt == 1 else f"{base}-{attempt}"
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"could not find a free run directory name like {base!r}")


def trial_id(log_dir: str) -> str:
    """The run's trial in the HParams dashboard: its path from the working directory, and a
    short hash of its absolute path.

    The dashboard merges runs of one trial id into one row (averaging their metrics), so the
    id must differ between runs: a folder's own name does not (``lr=0.1/seed0`` and
    ``lr=0.01/seed0``), nor does a relative path written from two working directories. The
    hash keeps ids apart; the path keeps them readable without a machine path.

    Examples:
        >>> trial_id("logs/sweep/lr=0.1/seed0")[:24]
        'logs/sweep/lr=0.1/seed0 '
    """
    import hashlib

    if files.is_remote(log_dir):
        return log_dir.rstrip("/")
    path = os.path.abspath(log_dir)
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        relative = path
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        relative = os.path.basename(path)
    digest = hashlib.sha256(os.path.realpath(path).encode("utf-8", "replace")).hexdigest()[:8]
    return f"{relative.replace(os.sep, '/')} ({digest})"
