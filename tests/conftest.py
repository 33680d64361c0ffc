"""Shared test helpers: read values back from the event files on disk."""

from __future__ import annotations

import os

import numpy as np
import pytest


def read_split(run_dir: str | os.PathLike, split: str) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` of every scalar in ``run_dir/split``, via TensorBoard's reader."""
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator as ea

    path = os.path.join(run_dir, split)
    if not os.path.isdir(path):
        return {}
    acc = ea.EventAccumulator(path, size_guidance={ea.TENSORS: 0, ea.SCALARS: 0})
    acc.Reload()
    out: dict[str, dict[int, float]] = {}
    for tag in acc.Tags()["tensors"]:
        events = acc.Tensors(tag)
        arrays = [tf.make_ndarray(e.tensor_proto) for e in events]
        if arrays and arrays[0].dtype.kind == "f":
            out[tag] = {e.step: float(a) for e, a in zip(events, arrays, strict=True)}
    return out


@pytest.fixture
def read_events():
    """The function ``read_split(run_dir, split)``."""
    return read_split


def close_to(actual: float, expected: float, rel: float = 2e-7) -> bool:
    """Float32-written value vs a float64 NumPy reference."""
    return bool(np.isclose(actual, expected, rtol=rel, atol=0))
