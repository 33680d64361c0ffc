"""Comparing many runs: ``lossboard compare`` and ``aggregate --over seed`` as the runs grow.

Writes a root of ``--configs`` x ``--seeds`` runs (hparams ``lr`` and ``seed``; train and
validation ``epoch_loss`` over ``--epochs`` epochs), written directly as event records
(``lossboard.events.encode``; the hparams as TensorBoard's ``hp`` summary). Then runs the
real command line on it in a fresh process, each command ``--repeats`` times, interleaved
between the library versions given with ``--versions`` (a folder holding a ``lossboard``
package, or ``.`` for this checkout), and reports the best wall time and peak resident
memory of each. Grouping linear in the runs shows as the time per run staying flat
between ``--scale`` root sizes (the ratio printed last).

    python benchmarks/compare.py                               # 10,000 runs, this checkout
    python benchmarks/compare.py --versions /tmp/old .         # old against new, same run
    python benchmarks/compare.py --configs 10 --seeds 100 --scale 10
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def _hparams_event(hparams: dict, wall: float) -> bytes:
    from tensorboard.plugins.hparams import summary_v2 as hp

    from lossboard.events.encode import record

    summary = hp.hparams_pb(hparams)
    event = bytearray()
    event += b"\x09" + np.float64(wall).tobytes()  # wall_time
    body = summary.SerializeToString()
    from lossboard.events.encode import varint

    event += b"\x2a" + varint(len(body)) + body  # summary
    return record(bytes(event))


def generate(root: str, configs: int, seeds: int, epochs: int) -> int:
    """Writes the root; returns the number of runs."""
    from lossboard.events.encode import Points, encode, record

    version = record(bytes.fromhex("0900000000000000001a0d") + b"brain.Event:2")
    rng = np.random.default_rng(0)
    n = 0
    for c in range(configs):
        lr = round(0.001 * (c + 1), 6)
        for seed in range(seeds):
            run = os.path.join(root, f"lr={lr}", f"seed{seed}")
            wall = 1.7e9 + n
            for split in ("train", "validation"):
                os.makedirs(os.path.join(run, split), exist_ok=True)
                values = (1.0 / (1 + np.arange(epochs)) + rng.uniform(0, 0.1, epochs)).astype("f4")
                points = Points(
                    np.arange(epochs), wall + np.arange(epochs), np.zeros(epochs, int),
                    values.astype(np.float64), ["epoch_loss"],
                )  # fmt: skip
                with open(os.path.join(run, split, f"events.out.tfevents.{n}.b.v2"), "wb") as f:
                    f.write(version + encode(points))
            with open(os.path.join(run, f"events.out.tfevents.{n}.b.v2"), "wb") as f:
                f.write(version + _hparams_event({"lr": lr, "seed": seed}, wall))
            n += 1
    return n


def run_cli(version: str, args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of ``python -m lossboard ARGS`` with ``version``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.abspath(version) + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    code = (
        "import resource, runpy, sys, time;"
        "sys.argv = ['lossboard'] + sys.argv[1:];"
        "t = time.perf_counter();"
        'exec(\'try:\\n runpy.run_module("lossboard", run_name="__main__")\\n'
        "except SystemExit as e:\\n assert not e.code, e.code');"
        "print('SECONDS', time.perf_counter() - t, file=sys.stderr);"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env
    )
    if proc.returncode:
        raise RuntimeError(f"{version} {args}: {proc.stderr[-2000:]}")
    lines = dict(line.split(" ", 1) for line in proc.stderr.splitlines() if line[:4] in "SECOPEAK")
    return float(lines["SECONDS"]), float(lines["PEAK"]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--scale", type=int, default=10, help="also a root this many times smaller")
    parser.add_argument("--versions", nargs="+", default=["."])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        roots = {}
        for name, seeds in (("big", args.seeds), ("small", max(1, args.seeds // args.scale))):
            root = os.path.join(tmp, name)
            start = time.perf_counter()
            runs = generate(root, args.configs, seeds, args.epochs)
            roots[name] = (root, runs)
            print(f"{name}: {runs} runs written in {time.perf_counter() - start:.0f} s")
        commands = {
            "compare --over seed": lambda r: ["compare", r, "--over", "seed"],
            "aggregate --over seed": lambda r: [
                "aggregate",
                r,
                "--over",
                "seed",
                "-o",
                r + "-mean",
            ],
        }
        best: dict[tuple, tuple[float, float]] = {}
        for _ in range(args.repeats):
            for cmd, make in commands.items():
                for name, (root, _) in roots.items():
                    for version in args.versions:  # interleaved: the same machine state
                        t, mem = run_cli(version, make(root))
                        key = (cmd, name, version)
                        old = best.get(key, (float("inf"), float("inf")))
                        best[key] = (min(old[0], t), min(old[1], mem))
        print(f"\n{'command':24} {'root':6} {'runs':>6} {'version':24} {'s':>7} {'MiB':>7}")
        for (cmd, name, version), (t, mem) in best.items():
            runs = roots[name][1]
            print(f"{cmd:24} {name:6} {runs:6d} {version:24} {t:7.2f} {mem:7.0f}")
        print("\nlinearity: (time per run, big root) / (time per run, small root); 1 is linear")
        for cmd in commands:
            for version in args.versions:
                big, small = best[(cmd, "big", version)][0], best[(cmd, "small", version)][0]
                ratio = (big / roots["big"][1]) / (small / roots["small"][1])
                print(f"  {cmd:24} {version:24} {ratio:5.2f}")


if __name__ == "__main__":
    main()
