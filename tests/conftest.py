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


class _Attributed:
    """Stands for the ``warnings`` module inside ``lossboard.warn``: records, for every warning
    lossboard gives, the file of the frame it is attributed to, then warns as before."""

    def __init__(self, real):
        self._real = real
        self.files: list[tuple[str, str]] = []

    def warn(self, message, category=None, stacklevel=1):
        import sys

        # stacklevel=1 is the caller of warnings.warn: frame 1 seen from here
        frame = sys._getframe(stacklevel)
        self.files.append((frame.f_code.co_filename, str(message)[:80]))
        self._real.warn(message, category, stacklevel=stacklevel + 1)

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.fixture(autouse=True)
def _warnings_name_the_users_line(monkeypatch):
    """Every lossboard warning the suite triggers names a line outside lossboard, Keras and
    TensorFlow (the test's own call, as a user's would be): never a library frame."""
    import warnings

    from lossboard import warn

    spy = _Attributed(warnings)
    monkeypatch.setattr(warn, "warnings", spy)
    yield
    library = warn._library_dirs()
    wrong = [(path, text) for path, text in spy.files if os.path.abspath(path).startswith(library)]
    assert not wrong, f"lossboard warnings attributed to a library frame: {wrong}"
