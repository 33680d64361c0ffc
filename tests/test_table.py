"""The reader's column table (``lossboard/reader/table.py``): rows in, curves out."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lossboard.reader.table import Piece, Series, Table, assemble

ROWS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b/seed0", "b/seed1", "c"]),
        st.sampled_from(["train", "validation", ""]),
        st.sampled_from(["epoch_loss", "epoch_kl", "batch_loss"]),
        st.integers(0, 6),
        st.floats(-1e6, 1e6, allow_nan=False),
    ),
    max_size=60,
)


def _by_hand(rows) -> dict:
    """``{(run, split, tag): {step: value}}`` in plain Python: the last value given wins."""
    out: dict = {}
    for run, split, tag, step, value in rows:
        out.setdefault((run, split, tag), {})[step] = value
    return out


@settings(max_examples=200, deadline=None)
@given(ROWS)
def test_series_are_the_rows_curve_by_curve(rows):
    table = (
        Table.of_columns(*zip(*rows, strict=True)) if rows else Table.of_columns([], [], [], [], [])
    )
    expected = _by_hand(rows)
    got = table.series()
    assert set(got) == set(expected)
    for key, curve in got.items():
        steps = sorted(expected[key])
        assert curve.steps.tolist() == steps
        assert curve.values.tolist() == [expected[key][s] for s in steps]


@settings(max_examples=100, deadline=None)
@given(ROWS, st.sets(st.sampled_from(["epoch_loss", "epoch_kl", "batch_loss"])))
def test_select_keeps_the_rows_asked_for(rows, tags):
    if not rows:
        return
    table = Table.of_columns(*zip(*rows, strict=True))
    kept = table.select(tags=tags, runs="b/*", prefix="epoch_")
    expected = {
        k: v
        for k, v in _by_hand(rows).items()
        if k[2] in tags and k[0].startswith("b/") and k[2].startswith("epoch_")
    }
    assert {k: dict(zip(s.steps.tolist(), s.values.tolist(), strict=True))
            for k, s in kept.series().items()} == expected  # fmt: skip
    assert kept.present_runs() == sorted({k[0] for k in expected})


def test_a_series_reads_values_at_steps_and_comes_from_a_mapping():
    curve = Series.of({3: 0.5, 1: 2.0, 2: 1.0})
    assert curve.steps.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(curve.at(np.array([1, 3])), [2.0, 0.5])
    assert Series.of(curve) is curve


PARTS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b/seed0", "c"]),
        st.sampled_from(["train", "validation", ""]),
        st.lists(
            st.tuples(
                st.sampled_from([0, 1, 2]),  # tag code
                st.one_of(st.integers(0, 5), st.sampled_from([-3, 2**40, 2**62])),  # step
                st.sampled_from([0.0, 1.0, 2.0]),  # wall time: ties are frequent
            ),
            max_size=8,
        ),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(PARTS)
def test_assemble_keeps_the_newest_point_of_each_step_as_reading_would(parts):
    # Every file's points, in read order; of a step given twice the newest wall time wins,
    # and of equal wall times the one read last (a resumed run's rewrite).
    names = ["epoch_loss", "epoch_acc", "batch_loss"]
    expected: dict = {}
    pieces = []
    value = 0.0
    for run, split, points in parts:
        columns = [[], [], [], []]
        for tag, step, wall in points:
            value += 1.0
            key = (run, split, names[tag], step)
            if key not in expected or wall >= expected[key][1]:
                expected[key] = (value, wall)
            for column, x in zip(columns, (tag, step, value, wall), strict=True):
                column.append(x)
        dtypes = (np.int32, np.int64, np.float64, np.float64)
        arrays = (np.array(c, d) for c, d in zip(columns, dtypes, strict=True))
        pieces.append((run, split, Piece(*arrays)))
    table = assemble(pieces, names, {})
    got = {
        (table.runs[r], table.splits[s], table.tags[t], st_): (v, w)
        for r, s, t, st_, v, w in zip(table.run.tolist(), table.split.tolist(),
                                      table.tag.tolist(), table.step.tolist(),
                                      table.value.tolist(), table.wall_time.tolist(), strict=True)
    }  # fmt: skip
    assert got == expected
    assert len(got) == len(table)
    keys = list(zip(table.run.tolist(), table.split.tolist(), table.tag.tolist(),
                    table.step.tolist(), strict=True))  # fmt: skip
    assert keys == sorted(keys)  # sorted by run, split, tag, step
    assert table.runs == sorted({run for run, _, _ in parts})
    assert table.tags == sorted(names)
