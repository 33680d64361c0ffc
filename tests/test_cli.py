"""The real `lossboard` command (python -m lossboard) on real runs."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from seeded import lossboard_cli as lossboard

from lossboard import LossboardWarning, LossLogger
from lossboard.reader import read as reader

RUNS = {  # run -> (hparams, train losses per epoch, validation losses per epoch)
    "lr_0.1": ({"lr": 0.1, "opt": "sgd"}, [3.0, 2.0, 1.5], [3.5, 2.6, 2.2]),
    "lr_0.01": ({"lr": 0.01, "opt": "sgd"}, [3.0, 2.5, 2.25], [3.2, 2.7, 2.125]),
    "lr_1.0": ({"lr": 1.0, "opt": "sgd"}, [3.0, 9.0, 20.0], [4.0, 10.0, 30.0]),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, (hparams, train, val) in RUNS.items():
        with LossLogger(root / name, hparams=hparams) as logger:
            for epoch, (t, v) in enumerate(zip(train, val, strict=True)):
                # two batches whose mean is the wanted value: 4 examples and 2 examples
                logger.on_train_batch_end(0, {"loss": np.full(4, t - 0.5)})
                logger.on_train_batch_end(1, {"loss": np.full(2, t + 1.0)})
                logger.on_test_batch_end(0, {"loss": v})
                logger.on_epoch_end(epoch)
    return root


def test_compare_ranks_by_final_validation_and_shows_differing_hparams(root, tmp_path):
    out = lossboard("compare", root, "--csv", tmp_path / "t.csv", "--markdown", tmp_path / "t.md")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    body = [line for line in lines[3:] if line.startswith("lr_")]
    assert [line.split()[0] for line in body] == ["lr_0.01", "lr_0.1", "lr_1.0"]
    assert "lr" in lines[1] and "opt" not in lines[1]  # only hparams that differ
    first = body[0].split()
    # run, train final/best/best epoch/epochs, val final/best/best epoch/epochs, lr
    assert first[1:] == ["2.2500", "2.2500", "2", "3", "2.1250", "2.1250", "2", "3", "0.01"]
    with open(tmp_path / "t.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["run"] for r in table] == ["lr_0.01", "lr_0.1", "lr_1.0"]
    assert float(table[2]["val best"]) == 4.0 and table[2]["val best epoch"] == "0"
    assert (tmp_path / "t.md").read_text().startswith("| run |")


def test_compare_options_tag_and_glob(root):
    out = lossboard("compare", root, "--runs", "lr_0.*", "--tag", "epoch_loss")
    assert out.returncode == 0
    assert "lr_1.0" not in out.stdout and "lr_0.1" in out.stdout
    missing = lossboard("compare", root, "--tag", "epoch_nothing")
    assert missing.returncode == 1 and "No run has the tag 'epoch_nothing'" in missing.stdout
    nowhere = lossboard("compare", root / "nope")
    assert nowhere.returncode == 2 and "not a directory" in nowhere.stderr


def test_plot_writes_a_png_with_one_panel_per_component(root, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curves.png"
    out = lossboard("plot", root, "-o", png, "--title", "lr sweep")
    assert out.returncode == 0, out.stderr
    assert "1 panel(s): epoch_loss" in out.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_demo_runs_twice_into_fresh_folders_quietly(tmp_path):
    """Each demo writes its own runs (no epoch logged twice) and prints nothing on stderr; the
    seeds and their means go to two folders, each opened by the command the demo prints."""
    from lossboard.demo import DEMO_CONFIGS, DEMO_SEEDS

    logs = tmp_path / "logs"
    for attempt in (1, 2):
        out = lossboard("demo", "--logdir", logs, "--epochs", "2", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert out.stderr == ""  # no warnings about code the user did not write
        assert len(os.listdir(logs)) == attempt  # a new timestamped folder each time
    assert "configuration(s) over seed, best first" in out.stdout
    assert "4 runs: 2 learning rates x 2 seeds, 2 epochs each" in out.stdout
    hints = [line.split(":  ", 1)[1] for line in out.stdout.splitlines() if ":  " in line]
    folder = logs / sorted(os.listdir(logs))[-1]
    assert any(h.endswith(f"--logdir {folder / 'seeds'}") for h in hints)
    assert any(h.endswith(f"--logdir {folder / 'mean'}") for h in hints)
    expected_runs = {f"{c}/seed{s}" for c in DEMO_CONFIGS for s in DEMO_SEEDS}
    for folder in logs.iterdir():
        points, hparams = reader.read_root(folder / "seeds")
        assert set(hparams) == expected_runs  # names that differ early: lr=0.003/seed0
        assert all(isinstance(h["seed"], float) for h in hparams.values())
        steps = [(p.run, p.split, p.tag, p.step) for p in points]
        assert sorted({s[3] for s in steps}) == [0, 1] and len(steps) == len(set(steps))
        # the means over the seeds, one run per configuration, equal NumPy's mean of the seeds
        means, _ = reader.read_root(folder / "mean")
        assert {p.run for p in means} == set(DEMO_CONFIGS)
        for p in (p for p in means if p.tag == "epoch_loss"):
            seeds = [
                q.value
                for q in points
                if q.tag == p.tag
                and q.split == p.split
                and q.step == p.step
                and q.run.startswith(p.run + "/")
            ]
            assert len(seeds) == len(DEMO_SEEDS)
            assert p.value == pytest.approx(np.mean(seeds), rel=1e-6)  # float32 on disk
    assert not list(tmp_path.glob("*.png"))  # nothing lands in the current folder
    plot_hint = next(h for h in hints if " plot " in h).split()
    pytest.importorskip("matplotlib")
    assert "pip install" not in out.stdout  # matplotlib is there: no stale hint
    drawn = subprocess.run(plot_hint, capture_output=True, text=True, cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    assert (logs / sorted(os.listdir(logs))[-1] / "curves.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--epochs", "0"], "--epochs: got '0'; expected a whole number of 1 or more"),
        (["demo", "--epochs", "-3"], "--epochs: got '-3'; expected a whole number of 1 or more"),
        (["compare", "ROOT", "--csv", "DIR"], "--csv 'DIR' is a directory; expected a file name"),
        (["compare", "ROOT", "--markdown", "DIR"], "--markdown 'DIR' is a directory"),
        (["compare", "ROOT", "--csv", "DIR/no/t.csv"], "the folder 'DIR/no' does not exist"),
        (["aggregate", "ROOT", "--over", "lr", "-o", "ROOT/lr_0.1"], "inside the source run"),
        (["aggregate", "ROOT", "--over", "lr", "-o", "ROOT/lr_0.1/mean"], "inside the source run"),
    ],
)
def test_clear_errors_exit_2_without_traceback(root, tmp_path, args, message):
    subs = {"ROOT": os.fspath(root), "DIR": os.fspath(tmp_path)}
    for key, value in subs.items():
        args = [a.replace(key, value) for a in args]
        message = message.replace(key, value)
    out = lossboard(*args)
    assert out.returncode == 2, out.stdout
    assert message in out.stderr and "Traceback" not in out.stderr
    assert os.listdir(tmp_path) == []  # nothing written


def test_console_script(root):
    script = os.path.join(os.path.dirname(sys.executable), "lossboard")
    assert os.path.exists(script), "pip install -e . should install the lossboard command"
    out = subprocess.run([script, "compare", os.fspath(root)], capture_output=True, text=True)
    assert out.returncode == 0 and "lr_0.01" in out.stdout


@pytest.mark.parametrize(
    "args",
    [["compare"], ["compare", "--over", "lr"], ["plot", "--over", "lr", "-o", "OUT/c.png"]],
)
def test_reading_commands_do_not_import_tensorflow(root, tmp_path, args):
    if args[0] == "plot":
        pytest.importorskip("matplotlib")
    args = [args[0], os.fspath(root), *(a.replace("OUT", os.fspath(tmp_path)) for a in args[1:])]
    code = (
        "import sys; from lossboard.cli import main; code = main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules, 'imported tensorflow'; sys.exit(code)"
    )
    quick = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert quick.returncode == 0, quick.stderr[-2000:]


def test_plot_without_matplotlib_says_how_to_install(root, tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None; from lossboard.cli import main; "
        "sys.exit(main(['plot', sys.argv[1], '-o', sys.argv[2]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, os.fspath(root), os.fspath(tmp_path / "c.png")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "pip install matplotlib" in out.stderr and "pip install -e '.[plot]'" in out.stderr
    assert not (tmp_path / "c.png").exists()


def test_seeds_diverged_to_both_infinities_are_reported_not_crashed_on(tmp_path):
    """One seed at +inf and one at -inf: compare, aggregate and plot --over seed still work, and
    that configuration's mean is NaN (a mean of +inf and -inf does not exist)."""
    root = tmp_path / "seeds"
    runs = {("a", 0): [2.0, float("inf")], ("a", 1): [2.0, -float("inf")]}
    runs |= {("b", 0): [2.0, 1.0], ("b", 1): [2.0, 1.5]}
    with pytest.warns(LossboardWarning, match="NaN or an infinity"):
        for (config, seed), losses in runs.items():
            hparams = {"config": config, "seed": seed}
            with LossLogger(root / f"{config}-{seed}", hparams=hparams, nonfinite="warn") as lg:
                for epoch, loss in enumerate(losses):
                    lg.on_train_batch_end(0, {"loss": loss})
                    lg.on_epoch_end(epoch)
    out = lossboard("compare", root, "--over", "seed")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[3:5]}
    assert rows["config=b"].split()[3:6] == ["1.2500", "[1.0000,", "1.5000]"]  # mean of 1, 1.5
    assert "nan" in rows["config=a"]
    assert "config=a: a-0, a-1 ended with a NaN or infinite train value" in out.stdout
    mean = tmp_path / "mean"
    out = lossboard("aggregate", root, "--over", "seed", "-o", mean)
    assert out.returncode == 0, out.stderr
    points, _ = reader.read_root(mean)
    final = {p.run: p.value for p in points if p.tag == "epoch_loss" and p.step == 1}
    assert math.isnan(final["config=a"]) and final["config=b"] == 1.25
    pytest.importorskip("matplotlib")
    for band in ("std", "minmax", "ci"):
        out = lossboard("plot", root, "--over", "seed", "--band", band, "-o", tmp_path / "c.png")
        assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    "command", [["compare"], ["plot", "-o", "x.png"], ["aggregate", "--over", "lr", "-o", "out"]]
)
def test_a_runs_glob_that_matches_nothing_says_so(root, tmp_path, command):
    """--runs 'zzz*': the message names the glob and the runs it could have matched, not
    'no run has the tag'."""
    name, *rest = command
    rest = [str(tmp_path / r) if r in ("x.png", "out") else r for r in rest]
    out = lossboard(name, root, "--runs", "zzz*", *rest)
    assert out.returncode == 2, out.stderr
    assert "--runs 'zzz*' matched none of the" in out.stderr and "lr_0" in out.stderr, out.stderr
