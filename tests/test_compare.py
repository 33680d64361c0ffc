"""`lossboard compare --over` and `lossboard.compare_groups` against NumPy/SciPy on real runs."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from scipy import stats
from seeded import CONFIGS, SEEDS, lossboard_cli, write_seeded_runs

import lossboard
from lossboard import LossLogger


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    return write_seeded_runs(tmp_path_factory.mktemp("seeded"))


def expected_rows(seeded, higher_is_better=False):
    """Per configuration: numpy/scipy statistics of the final and best values, at common epochs."""
    pick = np.max if higher_is_better else np.min
    out = {}
    for config in CONFIGS:
        row = {}
        for split, short in (("train", "train"), ("validation", "val")):
            grid = seeded.common(config, split, "epoch_loss")  # epochs x seeds
            row[f"{short} final"] = grid[-1]
            row[f"{short} best"] = pick(grid, axis=0)
            row[f"{short} epochs"] = grid.shape[0]
        out[config] = row
    order = sorted(out, key=lambda c: out[c]["val final"].mean(), reverse=higher_is_better)
    return order, out


@pytest.mark.parametrize("higher", [False, True])
def test_grouped_csv_numbers_are_numpy_and_scipy(seeded, tmp_path, higher):
    extra = ["--higher-is-better"] if higher else []
    out = lossboard_cli(
        "compare", seeded.root, "--over", "seed", "--csv", tmp_path / "t.csv", *extra
    )
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "t.csv", newline="") as f:
        table = list(csv.DictReader(f))
    order, expected = expected_rows(seeded, higher)
    assert [r["configuration"] for r in table] == [*order, "loner"]
    best = expected[order[0]]["val final"]
    for r in table[:2]:
        want = expected[r["configuration"]]
        assert int(r["runs"]) == len(SEEDS)
        for col in ("train final", "train best", "val final", "val best"):
            assert float(r[f"{col} mean"]) == pytest.approx(want[col].mean(), rel=1e-12)
            assert float(r[f"{col} std"]) == pytest.approx(want[col].std(ddof=1), rel=1e-9)
        assert int(r["val epochs"]) == want["val epochs"]
    assert table[0]["differs from best"] == "best" and math.isnan(float(table[0]["p vs best"]))
    p = stats.ttest_ind(expected[order[1]]["val final"], best, equal_var=False).pvalue
    assert float(table[1]["p vs best"]) == pytest.approx(p, rel=1e-9)
    assert table[1]["differs from best"] == ("yes" if p < 0.05 else "no")
    loner = table[2]
    assert loner["runs"] == "1" and float(loner["train final mean"]) == 5.0
    assert math.isnan(float(loner["train final std"]))  # one run shows no spread
    assert math.isnan(float(loner["val final mean"]))


def test_grouped_text_and_markdown_show_mean_plus_minus_std(seeded, tmp_path):
    out = lossboard_cli("compare", seeded.root, "--over", "seed", "--markdown", tmp_path / "t.md")
    assert out.returncode == 0, out.stderr
    order, expected = expected_rows(seeded)
    first = expected[order[0]]["val final"]
    cell = f"{first.mean():.4f} ± {first.std(ddof=1):.4f}"
    line = next(x for x in out.stdout.splitlines() if x.startswith(order[0]))
    assert cell in line and line.split()[-1] == "best"
    assert "configuration(s) over seed, best first" in out.stdout
    assert "Ranked by the mean final validation value of epoch_loss." in out.stdout
    assert "without validation values (listed last, not ranked): loner" in out.stdout
    assert "reached different epochs" in out.stdout  # one lr=0.1 seed stopped early
    md = (tmp_path / "t.md").read_text()
    header = md.splitlines()[0]
    assert header.startswith("| configuration | lr | runs | train final | train best |")
    assert "seed" not in header and "optimizer" not in header  # only hparams that differ
    assert f"| {cell} |" in md


def test_compare_groups_from_a_dataframe(seeded):
    df = lossboard.load(seeded.root)
    table = lossboard.compare_groups(df, over="seed")
    order, expected = expected_rows(seeded)
    assert list(table["configuration"]) == [*order, "loner"]
    assert table.attrs["ranked_by"] == "validation"
    got = table.set_index("configuration")
    for config in order:
        assert got.loc[config, "val final mean"] == pytest.approx(
            expected[config]["val final"].mean(), rel=1e-12
        )


def test_over_a_missing_hparam_is_a_clear_error(seeded):
    out = lossboard_cli("compare", seeded.root, "--over", "sede")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--over sede: no run has that hparam" in out.stderr and "seed" in out.stderr


@pytest.fixture
def mixed_splits(tmp_path):
    """`only_train` has the lowest value, but only on train; the others have validation."""
    for name, train, val in (("only_train", 0.1, None), ("both_a", 0.9, 0.5), ("both_b", 0.8, 0.7)):
        with LossLogger(tmp_path / name, verbose=0) as lg:
            lg.on_train_batch_end(0, {"loss": train})
            if val is not None:
                lg.on_test_batch_end(0, {"loss": val})
            lg.on_epoch_end(0)
    return tmp_path


def test_runs_with_different_splits_are_ranked_by_one_split(mixed_splits, tmp_path):
    out = lossboard_cli("compare", mixed_splits, "--csv", tmp_path / "t.csv")
    assert out.returncode == 0, out.stderr
    names = [line.split()[0] for line in out.stdout.splitlines()[3:6]]
    assert names == ["both_a", "both_b", "only_train"]  # 0.5 < 0.7 (validation); no val last
    assert "Ranked by the final validation value of epoch_loss." in out.stdout
    assert "Runs without validation values (listed last, not ranked): only_train" in out.stdout
    with open(tmp_path / "t.csv", newline="") as f:
        assert [r["run"] for r in csv.DictReader(f)] == names


def test_runs_with_train_only_are_ranked_by_train(tmp_path):
    for name, value in (("a", 0.3), ("b", 0.2)):
        with LossLogger(tmp_path / name, verbose=0) as lg:
            lg.on_train_batch_end(0, {"loss": value})
            lg.on_epoch_end(0)
    out = lossboard_cli("compare", tmp_path)
    assert [line.split()[0] for line in out.stdout.splitlines()[3:5]] == ["b", "a"]
    assert "Ranked by the final train value of epoch_loss." in out.stdout


def test_a_configuration_whose_runs_lack_a_split_is_not_ranked_by_it(tmp_path):
    runs = {  # run -> (hparams, train, validation or None)
        "a-seed0": ({"m": "a", "seed": 0}, 0.1, 0.1),
        "a-seed1": ({"m": "a", "seed": 1}, 0.1, None),
        "b-seed0": ({"m": "b", "seed": 0}, 0.5, 0.6),
        "b-seed1": ({"m": "b", "seed": 1}, 0.5, 0.8),
    }
    for name, (hp, train, val) in runs.items():
        with LossLogger(tmp_path / name, hparams=hp, verbose=0) as lg:
            lg.on_train_batch_end(0, {"loss": train})
            if val is not None:
                lg.on_test_batch_end(0, {"loss": val})
            lg.on_epoch_end(0)
    out = lossboard_cli("compare", tmp_path, "--over", "seed")
    assert out.returncode == 0, out.stderr
    rows = [line.split()[0] for line in out.stdout.splitlines()[3:5]]
    assert rows == ["m=b", "m=a"]  # a's lower train value is not ranked against b's validation
    assert "Configurations without validation values (listed last, not ranked): m=a" in out.stdout
    assert "m=a: a-seed1 has no validation values, so its validation columns are empty" in (
        out.stdout
    )
