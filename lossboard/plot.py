"""Learning curves of several runs in one PNG: ``lossboard plot``."""

from __future__ import annotations

import fnmatch
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

from lossboard.reader import Point

_INSTALL_HINT = (
    "lossboard plot needs matplotlib, an optional extra: pip install 'lossboard[plot]' "
    "(or pip install matplotlib)."
)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return plt


def plot_runs(
    points: Iterable[Point],
    output: str | os.PathLike,
    tags: Sequence[str] | None = None,
    runs: str | None = None,
    title: str | None = None,
) -> list[str]:
    """Draws one panel per tag, one colour per run, train solid and validation dashed.

    Args:
        points: Scalars read back (see :func:`lossboard.reader.read_root`).
        output: The PNG file to write.
        tags: The tags to draw (default: every ``epoch_*`` tag).
        runs: A glob on run names.
        title: A title over the panels.

    Returns:
        The tags drawn, in panel order.

    Raises:
        ImportError: When matplotlib is not installed (says how to install it).
        ValueError: When nothing matches.
    """
    series: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for p in points:
        if runs is not None and not fnmatch.fnmatch(p.run, runs):
            continue
        if (tags is None and p.tag.startswith("epoch_")) or (tags is not None and p.tag in tags):
            series.setdefault((p.tag, p.run, p.split), []).append((p.step, p.value))
    drawn = sorted({t for t, _, _ in series}, key=lambda t: (t != "epoch_loss", t))
    if tags is not None:
        drawn = [t for t in tags if t in drawn]
    if not drawn:
        raise ValueError(
            f"nothing to plot: no run has the tags {list(tags) if tags else 'epoch_*'}."
        )
    plt = _pyplot()
    run_names = sorted({r for _, r, _ in series})
    colours = plt.get_cmap("tab10" if len(run_names) <= 10 else "tab20")
    cols = min(3, len(drawn))
    rows = math.ceil(len(drawn) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax, tag in zip(axes.flat, drawn, strict=False):
        for i, run in enumerate(run_names):
            for split, style in (("train", "-"), ("validation", "--"), ("", "-")):
                values = sorted(series.get((tag, run, split), []))
                if values:
                    label = f"{run} ({split or 'train'})"
                    ax.plot(
                        *zip(*values, strict=True),
                        style,
                        color=colours(i % colours.N),
                        label=label,
                        marker="o",
                        markersize=3,
                    )
        ax.set_title(tag.removeprefix("epoch_").removeprefix("batch_"))
        ax.set_xlabel("epoch" if tag.startswith("epoch_") else "step")
        ax.set_ylabel(tag)
        ax.grid(alpha=0.3)
    spare = list(axes.flat)[len(drawn) :]
    for ax in spare:
        ax.axis("off")
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    labels, handles = list(legend), list(legend.values())
    fig.legend(
        handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False, fontsize=9
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * math.ceil(len(labels) / 4), 1, 1))
    fig.savefig(os.fspath(output), dpi=110)
    plt.close(fig)
    return drawn
