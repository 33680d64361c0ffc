"""Hparams are read back as they were given, or a warning says what was stored instead."""

from __future__ import annotations

import re

import numpy as np
import pytest

import lossboard
from lossboard import LossLogger


def _stored(root, hparams):
    """Writes a run with ``hparams`` at ``root/run`` (nothing else) and reads its hparams back."""
    LossLogger(root / "run", hparams=hparams).close()
    return lossboard.load(root).attrs["hparams"]["run"]


@pytest.mark.parametrize(
    "value", [2**53, 2**53 + 1, -(2**53) - 3, 2**64 + 1, np.uint64(2**64 - 1), np.int64(2**62 + 7)]
)
def test_an_int_hparam_beyond_2_53_warns_with_the_value_read_back(tmp_path, value):
    with pytest.warns(lossboard.LossboardWarning) as caught:
        read = _stored(tmp_path, {"seed": value, "lr": 0.1})
    ours = [w for w in caught if issubclass(w.category, lossboard.LossboardWarning)]
    assert len(ours) == 1, [f"{w.category.__name__}: {w.message}" for w in caught]
    message = str(ours[0].message)
    assert f"'seed' = {int(value)} is stored" in message, message
    said = int(re.search(r"are stored as (-?\d+) too", message).group(1))
    assert read == {"seed": said, "lr": 0.1}
    assert said == int(np.float64(int(value)))  # NumPy's float64 rounding of the int
    exact = f"stored as {said}, not {int(value)}" if said != int(value) else "stored exactly"
    assert exact in message, message


def test_two_seeds_that_would_be_stored_alike_both_warn(tmp_path):
    seeds = [2**53, 2**53 + 1]
    for seed in seeds:
        with pytest.warns(lossboard.LossboardWarning, match=f"'seed' = {seed} is stored"):
            LossLogger(tmp_path / f"s{seed}", hparams={"seed": seed}).close()
    hparams = lossboard.load(tmp_path).attrs["hparams"]
    assert hparams == {f"s{seed}": {"seed": float(2**53)} for seed in seeds}


@pytest.mark.parametrize("value", [2**53 - 1, -(2**53 - 1), 0, 12345])
def test_ints_within_2_53_are_read_back_exactly_without_a_warning(tmp_path, value):
    read = _stored(tmp_path, {"seed": value})  # a warning would fail the test
    assert read["seed"] == value and int(read["seed"]) == value


def test_a_big_int_as_a_string_is_read_back_exactly(tmp_path):
    assert _stored(tmp_path, {"seed": str(2**53 + 1)}) == {"seed": "9007199254740993"}


def test_an_int_beyond_float64_is_refused_with_what_to_pass(tmp_path):
    with pytest.raises(ValueError, match=r"'seed' = 1000.* pass it as a string"):
        LossLogger(tmp_path / "run", hparams={"seed": 10**400})
    assert not (tmp_path / "run").exists()  # nothing created for a rejected call
