"""Makes the pictures in docs/comparing.md from real runs: python docs/images/make_screenshot.py

1. trains two demo runs (learning rates 0.003 and 0.03) into a temporary folder;
2. starts a real TensorBoard server on 127.0.0.1 and screenshots its Scalars and HParams dashboards
   with headless Chromium (Debian's package `chromium`);
3. draws `lossboard plot` of the same runs;
4. trains both learning rates over three seeds, writes their mean runs with
   `lossboard aggregate --over seed`, screenshots those in TensorBoard, and draws
   `lossboard plot --over seed`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # docs/
from browser import find_chromium, free_port, screenshot, served  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def screenshots(root: str, pages: tuple[tuple[str, str], ...]) -> None:
    """Serves ``root`` with a real TensorBoard and screenshots each ``(picture, fragment)``."""
    chromium = find_chromium()
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", root]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with served(command, f"http://127.0.0.1:{port}/data/runs", timeout=60):
        time.sleep(3)  # TensorBoard answers before it has loaded every run
        for picture, fragment in pages:
            url = f"http://127.0.0.1:{port}/{fragment}"
            budget = "--virtual-time-budget=30000"
            screenshot(chromium, url, os.path.join(HERE, picture), "1400,900", budget)


def main() -> int:
    from lossboard import demo
    from lossboard.aggregate import aggregate_root
    from lossboard.plot import plot_runs
    from lossboard.reader import read_root

    root = tempfile.mkdtemp(prefix="lossboard-shot-")
    for name in ("lr_0.003", "lr_0.03"):
        demo.train_run(os.path.join(root, name), epochs=12, **demo.DEMO_RUNS[name])
    points, _ = read_root(root)
    plot_runs(points, os.path.join(HERE, "curves.png"), title="lossboard demo: two learning rates")
    screenshots(
        root,
        (
            ("tensorboard-scalars.png", "#scalars&tagFilter=epoch_loss"),
            ("tensorboard-hparams.png", "#hparams"),
        ),
    )

    seeds = tempfile.mkdtemp(prefix="lossboard-seeds-")
    for name in ("lr_0.003", "lr_0.03"):
        for seed in (0, 1, 2):
            run = os.path.join(seeds, f"{name}-seed{seed}")
            demo.train_run(run, epochs=12, seed=seed, **demo.DEMO_RUNS[name])
    points, hparams = read_root(seeds)
    plot_runs(
        points,
        os.path.join(HERE, "curves-over-seed.png"),
        over=["seed"],
        hparams=hparams,
        title="lossboard plot --over seed: mean ± std of 3 seeds",
    )
    mean = os.path.join(tempfile.mkdtemp(prefix="lossboard-mean-"), "mean")
    aggregate_root(points, hparams, ["seed"], mean, source=seeds)
    screenshots(
        mean,
        (
            ("tensorboard-aggregated-scalars.png", "#scalars&tagFilter=epoch_loss"),
            ("tensorboard-aggregated-hparams.png", "#hparams"),
        ),
    )
    print("wrote docs/images/curves.png, curves-over-seed.png and four TensorBoard screenshots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
