"""Configurations: runs whose hparams are equal except for the keys averaged over (``--over``).

Everything here works on the reader's column ``Table`` (one NumPy array per field, one
``Series`` per curve), without TensorFlow; lists of ``Point`` rows are accepted and turned
into a table once (``as_table``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lossboard.layout import AGGREGATE_MARKER
from lossboard.reader.read import Point
from lossboard.reader.table import Series, Table
from lossboard.run_dirs import _clean, _format

MARKER = AGGREGATE_MARKER


@dataclass
class Configuration:
    """Runs that differ only in the hparams averaged over.

    Attributes:
        name: A readable name made of the hparams that differ between configurations.
        hparams: The shared hparams (without the keys averaged over).
        runs: The runs, sorted.
    """

    name: str
    hparams: dict[str, Any]
    runs: list[str] = field(default_factory=list)


def group_runs(
    hparams: Mapping[str, Mapping[str, Any]], run_names: Iterable[str], over: Sequence[str]
) -> list[Configuration]:
    """Groups runs into configurations: equal hparams except for the keys in ``over``.

    A run without hparams is its own configuration, named after the run.

    Args:
        hparams: Each run's hyperparameters (from ``lossboard.reader.read.read_root``).
        run_names: The runs to group.
        over: Hparam names that vary within a configuration, such as ``["seed"]``.

    Raises:
        ValueError: When no run has one of the ``over`` keys (a typo would otherwise make
            every run its own configuration).

    Examples:
        >>> hp = {"a": {"lr": 0.1, "seed": 0}, "b": {"lr": 0.1, "seed": 1}}
        >>> hp["c"] = {"lr": 1, "seed": 0}
        >>> [(c.name, c.runs) for c in group_runs(hp, hp, ["seed"])]
        [('lr=0.1', ['a', 'b']), ('lr=1', ['c'])]
    """
    names = sorted(set(run_names))
    known = {k for r in names for k in hparams.get(r, {})}
    missing = [k for k in over if k not in known]
    if names and missing:
        raise ValueError(
            f"--over {' '.join(missing)}: no run has that hparam; the runs' hparams are "
            f"{', '.join(sorted(known)) or 'none'}. Pass one of those names."
        )
    by_key: dict[tuple, Configuration] = {}
    for run in names:
        own = hparams.get(run, {})
        shared = {k: v for k, v in own.items() if k not in over}
        key = tuple(sorted((k, repr(v)) for k, v in shared.items())) if own else ("run", run)
        by_key.setdefault(key, Configuration("", shared)).runs.append(run)
    configs = list(by_key.values())
    differing = varying_keys([c.hparams for c in configs])
    taken: set[str] = set()
    for c in configs:
        if not hparams.get(c.runs[0]):
            base = _clean(c.runs[0].replace("/", "_")) or "run"
        elif not c.hparams:
            base = "all"
        else:
            keys = differing or sorted(c.hparams)
            base = _clean(",".join(f"{k}={_format(c.hparams.get(k, '-'))}" for k in keys))
        name, i = base, 1
        while name in taken:
            i += 1
            name = f"{base}-{i}"
        taken.add(name)
        c.name = name
    return sorted(configs, key=lambda c: c.name)


def varying_keys(hparams: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of the hparams whose values differ between the given mappings (empty ones aside)."""
    hparams = [h for h in hparams if h]
    names = sorted({k for h in hparams for k in h})
    return [n for n in names if len({repr(h.get(n)) for h in hparams}) > 1]


def aggregate_dirs(root: str | os.PathLike) -> list[str]:
    """Folders under ``root`` (relative, ``/``-separated) written by ``lossboard aggregate``."""
    root = os.fspath(root)
    found = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        if MARKER in files:
            rel = os.path.relpath(directory, root)
            found.append("" if rel == "." else rel.replace(os.sep, "/"))
    return found


def as_table(points: Table | Iterable[Point], hparams: Mapping[str, Any] | None = None) -> Table:
    """The rows as a column ``Table`` (a table is returned as it is).

    Examples:
        >>> as_table([Point("a", "train", "epoch_loss", 0, 0.5, 0.0)]).series()
        {('a', 'train', 'epoch_loss'): Series(steps=array([0]), values=array([0.5]))}
    """
    if isinstance(points, Table):
        return points
    rows = list(points)
    run, split, tag, step, value, wall = (
        [getattr(p, f) for p in rows] for f in ("run", "split", "tag", "step", "value", "wall_time")
    )
    return Table.of_columns(run, split, tag, step, value, wall, dict(hparams or {}))


@dataclass
class Sources:
    """The rows of source runs, and the folders of aggregated runs that were left out."""

    table: Table
    skipped: list[str]


def source_runs(points: Table | Iterable[Point], root: str | os.PathLike) -> Sources:
    """The rows without the runs that ``lossboard aggregate`` wrote in a folder under ``root``.

    ``root`` itself may be such a folder: its runs are then the ones to read. Each run
    name is tested once, whatever its number of rows.
    """
    table = as_table(points)
    found = table.aggregated if table.aggregated is not None else aggregate_dirs(root)
    skip = [d for d in found if d]

    def source(run: str) -> bool:
        return not any(run == d or run.startswith(d + "/") for d in skip)

    return Sources(table.select(keep_run=source), skip)


Curves = dict[tuple[str, str, str], Series]
"""``{(run, split, tag): Series}``: one pair of arrays per curve."""


def curves(
    points: Table | Iterable[Point], tags: Iterable[str] | None = None, runs: str | None = None
) -> Curves:
    """Each run's curves by split and tag; the split of a run without splits is ``train``.

    Args:
        points: Scalars read back (a ``Table`` from ``lossboard.reader.read.read_table``).
        tags: Only these tags (default: all).
        runs: A glob on run names.
    """
    table = as_table(points).select(tags, runs)
    return {(run, split or "train", tag): s for (run, split, tag), s in table.series().items()}
