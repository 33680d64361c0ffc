"""The dashboard's numbers, as JSON: configurations, their bands, their runs, and the table.

Everything is computed from the reader's column ``Table`` of the logdir's ``epoch_*`` tags
(``lossboard.reader.cache.RootCache``: a reload reads only the event files that changed), with
the functions ``lossboard compare --over`` uses, so the dashboard's table is that command's
table: the same configurations, numbers and ranking. Neither TensorFlow nor TensorBoard is
imported here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossboard.compare.aggregate import BANDS, Band, mean_curve, set_intervals
from lossboard.compare.config_table import GroupTable, notes, summarize_groups, table_cells
from lossboard.compare.configurations import curves, group_runs, source_runs
from lossboard.dashboard.query import Query, QueryError, parse
from lossboard.layout import EPOCH_PREFIX, SPLITS
from lossboard.reader.cache import RootCache
from lossboard.reader.read import event_files
from lossboard.reader.table import Series, Table

#: What each band means, for the legend and the hover read-out.
BAND_TEXT = BANDS
_MEMO = 32  # answers kept per table


def numbers(values: np.ndarray | Sequence[float]) -> list[Any]:
    """Floats for JSON: a NaN or an infinity as the string JavaScript's ``Number()`` reads.

    Examples:
        >>> numbers(np.array([0.5, np.nan, np.inf, -np.inf]))
        [0.5, 'NaN', 'Infinity', '-Infinity']
    """
    array = np.asarray(values, dtype=np.float64)
    out = array.tolist()
    if np.isfinite(array).all():
        return out
    return [_float(v) for v in out]


def _float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def plain(value: Any) -> Any:
    """A table cell or hparam value for JSON (NumPy numbers as Python's, non-finite as text).

    Examples:
        >>> plain(np.float32(0.5)), plain(float("nan")), plain(np.int64(3)), plain("adam")
        (0.5, 'NaN', 3, 'adam')
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def band_of(series: Sequence[Series], band: str) -> dict[str, list[Any]]:
    """One configuration's curve: the mean at the epochs all its runs reached, and its band.

    The numbers of ``lossboard plot --over`` and ``lossboard aggregate`` (``mean_curve``): a
    NaN in any run makes that epoch's mean and band NaN (a diverged seed is not averaged
    away); a configuration of one run has no spread, so its ``std`` band is the mean itself
    and its ``ci`` band is empty (NaN).

    Args:
        series: The runs' curves of one split and tag.
        band: ``std`` (mean ± sample std), ``minmax`` or ``ci`` (95% bootstrap interval).

    Returns:
        ``steps``, ``mean``, ``low``, ``high`` and ``std`` (sample std, NaN for one run), one
            value per common epoch.

    Examples:
        >>> a, b = Series.of({0: 1.0, 1: 0.5}), Series.of({0: 3.0, 1: 1.5, 2: 1.0})
        >>> out = band_of([a, b], "minmax")
        >>> out["steps"], out["mean"], out["low"], out["high"]
        ([0, 1], [2.0, 1.0], [1.0, 0.5], [3.0, 1.5])
    """
    return curve_of(mean_curve(series), band)


def curve_of(curve: Band, band: str) -> dict[str, list[Any]]:
    """``band_of`` of a mean curve already made (its interval, when drawn, already set)."""
    low, high = curve.edges(band)
    s = curve.spread
    return {
        "steps": curve.steps,
        "mean": numbers(s.mean),
        "low": numbers(low),
        "high": numbers(high),
        "std": numbers(s.std),
    }


class Dashboard:
    """The dashboard of one logdir: its routes' answers, computed again only when files change.

    Args:
        root: The logdir TensorBoard serves.

    Examples:
        >>> import tempfile
        >>> board = Dashboard(tempfile.mkdtemp())
        >>> board.active(), board.info()["runs"]
        (False, 0)
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.cache = RootCache(root, tags=EPOCH_PREFIX + "*")
        self._lock = threading.Lock()
        self._computing = threading.Lock()
        self._table: Table | None = None
        self._sources: tuple[Table, list[str]] | None = None
        self._memo: dict[tuple[str, Query], bytes] = {}
        self._ranked: dict[tuple[str, tuple[str, ...], bool], Ranked] = {}

    def sources(self) -> tuple[Table, list[str]]:
        """The runs to compare (aggregated mean runs left out) and the folders left out."""
        table = self.cache.table()
        with self._lock:
            if table is not self._table or self._sources is None:
                found = source_runs(table, self.root)  # the aggregated folders: the walk's
                present = set(found.table.present_runs())
                kept = {run: hp for run, hp in found.table.hparams.items() if run in present}
                runs = dataclasses.replace(found.table, hparams=kept)
                self._table, self._sources = table, (runs, found.skipped)
                self._memo, self._ranked = {}, {}
            return self._sources

    def has_layout(self) -> bool:
        """Whether an event file lies in a ``train`` or ``validation`` folder (no file read)."""
        for path in event_files(self.root):
            parent = path.replace("\\", "/").rsplit("/", 2)
            if len(parent) == 3 and parent[1] in SPLITS:
                return True
        return False

    def active(self) -> bool:
        """Whether the logdir holds runs in lossboard's (Keras') layout or runs with hparams."""
        return self.has_layout() or bool(self.cache.table().hparams)

    def warm_up(self) -> threading.Thread | None:
        """Starts reading the runs in a thread when the logdir has lossboard's layout, so the
        first request finds them read and its answer made (TensorBoard starts loading its
        runs the same way): the tab's first request is the default ``configurations``."""
        try:
            if not self.has_layout():
                return None
        except (OSError, ValueError):
            return None

        def read() -> None:
            try:
                self.answer("configurations", {})
            except Exception:  # noqa: BLE001 - the first request reads again and says why
                pass

        thread = threading.Thread(target=read, name="lossboard-warm-up", daemon=True)
        thread.start()
        return thread

    def answer(self, route: str, args: Mapping[str, Sequence[str]]) -> bytes:
        """The JSON answer of ``route`` (``info``, ``configurations``, ``members``).

        Raises:
            QueryError: When a query value is not one the runs allow (HTTP 400).
        """
        table, skipped = self.sources()
        query = parse(route, args, *self._choices(table))
        # One answer made at a time: a request that comes while the start-up read makes the
        # same answer waits for it and takes it, rather than making it again beside it.
        with self._computing:
            return self._answer(route, query, table, skipped)

    def _answer(self, route: str, query: Query, table: Table, skipped: list[str]) -> bytes:
        key = (route, query)
        with self._lock:
            current = table is self._sources_table()
            kept = self._memo.get(key) if current else None
            ranks = self._ranked.get((query.tag, query.over, query.higher_is_better))
        if kept is not None:
            return kept
        if route == "info":
            body: dict[str, Any] = self._info(table, skipped)
        elif route == "members":
            body = members(table, query)
        else:
            if ranks is None:
                ranks = rank(table, query)
            body = configurations(table, query, ranks)
            body["skipped"] = skipped
            body["info"] = self._info(table, skipped)
        data = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
        with self._lock:
            if table is self._sources_table():
                if len(self._memo) >= _MEMO:
                    self._memo.pop(next(iter(self._memo)))
                self._memo[key] = data
                if ranks is not None:
                    self._ranked[(query.tag, query.over, query.higher_is_better)] = ranks
        return data

    def _sources_table(self) -> Table | None:
        return None if self._sources is None else self._sources[0]

    @staticmethod
    def _choices(table: Table) -> tuple[list[str], list[str], list[str]]:
        tags = [table.tags[i] for i in np.unique(table.tag)] if len(table) else []
        names = sorted({k for hp in table.hparams.values() for k in hp})
        splits = [table.splits[i] or "train" for i in np.unique(table.split)] if len(table) else []
        return tags, names, splits

    def info(self) -> dict[str, Any]:
        """The tags, splits and hparams the runs hold, the default ``over`` and run count."""
        return self._info(*self.sources())

    def _info(self, table: Table, skipped: list[str]) -> dict[str, Any]:
        tags, names, splits = self._choices(table)
        return {
            "tags": tags,
            "splits": [s for s in SPLITS if s in splits],
            "hparams": names,
            "over": ["seed"] if "seed" in names else [],
            "runs": len(table.present_runs()),
            "bands": BAND_TEXT,
            "skipped": skipped,
        }


@dataclass
class Ranked:
    """The table of ``lossboard compare --over`` for one tag, ``over`` and direction: what a
    change of band, splits or curve count leaves as it is."""

    grouped: GroupTable
    table: dict[str, Any]
    notes: list[str]


def rank(table: Table, query: Query) -> Ranked:
    """The configurations of ``query.tag`` over ``query.over``, best first, and their table.

    Raises:
        QueryError: When ``over`` names no hparam of the runs with the tag.
    """
    try:
        grouped = summarize_groups(
            table, table.hparams, query.over, query.tag, higher_is_better=query.higher_is_better
        )
    except ValueError as error:
        raise QueryError(str(error)) from error
    text_header, text_cells = table_cells(grouped, numeric=False)
    header, cells = table_cells(grouped, numeric=True)
    return Ranked(
        grouped,
        {
            "header": text_header,
            "cells": [[plain(c) for c in line] for line in text_cells],
            "numeric": {"header": header, "cells": [[plain(c) for c in line] for line in cells]},
        },
        notes(grouped) if grouped.rows else [f"No run has the tag {query.tag!r}."],
    )


def configurations(table: Table, query: Query, ranked: Ranked | None = None) -> dict[str, Any]:
    """Every configuration of ``query.tag``, best first, with its curves and the table.

    Args:
        table: The runs (a ``lossboard.reader.table.Table``).
        query: What to draw.
        ranked: ``rank(table, query)``, when already computed.

    Returns:
        ``configurations``: one entry per configuration in the table's order (``name``,
            ``hparams``, ``runs``, ``members``, ``colour``: its index among the names sorted,
            ``curves``: ``{split: band_of(...)}`` for the first ``query.show``);
            ``table``: ``header`` and ``cells`` as ``lossboard compare --over`` shows them,
            ``numeric``: the same columns as ``--csv`` (``compare_groups``); ``notes``.

    Raises:
        QueryError: When ``over`` names no hparam of the runs with the tag.
    """
    empty = {"configurations": [], "table": {"header": [], "cells": [], "numeric": {}}}
    base = {
        "tag": query.tag,
        "over": list(query.over),
        "band": query.band,
        "band_text": BAND_TEXT[query.band],
        "splits": list(query.splits),
    }
    if not query.tag:
        return {**base, **empty, "ranked_by": "", "notes": ["No run has an epoch_* tag yet."]}
    ranked = ranked or rank(table, query)
    grouped = ranked.grouped
    shown = grouped.rows if query.show == 0 else grouped.rows[: query.show]
    drawn = {run for row in shown for run in row.config.runs}
    by_run = curves(table.select(keep_run=drawn.__contains__), [query.tag])
    colour = {name: i for i, name in enumerate(sorted(r.config.name for r in grouped.rows))}
    out = []
    drawn_curves: list[tuple[dict[str, Any], str, Band]] = []
    for rank_, row in enumerate(grouped.rows):
        config = row.config
        entry: dict[str, Any] = {
            "name": config.name,
            "hparams": plain(config.hparams),
            "runs": len(config.runs),
            "members": config.runs,
            "colour": colour[config.name],
            "curves": {},
        }
        if query.show == 0 or rank_ < query.show:
            for split in query.splits:
                series = [by_run.get((r, split, query.tag)) for r in config.runs]
                if all(s is not None for s in series):
                    drawn_curves.append((entry, split, mean_curve([s for s in series if s])))
        out.append(entry)
    if query.band == "ci":  # every interval drawn at once: one resampling per run count
        set_intervals([curve for _, _, curve in drawn_curves])
    for entry, split, curve in drawn_curves:
        entry["curves"][split] = curve_of(curve, query.band)
    return {
        **base,
        "ranked_by": grouped.split,
        "configurations": out,
        "table": ranked.table,
        "notes": ranked.notes,
    }


def members(table: Table, query: Query) -> dict[str, Any]:
    """The runs of one configuration (``query.config``): each one's curves of ``query.tag``.

    Raises:
        QueryError: When no configuration has that name.
    """
    by_run = curves(table, [query.tag])
    runs = {run for run, _, _ in by_run}
    try:
        configs = group_runs(table.hparams, runs, query.over)
    except ValueError as error:
        raise QueryError(str(error)) from error
    found = [c for c in configs if c.name == query.config]
    if not found:
        names = ", ".join(repr(c.name) for c in configs[:10])
        more = f" and {len(configs) - 10} more" if len(configs) > 10 else ""
        raise QueryError(
            f"config={query.config!r}: no configuration of {query.tag!r} over "
            f"{', '.join(query.over) or 'nothing'} has that name; they are {names or 'none'}"
            f"{more}. Pass one of those names (from /configurations)."
        )
    config = found[0]
    return {
        "config": config.name,
        "tag": query.tag,
        "runs": [
            {
                "run": run,
                "hparams": plain(table.hparams.get(run, {})),
                "curves": {
                    split: {"steps": s.steps.tolist(), "values": numbers(s.values)}
                    for split in query.splits
                    if (s := by_run.get((run, split, query.tag))) is not None
                },
            }
            for run in config.runs
        ],
    }
