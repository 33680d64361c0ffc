"""The ``lossboard`` command line: ``compare``, ``plot`` and ``demo``.

``compare`` and ``plot`` read event files without importing TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lossboard",
        description="Exact epoch averages of loss components, in TensorBoard's layout.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compare = commands.add_parser(
        "compare", help="a table of runs, best first", description="A table of runs, best first."
    )
    compare.add_argument("root", help="the folder that holds the runs")
    compare.add_argument(
        "--tag", default="epoch_loss", help="the tag to rank by (default: epoch_loss)"
    )
    compare.add_argument("--runs", metavar="GLOB", help="only runs whose name matches, e.g. 'lr_*'")
    compare.add_argument(
        "--higher-is-better", action="store_true", help="rank by the largest value (accuracy)"
    )
    compare.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    compare.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")

    plot = commands.add_parser(
        "plot", help="learning curves of the runs as a PNG", description="Learning curves as a PNG."
    )
    plot.add_argument("root", help="the folder that holds the runs")
    plot.add_argument("-o", "--output", default="curves.png", help="the PNG (default: curves.png)")
    plot.add_argument("--tags", nargs="+", help="tags to draw (default: every epoch_* tag)")
    plot.add_argument("--runs", metavar="GLOB", help="only runs whose name matches")
    plot.add_argument("--title", help="a title over the panels")

    demo = commands.add_parser("demo", help="train a few demo runs with a custom loop")
    demo.add_argument("--logdir", default="logs", help="where to write the runs (default: logs)")
    demo.add_argument("--epochs", type=int, default=8, help="epochs per run (default: 8)")
    return parser


def _compare(args: argparse.Namespace) -> int:
    from lossboard import compare, reader

    points, hparams = reader.read_root(args.root)
    summaries = compare.summarize(points, hparams, args.tag, args.runs, args.higher_is_better)
    print(compare.as_text(summaries, args.tag))
    for path, render in ((args.csv, compare.as_csv), (args.markdown, compare.as_markdown)):
        if path:
            with open(path, "w", encoding="utf-8") as f:
                f.write(render(summaries))
            print(f"wrote {path}")
    return 0 if summaries else 1


def _plot(args: argparse.Namespace) -> int:
    from lossboard import plot, reader

    points, _ = reader.read_root(args.root)
    drawn = plot.plot_runs(points, args.output, args.tags, args.runs, args.title)
    print(f"wrote {args.output} ({len(drawn)} panel(s): {', '.join(drawn)})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compare":
            return _compare(args)
        if args.command == "plot":
            return _plot(args)
        from lossboard import demo

        return demo.main(args.logdir, args.epochs)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"lossboard {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
