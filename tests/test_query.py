"""The dashboard's query strings: defaults, and refusals that say what to pass."""

from __future__ import annotations

import pytest

from lossboard.dashboard.query import DEFAULT_SHOW, QueryError, parse

TAGS, HPARAMS, SPLITS = ["epoch_kl", "epoch_loss"], ["lr", "seed"], ["train", "validation"]


def test_defaults_follow_the_runs():
    q = parse("configurations", {}, TAGS, HPARAMS, SPLITS)
    assert (q.tag, q.over, q.splits, q.band, q.higher_is_better, q.show) == (
        "epoch_loss",
        ("seed",),
        ("train", "validation"),
        "std",
        False,
        DEFAULT_SHOW,
    )
    q = parse("configurations", {}, ["epoch_mse"], ["lr"], ["train"])
    assert (q.tag, q.over, q.splits) == ("epoch_mse", (), ("train",))


@pytest.mark.parametrize(
    ("args", "field", "value"),
    [
        ({"over": ["seed", "lr", "seed"]}, "over", ("seed", "lr")),
        ({"over": [""]}, "over", ()),
        ({"split": ["validation"]}, "splits", ("validation",)),
        ({"band": ["ci"]}, "band", "ci"),
        ({"higher_is_better": ["TRUE"]}, "higher_is_better", True),
        ({"show": ["all"]}, "show", 0),
        ({"show": ["3"]}, "show", 3),
    ],
)
def test_values_taken(args, field, value):
    assert getattr(parse("configurations", args, TAGS, HPARAMS, SPLITS), field) == value


@pytest.mark.parametrize(
    ("route", "args", "message"),
    [
        (
            "configurations",
            {"tag": ["../../etc/passwd"]},
            "tag='../../etc/passwd': expected one of",
        ),
        ("configurations", {"over": ["lr", "fold"]}, "over='fold': no run has that hparam"),
        ("configurations", {"split": ["val"]}, "split='val': expected one of train, validation"),
        ("configurations", {"band": ["STD"]}, "band='STD'"),
        ("configurations", {"show": ["1e3"]}, "show='1e3'"),
        ("configurations", {"show": ["٣"]}, "show='٣'"),  # a digit, but not 0-9
        ("configurations", {"band": ["std", "ci"]}, "band: given 2 times"),
        ("configurations", {"over": ["seed"] * 40}, "at most 32 values"),
        ("members", {"band": ["std"]}, "unknown parameter(s) 'band' for /members"),
    ],
)
def test_refusals_say_what_to_pass(route, args, message):
    with pytest.raises(QueryError) as caught:
        parse(route, args, TAGS, HPARAMS, SPLITS)
    assert message in str(caught.value)


def test_no_tag_at_all_is_not_an_error_until_one_is_asked_for():
    assert parse("configurations", {}, [], [], []).tag == ""
    with pytest.raises(QueryError, match="none \\(no run has a tag to compare\\)"):
        parse("configurations", {"tag": ["epoch_loss"]}, [], [], [])
