"""The ``lossboard`` command line: ``compare``, ``plot``, ``aggregate`` and ``demo``.

``compare`` and ``plot`` read event files without importing TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

OVER_HELP = (
    "average runs over these hparams (e.g. --over seed): runs whose other hparams are equal "
    "form one configuration"
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {text!r}; expected a whole number of 1 or more")
    return value


def _output_file(option: str, path: str, example: str) -> str:
    """Checks that ``path`` can be a new file, before any work is done."""
    if os.path.isdir(path):
        raise ValueError(
            f"{option} {path!r} is a directory; expected a file name, such as "
            f"{os.path.join(path, example)!r}."
        )
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise ValueError(
            f"{option} {path!r}: the folder {parent!r} does not exist; create it first or "
            "choose another path."
        )
    return path


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
    compare.add_argument("--over", nargs="+", metavar="HPARAM", help=OVER_HELP)
    compare.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    compare.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    compare.add_argument(
        "--latex",
        metavar="FILE",
        help="with --over: also write the table as a LaTeX booktabs tabular, for a paper",
    )

    plot = commands.add_parser(
        "plot", help="learning curves of the runs as a PNG", description="Learning curves as a PNG."
    )
    plot.add_argument("root", help="the folder that holds the runs")
    plot.add_argument("-o", "--output", default="curves.png", help="the PNG (default: curves.png)")
    plot.add_argument("--tags", nargs="+", help="tags to draw (default: every epoch_* tag)")
    plot.add_argument("--runs", metavar="GLOB", help="only runs whose name matches")
    plot.add_argument("--title", help="a title over the panels")
    plot.add_argument("--over", nargs="+", metavar="HPARAM", help=OVER_HELP + "; draws the mean")
    plot.add_argument(
        "--band",
        choices=("std", "minmax", "ci"),
        default="std",
        help=(
            "with --over: shade mean ± std (default), min to max over the runs, or ci: a 95%% "
            "percentile-bootstrap interval of the mean (10,000 resamples, seed 0)"
        ),
    )

    aggregate = commands.add_parser(
        "aggregate",
        help="write one mean run per configuration, for TensorBoard",
        description=(
            "Writes one run per configuration under OUT, in Keras' layout: epoch_<name> is the "
            "mean over the configuration's runs, epoch_<name>/std, /min and /max the spread."
        ),
    )
    aggregate.add_argument("root", help="the folder that holds the runs")
    aggregate.add_argument("--over", nargs="+", metavar="HPARAM", required=True, help=OVER_HELP)
    aggregate.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="a new folder for the mean runs"
    )
    aggregate.add_argument("--runs", metavar="GLOB", help="only runs whose name matches")

    demo = commands.add_parser("demo", help="train a few demo runs with a custom loop")
    demo.add_argument("--logdir", default="logs", help="where to write the runs (default: logs)")
    demo.add_argument("--epochs", type=_positive_int, default=8, help="epochs per run (default: 8)")
    return parser


def _read(args: argparse.Namespace, tags: Sequence[str]) -> tuple[Any, dict]:
    """The rows of ``tags`` (a column ``Table``) and the hparams under ``args.root``, without
    runs that ``aggregate`` wrote there. Records of other tags are skipped undecoded."""
    from lossboard.compare import configurations as groups
    from lossboard.reader import read as reader

    table = reader.read_table(args.root, tags=list(tags))
    hparams = table.hparams
    sources = groups.source_runs(table, args.root)
    for folder in sources.skipped:
        path = os.path.join(args.root, folder)
        print(
            f"lossboard {args.command}: left out the runs in {path!r}, written by lossboard "
            f"aggregate; to see them: lossboard {args.command} {path}",
            file=sys.stderr,
        )
    glob = getattr(args, "runs", None)
    if glob is not None:
        present = sources.table.present_runs()
        if not sources.table.select(runs=glob).present_runs():
            shown = ", ".join(present[:5]) + (
                f", ... ({len(present)} in all)" if len(present) > 5 else ""
            )
            raise ValueError(
                f"--runs {glob!r} matched none of the {len(present)} runs under {args.root!r}"
                + (f" ({shown})" if present else "")
                + "; the glob is matched against whole run names, such as 'lr=0.1/*'."
            )
    return sources.table, hparams


def _compare(args: argparse.Namespace) -> int:
    from lossboard.compare import config_table as grouped
    from lossboard.compare import run_table as compare

    for option, path, example in (
        ("--csv", args.csv, "table.csv"),
        ("--markdown", args.markdown, "table.md"),
        ("--latex", args.latex, "table.tex"),
    ):
        if path:
            _output_file(option, path, example)
    if args.latex and not args.over:
        raise ValueError(
            "--latex writes the table of configurations: add --over, such as --over seed "
            "(for one row per run, use --csv or --markdown)."
        )
    points, hparams = _read(args, [args.tag])
    latex_text = ""
    if args.over:
        table = grouped.summarize_groups(
            points, hparams, args.over, args.tag, args.runs, args.higher_is_better
        )
        found, text = bool(table.rows), grouped.as_text(table)
        csv_text, md_text = grouped.as_csv(table), grouped.as_markdown(table)
        latex_text = grouped.as_latex(table)
    else:
        summaries = compare.summarize(points, hparams, args.tag, args.runs, args.higher_is_better)
        found, text = bool(summaries), compare.as_text(summaries, args.tag)
        csv_text, md_text = compare.as_csv(summaries), compare.as_markdown(summaries, args.tag)
    print(text)
    for path, content in ((args.csv, csv_text), (args.markdown, md_text), (args.latex, latex_text)):
        if path and found:
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)
            print(f"wrote {path}")
    return 0 if found else 1


def _plot(args: argparse.Namespace) -> int:
    from lossboard.compare import plot

    points, hparams = _read(args, args.tags or ["epoch_*"])
    done = plot.plot_runs(
        points,
        args.output,
        args.tags,
        args.runs,
        args.title,
        over=args.over,
        hparams=hparams,
        band=args.band,
    )
    print(f"wrote {done.path} ({len(done.tags)} panel(s): {', '.join(done.tags)})")
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from lossboard.compare import aggregate

    points, hparams = _read(args, ["epoch_*"])
    result = aggregate.aggregate_root(
        points, hparams, args.over, args.output, args.runs, source=args.root
    )
    print(result.report())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compare":
            return _compare(args)
        if args.command == "plot":
            return _plot(args)
        if args.command == "aggregate":
            return _aggregate(args)
        from lossboard import demo

        return demo.main(args.logdir, args.epochs)
    except (ValueError, ImportError) as err:
        print(f"lossboard {args.command}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the output was piped to a reader that stopped (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:
        where = f" {err.filename!r}" if err.filename else ""
        print(f"lossboard {args.command}:{where} {err.strerror or err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
