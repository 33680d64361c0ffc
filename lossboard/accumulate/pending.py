"""Batch values waiting to be folded, and the fold itself: a few large ops per fold.

Eager batches are recorded as references, in one of three forms:

- *rows*: a batch whose components have the same names, dtypes and shapes as
  the batch that set up its ``Signature`` (the steady state of a loop)
  is kept as one tuple of tensors: no per-component work at all. Every
  ``Signature.block`` rows (about ``CHUNK`` values) are joined into one vector
  per group of like columns, so at most a few hundred tensors stay alive
  between folds (see ``RowBlock``);
- *entries*: any other tensor value (weighted, first of its kind, the mean
  of a large value, ...), grouped by dtype, rank and kind of weight, and
  joined every ``CHUNK`` entries the same way (see ``_Group``);
- *host sums*: Python and NumPy values, summed on the host right away.

``Pending.sums`` turns all of it into per-component ``(sums, counts,
nonfinite)`` vectors: one ``Pack``/``ConcatV2`` per group of like tensors, then
column sums of the rows of scalars of one window (about eight ops) or one
segment sum (a dozen eager ops), whatever the number of batches and components.

With batch curves, ``cut`` ends a window (the batches of one curve point);
``sums`` then sums every window apart, in the same ops: segment
``window * components + component``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from lossboard.accumulate import tf_private
from lossboard.accumulate.reduction import segment_sums
from lossboard.accumulate.sums import HostSum, Sums
from lossboard.accumulate.windows import Cut

_F64 = tf.float64
#: Kinds of weight of a pending group: one number per entry (kept on the host),
#: a tensor of one weight per element, or a scalar tensor per entry; or the entry is
#: a large value already summed at the call (``sum(v * w)``), with its weight total
#: on the host or as a scalar tensor.
HOST_WEIGHT, TENSOR_WEIGHT, ENTRY_WEIGHT, SUMMED_HOST, SUMMED_TENSOR = 0, 1, 2, 3, 4
#: Kinds whose weights are host numbers, kept as one NumPy array.
_HOST_KINDS = (HOST_WEIGHT, SUMMED_HOST)


def _row_sums(vector, row_weights, comps, offset, num_sums, skip) -> Sums | None:
    """``segment_sums`` of one window's steady rows of scalars, as column sums.

    Fast path: each row has one weight, so the rows are a matrix summed down
    its columns, in about eight ops run without their Python wrappers (a fold
    of 16384 scalars at 64 components: its sums 1.3 -> 0.6 ms, the whole fold
    1.6 -> 1.2 ms; loop-thread CPU per step 94 -> 83 us).
    Component ``comps[j]`` of the window lands at ``offset + comps[j]``. None
    where ``tf_private.column_sums`` is not available.
    """
    summed = tf_private.column_sums(vector, len(row_weights), row_weights[:, None], skip)
    if summed is None:  # pragma: no cover - only on a TensorFlow that moved its execute call
        return None
    total, counts, nonfinite = summed
    if counts is None:  # every row counts once per column: the sum of the row weights
        counts = tf.constant(np.full(len(comps), np.sum(row_weights)), _F64)
    index = offset + comps
    if num_sums == len(comps) and offset == 0 and (comps == np.arange(len(comps))).all():
        return Sums(total, counts, nonfinite)  # every component, in order
    return Sums(
        *(tf.math.unsorted_segment_sum(v, index, num_sums) for v in (total, counts, nonfinite))
    )


#: Tensors joined per op. TensorFlow builds a kernel for each distinct number
#: of inputs (about 25 us per input, once), so every join uses whole chunks,
#: padded: without it each new epoch length cost a new kernel (benchmark rows
#: "eager call", first repeat).
CHUNK = 256
_EMPTY: dict[tuple[tf.DType, int], tf.Tensor] = {}


def _join(values: list, rank: int) -> tf.Tensor:
    """One rank-1 tensor from many scalars (``rank`` 0) or vectors (``rank`` 1).

    Joins chunks of exactly ``CHUNK`` tensors, padded with zeros (scalars,
    sliced off after) or empty vectors, then the chunks the same way.
    """
    n = len(values)
    if n == 1:
        return tf.reshape(values[0], [-1]) if rank == 0 else values[0]
    pad = -n % CHUNK
    if pad:
        key = (values[0].dtype, rank)
        filler = _EMPTY.get(key)
        if filler is None:
            with tf.init_scope():
                filler = _EMPTY[key] = tf.zeros([0] * rank, values[0].dtype)
        values = values + [filler] * pad
    enum = tf_private.dtype_enum(values[0])
    chunks = [tf_private.join(values[i : i + CHUNK], rank, enum) for i in range(0, n + pad, CHUNK)]
    joined = chunks[0] if len(chunks) == 1 else _join(chunks, 1)
    return joined[:n] if pad and rank == 0 else joined


_ITEMSIZE: dict[int, int] = {}


def itemsize(enum: int) -> int:
    """Bytes per element of the dtype with this enum."""
    size = _ITEMSIZE.get(enum)
    if size is None:
        size = _ITEMSIZE[enum] = max(1, tf.as_dtype(enum).size)
    return size


class ColumnGroup(NamedTuple):
    """The columns of a row of one dtype and rank, joined and summed together."""

    enum: int  # dtype enum
    rank: int  # 0: scalars, 1: per-example vectors
    cols: tuple[int, ...]  # their positions in a row
    comps: np.ndarray  # the component of each column
    sizes: np.ndarray  # the elements of each column


class Signature:
    """Names, dtypes and shapes of a batch whose values can be kept as one row.

    Every value is an unweighted (or number-weighted) tensor of rank 0 or 1.
    A row's number weights every column (``sample_weight=n``), or with
    ``by_batch_size`` only the scalar ones (``batch_size=n``: each scalar is the
    mean of n examples, each per-example value counts once).
    """

    __slots__ = ("enums", "shapes", "columns", "by_batch_size", "lead", "nbytes", "block")

    def __init__(
        self, enums: tuple, shapes: tuple, comps: tuple[int, ...], by_batch_size: bool = False
    ):
        self.enums = enums
        self.shapes = shapes
        #: The row weight is ``batch_size``: it weights scalar columns only.
        self.by_batch_size = by_batch_size
        #: The leading dimension of the per-example columns (None without any).
        self.lead = next((shape[0] for shape in shapes if shape), None)
        #: Bytes of values one row holds.
        self.nbytes = sum(
            (shape[0] if shape else 1) * itemsize(enum)
            for enum, shape in zip(enums, shapes, strict=True)
        )
        by_kind: dict[tuple[int, int], list[int]] = {}
        for col, (enum, shape) in enumerate(zip(enums, shapes, strict=True)):
            by_kind.setdefault((enum, len(shape)), []).append(col)
        self.columns = [
            ColumnGroup(
                enum,
                rank,
                tuple(cols),
                np.asarray([comps[c] for c in cols], np.int32),
                np.asarray([shapes[c][0] if rank else 1 for c in cols], np.int64),
            )
            for (enum, rank), cols in by_kind.items()
        ]
        #: Rows joined at once: about ``CHUNK`` values, always the same number
        #: (one kernel per group, built once).
        self.block = max(1, CHUNK // max(1, len(enums)))


class Joined(NamedTuple):
    """Whole blocks of rows, joined: one vector per column group, with each row's
    weight and batch-curve window."""

    vectors: tuple[Any, ...]
    weights: tuple[float, ...]
    windows: tuple[int, ...]


class RowBlock:
    """The rows of one ``Signature`` recorded since the last fold.

    Python's garbage collector walks every tensor kept alive: at 64 components
    and 1000-batch epochs, holding each batch's scalars until the fold cost about
    90 us per step in full collections (benchmark section "epochs"). So every
    ``signature.block`` rows are joined right away into one vector per column
    group: the same ops the fold would run on them (and the same per-value
    cost), once per ~``CHUNK`` values instead of once per fold.

    A row is recorded whole or not at all, even if an interrupt (Ctrl-C) lands
    in a join: the state changes by one list append or one assignment.
    """

    __slots__ = ("state", "hold")

    def __init__(self) -> None:
        #: (blocks joined, rows not joined yet as ``(values, weight, window)``).
        self.state: tuple[tuple[Joined, ...], list[tuple]] = ((), [])
        #: A join failed (say, a device policy refused a copy): rows are held as
        #: they are until the fold, which joins them as before.
        self.hold = False

    def add(self, signature: Signature, values: tuple, weight: float, window: int) -> None:
        blocks, rows = self.state
        row = (values, weight, window)
        if len(rows) + 1 < signature.block or self.hold:
            rows.append(row)
            return
        rows = rows + [row]
        try:
            vectors = tuple(
                tf_private.join(_values(rows, group), group.rank, group.enum)
                for group in signature.columns
            )
        except Exception:  # the values were checked: hold them, the fold will join them
            self.hold = True
            self.state[1].append(row)
            return
        joined = Joined(vectors, tuple(r[1] for r in rows), tuple(r[2] for r in rows))
        self.state = (blocks + (joined,), [])

    def weights_and_windows(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row's weight and window, in order."""
        blocks, rows = self.state
        weights = [w for block in blocks for w in block.weights] + [r[1] for r in rows]
        windows = [w for block in blocks for w in block.windows] + [r[2] for r in rows]
        return np.asarray(weights, np.float64), np.asarray(windows, np.int32)

    def vector(self, g: int, group: ColumnGroup) -> tf.Tensor:
        """All of group ``g``'s values as one rank-1 tensor."""
        blocks, rows = self.state
        parts = [block.vectors[g] for block in blocks]
        if rows:
            parts.append(_join(_values(rows, group), group.rank))
        return parts[0] if len(parts) == 1 else _join(parts, 1)


def _values(rows: list[tuple], group: ColumnGroup) -> list:
    """The group's values in ``rows`` (``(values, weight, window)``), row by row."""
    if len(group.cols) == len(rows[0][0]):  # Fast path: one group, every column in order.
        return [value for row in rows for value in row[0]]
    return [row[0][c] for row in rows for c in group.cols]


class Entries(NamedTuple):
    """Pending entries of one group, as columns: ``values`` (and tensor ``weights``)
    joined into one vector each, the rest as NumPy arrays."""

    values: Any
    weights: Any  # float64 array (host weights), or a vector (tensor weights)
    comps: np.ndarray
    sizes: np.ndarray
    windows: np.ndarray


class _Group:
    """Pending entries of one dtype, rank and kind of weight (``key``), each
    ``(value, weight, comp, size, window)``.

    Like ``RowBlock``: every ``CHUNK`` entries are joined at once (a long loop
    of reduced large values would otherwise keep one tensor per batch alive
    until the fold), and the state changes by one append or one assignment.
    Joins run in ``compact``, once a whole batch is recorded, so an interrupt
    never splits a batch's components.
    """

    __slots__ = ("key", "state", "hold")

    def __init__(self, key: tuple) -> None:
        self.key = key
        #: (joined ``Entries``, entries not joined yet).
        self.state: tuple[tuple[Entries, ...], list[tuple]] = ((), [])
        self.hold = False  # a join failed: the fold joins these

    def add(self, entry: tuple) -> None:
        self.state[1].append(entry)

    def compact(self) -> None:
        """Joins whole chunks of the entries not joined yet."""
        while not self.hold and len(self.state[1]) >= CHUNK:
            blocks, loose = self.state
            try:
                joined = self._columns(loose[:CHUNK], tf_private.join)
            except Exception:  # the values were checked: hold them, the fold will join them
                self.hold = True
                return
            self.state = (blocks + (joined,), loose[CHUNK:])

    def _columns(self, entries: list[tuple], join: Any) -> Entries:
        enum, rank, weight_kind, weight_enum = self.key
        weights = [e[1] for e in entries]
        if weight_kind in _HOST_KINDS:
            weight_column: Any = np.asarray(weights, np.float64)
        else:
            weight_rank = rank if weight_kind == TENSOR_WEIGHT else 0
            weight_column = join(weights, weight_rank, weight_enum)
        return Entries(
            join([e[0] for e in entries], rank, enum),
            weight_column,
            np.asarray([e[2] for e in entries], np.int32),
            np.asarray([e[3] for e in entries], np.int64),
            np.asarray([e[4] for e in entries], np.int32),
        )

    def entries(self) -> Entries:
        """Every entry, joined: values and tensor weights as rank-1 vectors."""
        blocks, loose = self.state
        if loose:
            blocks = (*blocks, self._columns(loose, lambda xs, rank, _: _join(xs, rank)))
        if len(blocks) == 1:
            return blocks[0]
        columns = list(zip(*blocks, strict=True))
        weights = columns[1]
        return Entries(
            _join(list(columns[0]), 1),
            np.concatenate(weights) if self.key[2] in _HOST_KINDS else _join(list(weights), 1),
            *(np.concatenate(c) for c in columns[2:]),
        )


class Pending:
    """Values recorded since the last fold, for one split.

    A fold never empties it: the accumulator swaps in a new one as part of its commit.
    Each record changes it by one append or one assignment, so an interrupted call
    leaves its batch wholly in or out (``RowBlock``, ``_Group``, ``add_host``).
    """

    def __init__(self) -> None:
        self.count = 0  # entries (one component of one batch) pending
        self.nbytes = 0  # bytes of the tensors held
        #: Windows ended (``cut``) since the last fold: values go to window ``len(cuts)``.
        self.cuts: list[Cut] = []
        self._rows: dict[Signature, RowBlock] = {}
        self._groups: dict[tuple, _Group] = {}
        #: (window, component) -> (sum, weight, non-finite batches) of host values.
        self._host: dict[tuple[int, int], tuple[float, float, float]] = {}

    @property
    def window(self) -> int:
        """The window values go to now: how many were cut since the last fold."""
        return len(self.cuts)

    def cut(self, step: int, wall_time: float) -> None:
        """Ends a window at global batch ``step``: later values go to the next one."""
        self.cuts.append(Cut(step, wall_time))

    def add_row(self, signature: Signature, values: tuple, weight: float) -> None:
        block = self._rows.get(signature)
        if block is None:  # kept once its first row is in: an interrupted one leaves no block
            block = RowBlock()
            block.add(signature, values, weight, self.window)
            self._rows[signature] = block
        else:
            block.add(signature, values, weight, self.window)
        self.count += len(values)
        self.nbytes += signature.nbytes

    def add_entry(self, key: tuple, comp: int, value: Any, weight: Any, size: int) -> None:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key)
        group.add((value, weight, comp, size, self.window))
        self.count += 1
        # the values, and as many again for a tensor of weights
        self.nbytes += size * itemsize(key[0]) * (2 if key[2] == TENSOR_WEIGHT else 1)

    def compact(self) -> None:
        """Joins the entries of every group that holds a whole chunk (after a batch)."""
        for group in self._groups.values():
            group.compact()

    def components(self) -> set[int]:
        """The components recorded since the last fold (whatever their weights)."""
        comps = {int(c) for sig in self._rows for group in sig.columns for c in group.comps}
        for group in self._groups.values():
            blocks, loose = group.state
            comps.update(int(c) for block in blocks for c in np.unique(block.comps))
            comps.update(entry[2] for entry in loose)
        comps.update(comp for _, comp in self._host)
        return comps

    def add_host(self, comp: int, value: HostSum, skip: bool) -> None:
        key = (self.window, comp)
        total, weight, bad = self._host.get(key, (0.0, 0.0, 0.0))
        if value.finite or not skip:
            total, weight = total + value.total, weight + value.weight
        self._host[key] = (total, weight, bad + (not value.finite))  # one store: whole or not
        self.count += 1

    def sums(self, num_comps: int, skip: bool) -> list[Sums]:
        """Everything pending as ``Sums``; changes nothing (a fold swaps in a new ``Pending``).

        Each returned vector has ``(window + 1) * num_comps`` elements: the sums
        of window ``w``'s component ``c`` at ``w * num_comps + c`` (one window,
        ``num_comps`` elements, without batch curves).
        """
        n = np.asarray((self.window + 1) * num_comps, np.int32)
        parts: list[Sums] = []
        for signature, block in self._rows.items():
            row_weights, row_windows = block.weights_and_windows()
            rows = len(row_weights)
            offsets = row_windows * num_comps
            one_window = row_windows[0] == row_windows[-1]
            for g, columns in enumerate(signature.columns):
                if columns.rank == 0 and one_window:
                    offset = int(row_windows[0]) * num_comps
                    vector = block.vector(g, columns)
                    summed = _row_sums(vector, row_weights, columns.comps, offset, n, skip)
                    if summed is not None:
                        parts.append(summed)
                        continue
                width = len(columns.cols)
                entry_comp = np.tile(columns.comps, rows) + np.repeat(offsets, width)
                entry_size = np.tile(columns.sizes, rows)
                if columns.rank and signature.by_batch_size:
                    entry_weight = np.ones(rows * width, np.float64)
                else:
                    entry_weight = np.repeat(row_weights, width)
                values = block.vector(g, columns)
                parts.append(
                    self._sums(columns.rank, values, entry_weight, entry_comp, entry_size, n, skip)
                )
        for (_, rank, weight_kind, _), group in self._groups.items():
            entries = group.entries()
            weights = entries.weights
            if weight_kind == ENTRY_WEIGHT:  # one per entry: one per element
                weights = tf.repeat(weights, entries.sizes)
            comps = entries.comps + entries.windows * num_comps
            is_sum = weight_kind in (SUMMED_HOST, SUMMED_TENSOR)
            parts.append(
                self._sums(rank, entries.values, weights, comps, entries.sizes, n, skip, is_sum)
            )
        if self._host:
            host = np.zeros((3, int(n)), np.float64)
            for (window, comp), sums in self._host.items():
                host[:, window * num_comps + comp] = sums
            parts.append(Sums.of(*host))
        return parts

    @staticmethod
    def _sums(rank, values, weights, entry_comp, entry_size, num_comps, skip, summed=False):
        """``segment_sums`` of one group's joined ``values``; numpy ``weights`` are per entry."""
        entries = len(entry_comp)
        if rank == 0:
            elem_entry = np.arange(entries, dtype=np.int32)
        else:
            elem_entry = np.repeat(np.arange(entries, dtype=np.int32), entry_size)
            if isinstance(weights, np.ndarray):
                weights = np.repeat(weights, entry_size)
        return segment_sums(values, weights, elem_entry, entry_comp, num_comps, skip, summed)
