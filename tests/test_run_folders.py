"""Which folder is which run: symlinked runs, symlink loops, runs named like a split."""

from __future__ import annotations

import os

import numpy as np
import pytest

import lossboard
from lossboard import LossLogger
from lossboard.reader.read import EventFileWarning


def _run(path, seed, epochs=2, hparams=None, validation=True):
    """A run of ``epochs`` epochs of random float32 batches; returns its NumPy epoch means as
    ``{(split, step): mean}``."""
    rng = np.random.default_rng(seed)
    expected = {}
    with LossLogger(path, hparams=hparams) as logger:
        for epoch in range(epochs):
            train = [rng.normal(size=n).astype("float32") for n in (5, 3)]
            val = [rng.normal(size=4).astype("float32")]
            for i, batch in enumerate(train):
                logger.on_train_batch_end(i, {"loss": batch})
            if validation:
                logger.on_test_batch_end(0, {"loss": val[0]})
                expected[("validation", epoch)] = val[0].astype(np.float64).mean()
            logger.on_epoch_end(epoch)
            expected[("train", epoch)] = np.concatenate(train).astype(np.float64).mean()
    return expected


def _epoch_losses(root) -> dict[str, dict[tuple[str, int], float]]:
    """``{run: {(split, step): value}}`` of ``epoch_loss`` read back; and the hparams."""
    df = lossboard.load(root, tags="epoch_loss")
    out: dict[str, dict[tuple[str, int], float]] = {}
    for run, split, step, value in zip(df.run, df.split, df.step, df.value, strict=True):
        out.setdefault(str(run), {})[(str(split), int(step))] = value
    return out, df.attrs["hparams"]


def _close(got: dict, expected: dict) -> bool:
    return got.keys() == expected.keys() and all(
        np.isclose(got[k], expected[k], rtol=2e-7, atol=0) for k in expected
    )


def test_a_symlinked_run_folder_is_read_under_the_links_name(tmp_path):
    root = tmp_path / "root"
    linked = _run(tmp_path / "elsewhere" / "run", seed=1, hparams={"seed": 1})
    real = _run(root / "real", seed=2, hparams={"seed": 2})
    (root / "linked").symlink_to(tmp_path / "elsewhere" / "run", target_is_directory=True)
    got, hparams = _epoch_losses(root)
    assert sorted(got) == ["linked", "real"]
    assert _close(got["linked"], linked) and _close(got["real"], real)
    assert hparams == {"linked": {"seed": 1}, "real": {"seed": 2}}


@pytest.mark.parametrize(
    "link, target, read_as",
    [
        ("a/back", ".", "."),  # a loop: a run's folder links to the root
        ("a/train/self", "a/train", "a/train"),  # a loop: a split links to itself
        ("latest", "a", "a"),  # a second name of a run
        ("outer", "../outside", None),  # outside the root, holding a link back into it
    ],
)
def test_a_folder_reached_under_a_second_name_is_read_once_with_a_warning(
    tmp_path, link, target, read_as
):
    root = tmp_path / "root"
    expected = _run(root / "a", seed=3)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "back").symlink_to(root / "a", target_is_directory=True)
    (root / link).symlink_to(os.path.normpath(root / target), target_is_directory=True)
    aliases = {"outer/back": "a"} if link == "outer" else {link: read_as}
    with pytest.warns(EventFileWarning) as caught:
        got, _ = _epoch_losses(root)
    assert got == {"a": pytest.approx(expected, rel=2e-7)}  # once, under its own name
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == len(aliases), messages
    for message, (name, first) in zip(messages, sorted(aliases.items()), strict=True):
        assert f"{os.fspath(root / name)!r} is a second name" in message, message
        assert f"read as {os.path.normpath(os.fspath(root / first))!r}" in message, message


@pytest.mark.parametrize("name", ["train", "validation", "group/train"])
def test_a_run_named_like_a_split_is_a_run_with_its_hparams(tmp_path, name):
    from lossboard.compare.configurations import group_runs
    from lossboard.reader.read import read_root

    root = tmp_path / "root"
    with pytest.warns(lossboard.LossboardWarning, match=f"ends in '{name.split('/')[-1]}'"):
        named = _run(root / name, seed=4, hparams={"lr": 0.1, "seed": 4})
    other = _run(root / "other", seed=5, hparams={"lr": 0.1, "seed": 5})
    got, hparams = _epoch_losses(root)
    assert sorted(got) == sorted([name, "other"])
    assert _close(got[name], named) and _close(got["other"], other)
    assert hparams == {name: {"lr": 0.1, "seed": 4}, "other": {"lr": 0.1, "seed": 5}}
    # compare --over seed: the two runs are one configuration (lr=0.1), not two
    points, read_hparams = read_root(root)
    configs = group_runs(read_hparams, {p.run for p in points}, ["seed"])
    assert [(c.name, c.runs) for c in configs] == [("lr=0.1", sorted([name, "other"]))]


def test_a_run_whose_own_folder_holds_the_splits_is_still_read_as_before(tmp_path):
    """A root that is one run (root/train, root/validation): the splits of run ``.``."""
    expected = _run(tmp_path, seed=6, hparams={"seed": 6})
    got, hparams = _epoch_losses(tmp_path)
    assert list(got) == ["."] and _close(got["."], expected)
    assert hparams == {".": {"seed": 6}}


@pytest.mark.parametrize("log_dir", ["train", "validation", "runs/train/", "runs/validation"])
def test_a_log_dir_named_like_a_split_is_warned_about(tmp_path, log_dir):
    path = os.path.join(os.fspath(tmp_path), log_dir)
    name = log_dir.rstrip("/").rsplit("/", 1)[-1]
    with pytest.warns(lossboard.LossboardWarning) as caught:
        LossLogger(path).close()
    (warning,) = caught
    message = str(warning.message)
    assert f"log_dir {os.path.abspath(path)!r} ends in {name!r}" in message, message
    assert f"'{name}/train' and '{name}/validation'" in message, message


@pytest.mark.parametrize("log_dir", ["training", "train-1", "train/seed0", "val"])
def test_other_log_dirs_are_not_warned_about(tmp_path, log_dir):
    LossLogger(tmp_path / log_dir).close()  # any lossboard warning fails the test


def test_a_bind_mounted_second_name_is_read_once_with_a_warning(tmp_path):
    """A bind mount (a Docker volume of a run inside the logdir) is a second name of a folder
    that no symlink reveals: it is still read once, under its first name, with a warning."""
    import subprocess

    root = tmp_path / "root"
    expected = _run(root / "a", seed=7)
    (root / "m").mkdir()
    mount = subprocess.run(["mount", "--bind", str(root / "a"), str(root / "m")],
                           capture_output=True, text=True)  # fmt: skip
    if mount.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root and CAP_SYS_ADMIN): {mount.stderr}")
    try:
        with pytest.warns(EventFileWarning, match="is a second name") as caught:
            got, _ = _epoch_losses(root)
        assert got == {"a": pytest.approx(expected, rel=2e-7)}
        messages = [str(w.message) for w in caught if "second name" in str(w.message)]
        assert len(messages) == 1, messages
        assert f"{os.fspath(root / 'm')!r} is a second name" in messages[0]
        assert f"read as {os.fspath(root / 'a')!r}" in messages[0]
    finally:
        subprocess.run(["umount", str(root / "m")], check=True)


def test_run_and_split_of_a_relative_root_follows_the_working_directory(tmp_path, monkeypatch):
    from lossboard.reader.read import run_and_split

    for where in ("one", "two"):
        (tmp_path / where / "logs" / "b" / "train").mkdir(parents=True)
    path = os.fspath(tmp_path / "two" / "logs" / "b" / "train" / "events.out.tfevents.1")
    monkeypatch.chdir(tmp_path / "one")
    assert run_and_split("logs", path)[0] != "b"  # ../two/logs/b: not under ./logs
    monkeypatch.chdir(tmp_path / "two")
    assert run_and_split("logs", path) == ("b", "train")
