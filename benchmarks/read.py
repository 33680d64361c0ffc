"""Reading a large root back: lossboard.load vs tbparse vs TensorBoard's EventAccumulator.

Generates a root of runs with per-step curves (the layout LossLogger writes:
``<run>/train`` with ``batch_*`` and ``epoch_*`` tags, ``<run>/validation``
with ``epoch_*``), written directly as event records (the bytes
``tf.summary.scalar`` writes, checked against the protos and TensorBoard's
reader), then reads it with each reader in a fresh subprocess and reports the
time, the peak resident memory and the peak above the process's baseline
(after imports), per row. Values are compared bit for bit.

    python benchmarks/read.py                      # 20 runs x 40k points, about 2 minutes
    python benchmarks/read.py --runs 50 --steps 25000 --readers lossboard lossboard-epochs
    python benchmarks/read.py --over-seed          # many small runs: compare / aggregate --over
    python benchmarks/read.py --dashboard          # the lossboard tab's answers (dashboard.py)

``--over-seed`` writes ``--configs`` x ``--seeds`` runs of ``--epochs`` epochs (hparams ``lr`` and
``seed``, as ``benchmarks/compare.py`` does) and times the real ``lossboard compare --over seed``
and ``aggregate --over seed`` on them in fresh processes, best of ``--repeats``, with their peak
memory, against the targets of the intervals issue (4,000 runs: 3 s and 8 s, under 300 MB).

``--dashboard`` prints the rows of ``benchmarks/dashboard.py``: how fast the TensorBoard tab
answers for 200 runs and 4,000 runs of ``--epochs`` epochs (targets: 1 s and 3 s).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

READERS = ("lossboard", "lossboard-epochs", "tbparse", "event_accumulator")


def _split_points(values: np.ndarray, names: list[str], start: float, spe: int, train: bool):
    """The points of one split in the order a logger writes them: per step its ``batch_*``
    values (train only), and after every ``spe`` steps the epoch's ``epoch_*`` means."""
    from lossboard.events.encode import Points

    steps, components = values.shape
    tags = [f"batch_{n}" for n in names] + [f"epoch_{n}" for n in names]
    epochs = steps // spe
    means = values[: epochs * spe].astype(np.float64).reshape(epochs, spe, components).mean(1)
    if not train:
        means = means / 2
    # one row per step: its batch points (train), then the epoch's points at an epoch's end
    rows = []
    for step in range(1, steps + 1):
        wall = start + step * 1e-3
        if train:
            rows += [(step, wall, c, float(values[step - 1, c])) for c in range(components)]
        if step % spe == 0:
            epoch = step // spe - 1
            rows += [(epoch, wall, components + c, means[epoch, c]) for c in range(components)]
    step_, wall_, tag_, value_ = (np.asarray(col) for col in zip(*rows, strict=True))
    return Points(step_, wall_, tag_, value_, tags)


def generate(root: str, runs: int, steps: int, components: int, steps_per_epoch: int) -> int:
    """Writes the root with ``lossboard.events.encode`` (the bytes ``tf.summary.scalar``
    writes, tested against the protos); returns the number of points."""
    from lossboard.events.encode import encode, record

    rng = np.random.default_rng(0)
    names = ["loss"] + [f"part{i}" for i in range(components - 1)]
    version = record(bytes.fromhex("0900000000000000001a0d") + b"brain.Event:2")
    total = 0
    for r in range(runs):
        values = rng.normal(size=(steps, components)).astype(np.float32)
        for split in ("train", "validation"):
            points = _split_points(
                values, names, 1.7e9 + r * 1e5, steps_per_epoch, split == "train"
            )
            os.makedirs(os.path.join(root, f"run{r:03d}", split), exist_ok=True)
            path = os.path.join(root, f"run{r:03d}", split, f"events.out.tfevents.{r}.bench.v2")
            with open(path, "wb") as f:
                f.write(version + encode(points))
            total += len(points.step)
    return total


# ---------------------------------------------------------------- children: one reader each
def _rss(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def _lossboard(root: str, tags: str | None = None) -> tuple:
    import lossboard.reader.read as lr

    df = lr.load(root, tags=tags)
    return df.run.astype(str), df.split.astype(str), df.tag.astype(str), df.step, df.value


def _tbparse(root: str) -> tuple:
    from tbparse import SummaryReader

    df = SummaryReader(root, extra_columns={"dir_name"}, event_types={"tensors"}).tensors
    if df.empty:
        return ([],) * 5
    run_split = df.dir_name.str.rsplit("/", n=1)
    return run_split.str[0], run_split.str[1], df.tag, df.step, df.value


def _event_accumulator(root: str) -> tuple:
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.util import tensor_util

    cols: tuple[list, ...] = ([], [], [], [], [])
    for run in sorted(os.listdir(root)):
        for split in ("train", "validation"):
            acc = ea.EventAccumulator(os.path.join(root, run, split), size_guidance={"tensors": 0})
            acc.Reload()
            for tag in acc.Tags()["tensors"]:
                for e in acc.Tensors(tag):
                    for col, v in zip(cols, (run, split, tag, e.step), strict=False):
                        col.append(v)
                    cols[4].append(float(tensor_util.make_ndarray(e.tensor_proto)))
    return cols


_READ = {
    "lossboard": _lossboard,
    "lossboard-epochs": lambda root: _lossboard(root, "epoch_*"),
    "tbparse": _tbparse,
    "event_accumulator": _event_accumulator,
}


def _child(reader: str, root: str, out: str) -> None:
    import pandas as pd

    read = _READ[reader]
    with tempfile.TemporaryDirectory() as tiny:  # imports and lazy set-up: not the reading
        generate(tiny, runs=1, steps=2, components=1, steps_per_epoch=1)
        read(tiny)
    baseline = _rss("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    rows = read(root)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = _rss("VmHWM")
    frame = pd.DataFrame(dict(zip(("run", "split", "tag", "step", "value"), rows, strict=True)))
    frame = frame.astype(
        {"run": str, "split": str, "tag": str, "step": "int64", "value": "float64"}
    )
    frame = frame.sort_values(["run", "split", "tag", "step"], kind="stable").reset_index(drop=True)
    frame.to_pickle(out)
    result = {
        "seconds": seconds,
        "cpu": cpu,
        "rows": len(frame),
        "peak": peak,
        "baseline": baseline,
    }
    print(json.dumps(result))


def _run(reader: str, root: str, scratch: str) -> dict:
    out = os.path.join(scratch, f"{reader}.pkl")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, __file__, "--child", reader, root, out],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"{reader} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["frame"] = out
    return result


def _over_seed(args: argparse.Namespace) -> None:
    """Rows of ``compare`` and ``aggregate --over seed`` on many small runs."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from compare import generate, run_cli

    targets = {"compare": (3.0, 300), "aggregate": (8.0, 300)}  # at 4,000 runs
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root or os.path.join(scratch, "seeds")
        if not os.path.isdir(root):
            runs = generate(root, args.configs, args.seeds, args.epochs)
        else:
            runs = args.configs * args.seeds
        print(f"{runs} runs ({args.configs} configurations x {args.seeds} seeds, "
              f"{args.epochs} epochs)\n")  # fmt: skip
        print(f"| command | best of {args.repeats} (s) | peak RSS (MB) | target at 4,000 runs |")
        print("|---|---:|---:|---|")
        out = os.path.join(scratch, "mean")
        commands = {
            "compare": ["compare", root, "--over", "seed"],
            "aggregate": ["aggregate", root, "--over", "seed", "-o", out],
        }
        for name, command in commands.items():
            best = min((run_cli(".", command) for _ in range(args.repeats)), key=lambda r: r[0])
            seconds, mib = targets[name]
            print(f"| {' '.join(command[:1] + command[2:4])} | {best[0]:.2f} | {best[1]:.0f} "
                  f"| {seconds:.0f} s, {mib} MB |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10000, help="batch steps per run")
    parser.add_argument("--components", type=int, default=4, help="batch_* tags per step")
    parser.add_argument("--steps-per-epoch", type=int, default=500)
    parser.add_argument("--readers", nargs="+", choices=READERS, default=list(READERS))
    parser.add_argument("--root", help="reuse or keep the generated root here")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--over-seed", action="store_true", help="many small runs, grouped")
    parser.add_argument("--configs", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--epochs", type=int, help="per run (--over-seed: 3, --dashboard: 100)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dashboard", action="store_true", help="the TensorBoard tab's rows")
    args = parser.parse_args()
    if args.dashboard:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import dashboard

        dashboard.table([200, 4000], args.epochs or 100, True, args.repeats)
        return
    args.epochs = args.epochs or 3
    if args.child:
        _child(*args.child)
        return
    if args.over_seed:
        _over_seed(args)
        return
    import pandas as pd

    with tempfile.TemporaryDirectory() as scratch:
        root = args.root or os.path.join(scratch, "root")
        if not os.path.isdir(root):
            start = time.perf_counter()
            points = generate(root, args.runs, args.steps, args.components, args.steps_per_epoch)
            print(f"generated {points:,} points in {time.perf_counter() - start:.0f} s", flush=True)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
        print(f"root: {args.runs} runs, {size / 1e6:.0f} MB of event files\n")
        print(
            "| reader | rows | time (s) | CPU time (s) | peak RSS (MB) "
            "| peak above baseline (MB) | bytes/row |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        frames = {}
        for reader in args.readers:
            r = _run(reader, root, scratch)
            above = r["peak"] - r["baseline"]
            print(
                f"| {reader} | {r['rows']:,} | {r['seconds']:.2f} | {r['cpu']:.2f} "
                f"| {r['peak'] / 1e6:.0f} "
                f"| {above / 1e6:.0f} | {above / max(r['rows'], 1):.0f} |",
                flush=True,
            )
            frames[reader] = pd.read_pickle(r["frame"])
        full = [f for name, f in frames.items() if name != "lossboard-epochs"]
        for other in full[1:]:
            assert other[["run", "split", "tag", "step"]].equals(
                full[0][["run", "split", "tag", "step"]]
            )
            assert other.value.to_numpy().tobytes() == full[0].value.to_numpy().tobytes()
        if full and "lossboard-epochs" in frames:
            epochs = full[0][full[0].tag.str.startswith("epoch_")].reset_index(drop=True)
            assert frames["lossboard-epochs"].equals(epochs)
        print(f"\nvalues bit-identical across {', '.join(frames)}")


if __name__ == "__main__":
    main()
