"""The dashboard's query strings, checked: what a request may ask for, and a clear refusal.

The routes face the network TensorBoard binds to, so every value is checked against what the
runs hold before it is used; a bad one is a ``QueryError`` that says what was given, what is
expected, and how to fix it (the plugin answers it with HTTP 400).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lossboard.compare.aggregate import BANDS as BAND_TEXT
from lossboard.layout import SPLITS

#: The bands a configuration's curve may carry.
BANDS = tuple(BAND_TEXT)
#: How many configurations get curves by default (the table lists them all).
DEFAULT_SHOW = 20
#: The parameters each route takes.
PARAMETERS = {
    "configurations": ("tag", "over", "split", "band", "higher_is_better", "show"),
    "members": ("tag", "over", "split", "config"),
    "info": (),
}
_MAX_VALUES = 32  # values of one parameter
_MAX_LENGTH = 1000  # characters of one value
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


class QueryError(ValueError):
    """A query value the dashboard cannot use (answered with HTTP 400 and this message)."""


@dataclass(frozen=True)
class Query:
    """What one request asks for.

    Attributes:
        tag: The tag to compare, such as ``epoch_loss``.
        over: The hparams averaged over (``("seed",)``); empty: runs with equal hparams only.
        splits: The splits to draw.
        band: ``std`` (mean ± sample std), ``minmax`` or ``ci`` (95% bootstrap interval).
        higher_is_better: Rank by the largest values.
        show: How many configurations, best first, get curves (0: all).
        config: The configuration whose runs ``members`` returns.
    """

    tag: str
    over: tuple[str, ...]
    splits: tuple[str, ...]
    band: str = "std"
    higher_is_better: bool = False
    show: int = DEFAULT_SHOW
    config: str = ""


def _one(args: Mapping[str, Sequence[str]], name: str, default: str) -> str:
    values = args.get(name, [])
    if len(values) > 1:
        raise QueryError(
            f"{name}: given {len(values)} times ({', '.join(map(repr, values[:5]))}); "
            f"expected it once. Pass one {name}=... in the query."
        )
    return values[0] if values else default


def _choose(name: str, given: str, allowed: Sequence[str]) -> str:
    if given not in allowed:
        listed = ", ".join(allowed) if allowed else "none (no run has a tag to compare)"
        raise QueryError(f"{name}={given!r}: expected one of {listed}.")
    return given


def parse(
    route: str,
    args: Mapping[str, Sequence[str]],
    tags: Sequence[str],
    hparam_names: Sequence[str],
    splits: Sequence[str],
) -> Query:
    """The checked query of ``route`` from its query-string values.

    Args:
        route: ``configurations``, ``members`` or ``info``.
        args: Each parameter's values, as given (``{"over": ["seed", "fold"]}``).
        tags: The tags the runs hold.
        hparam_names: The hparams the runs hold.
        splits: The splits the runs hold.

    Raises:
        QueryError: For an unknown parameter, a value given twice that is taken once, a tag,
            split, band or hparam the runs do not have, or a value too long.

    Examples:
        >>> q = parse("configurations", {"over": ["seed"]}, ["epoch_loss"], ["lr", "seed"],
        ...           ["train"])
        >>> q.tag, q.over, q.splits, q.band
        ('epoch_loss', ('seed',), ('train',), 'std')
        >>> parse("configurations", {"band": ["wide"]}, ["epoch_loss"], [], ["train"])
        Traceback (most recent call last):
        ...
        lossboard.dashboard.query.QueryError: band='wide': expected one of std, minmax, ci.
    """
    known = PARAMETERS[route]
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise QueryError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for /{route}; it takes "
            f"{', '.join(known) or 'none'}."
        )
    for name, values in args.items():
        if len(values) > _MAX_VALUES or any(len(v) > _MAX_LENGTH for v in values):
            raise QueryError(
                f"{name}: {len(values)} value(s), the longest {max(map(len, values))} characters;"
                f" expected at most {_MAX_VALUES} values of at most {_MAX_LENGTH} characters."
            )
    default_tag = "epoch_loss" if "epoch_loss" in tags else (tags[0] if tags else "")
    tag = _one(args, "tag", default_tag)
    if "tag" in args or tags:
        tag = _choose("tag", tag, tags)
    over = _over(args.get("over"), hparam_names)
    chosen = [s for s in args.get("split", []) if s]
    for split in chosen:
        _choose("split", split, [s for s in SPLITS if s in splits] or list(SPLITS))
    band = _choose("band", _one(args, "band", "std"), BANDS)
    flag = _one(args, "higher_is_better", "0").lower()
    if flag not in _TRUE + _FALSE:
        raise QueryError(f"higher_is_better={flag!r}: expected 1 or 0 (true or false).")
    show_text = _one(args, "show", str(DEFAULT_SHOW))
    if show_text == "all":
        show_text = "0"
    if not (show_text.isascii() and show_text.isdigit()):
        raise QueryError(f"show={show_text!r}: expected a whole number of configurations or all.")
    return Query(
        tag,
        over,
        tuple(dict.fromkeys(chosen)) or tuple(s for s in SPLITS if s in splits),
        band,
        flag in _TRUE,
        int(show_text),
        _one(args, "config", ""),
    )


def _over(given: Sequence[str] | None, hparam_names: Sequence[str]) -> tuple[str, ...]:
    """The keys averaged over: as given (``over=`` alone: none), else ``seed`` when runs have it."""
    if given is None:
        return ("seed",) if "seed" in hparam_names else ()
    keys = tuple(dict.fromkeys(k for k in given if k))
    missing = [k for k in keys if k not in hparam_names]
    if missing:
        raise QueryError(
            f"over={', '.join(map(repr, missing))}: no run has that hparam; the runs' hparams "
            f"are {', '.join(hparam_names) or 'none'}. Pick the keys to average over from those."
        )
    return keys
