"""One row per configuration (runs averaged over seeds): ``lossboard compare ROOT --over seed``.

Each configuration's final and best values are ``mean ± std`` over its runs (sample
standard deviation), taken at the epochs that all its runs reached; configurations are
ranked by the mean final value of one split, and each is tested against the best with
Welch's t-test on the runs' final values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lossboard.compare.configurations import Configuration, curves, group_runs, varying_keys
from lossboard.compare.run_table import (
    SPLIT_ORDER,
    best_index,
    fmt,
    hparam_text,
    rank_split,
    ranked,
    ranking_notes,
    render_csv,
    render_markdown,
    render_text,
    split_label,
    spread,
)
from lossboard.compare.stats import Spread, welch_t_test
from lossboard.reader.read import COLUMNS, Point
from lossboard.reader.table import Series, Table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: A configuration differs from the best when Welch's two-sided p-value is below this.
ALPHA = 0.05


@dataclass
class GroupSplit:
    """One split of one configuration: the runs' final and best values at common epochs."""

    finals: list[float]
    bests: list[float]
    epochs: int  # epochs all runs reached
    reached: tuple[int, int]  # fewest and most epochs a run reached

    @property
    def final(self) -> Spread:
        return Spread.of(self.finals)

    @property
    def best(self) -> Spread:
        return Spread.of(self.bests)


@dataclass
class GroupSummary:
    """One row: a configuration, its splits, and Welch's p-value against the best row."""

    config: Configuration
    splits: dict[str, GroupSplit] = field(default_factory=dict)
    lacking: dict[str, list[str]] = field(default_factory=dict)  # split -> runs without it
    p_value: float = math.nan
    is_best: bool = False

    def rank_value(self, split: str) -> float:
        s = self.splits.get(split)
        return math.nan if s is None else s.final.mean


@dataclass
class GroupTable:
    """The grouped comparison: rows best first, ranked by the final value of ``split``."""

    tag: str
    split: str
    over: list[str]
    rows: list[GroupSummary]

    def hparam_names(self) -> list[str]:
        return varying_keys([r.config.hparams for r in self.rows])

    def splits(self) -> list[str]:
        return [s for s in SPLIT_ORDER if any(s in r.splits for r in self.rows)]


def _split_summary(series: list[Series], higher_is_better: bool) -> GroupSplit:
    common = functools.reduce(np.intersect1d, [s.steps for s in series])
    finals, bests = [], []
    if len(common):
        for s in series:
            values = s.at(common)
            finals.append(float(values[-1]))
            bests.append(float(values[best_index(values, higher_is_better)]))
    lengths = [len(s.steps) for s in series]
    return GroupSplit(finals, bests, len(common), (min(lengths), max(lengths)))


def summarize_groups(
    points: Table | Iterable[Point],
    hparams: Mapping[str, Mapping[str, Any]],
    over: Sequence[str],
    tag: str = "epoch_loss",
    runs: str | None = None,
    higher_is_better: bool = False,
) -> GroupTable:
    """Configurations of the runs that have ``tag``, best first.

    Args:
        points: Scalars read back (see ``lossboard.reader.read.read_root``).
        hparams: Each run's hyperparameters.
        over: The hparams that vary within a configuration, such as ``["seed"]``.
        tag: The tag to compare.
        runs: A glob on run names.
        higher_is_better: Rank and pick the best values by the maximum.

    Raises:
        ValueError: When no run has one of the ``over`` hparams.
    """
    by_run = curves(points, [tag], runs)
    configs = group_runs(hparams, {run for run, _, _ in by_run}, over)
    rows = []
    for config in configs:
        row = GroupSummary(config)
        for split in SPLIT_ORDER:
            series = [by_run[(r, split, tag)] for r in config.runs if (r, split, tag) in by_run]
            if len(series) == len(config.runs):
                row.splits[split] = _split_summary(series, higher_is_better)
            elif series:
                row.lacking[split] = [r for r in config.runs if (r, split, tag) not in by_run]
        rows.append(row)
    split = rank_split(r.splits for r in rows)
    rows = ranked(rows, lambda r: r.rank_value(split), lambda r: r.config.name, higher_is_better)
    if rows and split in rows[0].splits:
        best = rows[0]
        best.is_best = True
        for row in rows[1:]:
            if split in row.splits:
                test = welch_t_test(row.splits[split].finals, best.splits[split].finals)
                row.p_value = test.p
    return GroupTable(tag, split, list(over), rows)


def _plus_minus(s: Spread) -> str:
    if s.n < 2 or math.isnan(s.std):
        return fmt(s.mean)
    return f"{fmt(s.mean)} ± {spread(s.std)}"


def _verdict(row: GroupSummary) -> str:
    if row.is_best:
        return "best"
    if math.isnan(row.p_value):
        return "-"
    return "yes" if row.p_value < ALPHA else "no"


def table_cells(table: GroupTable, numeric: bool) -> tuple[list[str], list[list[Any]]]:
    """Header and rows: ``mean ± std`` strings, or (``numeric``) separate mean and std numbers."""
    names, splits = table.hparam_names(), table.splits()
    header = ["configuration", *names, "runs"]
    for split in splits:
        short = split_label(split)
        if numeric:
            header += [f"{short} final mean", f"{short} final std"]
            header += [f"{short} best mean", f"{short} best std", f"{short} epochs"]
        else:
            header += [f"{short} final", f"{short} best", f"{short} epochs"]
    header += ["p vs best", "differs from best"]
    cells: list[list[Any]] = []
    for row in table.rows:
        line: list[Any] = [row.config.name]
        values = [row.config.hparams.get(n, "-") for n in names]
        line += values if numeric else [hparam_text(v) for v in values]
        line.append(len(row.config.runs))
        for split in splits:
            sp = row.splits.get(split)
            if sp is None:
                line += [math.nan] * 5 if numeric else ["-"] * 3
            elif numeric:
                f, b = sp.final, sp.best
                line += [f.mean, f.std, b.mean, b.std, sp.epochs]
            else:
                lo, hi = sp.reached
                epochs = str(sp.epochs) if lo == hi else f"{sp.epochs} ({lo}-{hi})"
                line += [_plus_minus(sp.final), _plus_minus(sp.best), epochs]
        if numeric:
            line += [row.p_value, _verdict(row)]
        else:
            line += ["-" if math.isnan(row.p_value) else f"{row.p_value:.4f}", _verdict(row)]
        cells.append(line)
    return header, cells


def _notes(table: GroupTable) -> list[str]:
    missing = [r.config.name for r in table.rows if table.split not in r.splits]
    notes = ranking_notes(table.tag, table.split, missing, kind="configurations")
    notes[0] = notes[0].replace("final", "mean final", 1)
    notes.append(
        f"mean ± sample std over runs; p vs best: Welch's t-test of the runs' final "
        f"{table.split} values against the best configuration's (differs: p < {ALPHA}; "
        "- needs 2+ runs in both)."
    )
    for r in table.rows:
        notes += [
            f"{r.config.name}: {', '.join(runs)} {'has' if len(runs) == 1 else 'have'} no "
            f"{split} values, so its {split} columns are empty (a mean of some runs only "
            "would not compare)."
            for split, runs in r.lacking.items()
        ]
    uneven = [
        r.config.name
        for r in table.rows
        if any(s.reached[0] != s.reached[1] for s in r.splits.values())
    ]
    if uneven:
        notes.append(
            "Runs of " + ", ".join(uneven) + " reached different epochs: values are taken at "
            "the epochs all of a configuration's runs reached (epochs: common (fewest-most))."
        )
    return notes


def _strings(table: GroupTable) -> tuple[list[str], list[list[str]]]:
    header, cells = table_cells(table, numeric=False)
    return header, [[str(c) for c in line] for line in cells]


def as_text(table: GroupTable) -> str:
    """An aligned plain-text table for the terminal."""
    if not table.rows:
        return f"No run has the tag {table.tag!r}."
    title = (
        f"{table.tag}: {len(table.rows)} configuration(s) over {', '.join(table.over)}, best first"
    )
    return render_text(title, *_strings(table), _notes(table))


def as_markdown(table: GroupTable) -> str:
    """A Markdown table with the same columns as the text table."""
    return render_markdown(*_strings(table), _notes(table))


def as_csv(table: GroupTable) -> str:
    """CSV: the text table's columns, with each ``mean ± std`` as two full-precision columns."""
    header, cells = table_cells(table, numeric=True)
    return render_csv(header, [[repr(c) if isinstance(c, float) else c for c in r] for r in cells])


def compare_groups(
    frame: pd.DataFrame,
    over: str | Sequence[str],
    tag: str = "epoch_loss",
    higher_is_better: bool = False,
) -> pd.DataFrame:
    """The grouped comparison of a ``lossboard.load`` DataFrame, as a DataFrame.

    One row per configuration, best first: the columns of ``lossboard compare ROOT --over
    ...  --csv`` (the hparams that differ, ``runs``, ``val final mean``, ``val final std``,
    ``val best mean``, ``val best std``, ``val epochs``, the same for ``train``,
    ``p vs best`` and ``differs from best``). ``attrs["ranked_by"]`` names the split.

    Args:
        frame: The result of ``lossboard.load`` (its ``attrs["hparams"]`` are used).
        over: The hparam(s) that vary within a configuration, such as ``"seed"``.
        tag: The tag to compare.
        higher_is_better: Rank by the largest values (accuracies).

    Returns:
        One row per configuration, best first, with the columns above;
            ``attrs["ranked_by"]`` is the split the ranking used (``"validation"`` or
            ``"train"``).

    Examples:
        >>> import lossboard
        >>> for seed, losses in enumerate([[1.0, 0.5], [1.2, 0.7]]):  # two seeds
        ...     run = f"logs/doc-seeds/seed{seed}"
        ...     with lossboard.LossLogger(run, hparams={"lr": 0.1, "seed": seed}) as logger:
        ...         for epoch, loss in enumerate(losses):
        ...             logger.on_train_batch_end(0, {"loss": loss})
        ...             _ = logger.on_epoch_end(epoch)
        >>> table = lossboard.compare_groups(lossboard.load("logs/doc-seeds"), over="seed")
        >>> table[["configuration", "runs", "train final mean"]].round(4).values.tolist()
        [['lr=0.1', 2, 0.6]]
    """
    import pandas as pd

    over = [over] if isinstance(over, str) else list(over)
    hparams = frame.attrs.get("hparams", {})
    run, split, tag_, step, value, wall = (frame[c].to_numpy() for c in COLUMNS)
    rows = Table.of_columns(run, split, tag_, step, value, wall, hparams)
    table = summarize_groups(rows, hparams, over, tag, higher_is_better=higher_is_better)
    header, cells = table_cells(table, numeric=True)
    out = pd.DataFrame(cells, columns=header)
    out.attrs["ranked_by"] = table.split
    return out
