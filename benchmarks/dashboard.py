"""How fast the lossboard tab of TensorBoard answers: 200 runs x 100 epochs, and 4,000 runs.

Generates runs over seeds (``<config>/seed<N>``, train and validation, ``epoch_loss`` and
``epoch_mse``, hparams ``lr``, ``wd`` and ``seed``) with lossboard's event encoder (the bytes
``tf.summary.scalar`` writes; no TensorFlow), then times the plugin's ``configurations`` answer:

- in-process (``lossboard.dashboard.payload.Dashboard``): the first answer (every file read),
  a reload with nothing changed (each file stat'ed, the answer reused), a reload after one run
  grew by an epoch (that file read again, the answer recomputed), and each band;
- over HTTP from a real ``tensorboard --logdir`` (what the browser waits for, gzip included),
  first and reload.

    python benchmarks/dashboard.py                   # both sizes, about 2 minutes
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


def in_process(root: str, epochs: int) -> list[tuple[str, float]]:
    from lossboard.dashboard.payload import Dashboard

    board = Dashboard(root)
    ask = lambda **q: board.answer("configurations", {k: [v] for k, v in q.items()})  # noqa: E731
    rows = []
    seconds, body = _timed(ask)
    rows.append((f"first answer (every file read), {len(body) / 1e6:.1f} MB of JSON", seconds))
    rows.append(("reload, nothing changed", _timed(ask)[0]))
    grown = next(d for d, _, names in os.walk(root) if d.endswith("train") and names)
    write_encoded_run(os.path.dirname(grown), "", None, {"train": {"epoch_loss": [0.5] * epochs}})
    rows.append(("reload after one run grew (one file read)", _timed(ask)[0]))
    for band in ("minmax", "ci"):
        rows.append((f"band={band}", _timed(lambda b=band: ask(band=b))[0]))
    rows.append(("show=all (a curve for every configuration)", _timed(lambda: ask(show="all"))[0]))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[200, 4000])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--no-http", action="store_true", help="in-process times only")
    args = parser.parse_args()
    print("| runs | epochs | what | time (s) |")
    print("|---:|---:|---|---:|")
    for runs in args.runs:
        with tempfile.TemporaryDirectory() as scratch:
            root = os.path.join(scratch, "logs")
            generate(root, runs, args.epochs)
            rows = in_process(root, args.epochs)
            if not args.no_http:
                rows += over_http(root)
            for what, seconds in rows:
                print(f"| {runs:,} | {args.epochs} | {what} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
