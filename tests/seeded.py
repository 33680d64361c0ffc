"""Runs over seeds written with LossLogger, the values they must read back as, and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np

CONFIGS = {"lr=0.1": 0.1, "lr=0.01": 0.01}
SEEDS = (0, 1, 2)
EPOCHS = 4
SHORT = ("lr=0.1", 2)  # this run stops one epoch early


@dataclass
class Written:
    """``values[(config, seed)][(split, tag)]`` is the run's epoch values (float64 of float32)."""

    root: str
    values: dict = field(default_factory=dict)

    def series(self, config: str, split: str, tag: str) -> list[np.ndarray]:
        return [self.values[(config, s)][(split, tag)] for s in SEEDS]

    def common(self, config: str, split: str, tag: str) -> np.ndarray:
        """Epochs x seeds, at the epochs every seed reached."""
        series = self.series(config, split, tag)
        n = min(len(s) for s in series)
        return np.stack([s[:n] for s in series], axis=1)


def write_seeded_runs(root: str | os.PathLike, rng_seed: int = 7) -> Written:
    """Two configurations x three seeds, plus a run without hparams (``loner``)."""
    from lossboard import LossLogger

    rng = np.random.default_rng(rng_seed)
    out = Written(os.fspath(root))
    for config, lr in CONFIGS.items():
        for seed in SEEDS:
            epochs = EPOCHS - 1 if (config, seed) == SHORT else EPOCHS
            level = 1.0 if lr == 0.1 else 0.8
            train = (level / (1 + np.arange(epochs)) + rng.uniform(0, 0.2, epochs)).astype("f4")
            val = (train + rng.uniform(0, 0.3, epochs)).astype("f4")
            kl = rng.uniform(0.5, 1.5, epochs).astype("f4")
            hp = {"lr": lr, "seed": seed, "optimizer": "adam"}
            run = os.path.join(root, f"{config}-seed{seed}")
            with LossLogger(run, hparams=hp, verbose=0) as lg:
                for e in range(epochs):
                    lg.on_train_batch_end(0, {"loss": train[e], "kl": kl[e]})
                    lg.on_test_batch_end(0, {"loss": val[e]})
                    lg.on_epoch_end(e)
            out.values[(config, seed)] = {
                ("train", "epoch_loss"): train.astype("f8"),
                ("train", "epoch_kl"): kl.astype("f8"),
                ("validation", "epoch_loss"): val.astype("f8"),
            }
    with LossLogger(os.path.join(root, "loner"), verbose=0) as lg:
        for e in range(2):
            lg.on_train_batch_end(0, {"loss": 5.0})
            lg.on_epoch_end(e)
    return out


def write_encoded_run(
    root: str | os.PathLike,
    run: str,
    hparams: dict | None,
    curves: dict[str, dict[str, np.ndarray]],
    start: float = 1.7e9,
) -> None:
    """A run in Keras' layout written without TensorFlow: ``curves[split][tag]`` at epochs
    0, 1, ... as the exact records ``tf.summary.scalar`` writes (``lossboard.events.encode``),
    and ``hparams`` as the HParams plugin's record (TensorBoard's ``hparams_pb``).

    Fast enough for thousands of runs; NaN and infinities are written as given.
    """
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import summary_v2

    from lossboard.events.encode import Points, PointsFile, record

    folder = os.path.join(root, run)
    for split, tags in curves.items():
        names = sorted(tags)
        steps, walls, codes, values = [], [], [], []
        for code, tag in enumerate(names):
            n = len(tags[tag])
            steps.append(np.arange(n))
            walls.append(start + np.arange(n))
            codes.append(np.full(n, code))
            values.append(np.asarray(tags[tag], np.float64))
        points = Points(*map(np.concatenate, (steps, walls, codes, values)), names)
        out = PointsFile(os.path.join(folder, split))
        out.write(points)
        out.close()
    if hparams:
        os.makedirs(folder, exist_ok=True)
        summary = summary_v2.hparams_pb(hparams, start_time_secs=start)
        event = event_pb2.Event(wall_time=start, summary=summary).SerializeToString()
        with open(os.path.join(folder, "events.out.tfevents.1.hparams.v2"), "wb") as f:
            f.write(record(event))


def lossboard_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """Runs the real ``python -m lossboard`` command."""
    return subprocess.run(
        [sys.executable, "-m", "lossboard", *map(os.fspath, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
