"""Scalars as columns: per-file pieces, and the sorted table of a root with one row per point.

Points are kept in NumPy arrays from the moment they are decoded, so a root of
millions of points costs a few dozen bytes per point, not a Python object each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Piece:
    """Points of one file (or block) as columns; tags are codes into a shared list."""

    tag: np.ndarray
    step: np.ndarray
    value: np.ndarray
    wall_time: np.ndarray

    @classmethod
    def empty(cls) -> Piece:
        return cls(np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))

    @classmethod
    def concat(cls, pieces: list[Piece]) -> Piece:
        if not pieces:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in pieces]) for f in FIELDS))


FIELDS = ("tag", "step", "value", "wall_time")


DTYPES = (np.int32, np.int64, np.float64, np.float64)


@dataclass
class Table:
    """Scalars of a root as columns, one row per point, sorted by run, split, tag, step.

    ``run``, ``split`` and ``tag`` are integer codes into the sorted name lists
    ``runs``, ``splits`` and ``tags``; ``hparams`` maps each run to its hparams.
    """

    run: np.ndarray
    split: np.ndarray
    tag: np.ndarray
    step: np.ndarray
    value: np.ndarray
    wall_time: np.ndarray
    runs: list[str]
    splits: list[str]
    tags: list[str]
    hparams: dict[str, dict[str, Any]]

    def __len__(self) -> int:
        return len(self.step)


def assemble(
    groups: dict[tuple[str, str], list[Piece]],
    tag_names: list[str],
    hparams: dict[str, dict[str, Any]],
) -> Table:
    """Newest point per (run, split, tag, step), sorted, as one set of columns."""
    tags = sorted(tag_names)
    rank = np.zeros(len(tag_names), np.int32)
    rank[np.argsort(np.array(tag_names, dtype=object), kind="stable")] = np.arange(len(tags))
    keys = sorted(groups)
    runs = sorted({run for run, _ in keys})
    splits = sorted({split for _, split in keys})
    done: list[tuple[int, int, Piece]] = []
    for key in keys:
        piece = Piece.concat(groups.pop(key))
        piece.tag = rank[piece.tag]
        done.append((runs.index(key[0]), splits.index(key[1]), _newest(piece)))
    total = sum(len(p.step) for _, _, p in done)
    out = {f: np.empty(total, d) for f, d in zip(FIELDS, DTYPES, strict=True)}
    run: np.ndarray = np.empty(total, _code_dtype(len(runs)))
    split: np.ndarray = np.empty(total, _code_dtype(len(splits)))
    at = 0
    while done:
        run_code, split_code, piece = done.pop(0)
        end = at + len(piece.step)
        run[at:end], split[at:end] = run_code, split_code
        for f in FIELDS:
            out[f][at:end] = getattr(piece, f)
        at = end
    tag: np.ndarray = out["tag"].astype(_code_dtype(len(tags)))
    return Table(
        run, split, tag, out["step"], out["value"], out["wall_time"], runs, splits, tags, hparams
    )


def _code_dtype(count: int) -> type:
    for dtype in (np.int8, np.int16, np.int32):
        if count < np.iinfo(dtype).max:
            return dtype
    return np.int64


def _newest(piece: Piece) -> Piece:
    """Sorted by (tag, step); of a step written twice, the one with the newest wall time.

    Ties go to the one read last, as a resumed run's rewrite comes after the original.
    """
    order = np.lexsort((piece.wall_time, piece.step, piece.tag))  # stable: ties keep file order
    tag, step = piece.tag[order], piece.step[order]
    last = np.ones(len(order), bool)
    last[:-1] = (tag[1:] != tag[:-1]) | (step[1:] != step[:-1])
    order = order[last]
    return Piece(*(getattr(piece, f)[order] for f in FIELDS))
