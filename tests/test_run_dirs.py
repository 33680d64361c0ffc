"""new_run_dir: unique, sortable, readable run directories."""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from lossboard import new_run_dir

NOW = dt.datetime(2026, 11, 25, 14, 30, 5)


def test_name_holds_time_label_and_hparams(tmp_path):
    path = new_run_dir(tmp_path, "big model", {"opt": "adam", "lr": 0.001}, now=NOW)
    assert os.path.basename(path) == "20261125-143005-big-model-lr=0.001,opt=adam"
    assert os.path.isdir(path)


def test_same_second_never_collides(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: new_run_dir(tmp_path, "sweep", now=NOW), range(20)))
    assert len(set(paths)) == 20
    assert sorted(os.listdir(tmp_path))[:2] == ["20261125-143005-sweep", "20261125-143005-sweep-10"]


def test_sorts_by_start_time(tmp_path):
    later = new_run_dir(tmp_path, "b", now=NOW + dt.timedelta(seconds=1))
    earlier = new_run_dir(tmp_path, "z", now=NOW)
    assert sorted([later, earlier]) == [earlier, later]


def test_bad_hparams(tmp_path):
    with pytest.raises(TypeError, match="mapping"):
        new_run_dir(tmp_path, hparams=[("lr", 1)])
