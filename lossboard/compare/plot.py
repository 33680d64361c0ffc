"""Learning curves of several runs in one PNG: ``lossboard plot``.

One panel per tag, one colour per run (or, with ``over``, per configuration: its mean with a
shaded band), train solid and validation dashed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lossboard.compare.aggregate import aggregate_points
from lossboard.compare.configurations import as_table, curves
from lossboard.layout import BATCH_PREFIX, EPOCH_PREFIX, SPLITS, TRAIN, VALIDATION
from lossboard.reader.read import Point
from lossboard.reader.table import Series, Table

_INSTALL_HINT = (
    "lossboard plot needs matplotlib, an optional dependency: pip install matplotlib "
    "(from a clone of lossboard: pip install -e '.[plot]')."
)
#: Most entries the legend lists; past it, the legend says how many it left out.
LEGEND_CAP = 60
_STYLES = {TRAIN: "-", VALIDATION: "--"}


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return plt


#: The bands ``plot_runs`` shades with ``over``, and their legend entries.
BANDS = {
    "std": "mean ± std",
    "minmax": "min to max",
    "ci": "95% bootstrap CI of the mean",
}


@dataclass
class Line:
    """One curve to draw: a run's (or a configuration's mean) values of one split and tag."""

    label: str
    split: str
    tag: str
    steps: list[int]
    values: list[float]
    low: list[float] | None = None  # the band, with ``over``
    high: list[float] | None = None


@dataclass
class Plotted:
    """What ``plot_runs`` wrote.

    Attributes:
        path: The file written.
        tags: The tags drawn, in panel order.
        labels: The runs (or configurations) drawn, one colour each.
        legend: The legend's entries (at most :data:`LEGEND_CAP` runs, then a count).
    """

    path: str
    tags: list[str]
    labels: list[str]
    legend: list[str]


def output_path(output: str | os.PathLike) -> str:
    """The file to write: ``output``, with ``.png`` added when it has no extension.

    Raises:
        ValueError: When the extension is not an image format matplotlib writes.
    """
    path = os.fspath(output)
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise ValueError(
            f"-o {path!r} is a directory; expected a file name, such as "
            f"{os.path.join(path, 'curves.png')!r}."
        )
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if not ext:
        return path + ".png"
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    formats = FigureCanvasAgg.get_supported_filetypes()
    if ext not in formats:
        raise ValueError(
            f"-o {path!r}: matplotlib cannot write .{ext} files; use one of "
            f"{', '.join('.' + f for f in sorted(formats))}, such as curves.png."
        )
    return path


def run_lines(series: Mapping[tuple[str, str, str], Series | Mapping[int, float]]) -> list[Line]:
    """One line per run, split and tag."""
    out = []
    for (run, split, tag), values in series.items():
        curve = Series.of(values)
        out.append(Line(run, split, tag, curve.steps.tolist(), curve.values.tolist()))
    return out


def configuration_lines(
    points: Table | Iterable[Point],
    hparams: Mapping[str, Mapping[str, Any]],
    over: Sequence[str],
    tags: Iterable[str] | None = None,
    runs: str | None = None,
    band: str = "std",
) -> list[Line]:
    """One line per configuration, split and tag: the mean, with a band (``BANDS``)."""
    out = []
    for agg in aggregate_points(points, hparams, over, runs, tags):
        label = f"{agg.config.name} (n={len(agg.config.runs)})"
        for (split, tag), b in agg.bands.items():
            low, high = (edge.tolist() for edge in b.edges(band))
            out.append(Line(label, split, tag, b.steps, b.mean, low, high))
    return out


def colours(n: int) -> list[Any]:
    """``n`` distinct colours: tab10, tab20, then tab20+tab20b+tab20c (60), then turbo."""
    import matplotlib

    cmap = matplotlib.colormaps

    def listed(*names: str) -> list[Any]:
        return [c for name in names for c in cmap[name](range(cmap[name].N))]

    if n <= 10:
        return listed("tab10")[:n]
    if n <= 20:
        return listed("tab20")[:n]
    if n <= 60:
        return listed("tab20", "tab20b", "tab20c")[:n]
    return [cmap["turbo"](0.05 + 0.9 * i / (n - 1)) for i in range(n)]


def plot_runs(
    points: Table | Iterable[Point],
    output: str | os.PathLike,
    tags: Sequence[str] | None = None,
    runs: str | None = None,
    title: str | None = None,
    *,
    over: Sequence[str] | None = None,
    hparams: Mapping[str, Mapping[str, Any]] | None = None,
    band: str = "std",
) -> Plotted:
    """Draws one panel per tag, one colour per run, train solid and validation dashed.

    Args:
        points: Scalars read back: a ``Table`` (``lossboard.reader.read.read_table``) or
            ``Point`` rows.
        output: The image to write; ``.png`` is added to a name without an extension.
        tags: The tags to draw (default: every ``epoch_*`` tag).
        runs: A glob on run names.
        title: A title over the panels.
        over: Hparams to average over (such as ``["seed"]``): one line per configuration,
            the mean at the epochs all its runs reached, with a shaded band.
        hparams: Each run's hparams (needed with ``over``).
        band: With ``over``: ``"std"`` (mean ± sample std), ``"minmax"`` or ``"ci"`` (a 95%
            percentile-bootstrap interval of the mean; see ``BANDS``).

    Returns:
        The file written, the tags drawn in panel order, and the legend's labels.

    Raises:
        ImportError: When matplotlib is not installed (says how to install it).
        ValueError: When nothing matches or the file extension is not an image format.

    Examples:
        >>> from lossboard.reader.read import read_root
        >>> points, hparams = read_root("logs/seeds")  # doctest: +SKIP
        >>> plot_runs(points, "mean.png", over=["seed"], hparams=hparams)  # doctest: +SKIP
    """
    if band not in BANDS:
        raise ValueError(f"band: got {band!r}; expected one of {', '.join(map(repr, BANDS))}.")
    points = as_table(points, hparams)
    if tags is None:
        points = points.select(prefix=EPOCH_PREFIX)
    if over:
        lines = configuration_lines(points, hparams or {}, over, tags, runs, band)
    else:
        lines = run_lines(curves(points, tags, runs))
    drawn = sorted({line.tag for line in lines}, key=lambda t: (t != "epoch_loss", t))
    if tags is not None:
        drawn = [t for t in tags if t in drawn]
    if not drawn:
        raise ValueError(
            f"nothing to plot: no run has the tags {list(tags) if tags else 'epoch_*'}."
        )
    plt = _pyplot()
    path = output_path(output)
    labels = sorted({line.label for line in lines})
    colour = dict(zip(labels, colours(len(labels)), strict=True))
    cols = min(3, len(drawn))
    panel_rows = math.ceil(len(drawn) / cols)
    width = max(5.2 * cols, 8.0 if len(labels) > 10 else 0.0)
    legend_cols = max(1, min(6, int(width * 72 / (7 * max(map(len, labels)) + 40))))
    shown = labels[:LEGEND_CAP]
    legend_rows = math.ceil((len(shown) + 3) / legend_cols)
    legend_height = 0.2 * legend_rows + 0.3
    height = 3.8 * panel_rows + legend_height
    fig, axes = plt.subplots(panel_rows, cols, figsize=(width, height), squeeze=False)
    for ax, tag in zip(axes.flat, drawn, strict=False):
        for line in sorted(lines, key=lambda x: (x.label, x.split)):
            if line.tag != tag:
                continue
            c = colour[line.label]
            ax.plot(
                line.steps, line.values, _STYLES.get(line.split, "-"), color=c, marker="o", ms=3
            )
            if line.low is not None and line.high is not None:
                ax.fill_between(line.steps, line.low, line.high, color=c, alpha=0.15, lw=0)
        ax.set_title(tag.removeprefix(EPOCH_PREFIX).removeprefix(BATCH_PREFIX))
        ax.set_xlabel("epoch" if tag.startswith(EPOCH_PREFIX) else "step")
        ax.set_ylabel(tag)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in list(axes.flat)[len(drawn) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colour[label], marker="o") for label in shown]
    names = list(shown)
    if len(labels) > len(shown):
        handles.append(plt.Line2D([], [], color="none"))
        names.append(f"... {len(labels) - len(shown)} more not listed")
    for split in SPLITS:
        if any(line.split == split for line in lines):
            handles.append(plt.Line2D([], [], color="black", linestyle=_STYLES[split]))
            names.append(split)
    if over:
        handles.append(plt.Rectangle((0, 0), 1, 1, color="grey", alpha=0.3))
        names.append(BANDS[band])
    fig.legend(handles, names, loc="lower center", ncol=legend_cols, frameon=False, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, legend_height / height, 1, 1))
    # The format named: matplotlib never adds an extension to the path said to be written.
    fig.savefig(path, dpi=110, format=os.path.splitext(path)[1].lstrip(".").lower())
    plt.close(fig)
    return Plotted(path, drawn, labels, names)
