"""Event files on disk -> rows of scalars and hparams, without importing TensorFlow.

Reads the TFRecord framing itself and parses records with the protos that the
``tensorboard`` package ships, so ``lossboard compare`` starts in a fraction of
a second. Tolerates runs being written while they are read and a truncated
last record (a killed writer): it reads every complete record and stops.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, types_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

SPLIT_DIRS = ("train", "validation")
COLUMNS = ["run", "split", "tag", "step", "value", "wall_time"]

_NUMPY_DTYPES = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_HALF: np.float16,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
}


@dataclass(frozen=True)
class Point:
    """One scalar read back: a row of :func:`lossboard.load`."""

    run: str
    split: str
    tag: str
    step: int
    value: float
    wall_time: float


def records(path: str) -> Iterator[bytes]:
    """The complete records of one TFRecord file; stops at a truncated one."""
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                return  # being written, or cut short by a crash
            yield data


def _scalar(tensor: Any) -> float | None:
    """The value of a scalar ``TensorProto``, or None if it is not one real number."""
    if tensor.tensor_shape.dim:
        return None
    for field in ("float_val", "double_val", "int_val", "int64_val", "half_val"):
        values = getattr(tensor, field)
        if values:
            if field == "half_val":
                return float(np.array(values[0], np.uint16).view(np.float16))
            return float(values[0])
    dtype = _NUMPY_DTYPES.get(tensor.dtype)
    if dtype is not None and tensor.tensor_content:
        return float(np.frombuffer(tensor.tensor_content, dtype)[0])
    return None


def event_files(root: str) -> Iterator[str]:
    """Every TensorBoard event file under ``root``, in a stable order."""
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if "tfevents" in name:
                yield os.path.join(directory, name)


def run_and_split(root: str, path: str) -> tuple[str, str]:
    """``(run, split)`` of an event file: ``<root>/<run>/<split>/events...``."""
    rel = os.path.relpath(os.path.dirname(path), root)
    parts = [] if rel == "." else rel.split(os.sep)
    if parts and parts[-1] in SPLIT_DIRS:
        return "/".join(parts[:-1]) or ".", parts[-1]
    return "/".join(parts) or ".", ""


def read_file(path: str, run: str, split: str) -> tuple[list[Point], dict[str, Any]]:
    """Scalar points and hparams of one event file."""
    points: list[Point] = []
    hparams: dict[str, Any] = {}
    plugin_of: dict[str, str] = {}  # TF2 writes a tag's metadata with its first value only
    for record in records(path):
        event = event_pb2.Event()
        try:
            event.ParseFromString(record)
        except Exception:  # noqa: BLE001 - a corrupt record ends what can be read
            break
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            if value.HasField("metadata") and value.metadata.plugin_data.plugin_name:
                plugin_of[value.tag] = value.metadata.plugin_data.plugin_name
            plugin = plugin_of.get(value.tag, "")
            if plugin == "hparams":
                hparams.update(_hparams(value.metadata.plugin_data.content))
                continue
            if value.HasField("simple_value"):
                number: float | None = value.simple_value
            elif value.HasField("tensor") and plugin in ("scalars", ""):
                number = _scalar(value.tensor)
            else:
                number = None
            if number is not None:
                points.append(Point(run, split, value.tag, event.step, number, event.wall_time))
    return points, hparams


def _hparams(content: bytes) -> dict[str, Any]:
    data = plugin_data_pb2.HParamsPluginData()
    data.ParseFromString(content)
    if not data.HasField("session_start_info"):
        return {}
    out: dict[str, Any] = {}
    for name, value in data.session_start_info.hparams.items():
        kind = value.WhichOneof("kind")
        out[name] = getattr(value, kind) if kind else None
    return out


def read_root(root: str | os.PathLike) -> tuple[list[Point], dict[str, dict[str, Any]]]:
    """Every scalar point under ``root`` and each run's hparams.

    Where a step of a tag was written more than once (a resumed run re-logging
    an epoch), only the newest value is kept.

    Raises:
        FileNotFoundError: When ``root`` is not a directory.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"{root!r} is not a directory; pass the folder that holds your runs "
            "(the parent of each run's train/ and validation/)."
        )
    newest: dict[tuple[str, str, str, int], Point] = {}
    hparams: dict[str, dict[str, Any]] = {}
    for path in event_files(root):
        run, split = run_and_split(root, path)
        file_points, file_hparams = read_file(path, run, split)
        if file_hparams:
            hparams.setdefault(run, {}).update(file_hparams)
        for p in file_points:
            key = (p.run, p.split, p.tag, p.step)
            old = newest.get(key)
            if old is None or p.wall_time >= old.wall_time:
                newest[key] = p
    points = sorted(newest.values(), key=lambda p: (p.run, p.split, p.tag, p.step))
    return points, hparams


def load(root: str | os.PathLike) -> Any:
    """Every scalar under ``root`` as a pandas DataFrame, one row per point.

    Columns: ``run`` (the run's path relative to ``root``), ``split``
    (``train``/``validation``), ``tag``, ``step``, ``value``, ``wall_time``.
    Reads runs written by ``LossLogger`` and by ``keras.callbacks.TensorBoard``;
    the hparams of each run are in ``df.attrs["hparams"]``.

    Example:
        >>> import lossboard
        >>> df = lossboard.load("logs")  # doctest: +SKIP
        >>> loss = df[df.tag == "epoch_loss"]  # doctest: +SKIP
        >>> loss.pivot_table("value", "step", ["run", "split"])  # doctest: +SKIP
    """
    import pandas as pd

    points, hparams = read_root(root)
    frame = pd.DataFrame([p.__dict__ for p in points], columns=COLUMNS)
    frame = frame.astype({"step": "int64", "value": "float64", "wall_time": "float64"})
    frame.attrs["hparams"] = hparams
    return frame


def read_back(log_dir: str) -> tuple[set[int], int]:
    """Epochs already written to ``log_dir`` and the last batch-curve step (to resume).

    Reads local directories only; a run on a remote file system starts at 0.
    """
    if "://" in log_dir:
        return set(), 0
    epochs: set[int] = set()
    last_batch = 0
    for path in event_files(log_dir):
        points, _ = read_file(path, "", "")
        for p in points:
            if p.tag.startswith("epoch_"):
                epochs.add(p.step)
            elif p.tag.startswith("batch_"):
                last_batch = max(last_batch, p.step)
    return epochs, last_batch
