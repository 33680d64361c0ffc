"""`lossboard compare --over` and `lossboard.compare_groups` against NumPy/SciPy on real runs."""

from __future__ import annotations

import csv
import math
import warnings

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


def test_grouped_text_and_markdown_show_mean_with_its_interval(seeded, tmp_path):
    out = lossboard_cli(
        "compare", seeded.root, "--over", "seed", "--markdown", tmp_path / "t.md",
        "--csv", tmp_path / "t.csv",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    order, expected = expected_rows(seeded)
    first = expected[order[0]]["val final"]
    with open(tmp_path / "t.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["configuration"] == order[0])
    low, high = float(row["val final ci low"]), float(row["val final ci high"])
    cell = f"{first.mean():.4f} [{low:.4f}, {high:.4f}]"
    line = next(x for x in out.stdout.splitlines() if x.startswith(order[0]))
    assert cell in line and line.split()[-1] == "best"
    assert f" {stats.trim_mean(first, 0.25):.4f} " in line  # the IQM column
    assert "configuration(s) over seed, best first" in out.stdout
    assert "Ranked by the mean final validation value of epoch_loss." in out.stdout
    assert "without validation values (listed last, not ranked): loner" in out.stdout
    assert "reached different epochs" in out.stdout  # one lr=0.1 seed stopped early
    md = (tmp_path / "t.md").read_text()
    header = md.splitlines()[0]
    assert header.startswith(
        "| configuration | lr | runs | train final | train final iqm | train best |"
    )
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


# Configurations over six seeds (final validation loss per seed), for the statistics of the
# intervals issue: one clearly best, one close, one worse, one with a diverged seed, one run.
FINALS = {
    "adam": [0.30, 0.32, 0.29, 0.35, 0.31, 0.33],
    "sgd_m": [0.34, 0.31, 0.36, 0.38, 0.33, 0.35],
    "rms": [0.45, 0.50, 0.48, 0.47, 0.52, 0.49],
    "wild": [0.40, 0.41, float("nan"), 0.39, 0.42, 0.40],
    "single": [0.6],
}


@pytest.fixture(scope="module")
def six_seeds(tmp_path_factory):
    """Runs of two epochs whose last validation values are FINALS (their first epoch is 1.0)."""
    root = tmp_path_factory.mktemp("six-seeds")
    for opt, finals in FINALS.items():
        for seed, final in enumerate(finals):
            with LossLogger(
                root / f"{opt}-{seed}", hparams={"opt": opt, "seed": seed}, verbose=0,
                nonfinite="warn",
            ) as lg:  # fmt: skip
                for epoch, value in enumerate([1.0, final]):
                    lg.on_train_batch_end(0, {"loss": 2 * value})
                    lg.on_test_batch_end(0, {"loss": value})
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # the NaN is warned about, on purpose
                        lg.on_epoch_end(epoch)
    return root


def _written(values) -> np.ndarray:
    """The values as read back: float32, as tf.summary writes them."""
    return np.asarray(values, np.float32).astype(np.float64)


def _csv(path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {r["configuration"]: r for r in csv.DictReader(f)}


@pytest.mark.parametrize("higher", [False, True])
def test_interval_iqm_and_probability_match_rliable_and_scipy(six_seeds, tmp_path, higher):
    rliable = pytest.importorskip("rliable.metrics")
    extra = ["--higher-is-better"] if higher else []
    out = lossboard_cli("compare", six_seeds, "--over", "seed", "--csv", tmp_path / "t.csv", *extra)
    assert out.returncode == 0, out.stderr
    rows = _csv(tmp_path / "t.csv")
    finals = {f"opt={k}": _written(v) for k, v in FINALS.items()}
    ranked = sorted(
        (k for k in finals if not np.isnan(finals[k].mean())),
        key=lambda k: finals[k].mean(), reverse=higher,
    )  # fmt: skip
    assert list(rows)[: len(ranked)] == ranked
    best = finals[ranked[0]]
    sign = 1.0 if higher else -1.0
    welch = {}
    for name in ("opt=adam", "opt=sgd_m", "opt=rms"):
        v, r = finals[name], rows[name]
        assert float(r["val final iqm"]) == rliable.aggregate_iqm(v[:, None])
        assert float(r["val final mean"]) == pytest.approx(v.mean(), rel=1e-12)
        ref = stats.bootstrap(
            (v,), np.mean, n_resamples=10_000, method="percentile", random_state=7
        ).confidence_interval
        # Monte Carlo error of a 2.5% / 97.5% endpoint at 10,000 resamples: about 0.03 s/sqrt(n)
        # for each estimate; 0.2 s/sqrt(n) is more than 4 standard deviations of the difference.
        tolerance = 0.2 * v.std(ddof=1) / math.sqrt(len(v))
        assert abs(float(r["val final ci low"]) - ref.low) <= tolerance
        assert abs(float(r["val final ci high"]) - ref.high) <= tolerance
        want = rliable.probability_of_improvement(sign * best[:, None], sign * v[:, None])
        assert float(r["p best better"]) == (0.5 if name == ranked[0] else want)
        if name != ranked[0] and len(best) > 1:
            welch[name] = stats.ttest_ind(v, best, equal_var=False).pvalue
            assert float(r["p vs best"]) == pytest.approx(welch[name], rel=1e-9)
        elif name != ranked[0]:  # higher is better: the single run is best, with no spread
            assert math.isnan(float(r["p vs best"])) and r["differs from best"] == "-"
    # Holm over the comparisons with the best that have a p-value (the NaN one and the
    # single run have none): the smallest times their number, then step down.
    order = sorted(welch, key=welch.get)
    m, running = len(order), 0.0
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (m - rank) * welch[name]))
        assert float(rows[name]["p vs best holm"]) == pytest.approx(running, rel=1e-9)
        assert rows[name]["differs from best"] == ("yes" if running < 0.05 else "no")


def test_a_diverged_seed_makes_its_statistics_nan_with_a_note(six_seeds, tmp_path):
    out = lossboard_cli("compare", six_seeds, "--over", "seed", "--csv", tmp_path / "t.csv")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    wild = _csv(tmp_path / "t.csv")["opt=wild"]
    for column in ("val final iqm", "val final ci low", "val final ci high", "p best better"):
        assert math.isnan(float(wild[column])), column
    assert "opt=wild: wild-2 ended with a NaN or infinite validation value" in out.stdout
    assert "opt=wild: wild-2 ended with a NaN or infinite train value" in out.stdout


def test_one_run_shows_no_interval(six_seeds, tmp_path):
    out = lossboard_cli("compare", six_seeds, "--over", "seed", "--csv", tmp_path / "t.csv")
    single = _csv(tmp_path / "t.csv")["opt=single"]
    assert single["runs"] == "1" and float(single["val final mean"]) == _written([0.6])[0]
    assert math.isnan(float(single["val final ci low"])) and single["p vs best"] == "nan"
    line = next(x for x in out.stdout.splitlines() if x.startswith("opt=single"))
    assert "[" not in line and f"{_written([0.6])[0]:.4f}" in line


def test_the_table_says_how_the_numbers_were_made(six_seeds):
    out = lossboard_cli("compare", six_seeds, "--over", "seed")
    assert "p vs best (Holm)" in out.stdout.splitlines()[1]
    assert "95% percentile-bootstrap interval of the mean (10,000 resamples" in out.stdout
    assert "Holm-corrected over the 2 comparisons with the best" in out.stdout
    assert "ends lower than a run of this one (Mann-Whitney" in out.stdout


def test_two_configurations_need_no_correction(seeded):
    out = lossboard_cli("compare", seeded.root, "--over", "seed")
    assert "Holm" not in out.stdout and "p vs best " in out.stdout.splitlines()[1] + " "


def test_latex_is_a_booktabs_table_with_intervals_and_run_counts(six_seeds, tmp_path):
    tex = tmp_path / "table.tex"
    out = lossboard_cli("compare", six_seeds, "--over", "seed", "--latex", tex, "--csv",
                        tmp_path / "t.csv")  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows, text = _csv(tmp_path / "t.csv"), tex.read_text()
    lines = text.splitlines()
    body = lines[lines.index("\\midrule") + 1 : lines.index("\\bottomrule")]
    assert "\\toprule" in lines and "\\end{tabular}" in lines
    assert len(body) == len(FINALS)
    adam = rows["opt=adam"]
    interval = f"[{float(adam['val final ci low']):.4f}, {float(adam['val final ci high']):.4f}]"
    first = body[0].split(" & ")
    assert first[0] == "opt=adam" and first[2] == "6" and interval in first[5]
    assert first[5].startswith("\\textbf{")  # the best of the ranked split
    assert any(line.startswith("opt=sgd\\_m & sgd\\_m & 6 & ") for line in body)  # escaped
    assert "% mean [95\\% CI]" in text and "10,000 resamples" in text


def test_latex_without_over_is_refused_with_the_fix(six_seeds, tmp_path):
    out = lossboard_cli("compare", six_seeds, "--latex", tmp_path / "t.tex")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "add --over, such as --over seed" in out.stderr
    assert not (tmp_path / "t.tex").exists()
