"""Runs side by side: one row per run, best run first, as text, Markdown or CSV."""

from __future__ import annotations

import csv
import fnmatch
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lossboard.reader import Point

SPLIT_ORDER = ("train", "validation")


@dataclass
class SplitSummary:
    """One split of one run, for one tag."""

    final: float
    best: float
    best_step: int
    epochs: int


@dataclass
class RunSummary:
    """One row of the comparison."""

    run: str
    splits: dict[str, SplitSummary] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)

    def rank_value(self) -> float:
        """What runs are ranked by: the final validation value, else the final train value."""
        for split in ("validation", "train"):
            if split in self.splits:
                return self.splits[split].final
        return math.nan


def summarize(
    points: Iterable[Point],
    hparams: Mapping[str, Mapping[str, Any]],
    tag: str = "epoch_loss",
    runs: str | None = None,
    higher_is_better: bool = False,
) -> list[RunSummary]:
    """Summaries of every run that has ``tag``, best first.

    Args:
        points: Scalars read back (see :func:`lossboard.reader.read_root`).
        hparams: Each run's hyperparameters.
        tag: The tag to compare, such as ``"epoch_loss"``.
        runs: A glob on run names (``"lr_*"``); all runs by default.
        higher_is_better: Rank and pick the best value by the maximum.
    """
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for p in points:
        if p.tag == tag and (runs is None or fnmatch.fnmatch(p.run, runs)):
            series.setdefault((p.run, p.split), []).append((p.step, p.value))
    summaries: dict[str, RunSummary] = {}
    pick = max if higher_is_better else min
    for (run, split), values in series.items():
        values.sort()
        finite = [v for v in values if not math.isnan(v[1])] or values
        best_step, best = pick(
            finite, key=lambda sv: (sv[1], -sv[0]) if higher_is_better else (sv[1], sv[0])
        )
        summary = summaries.setdefault(run, RunSummary(run, hparams=dict(hparams.get(run, {}))))
        summary.splits[split or "train"] = SplitSummary(values[-1][1], best, best_step, len(values))

    def order(s: RunSummary) -> tuple[bool, float, str]:
        value = s.rank_value()
        return (math.isnan(value), -value if higher_is_better else value, s.run)

    return sorted(summaries.values(), key=order)


def varying_hparams(summaries: list[RunSummary]) -> list[str]:
    """Names of the hparams whose values differ between the runs."""
    names = sorted({k for s in summaries for k in s.hparams})
    return [n for n in names if len({repr(s.hparams.get(n)) for s in summaries}) > 1]


def fmt(value: float) -> str:
    """A value with at least 4 decimals (scientific when it is small)."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0 or abs(value) >= 0.01:
        return f"{value:.4f}"
    return f"{value:.4e}"


def rows(summaries: list[RunSummary], number=fmt) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the comparison table, as strings."""
    splits = [s for s in SPLIT_ORDER if any(s in r.splits for r in summaries)]
    hp_names = varying_hparams(summaries)
    header = ["run"]
    for split in splits:
        short = "val" if split == "validation" else split
        header += [f"{short} final", f"{short} best", f"{short} best epoch", f"{short} epochs"]
    header += hp_names
    table = []
    for s in summaries:
        row = [s.run]
        for split in splits:
            sp = s.splits.get(split)
            row += (
                ["-"] * 4
                if sp is None
                else [number(sp.final), number(sp.best), str(sp.best_step), str(sp.epochs)]
            )
        row += [str(s.hparams.get(n, "-")) for n in hp_names]
        table.append(row)
    return header, table


def as_text(summaries: list[RunSummary], tag: str) -> str:
    """An aligned plain-text table for the terminal."""
    if not summaries:
        return f"No run has the tag {tag!r}."
    header, table = rows(summaries)
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    out = [
        f"{tag}: {len(summaries)} run(s), best first",
        line(header),
        line(["-" * w for w in widths]),
    ]
    out += [line(r) for r in table]
    return "\n".join(out)


def as_markdown(summaries: list[RunSummary]) -> str:
    """A Markdown table."""
    header, table = rows(summaries)
    out = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in table]
    return "\n".join(out) + "\n"


def as_csv(summaries: list[RunSummary]) -> str:
    """CSV with full-precision values."""
    header, table = rows(summaries, number=repr)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(table)
    return buffer.getvalue()
