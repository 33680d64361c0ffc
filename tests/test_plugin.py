"""The lossboard tab through a real `tensorboard` on 127.0.0.1: its routes' numbers, its 400s,
its static files, when it shows, and runs that arrive while it is open."""

from __future__ import annotations

import json
import math
import shutil
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd
import pytest
from seeded import CONFIGS, write_encoded_run, write_seeded_runs
from tensorboard.plugins import base_plugin
from tensorboard_process import fetch, get_json, serve

import lossboard
from lossboard.dashboard.plugin import LossboardPlugin

pytestmark = pytest.mark.slow
ROUTE = "/data/plugin/lossboard/"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The seeded runs (2 configurations x 3 seeds, one short, and a run without hparams)."""
    root = tmp_path_factory.mktemp("plugin")
    written = write_seeded_runs(root)
    yield from serve(root, 2 * 2 * 3, written)


def _configurations(base: str, **query) -> dict:
    return get_json(base + ROUTE + "configurations?" + urlencode(query, doseq=True))


def _number(value) -> float:
    return float(value) if isinstance(value, str) else value


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        a, b = _number(a), _number(b)
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def test_the_tab_is_listed_with_its_es_module(served):
    base, _ = served
    entry = get_json(base + "/data/plugins_listing")["lossboard"]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "lossboard"
    assert entry["loading_mechanism"] == {
        "type": "IFRAME",
        "module_path": "/data/plugin/lossboard/static/index.js",
    }
    status, body = fetch(base + "/data/plugin/lossboard/static/index.js")
    assert status == 200 and b"export function render()" in body


@pytest.mark.parametrize("tag", ["epoch_loss", "epoch_kl"])
@pytest.mark.parametrize("higher", ["0", "1"])
def test_the_table_is_compare_groups(served, tag, higher):
    """Same configurations, same order, same numbers (full precision) as compare_groups."""
    base, written = served
    got = _configurations(base, tag=tag, higher_is_better=higher)
    want = lossboard.compare_groups(
        lossboard.load(written.root), over="seed", tag=tag, higher_is_better=higher == "1"
    )
    numeric = got["table"]["numeric"]
    assert numeric["header"] == list(want.columns)
    assert len(numeric["cells"]) == len(want)
    for row, (_, expected) in zip(numeric["cells"], want.iterrows(), strict=True):
        for name, cell, value in zip(want.columns, row, expected.tolist(), strict=True):
            assert _same(cell, value), (name, cell, value)
    assert [c["name"] for c in got["configurations"]] == want["configuration"].tolist()
    assert got["ranked_by"] == want.attrs["ranked_by"]
    assert got["over"] == ["seed"]  # the default: the runs have a seed


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize(("split", "tag"), [("train", "epoch_loss"), ("validation", "epoch_loss")])
@pytest.mark.parametrize("band", ["std", "minmax"])
def test_curves_are_numpy_means_at_common_epochs(served, config, split, tag, band):
    base, written = served
    got = _configurations(base, tag=tag, band=band, over="seed")
    entry = next(c for c in got["configurations"] if c["name"] == config)
    matrix = written.common(config, split, tag)  # epochs x seeds, epochs all seeds reached
    curve = entry["curves"][split]
    assert entry["runs"] == 3
    assert curve["steps"] == list(range(len(matrix)))  # the short seed bounds the curve
    mean, std = matrix.mean(axis=1), matrix.std(axis=1, ddof=1)
    np.testing.assert_allclose(curve["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(curve["std"], std, rtol=1e-9)
    low, high = (mean - std, mean + std) if band == "std" else (matrix.min(1), matrix.max(1))
    np.testing.assert_allclose(curve["low"], low, rtol=1e-9)
    np.testing.assert_allclose(curve["high"], high, rtol=1e-9)


def test_a_configuration_of_one_run_has_its_curve_as_its_band(served):
    base, _ = served
    loner = next(c for c in _configurations(base)["configurations"] if c["name"] == "loner")
    curve = loner["curves"]["train"]
    assert loner["runs"] == 1 and "validation" not in loner["curves"]
    assert curve["mean"] == curve["low"] == curve["high"] == [5.0, 5.0]
    assert curve["std"] == ["NaN", "NaN"]


def test_members_are_the_runs_values(served):
    base, written = served
    query = urlencode({"config": "lr=0.1", "over": "seed"})
    got = get_json(base + ROUTE + "members?" + query)
    assert [r["run"] for r in got["runs"]] == [f"lr=0.1-seed{s}" for s in range(3)]
    for seed, run in enumerate(got["runs"]):
        for split in ("train", "validation"):
            want = written.values[("lr=0.1", seed)][(split, "epoch_loss")]
            assert run["curves"][split]["values"] == want.tolist()
            assert run["curves"][split]["steps"] == list(range(len(want)))
        assert run["hparams"]["seed"] == seed


@pytest.mark.parametrize(
    ("route", "query", "says"),
    [
        ("configurations", "band=wide", "band='wide': expected one of std, minmax, ci"),
        ("configurations", "tag=epoch_nope", "tag='epoch_nope': expected one of epoch_kl"),
        ("configurations", "over=sed", "over='sed': no run has that hparam"),
        ("configurations", "split=test", "split='test': expected one of train, validation"),
        ("configurations", "higher_is_better=maybe", "expected 1 or 0"),
        ("configurations", "show=-1", "show='-1': expected a whole number"),
        ("configurations", "colour=red", "unknown parameter(s) 'colour'"),
        ("configurations", "tag=epoch_loss&tag=epoch_kl", "tag: given 2 times"),
        ("configurations", "tag=" + "x" * 2000, "at most 1000 characters"),
        ("members", "config=lr%3D9", "config='lr=9': no configuration"),
        ("info", "tag=epoch_loss", "unknown parameter(s) 'tag' for /info"),
    ],
)
def test_bad_query_values_are_400_with_a_message(served, route, query, says):
    base, _ = served
    status, body = fetch(base + ROUTE + route + "?" + query)
    assert status == 400
    assert says in json.loads(body)["error"]


@pytest.mark.parametrize(
    "path",
    [
        "static/../plugin.py",
        "static/%2e%2e/plugin.py",
        "static/..%2fplugin.py",
        "static/%2E%2E%2F%2E%2E%2Fsetup.cfg",
        "static//etc/passwd",
        "static/%2Fetc%2Fpasswd",
        "static/",
        "static/index.js/../chart.js",
        "static/./index.js",
        "static/INDEX.JS",
        "static/index.js%00.py",
    ],
)
def test_only_its_own_static_files_are_served(served, path):
    base, _ = served
    url = base + ROUTE + path
    status, body = fetch(url)
    assert status in (400, 404), (status, body[:200])
    assert b"import" not in body and b"root:" not in body


def test_a_run_added_or_grown_while_open_appears_on_the_next_request(tmp_path):
    curve = {"train": {"epoch_loss": np.array([1.0, 0.5])}}
    for seed in range(2):
        write_encoded_run(tmp_path, f"a/seed{seed}", {"lr": 0.1, "seed": seed}, curve)
    for base, _ in serve(tmp_path, 2, None):
        first = _configurations(base)
        assert [(c["name"], c["runs"]) for c in first["configurations"]] == [("lr=0.1", 2)]
        write_encoded_run(tmp_path, "b/seed0", {"lr": 0.2, "seed": 0}, curve)
        write_encoded_run(tmp_path, "a/seed2", {"lr": 0.1, "seed": 2}, curve)
        second = _configurations(base)
        assert {c["name"]: c["runs"] for c in second["configurations"]} == {
            "lr=0.1": 3,
            "lr=0.2": 1,
        }
        write_encoded_run(tmp_path, "b/seed0", None, {"train": {"epoch_loss": [0.2] * 4}})
        third = _configurations(base)
        grown = next(c for c in third["configurations"] if c["name"] == "lr=0.2")
        assert grown["curves"]["train"]["steps"] == [0, 1, 2, 3]  # a second file, newest wins
        shutil.rmtree(tmp_path / "b")  # deleted while open
        fourth = _configurations(base)
        assert [c["name"] for c in fourth["configurations"]] == ["lr=0.1"]


@pytest.mark.parametrize("content", ["empty", "no-lossboard-run", "missing"])
def test_hidden_where_there_is_no_lossboard_run(tmp_path, content):
    """No split folder and no hparams: the tab stays hidden (is_active False)."""
    root = tmp_path / "logs"
    if content != "missing":
        root.mkdir()
    if content == "no-lossboard-run":
        write_encoded_run(root, "other", None, {"eval": {"accuracy": [0.5, 0.7]}})
        (root / "notes.txt").write_text("not an event file")
    plugin = LossboardPlugin(base_plugin.TBContext(logdir=str(root)))
    assert plugin.is_active() is False


def test_shown_for_runs_with_hparams_only_and_hidden_in_tensorboard_without(tmp_path):
    with_hparams = tmp_path / "hp"
    write_encoded_run(with_hparams, "r", {"lr": 0.1}, {"eval": {"epoch_loss": [0.5]}})
    plugin = LossboardPlugin(base_plugin.TBContext(logdir=str(with_hparams)))
    assert plugin.is_active() is True
    plain = tmp_path / "plain"
    write_encoded_run(plain, "other", None, {"eval": {"accuracy": [0.5, 0.7]}})
    for base, _ in serve(plain, 1, None):
        assert get_json(base + "/data/plugins_listing")["lossboard"]["enabled"] is False
        status, body = fetch(base + ROUTE + "configurations")
        assert status == 200 and json.loads(body)["configurations"] == []


def test_unicode_run_names_and_hparams(tmp_path):
    curve = {"train": {"epoch_loss": np.array([1.0, 0.5])}}
    for seed in range(2):
        write_encoded_run(tmp_path, f"größe=1/種子{seed}", {"größe": "ü", "seed": seed}, curve)
    write_encoded_run(tmp_path, "größe=2/種子0", {"größe": "é", "seed": 0}, curve)
    for base, _ in serve(tmp_path, 3, None):
        got = _configurations(base)
        names = sorted(c["name"] for c in got["configurations"])
        assert len(names) == 2
        first = next(c for c in got["configurations"] if c["runs"] == 2)
        members = get_json(base + ROUTE + "members?config=" + quote(first["name"]))
        assert [r["run"] for r in members["runs"]] == ["größe=1/種子0", "größe=1/種子1"]


def test_the_table_frame_is_a_dataframe_of_the_same_numbers(served):
    """The JSON's numeric table reads back into the DataFrame compare_groups gives."""
    base, written = served
    numeric = _configurations(base)["table"]["numeric"]
    frame = pd.DataFrame(numeric["cells"], columns=numeric["header"]).replace("NaN", np.nan)
    want = lossboard.compare_groups(lossboard.load(written.root), over="seed")
    pd.testing.assert_frame_equal(frame, want, check_dtype=False, check_like=False)


def test_without_a_logdir_the_tab_hides_and_its_routes_say_why():
    """``--logdir_spec`` (or a data server) gives the plugin no single logdir to read."""
    from werkzeug.test import Client
    from werkzeug.wrappers import Response

    plugin = LossboardPlugin(base_plugin.TBContext(logdir=""))
    assert plugin.is_active() is False
    app = plugin.get_plugin_apps()["/configurations"]
    answer = Client(app, Response).get("/data/plugin/lossboard/configurations")
    assert answer.status_code == 400
    assert "Start it with --logdir ROOT" in json.loads(answer.data)["error"]
