"""`lossboard aggregate`: mean runs read back from the event files, against NumPy."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from contextlib import nullcontext

import numpy as np
import pytest
from seeded import CONFIGS, SEEDS, lossboard_cli, write_seeded_runs

from conftest import close_to, read_split, scipy_interval
from lossboard import LossLogger
from lossboard.reader.read import read_root


def digest(root) -> dict[str, str]:
    out = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def aggregated(tmp_path_factory):
    """Seeded runs, aggregated into ROOT/mean (inside ROOT, on purpose)."""
    seeded = write_seeded_runs(tmp_path_factory.mktemp("agg"))
    before = digest(seeded.root)
    out = lossboard_cli("aggregate", seeded.root, "--over", "seed", "-o", f"{seeded.root}/mean")
    assert out.returncode == 0, out.stderr
    return seeded, before, out


@pytest.mark.parametrize(
    ("split", "tag"),
    [("train", "epoch_loss"), ("train", "epoch_kl"), ("validation", "epoch_loss")],
)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_mean_and_spread_tags_are_numpy(aggregated, config, split, tag):
    seeded, _, _ = aggregated
    grid = seeded.common(config, split, tag)  # epochs x seeds, epochs all seeds reached
    got = read_split(os.path.join(seeded.root, "mean", config), split)
    expected = {
        tag: grid.mean(axis=1),
        f"{tag}/std": grid.std(axis=1, ddof=1),
        f"{tag}/min": grid.min(axis=1),
        f"{tag}/max": grid.max(axis=1),
    }
    for name, values in expected.items():
        assert sorted(got[name]) == list(range(grid.shape[0])), name
        for epoch, value in enumerate(values):
            assert close_to(got[name][epoch], value), (name, epoch, got[name][epoch], value)
    low, high, tolerance = scipy_interval(grid)  # written as float32: 2e-7 more
    for name, want in ((f"{tag}/ci_low", low), (f"{tag}/ci_high", high)):
        assert sorted(got[name]) == list(range(grid.shape[0])), name
        wrote = np.array([got[name][e] for e in range(grid.shape[0])])
        assert (np.abs(wrote - want) <= tolerance + 2e-7 * np.abs(want)).all(), (name, wrote, want)
        assert (grid.min(1) - 1e-6 <= wrote).all() and (wrote <= grid.max(1) + 1e-6).all()


def test_a_single_run_gets_no_spread_tags(aggregated):
    seeded, _, _ = aggregated
    got = read_split(os.path.join(seeded.root, "mean", "loner"), "train")
    assert set(got) == {"epoch_loss", "epoch_loss/min", "epoch_loss/max"}
    assert got["epoch_loss"] == {0: 5.0, 1: 5.0}


def test_aggregate_runs_without_tensorflow(tmp_path):
    """Writing mean runs needs no TensorFlow: run with it made unimportable."""
    seeded = write_seeded_runs(tmp_path / "src")
    code = (
        "import sys; sys.modules['tensorflow'] = None; from lossboard.cli import main; "
        f"sys.exit(main(['aggregate', {seeded.root!r}, '--over', 'seed', '-o', "
        f"{str(tmp_path / 'out')!r}]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    _, hparams = read_root(tmp_path / "out")
    assert hparams["lr=0.1"] == {"lr": 0.1, "optimizer": "adam", "runs": len(SEEDS)}
    grid = seeded.common("lr=0.1", "train", "epoch_loss")
    got = read_split(tmp_path / "out" / "lr=0.1", "train")["epoch_loss"]
    assert all(close_to(got[e], grid[e].mean()) for e in range(grid.shape[0]))


def test_epochs_not_all_runs_reached_are_left_out_and_said(aggregated):
    seeded, _, out = aggregated
    assert "lr=0.1: mean of 3 run(s)" in out.stdout
    assert "left out: epoch 3, not reached by every run" in out.stdout
    assert "epoch_<name>/std" in out.stdout


def test_hparams_are_the_configuration_without_over_keys(aggregated):
    seeded, _, _ = aggregated
    _, hparams = read_root(os.path.join(seeded.root, "mean"))
    assert hparams["lr=0.1"] == {"lr": 0.1, "optimizer": "adam", "runs": len(SEEDS)}
    assert hparams["lr=0.01"] == {"lr": 0.01, "optimizer": "adam", "runs": len(SEEDS)}
    assert hparams["loner"] == {"runs": 1}  # a run without hparams is its own configuration
    one = read_split(os.path.join(seeded.root, "mean", "loner"), "train")
    assert one["epoch_loss"] == {0: 5.0, 1: 5.0} and "epoch_loss/std" not in one


def test_sources_untouched_and_second_run_replaces(aggregated):
    seeded, before, _ = aggregated
    after = digest(seeded.root)
    assert {k: v for k, v in after.items() if not k.startswith("mean")} == before
    again = lossboard_cli("aggregate", seeded.root, "--over", "seed", "-o", f"{seeded.root}/mean")
    assert again.returncode == 0, again.stderr
    assert "replaced 3 aggregated run(s) written earlier" in again.stdout
    runs = sorted(os.listdir(os.path.join(seeded.root, "mean")))
    assert runs == [".lossboard-aggregate.json", "loner", "lr=0.01", "lr=0.1"]  # not mean/lr=..
    # the grouped table of ROOT does not count the aggregated runs as sources
    table = lossboard_cli("compare", seeded.root, "--over", "seed")
    assert "lr=0.1" in table.stdout and "mean" not in table.stdout.split("Ranked")[0]
    per_run = lossboard_cli("compare", seeded.root)
    assert "mean/" not in per_run.stdout and "lr=0.1-seed0" in per_run.stdout
    assert "left out the runs in" in per_run.stderr and "written by lossboard aggregate" in (
        per_run.stderr
    )
    means = lossboard_cli("compare", os.path.join(seeded.root, "mean"))
    names = [line.split()[0] for line in means.stdout.splitlines()[3:6]]
    assert sorted(names[:2]) == ["lr=0.01", "lr=0.1"] and names[2] == "loner"
    assert {k: v for k, v in digest(seeded.root).items() if not k.startswith("mean")} == before
    # reading the means back: compare OUT equals the grouped means at the last common epoch
    grid = seeded.common("lr=0.1", "validation", "epoch_loss")
    got = read_split(os.path.join(seeded.root, "mean", "lr=0.1"), "validation")["epoch_loss"]
    assert close_to(got[grid.shape[0] - 1], grid[-1].mean())


@pytest.mark.parametrize("occupied", ["a_file", "a_run"])
def test_refuses_an_output_folder_it_did_not_write(tmp_path, occupied):
    src = tmp_path / "src"
    write_seeded_runs(src)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if occupied == "a_file":
        (out_dir / "notes.txt").write_text("mine")
        expected = {"notes.txt"}
        message = "already holds files that lossboard aggregate did not write"
    else:
        out_dir = src / "lr=0.1-seed0"  # a source run
        expected = set(os.listdir(out_dir))
        message = "lies inside the source run 'lr=0.1-seed0'"
    before = digest(tmp_path)
    out = lossboard_cli("aggregate", src, "--over", "seed", "-o", out_dir)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert message in out.stderr
    assert set(os.listdir(out_dir)) == expected and digest(tmp_path) == before


def test_a_nan_epoch_makes_the_mean_nan(tmp_path):
    for seed, values in enumerate(([1.0, 0.5], [1.0, float("nan")])):
        run = tmp_path / f"s{seed}"
        with LossLogger(run, hparams={"seed": seed}, verbose=0, nonfinite="warn") as lg:
            for e, v in enumerate(values):
                lg.on_train_batch_end(0, {"loss": v})
                with pytest.warns(RuntimeWarning) if np.isnan(v) else nullcontext():
                    lg.on_epoch_end(e)
    out = lossboard_cli("aggregate", tmp_path, "--over", "seed", "-o", tmp_path / "mean")
    assert out.returncode == 0, out.stderr
    got = read_split(tmp_path / "mean" / "all", "train")
    assert got["epoch_loss"][0] == 1.0 and np.isnan(got["epoch_loss"][1])


def test_an_interrupted_aggregate_is_left_out_and_replaced(tmp_path, monkeypatch):
    """Ctrl-C after the first mean run: the marker is already there, so reading the root
    leaves the half-written folder out, and the next aggregate replaces it."""
    from lossboard.compare import aggregate

    seeded = write_seeded_runs(tmp_path / "src")
    out_dir = os.path.join(seeded.root, "mean")
    write_run, calls = aggregate._write_run, []

    def interrupted(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        write_run(*args)

    monkeypatch.setattr(aggregate, "_write_run", interrupted)
    points, hparams = read_root(seeded.root)
    with pytest.raises(KeyboardInterrupt):
        aggregate.aggregate_root(points, hparams, ["seed"], out_dir, source=seeded.root)
    monkeypatch.undo()
    out = lossboard_cli("compare", seeded.root, "--over", "seed")
    assert out.returncode == 0 and "left out the runs in" in out.stderr
    assert "runs=" not in out.stdout  # no mean run read back as a source
    out = lossboard_cli("aggregate", seeded.root, "--over", "seed", "-o", out_dir)
    assert out.returncode == 0, out.stderr
    assert "replaced" in out.stdout
    grid = seeded.common("lr=0.01", "train", "epoch_loss")
    got = read_split(os.path.join(out_dir, "lr=0.01"), "train")["epoch_loss"]
    assert all(close_to(got[e], grid[e].mean()) for e in range(grid.shape[0]))


def test_far_apart_epochs_not_all_runs_reached_are_named_without_listing_between(tmp_path):
    # Steps 5 and 2**62 in one run only: said as two epochs, not a range of 2**62 to build.
    from lossboard.compare.aggregate import aggregate_points
    from lossboard.reader.table import Table

    rows = [("s0", 0, 1.0), ("s0", 5, 1.5), ("s0", 2**62, 2.0), ("s1", 0, 3.0)]
    table = Table.of_columns([r for r, _, _ in rows], ["train"] * 4, ["epoch_loss"] * 4,
                             [s for _, s, _ in rows], [v for _, _, v in rows])  # fmt: skip
    hparams = {"s0": {"lr": 0.1, "seed": 0}, "s1": {"lr": 0.1, "seed": 1}}
    (agg,) = aggregate_points(table, hparams, ["seed"])
    assert agg.bands[("train", "epoch_loss")].steps == [0]
    assert agg.bands[("train", "epoch_loss")].mean == [2.0]
    assert any(f"epochs 5, {2**62}, not reached by every run" in x for x in agg.left_out)
