"""The ``lossboard`` command line: ``lossboard demo``."""

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
    demo = commands.add_parser("demo", help="train a few demo runs with a custom loop")
    demo.add_argument("--logdir", default="logs", help="where to write the runs (default: logs)")
    demo.add_argument("--epochs", type=int, default=8, help="epochs per run (default: 8)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from lossboard import demo

        return demo.main(args.logdir, args.epochs)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
