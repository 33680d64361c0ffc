"""A real TensorBoard server on 127.0.0.1 serves lossboard runs: runs, scalars and HParams."""

from __future__ import annotations

import time
import warnings
from urllib.parse import quote

import numpy as np
import pytest
from seeded import CONFIGS, lossboard_cli, write_seeded_runs
from tensorboard_process import get_json as _get
from tensorboard_process import serve as _serve

from lossboard import LossLogger

pytestmark = pytest.mark.slow

#: Two runs whose folders share their last name, as a sweep's `lr=.../seed0` runs do.
RUNS = {"lr=0.1/seed0": 0.1, "lr=0.01/seed0": 0.01}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Writes two runs, starts `tensorboard` on them, yields (base_url, expected)."""
    root = tmp_path_factory.mktemp("tb")
    rng = np.random.default_rng(4)
    expected = {}
    for name, lr in RUNS.items():
        hparams = {"lr": lr, "optimizer": "adam"}
        # batch curves every 2 batches: windows run across epochs (3 batches each), and
        # their points go to a second event file of the split, written in bulk
        with LossLogger(root / name, hparams=hparams, update_freq=2) as logger:
            window: list[np.ndarray] = []
            for epoch in range(3):
                train = [rng.normal(1 / (epoch + 1), 0.1, n).astype("float32") for n in (16, 16, 5)]
                val = [rng.normal(1.5 / (epoch + 1), 0.1, n).astype("float32") for n in (8, 3)]
                for i, b in enumerate(train):
                    logger.on_train_batch_end(i, {"loss": b, "kl": b * b})
                    window.append(b.astype(np.float64))
                    if logger.global_batch % 2 == 0:
                        cat = np.concatenate(window)
                        expected[(name, "train", "batch_loss", logger.global_batch)] = cat.mean()
                        expected[(name, "train", "batch_kl", logger.global_batch)] = (
                            cat * cat
                        ).mean()
                        window = []
                for i, b in enumerate(val):
                    logger.on_test_batch_end(i, {"loss": b})
                logger.on_epoch_end(epoch)
                cat, vcat = (
                    np.concatenate(train).astype(np.float64),
                    np.concatenate(val).astype(np.float64),
                )
                expected[(name, "train", "epoch_loss", epoch)] = cat.mean()
                expected[(name, "train", "epoch_kl", epoch)] = (cat * cat).mean()
                expected[(name, "validation", "epoch_loss", epoch)] = vcat.mean()
    yield from _serve(root, 2 * len(RUNS), expected)


def test_runs_and_tags_are_served(served):
    base, _ = served
    runs = set(_get(base + "/data/runs"))
    for name in RUNS:
        assert {f"{name}/train", f"{name}/validation"} <= runs
    tags = _get(base + "/data/plugin/scalars/tags")
    assert set(tags["lr=0.1/seed0/train"]) == {"epoch_loss", "epoch_kl", "batch_loss", "batch_kl"}
    assert set(tags["lr=0.1/seed0/validation"]) == {"epoch_loss"}


def test_scalar_values_are_the_numpy_means(served):
    base, expected = served
    steps: dict[tuple, set] = {}
    for (name, split, tag, step), value in expected.items():
        url = f"{base}/data/plugin/scalars/scalars?run={quote(name)}/{split}&tag={tag}"
        points = {s: v for _, s, v in _get(url)}
        assert points[step] == pytest.approx(value, rel=2e-7), (name, split, tag, step)
        steps.setdefault((name, split, tag), set()).add(step)
    for (name, split, tag), wanted in steps.items():
        url = f"{base}/data/plugin/scalars/scalars?run={quote(name)}/{split}&tag={tag}"
        assert {s for _, s, _ in _get(url)} == wanted, (name, split, tag)
    assert steps["lr=0.1/seed0", "train", "batch_loss"] == {2, 4, 6, 8}


def _sessions(base: str) -> list[dict]:
    body = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS"],
        "colParams": [],
        "startIndex": 0,
        "sliceSize": 100,
    }
    return _get(base + "/data/plugin/hparams/session_groups", body)["sessionGroups"]


def test_hparams_dashboard_lists_each_run_with_its_losses(served):
    base, _ = served
    experiment = _get(base + "/data/plugin/hparams/experiment", {"experimentName": ""})
    hparams = {h["name"] for h in experiment["hparamInfos"]}
    assert {"lr", "optimizer"} <= hparams
    metrics = {(m["name"]["group"], m["name"]["tag"]) for m in experiment["metricInfos"]}
    assert {("train", "epoch_loss"), ("validation", "epoch_loss"), ("train", "epoch_kl")} <= metrics
    # one trial per run, though both folders are named seed0: never two runs merged into one
    # trial (whose metrics the dashboard would average)
    trials = sorted(
        (g["hparams"]["lr"], [s["name"] for s in g["sessions"]]) for g in _sessions(base)
    )
    assert trials == [(0.01, ["lr=0.01/seed0"]), (0.1, ["lr=0.1/seed0"])]


@pytest.fixture(scope="module")
def aggregated(tmp_path_factory):
    """Seeded runs aggregated with `lossboard aggregate`, served from OUT."""
    seeded = write_seeded_runs(tmp_path_factory.mktemp("seeds"))
    out_dir = tmp_path_factory.mktemp("mean")
    done = lossboard_cli("aggregate", seeded.root, "--over", "seed", "-o", out_dir)
    assert done.returncode == 0, done.stderr
    # lr=0.1, lr=0.01 (train, validation) and loner (train)
    yield from _serve(out_dir, 2 * len(CONFIGS) + 1, seeded)


def test_aggregated_runs_and_spread_tags_are_served(aggregated):
    base, _ = aggregated
    runs = set(_get(base + "/data/runs"))
    splits = {"lr=0.1/train", "lr=0.1/validation", "lr=0.01/train", "lr=0.01/validation"}
    assert splits | {"loner/train"} <= runs
    assert {r.split("/")[0] for r in runs} == {"lr=0.1", "lr=0.01", "loner"}  # no source run
    tags = _get(base + "/data/plugin/scalars/tags")
    kinds = ("std", "min", "max", "ci_low", "ci_high")
    spread = {f"{t}/{s}" for t in ("epoch_loss", "epoch_kl") for s in kinds}
    assert set(tags["lr=0.1/train"]) == {"epoch_loss", "epoch_kl"} | spread
    assert set(tags["loner/train"]) == {"epoch_loss", "epoch_loss/min", "epoch_loss/max"}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize(("split", "tag"), [("train", "epoch_loss"), ("validation", "epoch_loss")])
def test_aggregated_scalars_are_numpy_means(aggregated, config, split, tag):
    base, seeded = aggregated
    grid = seeded.common(config, split, tag)
    for name, values in ((tag, grid.mean(axis=1)), (f"{tag}/std", grid.std(axis=1, ddof=1))):
        url = f"{base}/data/plugin/scalars/scalars?run={quote(config)}/{split}&tag={quote(name)}"
        points = {step: v for _, step, v in _get(url)}
        assert sorted(points) == list(range(grid.shape[0]))
        for epoch, value in enumerate(values):
            assert points[epoch] == pytest.approx(value, rel=2e-7), (name, epoch)


def test_hparams_dashboard_lists_one_session_per_configuration(aggregated):
    base, _ = aggregated
    experiment = _get(base + "/data/plugin/hparams/experiment", {"experimentName": ""})
    assert {h["name"] for h in experiment["hparamInfos"]} == {"lr", "optimizer", "runs"}
    groups = sorted(
        (g["hparams"].get("lr", -1), g["hparams"]["runs"], len(g["sessions"]))
        for g in _sessions(base)
    )
    assert groups == [(-1, 1, 1), (0.01, 3, 1), (0.1, 3, 1)]  # loner has no lr


def test_a_run_resumed_with_other_hparams_shows_the_new_set(tmp_path):
    """The dashboard keeps the first session_start_info of a run it reads: the old set's file
    is set aside when a run is resumed with another set, so the new set is what it shows."""
    import lossboard

    run = tmp_path / "run"
    for epoch, hparams in enumerate(({"lr": 0.1, "dropout": 0.5}, {"lr": 0.2})):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lossboard.LossboardWarning)  # tested elsewhere
            with LossLogger(run, hparams=hparams, verbose=0) as logger:
                logger.on_train_batch_end(0, {"loss": 1.0})
                logger.on_epoch_end(epoch)
    for base, _ in _serve(tmp_path, 1, None):
        time.sleep(2)  # the hparams plugin reads what the loader has loaded by now
        assert [g["hparams"] for g in _sessions(base)] == [{"lr": 0.2}]
