"""A root read again reads only the event files that changed, and gives the same table."""

from __future__ import annotations

import os

import numpy as np
import pytest
from seeded import write_encoded_run

from lossboard.reader.cache import FileCache, RootCache
from lossboard.reader.read import read_table


def _curve(n: int, offset: float = 0.0) -> dict:
    return {
        "train": {"epoch_loss": np.arange(n) + offset},
        "validation": {"epoch_loss": np.ones(n)},
    }


def _same(a, b) -> bool:
    fields = ("run", "split", "tag", "step", "value")
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in fields) and (
        a.runs,
        a.tags,
        a.hparams,
    ) == (b.runs, b.tags, b.hparams)


@pytest.mark.parametrize("runs", [1, 4])
def test_unchanged_files_are_not_read_again(tmp_path, runs):
    for r in range(runs):
        write_encoded_run(tmp_path, f"r{r}", {"seed": r}, _curve(3))
    cache = RootCache(tmp_path)
    first = cache.table()
    assert cache.files.reads == 3 * runs  # train, validation, hparams
    assert cache.table() is first and cache.files.reads == 0
    assert _same(first, read_table(tmp_path))


@pytest.mark.parametrize("change", ["append", "new-run", "new-file", "delete", "touch"])
def test_a_change_is_read_and_nothing_else(tmp_path, change):
    for r in range(3):
        write_encoded_run(tmp_path, f"r{r}", {"seed": r}, _curve(3))
    cache = RootCache(tmp_path)
    cache.table()
    path = next((tmp_path / "r1" / "train").iterdir())
    if change == "append":
        with open(path, "ab") as f:
            f.write(next((tmp_path / "r2" / "train").iterdir()).read_bytes())
    elif change == "new-run":
        write_encoded_run(tmp_path, "r9", {"seed": 9}, _curve(2))
    elif change == "new-file":
        write_encoded_run(tmp_path, "r1", None, {"train": {"epoch_loss": [7.0] * 5}})
    elif change == "delete":
        os.remove(path)
    else:
        os.utime(path, ns=(1, 1))
    table = cache.table()
    reads = {"append": 1, "new-run": 3, "new-file": 2, "delete": 0, "touch": 1}[change]
    assert cache.files.reads == reads
    assert _same(table, read_table(tmp_path))


def test_the_file_cache_is_a_reader_for_read_table(tmp_path):
    write_encoded_run(tmp_path, "r", None, _curve(2))
    cache = FileCache()
    cache.start()
    table = read_table(tmp_path, tags="epoch_*", cache=cache)
    assert cache.finish() is True and cache.reads == 2
    cache.start()
    again = read_table(tmp_path, tags="epoch_*", cache=cache)
    assert cache.finish() is False and cache.reads == 0
    assert _same(table, again)


def test_a_tag_of_a_run_removed_since_is_not_listed(tmp_path):
    write_encoded_run(tmp_path, "a", None, {"train": {"epoch_loss": [1.0, 0.5]}})
    write_encoded_run(tmp_path, "b", None, {"train": {"epoch_kl": [2.0], "epoch_loss": [3.0]}})
    cache = RootCache(tmp_path, tags="epoch_*")
    assert cache.table().tags == ["epoch_kl", "epoch_loss"]
    import shutil

    shutil.rmtree(tmp_path / "b")
    table = cache.table()
    assert table.runs == ["a"] and table.tags == ["epoch_loss"]
    assert table.tags == read_table(tmp_path, tags="epoch_*").tags  # as a fresh read
