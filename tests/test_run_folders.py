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
