"""Shared test helpers: read values back from the event files on disk."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import lossboard


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


def scipy_interval(grid):
    """Per epoch (rows of ``grid``, runs in columns): SciPy's 95% percentile bootstrap of the
    mean, and a Monte Carlo tolerance for comparing our estimate with it (0.2 s / sqrt(n):
    more than 4 standard deviations of the difference of two 10,000-resample estimates)."""
    from scipy import stats

    ref = stats.bootstrap(
        (grid,), np.mean, axis=1, n_resamples=10_000, method="percentile", random_state=3
    ).confidence_interval
    tolerance = 0.2 * grid.std(axis=1, ddof=1) / np.sqrt(grid.shape[1]) + 1e-12
    return ref.low, ref.high, tolerance


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
    import sysconfig

    # lossboard, Keras, TensorFlow, and Python's own library (contextlib: a ``with`` exit)
    library = (*warn._library_dirs(), os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep)
    wrong = [(path, text) for path, text in spy.files if os.path.abspath(path).startswith(library)]
    assert not wrong, f"lossboard warnings attributed to a library frame: {wrong}"


LIBRARY_DIR = os.path.dirname(os.path.abspath(lossboard.__file__)) + os.sep


class Interrupter:
    """A ``sys.settrace`` hook raising ``KeyboardInterrupt`` at the ``at``-th line lossboard
    runs, the first time it runs line ``at`` (``"logger/run.py:120"``), or the n-th time
    (``("logger/run.py:120", 2)``): Ctrl-C landing on that statement. ``lines`` lists
    every line it saw, as ``(function, file:line)``. ``at=None`` only records."""

    def __init__(self, at: int | str | None = None):
        self.at = at
        self.lines: list[tuple[str, str]] = []
        self._counts: dict[str, int] = {}
        self.fired = False

    def _local(self, frame, event, arg):
        if event == "line":
            code = frame.f_code
            where = f"{os.path.relpath(code.co_filename, LIBRARY_DIR)}:{frame.f_lineno}"
            self.lines.append((code.co_name, where))
            if not self.fired and self.at in (len(self.lines), where, (where, self._seen(where))):
                self.fired = True
                raise KeyboardInterrupt(where)
        return self._local

    def _seen(self, where: str) -> int:
        """How many times line ``where`` ran so far (counting this time)."""
        self._counts[where] = self._counts.get(where, 0) + 1
        return self._counts[where]

    def _global(self, frame, event, arg):
        if frame.f_code.co_filename.startswith(LIBRARY_DIR):
            return self._local
        return None

    def run(self, call, *args, **kwargs):
        """``call(*args, **kwargs)`` traced; a KeyboardInterrupt it fired is swallowed."""
        sys.settrace(self._global)
        try:
            return call(*args, **kwargs)
        except KeyboardInterrupt:
            if not self.fired:
                raise
            return None
        finally:
            sys.settrace(None)
