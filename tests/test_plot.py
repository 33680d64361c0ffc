"""`lossboard plot`: means and bands against NumPy, many runs, output names."""

from __future__ import annotations

import os

import numpy as np
import pytest
from seeded import CONFIGS, lossboard_cli, write_seeded_runs

from conftest import scipy_interval
from lossboard import LossLogger
from lossboard.compare.plot import LEGEND_CAP, colours, configuration_lines, plot_runs
from lossboard.reader.read import read_root

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    return write_seeded_runs(tmp_path_factory.mktemp("plot"))


@pytest.mark.parametrize("band", ["std", "minmax", "ci"])
def test_configuration_lines_are_numpy_means_and_bands(seeded, band):
    points, hparams = read_root(seeded.root)
    lines = {
        (x.label, x.split, x.tag): x
        for x in configuration_lines(points, hparams, ["seed"], band=band)
    }
    for config in CONFIGS:
        for split, tag in (
            ("train", "epoch_loss"),
            ("validation", "epoch_loss"),
            ("train", "epoch_kl"),
        ):
            grid = seeded.common(config, split, tag)
            line = lines[(f"{config} (n=3)", split, tag)]
            mean, std = grid.mean(axis=1), grid.std(axis=1, ddof=1)
            assert line.steps == list(range(grid.shape[0]))
            assert line.values == pytest.approx(mean, rel=1e-12)
            if band == "ci":
                low, high, tolerance = scipy_interval(grid)
                assert (np.abs(np.array(line.low) - low) <= tolerance).all()
                assert (np.abs(np.array(line.high) - high) <= tolerance).all()
                continue
            low, high = (mean - std, mean + std) if band == "std" else (grid.min(1), grid.max(1))
            assert line.low == pytest.approx(low, rel=1e-12)
            assert line.high == pytest.approx(high, rel=1e-12)
    loner = lines[("loner (n=1)", "train", "epoch_loss")]
    assert loner.values == [5.0, 5.0]
    if band == "ci":  # one run has no interval (as in the table): no band at all
        assert np.isnan(loner.low).all() and np.isnan(loner.high).all()
    else:  # no spread: the band is the line itself
        assert loner.low == loner.high == [5.0, 5.0]


def test_plot_band_ci_from_the_command_line(seeded, tmp_path):
    out = lossboard_cli("plot", seeded.root, "--over", "seed", "--band", "ci", "-o", tmp_path / "c")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG
    points, hparams = read_root(seeded.root)
    done = plot_runs(points, tmp_path / "d", over=["seed"], hparams=hparams, band="ci")
    assert "95% bootstrap CI of the mean" in done.legend
    with pytest.raises(ValueError, match="band: got 'iqr'; expected one of 'std', 'minmax', 'ci'"):
        plot_runs(points, tmp_path / "e", over=["seed"], hparams=hparams, band="iqr")


def test_plot_over_seed_writes_one_legend_entry_per_configuration(seeded, tmp_path):
    out = lossboard_cli("plot", seeded.root, "--over", "seed", "-o", tmp_path / "m.png")
    assert out.returncode == 0, out.stderr
    assert f"wrote {tmp_path / 'm.png'} (2 panel(s): epoch_loss, epoch_kl)" in out.stdout
    assert (tmp_path / "m.png").read_bytes()[:8] == PNG
    points, hparams = read_root(seeded.root)
    done = plot_runs(points, tmp_path / "b", over=["seed"], hparams=hparams, band="minmax")
    assert done.path == str(tmp_path / "b.png")
    assert done.legend == [
        "loner (n=1)",
        "lr=0.01 (n=3)",
        "lr=0.1 (n=3)",
        "train",
        "validation",
        "min to max",
    ]


@pytest.mark.parametrize("n", [10, 20, 45, 60, 120])
def test_colours_stay_distinct(n):
    got = [tuple(round(v, 4) for v in c[:3]) for c in colours(n)]
    assert len(got) == n and len(set(got)) == n


@pytest.mark.parametrize("runs", [45, LEGEND_CAP + 12])
def test_many_runs_legend_lists_each_or_says_how_many_it_left_out(tmp_path, runs):
    root = tmp_path / "many"
    for i in range(runs):
        with LossLogger(root / f"run_{i:03d}", verbose=0) as lg:
            for e in range(2):
                lg.on_train_batch_end(0, {"loss": 1.0 / (i + e + 1)})
                lg.on_epoch_end(e)
    points, _ = read_root(root)
    done = plot_runs(points, tmp_path / "many.png")
    assert len(done.labels) == runs
    shown = min(runs, LEGEND_CAP)
    assert done.legend[:shown] == [f"run_{i:03d}" for i in range(shown)]
    if runs > LEGEND_CAP:
        assert done.legend[shown] == f"... {runs - LEGEND_CAP} more not listed"
    else:
        assert done.legend[shown:] == ["train"]
    assert (tmp_path / "many.png").read_bytes()[:8] == PNG


def test_output_without_extension_gets_png_and_says_so(seeded, tmp_path):
    out = lossboard_cli("plot", seeded.root, "-o", "curves", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("wrote curves.png ")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG and not (tmp_path / "curves").exists()


@pytest.mark.parametrize("given", ["out/", "out", ".png", "out/.png"])
def test_the_file_it_says_it_wrote_is_the_file_written(seeded, tmp_path, given):
    """A folder is refused with a file name to use; any other name is written as said."""
    (tmp_path / "out").mkdir()
    out = lossboard_cli("plot", seeded.root, "-o", given, cwd=tmp_path)
    if given.rstrip("/") == "out":
        assert out.returncode == 2 and "is a directory" in out.stderr
        assert "curves.png" in out.stderr and not list((tmp_path / "out").iterdir())
        return
    assert out.returncode == 0, out.stderr
    said = out.stdout.split()[1]
    assert (tmp_path / said).read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.rglob("*png*")) == [os.path.basename(said)]


def test_unknown_extension_is_refused(seeded, tmp_path):
    out = lossboard_cli("plot", seeded.root, "-o", tmp_path / "curves.txt")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "matplotlib cannot write .txt files" in out.stderr and ".png" in out.stderr
    assert not (tmp_path / "curves.txt").exists()
