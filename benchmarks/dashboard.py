"""How fast the lossboard tab of TensorBoard answers: 200 runs x 100 epochs, and 4,000 runs.

Generates runs over seeds (``<config>/seed<N>``, train and validation, ``epoch_loss`` and
``epoch_mse``, hparams ``lr``, ``wd`` and ``seed``) with lossboard's event encoder (the bytes
``tf.summary.scalar`` writes; no TensorFlow), then times the plugin's ``configurations`` answer:

- in-process (``lossboard.dashboard.payload.Dashboard``), each row the best of ``--repeats``:
  the first answer of a new dashboard (every file read), the first answer after the start-up
  read (``warm_up``, which the plugin starts with TensorBoard), a reload with nothing changed
  (each file stat'ed, the answer reused), a reload after one run grew by an epoch (that file
  read again, the answer recomputed), and each band;
- over HTTP from a real ``tensorboard --logdir`` (what the browser waits for, gzip included),
  first and reload.

    python benchmarks/dashboard.py                   # both sizes, about 3 minutes
    python benchmarks/read.py --dashboard            # the same rows
    python benchmarks/dashboard.py --runs 200 --epochs 100 --no-http

The targets (issue 26): within 1 s for 200 runs x 100 epochs, within 3 s for 4,000 runs.
Times are measured and printed, never asserted: machines differ.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # seeded.write_encoded_run
from seeded import write_encoded_run  # noqa: E402
from tensorboard_process import serve  # noqa: E402

SEEDS = 4


def generate(root: str, runs: int, epochs: int) -> None:
    """``runs`` runs: ``runs // SEEDS`` configurations of ``SEEDS`` seeds each."""
    rng = np.random.default_rng(0)
    for r in range(runs):
        config, seed = divmod(r, SEEDS)
        lr, wd = 10.0 ** -(1 + config % 5), 10.0 ** -(config // 5)
        decay = 1.0 / (1 + np.arange(epochs) * lr * 10)
        train = decay + rng.uniform(0, 0.1, epochs)
        curves = {
            "train": {"epoch_loss": train, "epoch_mse": train * 0.9},
            "validation": {"epoch_loss": train + 0.1, "epoch_mse": train * 0.95},
        }
        hparams = {"lr": lr, "wd": wd, "seed": seed}
        write_encoded_run(root, f"lr={lr:g},wd={wd:g}/seed{seed}", hparams, curves)


def _timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    out = function()
    return time.perf_counter() - start, out


def _best(function, repeats: int) -> tuple[float, object]:
    return min((_timed(function) for _ in range(repeats)), key=lambda r: r[0])


def in_process(root: str, epochs: int, repeats: int = 1) -> list[tuple[str, float]]:
    """The rows timed in this process, each the best of ``repeats``."""
    from lossboard.dashboard.payload import Dashboard

    def ask(board: Dashboard, **q: str) -> bytes:
        return board.answer("configurations", {k: [v] for k, v in q.items()})

    def cold() -> bytes:  # a new dashboard: every file read (the page cache warm)
        return ask(Dashboard(root))

    def warmed() -> Dashboard:
        board = Dashboard(root)
        thread = board.warm_up()
        if thread is not None:
            thread.join()
        return board

    rows = []
    seconds, body = _best(cold, repeats)
    rows.append((f"first answer, nothing read yet, {len(body) / 1e6:.1f} MB of JSON", seconds))
    boards = [warmed() for _ in range(repeats)]
    rows.append(("first answer after the start-up read", min(_timed(lambda b=b: ask(b))[0]
                                                             for b in boards)))  # fmt: skip
    board = boards[0]
    rows.append(("reload, nothing changed", _best(lambda: ask(board), repeats)[0]))
    grown = [d for d, _, names in os.walk(root) if d.endswith("train") and names]
    times = []
    for k in range(repeats):  # a new epoch in a run's file: that file read again
        run = os.path.dirname(grown[k % len(grown)])
        write_encoded_run(run, "", None, {"train": {"epoch_loss": [0.5] * epochs}})
        times.append(_timed(lambda: ask(board))[0])
    rows.append(("reload after one run grew (one file read)", min(times)))
    for band in ("minmax", "ci"):
        rows.append((f"band={band}", _best(lambda b=band: ask(board, band=b), 1)[0]))
    every = _best(lambda: ask(board, show="all"), 1)[0]
    rows.append(("show=all (a curve for every configuration)", every))
    return rows


def over_http(root: str) -> list[tuple[str, float]]:
    rows = []
    for base, _ in serve(root, 1, None):
        url = base + "/data/plugin/lossboard/configurations"

        def get(url: str = url) -> int:
            request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(request, timeout=120) as r:
                return len(r.read())

        seconds, size = _timed(get)
        rows.append((f"HTTP first answer ({size / 1e6:.1f} MB gzipped)", seconds))
        rows.append(("HTTP reload, nothing changed", _timed(get)[0]))
    return rows


def table(sizes: list[int], epochs: int, http: bool, repeats: int) -> None:
    """Generates each size of root and prints its rows."""
    print("| runs | epochs | what | time (s) |")
    print("|---:|---:|---|---:|")
    for runs in sizes:
        with tempfile.TemporaryDirectory() as scratch:
            root = os.path.join(scratch, "logs")
            generate(root, runs, epochs)
            rows = in_process(root, epochs, repeats)
            if http:
                rows += over_http(root)
            for what, seconds in rows:
                print(f"| {runs:,} | {epochs} | {what} | {seconds:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[200, 4000])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="best of, for each row")
    parser.add_argument("--no-http", action="store_true", help="in-process times only")
    args = parser.parse_args()
    table(args.runs, args.epochs, not args.no_http, args.repeats)


if __name__ == "__main__":
    main()
