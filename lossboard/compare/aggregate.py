"""One mean run per configuration: ``lossboard aggregate ROOT --over seed -o OUT``.

For every configuration (see ``lossboard.compare.configurations.group_runs``) and every
``epoch_<name>`` tag of each split, the aggregated run holds, at each epoch that all the
configuration's runs reached:

- ``epoch_<name>``: the mean over the runs;
- ``epoch_<name>/std``: the sample standard deviation (``ddof=1``; only with 2+ runs);
- ``epoch_<name>/min`` and ``epoch_<name>/max``: the smallest and largest value;
- ``epoch_<name>/ci_low`` and ``epoch_<name>/ci_high``: a 95% percentile-bootstrap interval
  of the mean over the runs (only with 2+ runs; see ``lossboard.compare.stats.mean_interval``).

A NaN in any run makes that epoch's values NaN: a diverged seed is not averaged away.
Nothing here needs TensorFlow: the runs are written as the bytes ``tf.summary`` writes
(``lossboard.events.encode``), so 4,000 runs aggregate in seconds and under 100 MB.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossboard.compare.configurations import (
    MARKER,
    Configuration,
    as_table,
    curves,
    group_runs,
)
from lossboard.compare.stats import Spreads, mean_interval
from lossboard.events.encode import Points, PointsFile, hparams_record
from lossboard.layout import EPOCH_PREFIX
from lossboard.reader.read import Point
from lossboard.reader.table import Series, Table
from lossboard.run_dirs import trial_id

#: Suffixes of the spread tags written beside each mean tag.
SPREAD_TAGS = ("std", "min", "max", "ci_low", "ci_high")


#: The bands a mean curve can carry (``Band.edges``), and what each one is.
BANDS = {
    "std": "mean ± sample std over runs",
    "minmax": "min to max over runs",
    "ci": "95% percentile-bootstrap interval of the mean over runs",
}


@dataclass
class Band:
    """A mean curve with its spread, at the steps every run reached.

    Attributes:
        steps: The steps (epochs) every run reached.
        spread: Mean, std, min and max over the runs at each step.
        values: The runs' values, steps x runs.
    """

    steps: list[int]
    spread: Spreads
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    _interval: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def runs(self) -> int:
        return self.spread.n

    @property
    def mean(self) -> list[float]:
        return self.spread.mean.tolist()

    def interval(self) -> tuple[list[float], list[float]]:
        """The 95% bootstrap interval of the mean at each step (NaN with one run)."""
        if self._interval is None:
            set_intervals([self])
        assert self._interval is not None
        return self._interval[0].tolist(), self._interval[1].tolist()

    def edges(self, band: str) -> tuple[np.ndarray, np.ndarray]:
        """The band's low and high edge at each step (``BANDS``): ``std``, the mean ± the
        sample std (the mean itself with one run); ``minmax``; ``ci``, the interval of the
        mean (NaN with one run: no interval). A step where a run is NaN has NaN edges.

        Examples:
            >>> band = mean_curve([{0: 1.0, 1: 0.5}, {0: 3.0, 1: 1.5}])
            >>> [x.tolist() for x in band.edges("minmax")]
            [[1.0, 0.5], [3.0, 1.5]]
        """
        s = self.spread
        if band == "minmax":
            return s.low, s.high
        if band == "ci":
            if self._interval is None:
                set_intervals([self])
            assert self._interval is not None
            return self._interval
        if band != "std":
            raise ValueError(f"band={band!r}: expected one of {', '.join(BANDS)}.")
        spread = s.std if s.n > 1 else np.zeros(len(s))
        return s.mean - spread, s.mean + spread


def set_intervals(bands: Sequence[Band]) -> None:
    """Computes the interval of every band; bands of as many runs are resampled at once (one
    matrix product and one percentile per 64 epochs, not per band: 200 configurations of a
    few epochs, 3 s -> 0.3 s)."""
    by_runs: dict[int, list[Band]] = {}
    for band in bands:
        if band._interval is None:
            by_runs.setdefault(band.values.shape[1] if band.steps else 0, []).append(band)
    for runs, same in by_runs.items():
        if runs == 0:
            for band in same:
                band._interval = (np.zeros(0), np.zeros(0))
            continue
        low, high = mean_interval(np.concatenate([b.values for b in same]).T)
        at = 0
        for band in same:
            n = len(band.steps)
            band._interval = (low[at : at + n], high[at : at + n])
            at += n


def mean_curve(series: Sequence[Series | Mapping[int, float]]) -> Band:
    """The mean and spread of several runs' curves at the steps all of them have.

    Examples:
        >>> band = mean_curve([{0: 1.0, 1: 0.5}, {0: 3.0, 1: 1.5, 2: 1.0}])
        >>> band.steps, band.mean
        ([0, 1], [2.0, 1.0])
    """
    curves_ = [Series.of(s) for s in series]
    if not curves_:
        return Band([], Spreads.of_rows(np.zeros((0, 0))))
    first = np.asarray(curves_[0].steps)
    if (
        all(len(c.steps) == len(first) for c in curves_)
        and bool(np.all(first[1:] > first[:-1]))
        and all(np.array_equal(c.steps, first) for c in curves_[1:])
    ):
        # Fast path: runs that reached the same epochs (most): no intersection, no search.
        common, matrix = first, np.stack([c.values for c in curves_], axis=1)
    else:
        common = functools.reduce(np.intersect1d, [c.steps for c in curves_])
        matrix = np.stack([c.at(common) for c in curves_], axis=1)  # (steps, runs)
    return Band(common.tolist(), Spreads.of_rows(matrix), matrix)


@dataclass
class AggregatedRun:
    """One configuration's mean curves: ``bands[(split, tag)]``, and what was left out."""

    config: Configuration
    bands: dict[tuple[str, str], Band] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)

    def hparams(self) -> dict[str, Any]:
        """The configuration's hparams (without the keys averaged over) and ``runs``: n."""
        return {**self.config.hparams, "runs": len(self.config.runs)}


def aggregate_points(
    points: Table | Iterable[Point],
    hparams: Mapping[str, Mapping[str, Any]],
    over: Sequence[str],
    runs: str | None = None,
    tags: Iterable[str] | None = None,
) -> list[AggregatedRun]:
    """The mean curves of every configuration (no TensorFlow needed).

    Args:
        points: Scalars read back: a ``Table`` (``lossboard.reader.read.read_table``) or
            ``Point`` rows.
        hparams: Each run's hyperparameters.
        over: The hparams that vary within a configuration, such as ``["seed"]``.
        runs: A glob on run names.
        tags: The tags to average (default: every ``epoch_*`` tag).

    Raises:
        ValueError: When no run has one of the ``over`` hparams.
    """
    table = as_table(points, hparams)
    by_run = curves(table if tags is not None else table.select(prefix=EPOCH_PREFIX), tags, runs)
    configs = group_runs(hparams, {run for run, _, _ in by_run}, over)
    series_of: dict[str, set[tuple[str, str]]] = {}  # run -> its (split, tag): linear in runs
    for run, split, tag in by_run:
        series_of.setdefault(run, set()).add((split, tag))
    out = []
    for config in configs:
        agg = AggregatedRun(config)
        uneven: dict[str, list[str]] = {}
        keys = sorted(set().union(*(series_of.get(r, set()) for r in config.runs)))
        for split, tag in keys:
            have = [r for r in config.runs if (r, split, tag) in by_run]
            if len(have) < len(config.runs):
                lacking = sorted(set(config.runs) - set(have))
                agg.left_out.append(
                    f"{split} {tag}: missing from {len(lacking)} of {len(config.runs)} runs "
                    f"({', '.join(lacking)}); not written"
                )
                continue
            series = [by_run[(r, split, tag)] for r in have]
            band = mean_curve(series)
            every = functools.reduce(np.union1d, [s.steps for s in series])
            extra = np.setdiff1d(every, band.steps).tolist()
            if extra:
                uneven.setdefault(_steps(extra), []).append(f"{split} {tag}")
            agg.bands[(split, tag)] = band
        agg.left_out += [
            f"{steps}, not reached by every run ({', '.join(where)})"
            for steps, where in uneven.items()
        ]
        out.append(agg)
    set_intervals([band for agg in out for band in agg.bands.values()])
    return out


def _steps(steps: list[int]) -> str:
    if len(steps) == 1:
        return f"epoch {steps[0]}"
    if steps[-1] - steps[0] == len(steps) - 1:  # sorted and distinct: consecutive
        return f"epochs {steps[0]}-{steps[-1]}"
    return f"epochs {', '.join(map(str, steps))}"


@dataclass
class Written:
    """What ``write_runs`` did."""

    out: str
    runs: list[AggregatedRun]
    replaced: int

    def report(self) -> str:
        """Lines for the terminal."""
        lines = []
        if self.replaced:
            lines.append(
                f"replaced {self.replaced} aggregated run(s) written earlier in {self.out}"
            )
        for r in self.runs:
            lines.append(
                f"{os.path.join(self.out, r.config.name)}: mean of {len(r.config.runs)} run(s) "
                f"({', '.join(r.config.runs)})"
            )
            lines += [f"  left out: {note}" for note in r.left_out]
        lines.append(
            f"wrote {len(self.runs)} run(s); tags: epoch_<name> = mean, epoch_<name>/std, "
            f"/min, /max = spread, /ci_low, /ci_high = 95% bootstrap interval of the mean. "
            f"Open them: tensorboard --logdir {self.out}"
        )
        return "\n".join(lines)


def _prepare(out: str) -> int:
    """Empties ``out`` of an earlier aggregate's runs; refuses a folder with anything else."""
    if os.path.isfile(out):
        raise ValueError(f"-o {out!r} is a file; expected a folder for the aggregated runs.")
    if not os.path.isdir(out) or not os.listdir(out):
        os.makedirs(out, exist_ok=True)
        return 0
    marker = os.path.join(out, MARKER)
    if not os.path.isfile(marker):
        raise ValueError(
            f"-o {out!r} already holds files that lossboard aggregate did not write; "
            "choose a new or empty folder (it would mix with the mean runs)."
        )
    with open(marker, encoding="utf-8") as f:
        earlier = json.load(f).get("runs", [])
    names = [n for n in earlier if n and os.sep not in n and "/" not in n and n not in (".", "..")]
    for name in names:
        shutil.rmtree(os.path.join(out, name), ignore_errors=True)
    os.remove(marker)
    return len(names)


def write_runs(
    aggregated: Sequence[AggregatedRun],
    out: str | os.PathLike,
    over: Sequence[str],
    source: str | os.PathLike = "",
) -> Written:
    """Writes each configuration's mean run to ``out/<configuration>``, in Keras' layout.

    Replaces the runs of an earlier ``write_runs`` into ``out``; refuses a non-empty
    ``out`` that it did not write. Never writes outside ``out``.

    Raises:
        ValueError: When ``out`` is a file or holds other files.
    """
    out = os.fspath(out)
    replaced = _prepare(out)
    record = {
        "source": os.path.abspath(os.fspath(source)) if source else "",
        "over": list(over),
        "runs": [a.config.name for a in aggregated],
        "sources": {a.config.name: a.config.runs for a in aggregated},
    }
    # The marker first, naming every run about to be written: an interrupted aggregate
    # leaves a folder that readers of the root leave out and the next aggregate replaces.
    with open(os.path.join(out, MARKER), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    for agg in aggregated:
        _write_run(agg, os.path.join(out, agg.config.name))
    return Written(out, list(aggregated), replaced)


def _write_run(agg: AggregatedRun, run_dir: str) -> None:
    """One mean run in Keras' layout, written as the bytes ``tf.summary`` writes, without
    TensorFlow: each split's points in one event file, the hparams in the run's own folder."""
    wall = time.time()
    by_split: dict[str, list[tuple[str, list[int], Sequence[float] | np.ndarray]]] = {}
    for (split, tag), band in agg.bands.items():
        curves = by_split.setdefault(split, [])
        spread = band.spread
        curves += [
            (tag, band.steps, spread.mean),
            (f"{tag}/min", band.steps, spread.low),
            (f"{tag}/max", band.steps, spread.high),
        ]
        if len(agg.config.runs) > 1:
            low, high = band.edges("ci")
            curves += [
                (f"{tag}/std", band.steps, spread.std),
                (f"{tag}/ci_low", band.steps, low),
                (f"{tag}/ci_high", band.steps, high),
            ]
    for split, curves in by_split.items():
        tags = [tag for tag, _, _ in curves]
        points = Points(
            np.concatenate([np.asarray(steps, np.int64) for _, steps, _ in curves]),
            np.full(sum(len(steps) for _, steps, _ in curves), wall),
            np.repeat(np.arange(len(curves)), [len(steps) for _, steps, _ in curves]),
            np.concatenate([np.asarray(values, np.float64) for _, _, values in curves]),
            tags,
        )
        written = PointsFile(os.path.join(run_dir, split))
        try:
            written.write(points)
        finally:
            written.close()
    written = PointsFile(run_dir)
    try:
        written.write_record(hparams_record(agg.hparams(), trial_id(run_dir), wall))
    finally:
        written.close()


def _refuse_inside_a_run(
    out: str | os.PathLike, source: str | os.PathLike, run_names: set[str]
) -> None:
    """Refuses an ``out`` inside one of the source runs: writing there would change that run."""
    rel = os.path.relpath(os.path.abspath(out), os.path.abspath(source)).replace(os.sep, "/")
    if rel == ".." or rel.startswith("../"):
        return
    for run in sorted(run_names):
        if run == "." or rel == run or rel.startswith(run + "/"):
            raise ValueError(
                f"-o {os.fspath(out)!r} lies inside the source run {run!r}; writing there would "
                "change that run. Choose a folder beside the runs, such as "
                f"{os.path.join(os.fspath(source), 'mean')!r}, or outside them."
            )


def aggregate_root(
    points: Table | Iterable[Point],
    hparams: Mapping[str, Mapping[str, Any]],
    over: Sequence[str],
    out: str | os.PathLike,
    runs: str | None = None,
    source: str | os.PathLike = "",
) -> Written:
    """``aggregate_points`` then ``write_runs``: what ``lossboard aggregate`` does.

    Examples:
        >>> from lossboard.reader.read import read_root
        >>> points, hparams = read_root("logs/seeds")  # doctest: +SKIP
        >>> aggregate_root(points, hparams, ["seed"], "logs/seeds-mean")  # doctest: +SKIP
    """
    table = as_table(points, hparams)
    if source:
        _refuse_inside_a_run(out, source, set(table.present_runs()))
    aggregated = [a for a in aggregate_points(table, hparams, over, runs) if a.bands]
    if not aggregated:
        raise ValueError(
            f"no epoch_* values to aggregate{f' in runs matching {runs!r}' if runs else ''}; "
            "pass the folder that holds the runs."
        )
    return write_runs(aggregated, out, over, source)
