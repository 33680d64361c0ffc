"""The dashboard's numbers on awkward roots, in-process: what a user may feed it."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from seeded import write_encoded_run

import lossboard
from lossboard.dashboard.payload import Dashboard, band_of, numbers
from lossboard.dashboard.query import QueryError
from lossboard.reader.table import Series


def _ask(board: Dashboard, route: str = "configurations", **query) -> dict:
    args = {k: v if isinstance(v, list) else [str(v)] for k, v in query.items()}
    return json.loads(board.answer(route, args))


def _seeds(root, configs: dict, seeds=(0, 1, 2), epochs: int = 5, seed: int = 0) -> dict:
    """Runs ``<config>/seed<N>`` with train and validation curves; returns their values."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, lr in configs.items():
        for s in seeds:
            train = rng.uniform(0.1, 2.0, epochs)
            val = train + rng.uniform(0, 0.5, epochs)
            write_encoded_run(
                root,
                f"{name}/seed{s}",
                {"lr": lr, "seed": s},
                {"train": {"epoch_loss": train}, "validation": {"epoch_loss": val}},
            )
            values[(name, s)] = {"train": train, "validation": val}
    return values


def test_an_empty_logdir_answers_with_nothing(tmp_path):
    board = Dashboard(str(tmp_path))
    assert board.active() is False
    info = _ask(board, "info")
    assert info["runs"] == 0 and info["tags"] == [] and info["over"] == []
    got = _ask(board)
    assert got["configurations"] == [] and got["notes"] == ["No run has an epoch_* tag yet."]


def test_a_logdir_removed_while_open_is_said(tmp_path):
    root = tmp_path / "logs"
    _seeds(root, {"a": 0.1}, seeds=(0,))
    board = Dashboard(str(root))
    assert _ask(board)["configurations"]
    shutil.rmtree(root)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        board.answer("configurations", {})


def test_runs_without_hparams_are_their_own_configurations(tmp_path):
    for name in ("b", "a"):
        write_encoded_run(tmp_path, name, None, {"train": {"epoch_loss": [1.0, 0.5]}})
    board = Dashboard(str(tmp_path))
    assert board.active() is True  # lossboard's layout, no hparams
    got = _ask(board)
    assert got["over"] == []
    assert [(c["name"], c["runs"]) for c in got["configurations"]] == [("a", 1), ("b", 1)]
    with pytest.raises(QueryError, match="over='seed': no run has that hparam"):
        board.answer("configurations", {"over": ["seed"]})


def test_several_over_keys_and_none(tmp_path):
    for fold in range(2):
        for seed in range(2):
            write_encoded_run(
                tmp_path,
                f"f{fold}s{seed}",
                {"lr": 0.1, "seed": seed, "fold": fold},
                {"train": {"epoch_loss": [1.0 + fold + seed]}},
            )
    board = Dashboard(str(tmp_path))
    both = _ask(board, over=["seed", "fold"])
    assert [(c["name"], c["runs"]) for c in both["configurations"]] == [("lr=0.1", 4)]
    assert both["configurations"][0]["curves"]["train"]["mean"] == [2.0]
    assert len(_ask(board, over=["seed"])["configurations"]) == 2
    assert len(_ask(board, over=[""])["configurations"]) == 4  # over nothing: each run


def test_a_nan_seed_makes_its_epochs_nan_and_an_infinity_is_kept(tmp_path):
    curves = {
        0: [1.0, 0.5, 0.25],
        1: [1.0, float("nan"), 0.25],
        2: [1.0, 0.5, float("inf")],
    }
    for seed, values in curves.items():
        write_encoded_run(
            tmp_path, f"s{seed}", {"lr": 1, "seed": seed}, {"train": {"epoch_loss": values}}
        )
    got = _ask(Dashboard(str(tmp_path)), band="minmax")
    curve = got["configurations"][0]["curves"]["train"]
    assert curve["mean"] == [1.0, "NaN", "Infinity"]
    assert curve["low"] == [1.0, "NaN", 0.25] and curve["high"] == [1.0, "NaN", "Infinity"]
    assert curve["std"] == [0.0, "NaN", "NaN"]
    final = got["table"]["numeric"]["cells"][0][
        got["table"]["numeric"]["header"].index("train final mean")
    ]
    assert final == "Infinity"  # compare's Spread: an infinite run is not averaged away


def test_ragged_epochs_give_the_common_epochs(tmp_path):
    for seed, n in enumerate((5, 3, 4)):
        write_encoded_run(
            tmp_path,
            f"s{seed}",
            {"lr": 1, "seed": seed},
            {"train": {"epoch_loss": np.arange(n) + seed}},
        )
    got = _ask(Dashboard(str(tmp_path)))
    curve = got["configurations"][0]["curves"]["train"]
    assert curve["steps"] == [0, 1, 2] and curve["mean"] == [1.0, 2.0, 3.0]
    assert any("reached different epochs" in note for note in got["notes"])


def test_a_split_missing_from_some_runs_is_not_drawn(tmp_path):
    write_encoded_run(
        tmp_path,
        "s0",
        {"lr": 1, "seed": 0},
        {"train": {"epoch_loss": [1.0]}, "validation": {"epoch_loss": [2.0]}},
    )
    write_encoded_run(tmp_path, "s1", {"lr": 1, "seed": 1}, {"train": {"epoch_loss": [3.0]}})
    got = _ask(Dashboard(str(tmp_path)))
    assert list(got["configurations"][0]["curves"]) == ["train"]
    assert any("no validation values" in note for note in got["notes"])


def test_25_configurations_get_25_colours_and_show_limits_the_curves(tmp_path):
    configs = {f"c{i:02d}": 0.01 * (i + 1) for i in range(25)}
    _seeds(tmp_path, configs, seeds=(0, 1), epochs=3)
    board = Dashboard(str(tmp_path))
    default = _ask(board)
    assert len(default["configurations"]) == 25
    assert sorted(c["colour"] for c in default["configurations"]) == list(range(25))
    assert sum(bool(c["curves"]) for c in default["configurations"]) == 20
    assert sum(bool(c["curves"]) for c in _ask(board, show="all")["configurations"]) == 25
    assert sum(bool(c["curves"]) for c in _ask(board, show=5)["configurations"]) == 5
    assert len(_ask(board, show="all", split="train")["configurations"][0]["curves"]) == 1


def test_aggregated_runs_inside_the_logdir_are_left_out(tmp_path):
    _seeds(tmp_path, {"a": 0.1, "b": 0.2}, seeds=(0, 1))
    board = Dashboard(str(tmp_path))
    before = _ask(board)
    from lossboard.compare.aggregate import aggregate_root
    from lossboard.reader.read import read_root

    points, hparams = read_root(tmp_path)
    aggregate_root(points, hparams, ["seed"], tmp_path / "mean", source=str(tmp_path))
    after = _ask(board)
    assert after["skipped"] == ["mean"]
    assert after["table"] == before["table"]


def test_the_same_answer_is_reused_until_a_file_changes(tmp_path):
    _seeds(tmp_path, {"a": 0.1}, seeds=(0, 1))
    board = Dashboard(str(tmp_path))
    first = board.answer("configurations", {})
    assert board.answer("configurations", {}) is first  # no file changed: not recomputed
    assert board.cache.files.reads == 0
    write_encoded_run(tmp_path, "a/seed1", None, {"train": {"epoch_loss": [9.0] * 6}})
    again = board.answer("configurations", {})
    # the new file, and the one before it in its folder (no longer its newest: a record cut
    # short at its end is now damage, not a writer at work); not the other runs' files
    assert again != first and board.cache.files.reads == 2


@pytest.mark.parametrize("band", ["std", "minmax"])
def test_band_of_matches_numpy(band):
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(4, 7))
    series = [Series(np.arange(7), row) for row in matrix]
    got = band_of(series, band)
    mean, std = matrix.mean(0), matrix.std(0, ddof=1)
    np.testing.assert_allclose(got["mean"], mean)
    np.testing.assert_allclose(got["std"], std)
    low, high = (mean - std, mean + std) if band == "std" else (matrix.min(0), matrix.max(0))
    np.testing.assert_allclose(got["low"], low)
    np.testing.assert_allclose(got["high"], high)


def test_band_of_one_run_and_no_common_epoch():
    one = band_of([Series(np.arange(3), np.array([3.0, 2.0, 1.0]))], "std")
    assert one["low"] == one["mean"] == one["high"] == [3.0, 2.0, 1.0]
    apart = band_of(
        [Series(np.array([0]), np.array([1.0])), Series(np.array([1]), np.array([2.0]))], "std"
    )
    assert apart["steps"] == [] and apart["mean"] == []


def test_numbers_are_valid_json():
    text = json.dumps(numbers([1.5, float("nan"), float("-inf")]), allow_nan=False)
    assert text == '[1.5, "NaN", "-Infinity"]'


def test_a_run_being_written_shows_its_whole_records(tmp_path):
    """A record cut short at the end of the newest file (a writer at work) is waited for."""
    _seeds(tmp_path, {"a": 0.1}, seeds=(0, 1), epochs=3)
    folder = tmp_path / "a" / "seed0" / "train"
    (path,) = folder.iterdir()
    with open(path, "ab") as f:
        f.write(b"\x30\x00\x00")  # the start of a record's length
    got = _ask(Dashboard(str(tmp_path)))
    assert got["configurations"][0]["curves"]["train"]["steps"] == [0, 1, 2]


def test_a_corrupt_file_costs_a_warning_not_an_answer(tmp_path):
    _seeds(tmp_path, {"a": 0.1}, seeds=(0, 1), epochs=3)
    folder = tmp_path / "a" / "seed1" / "train"
    (path,) = folder.iterdir()
    data = bytearray(path.read_bytes())
    data[60] ^= 0xFF  # inside a record: its checksum no longer matches
    path.write_bytes(bytes(data))
    with pytest.warns(lossboard.EventFileWarning, match="corrupt"):
        got = _ask(Dashboard(str(tmp_path)))
    assert got["configurations"][0]["runs"] == 2


def test_only_files_under_the_logdir_are_read(tmp_path):
    """A symlink out of the logdir is followed as TensorBoard follows it, but a query value
    never names a path: the routes take tags, hparams and configuration names only."""
    outside = tmp_path / "outside"
    _seeds(outside, {"x": 0.5}, seeds=(0,))
    root = tmp_path / "logs"
    _seeds(root, {"a": 0.1}, seeds=(0,))
    board = Dashboard(str(root))
    with pytest.raises(QueryError, match="no configuration"):
        board.answer("members", {"config": [os.fspath(outside / "x")]})


def test_the_ci_band_is_the_bootstrap_interval_of_the_mean(tmp_path):
    """band=ci: ``lossboard.compare.stats.mean_interval`` of the runs at each common epoch."""
    from lossboard.compare import stats

    values = _seeds(tmp_path, {"a": 0.1}, seeds=(0, 1, 2, 3), epochs=4)
    board = Dashboard(str(tmp_path))
    curve = _ask(board, band="ci")["configurations"][0]["curves"]["train"]
    matrix = np.stack([values[("a", s)]["train"] for s in range(4)])
    low, high = stats.mean_interval(matrix)
    np.testing.assert_allclose(curve["low"], low)
    np.testing.assert_allclose(curve["high"], high)
    assert np.all(np.array(curve["low"]) <= matrix.mean(0))
    assert np.all(matrix.mean(0) <= np.array(curve["high"]))


@pytest.mark.parametrize("band", ["std", "minmax", "ci"])
def test_the_tabs_curves_are_lossboard_plots_lines_bit_for_bit(tmp_path, band):
    # One computation serves the tab, plot and aggregate (Band.edges): the same numbers, to
    # the last bit, and both within 1e-12 of NumPy's means over the runs drawn here.
    from lossboard.compare.plot import configuration_lines
    from lossboard.reader.read import read_table

    values = _seeds(tmp_path, {"a": 0.1, "b": 0.01}, seeds=(0, 1, 2, 3), epochs=6)
    values |= _seeds(tmp_path, {"solo": 1.0}, seeds=(0,), epochs=6, seed=1)
    got = _ask(Dashboard(str(tmp_path)), band=band, show="all")
    table = read_table(tmp_path, tags="epoch_*")
    lines = {
        (line.label.split(" (n=")[0], line.split): line
        for line in configuration_lines(table, table.hparams, ["seed"], band=band)
    }
    assert len(got["configurations"]) == 3
    for config in got["configurations"]:
        for split, curve in config["curves"].items():
            line = lines[(config["name"], split)]
            assert curve["mean"] == line.values
            edges = [np.array(e, np.float64) for e in (curve["low"], curve["high"])]
            for edge, expected in zip(edges, (line.low, line.high), strict=True):
                np.testing.assert_array_equal(edge, np.array(expected, np.float64))
            runs = [values[(run.split("/")[0], int(run.split("seed")[1]))][split]
                    for run in config["members"]]  # fmt: skip
            written = np.asarray(runs, np.float32).astype(np.float64)  # as tf.summary writes
            np.testing.assert_allclose(curve["mean"], written.mean(axis=0), rtol=1e-12)
            if len(runs) == 1 and band == "ci":
                assert np.isnan(edges[0]).all() and np.isnan(edges[1]).all()


def test_a_request_during_the_start_up_read_takes_its_answer(tmp_path, monkeypatch):
    # The start-up read makes the default answer; a request arriving meanwhile waits for it
    # instead of ranking the same configurations again beside it.
    import lossboard.dashboard.payload as payload

    _seeds(tmp_path, {"a": 0.1, "b": 0.01, "c": 1.0}, seeds=(0, 1, 2, 3), epochs=8)
    ranked = []
    real_rank = payload.rank
    monkeypatch.setattr(payload, "rank", lambda *a: ranked.append(1) or real_rank(*a))
    board = Dashboard(str(tmp_path))
    thread = board.warm_up()
    assert thread is not None
    during = board.answer("configurations", {"band": ["std"], "show": ["20"]})
    thread.join()
    assert len(ranked) == 1
    assert during == Dashboard(str(tmp_path)).answer("configurations", {})
