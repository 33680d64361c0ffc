"""One row per configuration (runs averaged over seeds): ``lossboard compare ROOT --over seed``.

Each configuration's final and best values are taken at the epochs that all its runs
reached and summarised over its runs: mean, sample std, interquartile mean and a 95%
percentile-bootstrap interval of the mean (``Estimate``). Configurations are ranked by the
mean final value of one split; each is compared with the best by the probability that a run
of the best ends better (rliable's probability of improvement) and by Welch's t-test,
Holm-corrected over the comparisons.
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
)
from lossboard.compare.stats import (
    LEVEL,
    RESAMPLES,
    Spread,
    holm,
    iqm,
    mean_interval,
    probability_of_improvement,
    welch_t_test,
)
from lossboard.reader.read import COLUMNS, Point
from lossboard.reader.table import Series, Table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: A configuration differs from the best when Welch's two-sided p-value is below this.
ALPHA = 0.05


@dataclass(frozen=True)
class Estimate:
    """The statistics of one value (a final or a best value) over a configuration's runs.

    Attributes:
        spread: Mean, sample std, min and max.
        iqm: The interquartile mean (rliable's ``aggregate_iqm``); NaN with a non-finite run.
        ci_low: The low end of the 95% percentile-bootstrap interval of the mean (NaN with
            fewer than 2 runs or a non-finite run).
        ci_high: Its high end.
    """

    spread: Spread
    iqm: float
    ci_low: float
    ci_high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Estimate:
        return estimates([values])[0]


def estimates(samples: Sequence[Sequence[float]]) -> list[Estimate]:
    """The ``Estimate`` of each sample; the intervals of samples of one size are drawn at once.

    Examples:
        >>> [round(e.spread.mean, 2) for e in estimates([[1.0, 2.0], [3.0], []])]
        [1.5, 3.0, nan]
    """
    lows = [math.nan] * len(samples)
    highs = lows.copy()
    by_size: dict[int, list[int]] = {}
    for i, values in enumerate(samples):
        if len(values) > 1:
            by_size.setdefault(len(values), []).append(i)
    for which in by_size.values():
        # One draw for all: a matrix of runs x samples is one matrix product and one
        # percentile per size, not one per configuration (200 configurations: 0.4 -> 0.05 s).
        low, high = mean_interval(np.array([samples[i] for i in which], np.float64).T)
        for i, lo, hi in zip(which, low.tolist(), high.tolist(), strict=True):
            lows[i], highs[i] = lo, hi
    return [
        Estimate(Spread.of(values), iqm(values), low, high)
        for values, low, high in zip(samples, lows, highs, strict=True)
    ]


@dataclass
class GroupSplit:
    """One split of one configuration: the runs' final and best values at common epochs."""

    runs: list[str]
    finals: list[float]
    bests: list[float]
    epochs: int  # epochs all runs reached
    reached: tuple[int, int]  # fewest and most epochs a run reached

    final_estimate: Estimate = field(init=False)  # set by ``estimate_splits``
    best_estimate: Estimate = field(init=False)

    @property
    def final(self) -> Spread:
        return self.final_estimate.spread

    @property
    def best(self) -> Spread:
        return self.best_estimate.spread

    def diverged(self, which: str = "final") -> list[str]:
        """The runs whose ``which`` (``"final"`` or ``"best"``) value is NaN or infinite."""
        values = self.finals if which == "final" else self.bests
        if not values:  # no epoch that all runs reached: no value at all
            return []
        pairs = zip(self.runs, values, strict=True)
        return [run for run, value in pairs if not math.isfinite(value)]


@dataclass
class GroupSummary:
    """One row: a configuration, its splits, and how it compares with the best row.

    ``p_value`` is Welch's two-sided p-value against the best row's final values,
    ``p_holm`` the same after Holm's correction over every row compared with the best, and
    ``p_best_better`` the probability that a run of the best row ends better than a run
    of this one (0.5 for the best itself).
    """

    config: Configuration
    splits: dict[str, GroupSplit] = field(default_factory=dict)
    lacking: dict[str, list[str]] = field(default_factory=dict)  # split -> runs without it
    p_value: float = math.nan
    p_holm: float = math.nan
    p_best_better: float = math.nan
    is_best: bool = False

    def rank_value(self, split: str) -> float:
        """The mean final value of ``split``; NaN (ranked last) when it is missing or not
        finite: a diverged run (-inf) must not make its configuration the best."""
        s = self.splits.get(split)
        mean = math.nan if s is None else s.final.mean
        return mean if math.isfinite(mean) else math.nan


@dataclass
class GroupTable:
    """The grouped comparison: rows best first, ranked by the final value of ``split``."""

    tag: str
    split: str
    over: list[str]
    rows: list[GroupSummary]
    higher_is_better: bool = False

    def hparam_names(self) -> list[str]:
        return varying_keys([r.config.hparams for r in self.rows])

    def splits(self) -> list[str]:
        return [s for s in SPLIT_ORDER if any(s in r.splits for r in self.rows)]

    def compared(self) -> int:
        """How many rows were compared with the best by Welch's test (finite p-values)."""
        return sum(not math.isnan(r.p_value) for r in self.rows)


def _split_summary(runs: list[str], series: list[Series], higher_is_better: bool) -> GroupSplit:
    first = series[0].steps
    if all(len(s.steps) == len(first) for s in series) and all(
        np.array_equal(s.steps, first) for s in series[1:]
    ):
        # Fast path: runs that reached the same epochs (most configurations): no search.
        common, matrix = first, np.stack([s.values for s in series])
    else:
        common = functools.reduce(np.intersect1d, [s.steps for s in series])
        matrix = np.stack([s.at(common) for s in series])  # runs x common epochs
    finals: list[float] = []
    bests: list[float] = []
    if len(common):
        finals = matrix[:, -1].tolist()
        # Fast path: every run's best at once; a run with a NaN is left to best_index.
        filled = np.where(np.isnan(matrix), -np.inf if higher_is_better else np.inf, matrix)
        picked = filled.argmax(axis=1) if higher_is_better else filled.argmin(axis=1)
        for i in np.flatnonzero(np.isnan(matrix).any(axis=1)).tolist():
            picked[i] = best_index(matrix[i], higher_is_better)
        bests = matrix[np.arange(len(series)), picked].tolist()
    lengths = [len(s.steps) for s in series]
    return GroupSplit(runs, finals, bests, len(common), (min(lengths), max(lengths)))


def estimate_splits(splits: Sequence[GroupSplit]) -> None:
    """Sets the final and best ``Estimate`` of every split (their intervals drawn at once)."""
    found = iter(estimates([v for sp in splits for v in (sp.finals, sp.bests)]))
    for sp in splits:
        sp.final_estimate, sp.best_estimate = next(found), next(found)


def _compare_with_best(rows: list[GroupSummary], split: str, higher_is_better: bool) -> None:
    """Sets each row's p-values and probability against the first (best) row."""
    best = rows[0]
    best.is_best = True
    ahead = best.splits[split].finals
    sign = 1.0 if higher_is_better else -1.0  # "better" is larger after the sign
    for row in rows:
        if split in row.splits:
            finals = row.splits[split].finals
            row.p_best_better = probability_of_improvement(
                [sign * v for v in ahead], [sign * v for v in finals]
            )
            if row is not best:
                row.p_value = welch_t_test(finals, ahead).p
    for row, p in zip(rows, holm([r.p_value for r in rows]), strict=True):
        row.p_holm = p


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
                row.splits[split] = _split_summary(config.runs, series, higher_is_better)
            elif series:
                row.lacking[split] = [r for r in config.runs if (r, split, tag) not in by_run]
        rows.append(row)
    estimate_splits([sp for row in rows for sp in row.splits.values()])
    split = rank_split(r.splits for r in rows)
    rows = ranked(rows, lambda r: r.rank_value(split), lambda r: r.config.name, higher_is_better)
    if rows and not math.isnan(rows[0].rank_value(split)):
        _compare_with_best(rows, split, higher_is_better)
    return GroupTable(tag, split, list(over), rows, higher_is_better)


def _with_interval(e: Estimate) -> str:
    """``mean [low, high]``, or the mean alone when there is no interval (one run)."""
    if math.isnan(e.ci_low):
        return fmt(e.spread.mean)
    return f"{fmt(e.spread.mean)} [{fmt(e.ci_low)}, {fmt(e.ci_high)}]"


def _p_text(p: float) -> str:
    return "-" if math.isnan(p) else f"{p:.4f}"


def _verdict(row: GroupSummary) -> str:
    if row.is_best:
        return "best"
    if math.isnan(row.p_holm):
        return "-"
    return "yes" if row.p_holm < ALPHA else "no"


#: The numbers of one estimate in the CSV, after ``<split> final`` or ``<split> best``.
ESTIMATE_COLUMNS = ("mean", "std", "iqm", "ci low", "ci high")


def table_cells(table: GroupTable, numeric: bool) -> tuple[list[str], list[list[Any]]]:
    """Header and rows as text (the final value as ``mean [ci low, ci high]``, its IQM, the
    mean best value), or (``numeric``) every number.

    The numeric columns per split are ``<split> final mean``, ``... std``, ``... iqm``,
    ``... ci low``, ``... ci high``, the same for ``<split> best``, and ``<split> epochs``;
    then ``p best better``, ``p vs best``, ``p vs best holm`` and ``differs from best``.
    """
    names, splits = table.hparam_names(), table.splits()
    header = ["configuration", *names, "runs"]
    for split in splits:
        short = split_label(split)
        if numeric:
            for value in ("final", "best"):
                header += [f"{short} {value} {c}" for c in ESTIMATE_COLUMNS]
            header.append(f"{short} epochs")
        else:
            header += [f"{short} final", f"{short} final iqm", f"{short} best", f"{short} epochs"]
    adjusted = table.compared() > 1
    if numeric:
        header += ["p best better", "p vs best", "p vs best holm", "differs from best"]
    else:
        header += ["p best better", "p vs best (Holm)" if adjusted else "p vs best"]
        header.append("differs from best")
    cells: list[list[Any]] = []
    for row in table.rows:
        line: list[Any] = [row.config.name]
        values = [row.config.hparams.get(n, "-") for n in names]
        line += values if numeric else [hparam_text(v) for v in values]
        line.append(len(row.config.runs))
        for split in splits:
            sp = row.splits.get(split)
            if sp is None:
                line += [math.nan] * 11 if numeric else ["-"] * 4
            elif numeric:
                for e in (sp.final_estimate, sp.best_estimate):
                    line += [e.spread.mean, e.spread.std, e.iqm, e.ci_low, e.ci_high]
                line.append(sp.epochs)
            else:
                lo, hi = sp.reached
                epochs = str(sp.epochs) if lo == hi else f"{sp.epochs} ({lo}-{hi})"
                f, b = sp.final_estimate, sp.best_estimate
                line += [_with_interval(f), fmt(f.iqm), fmt(b.spread.mean), epochs]
        if numeric:
            line += [row.p_best_better, row.p_value, row.p_holm, _verdict(row)]
        else:
            line += [_p_text(row.p_best_better), _p_text(row.p_holm), _verdict(row)]
        cells.append(line)
    return header, cells


def method_notes(table: GroupTable) -> list[str]:
    """What the numbers are: the interval's method, the probability, the test and its
    correction (the lines under every rendering of the table)."""
    better = "higher" if table.higher_is_better else "lower"
    n = table.compared()
    notes = [
        f"mean [95% CI]: the mean over runs with a {LEVEL:.0%} percentile-bootstrap interval "
        f"of the mean ({RESAMPLES:,} resamples of the runs, seed 0; none with one run); "
        "iqm: interquartile mean (25% trimmed).",
        f"p best better: the probability that a run of the best configuration ends {better} "
        f"than a run of this one (Mann-Whitney over all pairs of runs, ties half; 0.5 for "
        f"the best).",
        f"p vs best: Welch's t-test of the runs' final {table.split} values against the best "
        + (
            f"configuration's, Holm-corrected over the {n} comparisons with the best "
            if n > 1
            else "configuration's "
        )
        + f"(differs: p < {ALPHA}; - needs 2+ runs in both).",
    ]
    return notes


def notes(table: GroupTable) -> list[str]:
    """The lines under the table: ranking, method, and what was left out or diverged."""
    missing = [r.config.name for r in table.rows if table.split not in r.splits]
    lines = ranking_notes(table.tag, table.split, missing, kind="configurations")
    lines[0] = lines[0].replace("final", "mean final", 1)
    lines += method_notes(table)
    for r in table.rows:
        lines += [
            f"{r.config.name}: {', '.join(runs)} {'has' if len(runs) == 1 else 'have'} no "
            f"{split} values, so its {split} columns are empty (a mean of some runs only "
            "would not compare)."
            for split, runs in r.lacking.items()
        ]
        for split, sp in r.splits.items():
            if not sp.finals:
                lo, hi = sp.reached
                lines.append(
                    f"{r.config.name}: its runs share no {split} epoch (each has "
                    f"{lo if lo == hi else f'{lo} to {hi}'} epoch(s), at other steps), so it "
                    f"has no final or best {split} value; compare its runs with lossboard "
                    "compare without --over."
                )
            if runs := sp.diverged("final"):
                ranked_last = ", and it is listed last" if split == table.split else ""
                lines.append(
                    f"{r.config.name}: {', '.join(runs)} ended with a NaN or infinite {split} "
                    f"value, so its final {split} iqm, interval and probability are NaN"
                    f"{ranked_last} (a diverged run is not averaged away)."
                )
            best_only = [x for x in sp.diverged("best") if x not in sp.diverged("final")]
            if best_only:
                lines.append(
                    f"{r.config.name}: {', '.join(best_only)} reached a NaN or infinite best "
                    f"{split} value before its final one, so its best {split} iqm and "
                    "interval are NaN (in the CSV)."
                )
    uneven = [
        r.config.name
        for r in table.rows
        if any(s.reached[0] != s.reached[1] for s in r.splits.values())
    ]
    if uneven:
        lines.append(
            "Runs of " + ", ".join(uneven) + " reached different epochs: values are taken at "
            "the epochs all of a configuration's runs reached (epochs: common (fewest-most))."
        )
    return lines


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
    return render_text(title, *_strings(table), notes(table))


def as_markdown(table: GroupTable) -> str:
    """A Markdown table with the same columns as the text table."""
    return render_markdown(*_strings(table), notes(table))


def as_csv(table: GroupTable) -> str:
    """CSV: every number of the table in full precision, each in its own column."""
    header, cells = table_cells(table, numeric=True)
    return render_csv(header, [[repr(c) if isinstance(c, float) else c for c in r] for r in cells])


_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"}
_LATEX_SPECIAL |= {"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_text(text: str) -> str:
    r"""``text`` with LaTeX's special characters escaped.

    Examples:
        >>> latex_text("lr=0.1,opt=sgd_momentum 5%")
        'lr=0.1,opt=sgd\\_momentum 5\\%'
    """
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def _latex_number(value: float) -> str:
    return "--" if math.isnan(value) else latex_text(fmt(value))


def as_latex(table: GroupTable) -> str:
    r"""A booktabs ``tabular`` a paper can ``\input``: per configuration its number of runs,
    each split's final value as ``mean [95% CI]`` and its IQM, and ``P(best better)``.

    The method is stated in comments above the table (for the caption); it needs
    ``\usepackage{booktabs}``.
    """
    names, splits = table.hparam_names(), table.splits()
    head = ["Configuration", *(latex_text(n) for n in names), "$n$"]
    for split in splits:
        label = "Validation" if split == "validation" else split.capitalize()
        head += [f"{label} final (mean [95\\% CI])", f"{label} IQM"]
    head.append("P(best better)")
    lines = [
        "% Made by lossboard compare --over " + " ".join(table.over) + f" (tag {table.tag}).",
        *(f"% {latex_text(n)}" for n in notes(table)),
        "% Needs \\usepackage{booktabs}.",
        "\\begin{tabular}{l" + "l" * len(names) + "r" + "lr" * len(splits) + "r}",
        "\\toprule",
        " & ".join(head) + " \\\\",
        "\\midrule",
    ]
    for row in table.rows:
        cells = [latex_text(row.config.name)]
        cells += [latex_text(hparam_text(row.config.hparams.get(n, "-"))) for n in names]
        cells.append(str(len(row.config.runs)))
        for split in splits:
            sp = row.splits.get(split)
            if sp is None:
                cells += ["--", "--"]
                continue
            e = sp.final_estimate
            interval = (
                ""
                if math.isnan(e.ci_low)
                else f" [{_latex_number(e.ci_low)}, {_latex_number(e.ci_high)}]"
            )
            mean = _latex_number(e.spread.mean)
            best = row.is_best and split == table.split  # bold: the best of the ranked split
            cells += [(f"\\textbf{{{mean}}}" if best else mean) + interval]
            cells.append(_latex_number(e.iqm))
        cells.append(_latex_number(row.p_best_better))
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def compare_groups(
    frame: pd.DataFrame,
    over: str | Sequence[str],
    tag: str = "epoch_loss",
    higher_is_better: bool = False,
) -> pd.DataFrame:
    """The grouped comparison of a ``lossboard.load`` DataFrame, as a DataFrame.

    One row per configuration, best first: the columns of ``lossboard compare ROOT --over
    ...  --csv`` (the hparams that differ, ``runs``; per split ``val final mean``,
    ``val final std``, ``val final iqm``, ``val final ci low``, ``val final ci high``, the
    same for ``val best``, and ``val epochs``, likewise for ``train``; then ``p best
    better``, ``p vs best``, ``p vs best holm`` and ``differs from best``; see
    ``method_notes`` for what each number is). ``attrs["ranked_by"]`` names the split.

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
