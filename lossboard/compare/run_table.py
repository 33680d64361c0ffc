"""Runs side by side: one row per run, best run first, as text, Markdown or CSV."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossboard.compare.configurations import curves, varying_keys
from lossboard.layout import SPLITS
from lossboard.reader.read import Point
from lossboard.reader.table import Table

SPLIT_ORDER = SPLITS


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

    def rank_value(self, split: str | None = None) -> float:
        """The final value of ``split`` (NaN if the run lacks it).

        Without ``split``: the final validation value, else the final train value.
        """
        for name in (split,) if split else ("validation", "train"):
            if name in self.splits:
                return self.splits[name].final
        return math.nan


def rank_split(splits: Iterable[Iterable[str]]) -> str:
    """The one split every row is ranked by: ``validation`` if any row has it, else ``train``.

    Ranking one run's train value against another's validation value would compare
    different data; rows without the chosen split are listed last.
    """
    return "validation" if any("validation" in s for s in splits) else "train"


def best_index(values: np.ndarray, higher_is_better: bool) -> int:
    """Where the best of a curve's values is, ignoring NaN; the earliest on ties (the
    first value when all are NaN).

    Examples:
        >>> best_index(np.array([3.0, 1.0, np.nan, 1.0]), higher_is_better=False)
        1
    """
    if np.isnan(values).all():
        return 0
    return int(np.nanargmax(values) if higher_is_better else np.nanargmin(values))


def ranked(items: list, value, name, higher_is_better: bool) -> list:
    """``items`` best first by ``value(item)``; NaN (missing) last, then by ``name(item)``."""

    def order(item) -> tuple[bool, float, str]:
        v = value(item)
        return (math.isnan(v), -v if higher_is_better else v, name(item))

    return sorted(items, key=order)


def summarize(
    points: Table | Iterable[Point],
    hparams: Mapping[str, Mapping[str, Any]],
    tag: str = "epoch_loss",
    runs: str | None = None,
    higher_is_better: bool = False,
) -> list[RunSummary]:
    """Summaries of every run that has ``tag``, best first.

    Every run is ranked by the final value of one split (see ``rank_split``).

    Args:
        points: Scalars read back: a ``Table`` (``lossboard.reader.read.read_table``) or
            ``Point`` rows (``read_root``).
        hparams: Each run's hyperparameters.
        tag: The tag to compare, such as ``"epoch_loss"``.
        runs: A glob on run names (``"lr_*"``); all runs by default.
        higher_is_better: Rank and pick the best value by the maximum.
    """
    summaries: dict[str, RunSummary] = {}
    for (run, split, _), curve in curves(points, [tag], runs).items():
        best = best_index(curve.values, higher_is_better)
        summary = summaries.setdefault(run, RunSummary(run, hparams=dict(hparams.get(run, {}))))
        summary.splits[split] = SplitSummary(
            float(curve.values[-1]), float(curve.values[best]), int(curve.steps[best]),
            len(curve.steps),
        )  # fmt: skip
    split = rank_split(s.splits for s in summaries.values())
    return ranked(
        list(summaries.values()), lambda s: s.rank_value(split), lambda s: s.run, higher_is_better
    )


def varying_hparams(summaries: list[RunSummary]) -> list[str]:
    """Names of the hparams whose values differ between the runs."""
    return varying_keys([s.hparams for s in summaries])


def fmt(value: float) -> str:
    """A value with at least 4 decimals (scientific when it is small)."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0 or abs(value) >= 0.01:
        return f"{value:.4f}"
    return f"{value:.4e}"


def spread(value: float) -> str:
    """A standard deviation, with at least two significant digits when it is not zero.

    Examples:
        >>> spread(0.01234), spread(0.006), spread(0.0003), spread(5e-05), spread(0.0)
        ('0.0123', '0.0060', '0.00030', '5.0e-05', '0.0000')
    """
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0:
        return "0.0000"  # -0.0 too
    if abs(value) >= 0.00095:  # four decimals show two significant digits (0.0010) or more
        return f"{value:.4f}"
    return f"{value:#.2g}"


def hparam_text(value: Any) -> str:
    """An hparam as a reader wrote it: integers as integers, other numbers as Python does.

    TensorBoard stores every number as a double, so a seed logged as ``1`` reads back as
    ``1.0``: shown as ``1``.

    Examples:
        >>> hparam_text(1.0), hparam_text(0.003), hparam_text(64), hparam_text("adam")
        ('1', '0.003', '64', 'adam')
        >>> hparam_text(-0.0), hparam_text(np.float32(2.0)), hparam_text(True)
        ('-0.0', '2', 'True')
    """
    if isinstance(value, float | np.floating) and float(value).is_integer():
        number = float(value)
        if abs(number) <= 2**53 and not (number == 0 and math.copysign(1, number) < 0):
            return str(int(number))  # -0.0 stays -0.0: it is another configuration
    return str(value)


def rows(summaries: list[RunSummary], number=fmt) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the comparison table, as strings."""
    splits = [s for s in SPLIT_ORDER if any(s in r.splits for r in summaries)]
    hp_names = varying_hparams(summaries)
    header = ["run"]
    for split in splits:
        short = split_label(split)
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
        row += [hparam_text(s.hparams.get(n, "-")) for n in hp_names]
        table.append(row)
    return header, table


def split_label(split: str) -> str:
    """The short column prefix of a split: ``train`` or ``val``."""
    return "val" if split == "validation" else split


def ranking_notes(tag: str, split: str, missing: list[str], kind: str = "runs") -> list[str]:
    """Lines under a table that say which split ranks it and which rows lack that split."""
    notes = [f"Ranked by the final {split} value of {tag}."]
    if missing:
        notes.append(
            f"{kind.capitalize()} without {split} values (listed last, not ranked): "
            + ", ".join(missing)
        )
    return notes


def render_text(title: str, header: list[str], table: list[list[str]], notes: Sequence[str]) -> str:
    """An aligned plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs).rstrip()

    out = [title, line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in table]
    return "\n".join([*out, *notes])


def render_markdown(header: list[str], table: list[list[str]], notes: Sequence[str] = ()) -> str:
    """A Markdown table, then the notes as a paragraph."""
    out = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in table]
    if notes:
        out += ["", *[f"{n}  " for n in notes]]
    return "\n".join(out) + "\n"


def render_csv(header: list[str], table: list[list[str]]) -> str:
    """CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(table)
    return buffer.getvalue()


def _notes(summaries: list[RunSummary], tag: str) -> list[str]:
    split = rank_split(s.splits for s in summaries)
    return ranking_notes(tag, split, [s.run for s in summaries if split not in s.splits])


def as_text(summaries: list[RunSummary], tag: str) -> str:
    """An aligned plain-text table for the terminal."""
    if not summaries:
        return f"No run has the tag {tag!r}."
    title = f"{tag}: {len(summaries)} run(s), best first"
    return render_text(title, *rows(summaries), _notes(summaries, tag))


def as_markdown(summaries: list[RunSummary], tag: str = "epoch_loss") -> str:
    """A Markdown table."""
    return render_markdown(*rows(summaries), _notes(summaries, tag))


def as_csv(summaries: list[RunSummary]) -> str:
    """CSV with full-precision values."""
    return render_csv(*rows(summaries, number=repr))
