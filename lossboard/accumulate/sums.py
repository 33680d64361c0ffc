"""``Sums``: the running state of every component of a split, as three named float64 vectors."""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

_F64 = tf.float64


class Sums(NamedTuple):
    """Per-component weighted sums, weight totals and non-finite batch counts.

    Index ``i`` of each vector is component ``i``. ``a + b`` merges two
    (the shorter is zero-padded first: components are only ever appended),
    like CLU's ``metrics.Average.merge``.

    Examples:
        >>> a = Sums.of([1.0], [2.0], [0.0])
        >>> b = Sums.of([3.0, 5.0], [1.0, 1.0], [0.0, 1.0])
        >>> [v.numpy().tolist() for v in a + b]
        [[4.0, 5.0], [3.0, 1.0], [0.0, 1.0]]
    """

    total: tf.Tensor  # weighted sums
    weight: tf.Tensor  # sums of the weights (Keras' ``Mean.count``)
    nonfinite: tf.Tensor  # batches that held a NaN or an infinity

    @classmethod
    def of(cls, total, weight, nonfinite) -> Sums:
        """Sums from three vector-likes (converted to float64 tensors)."""
        return cls(*(tf.convert_to_tensor(v, _F64) for v in (total, weight, nonfinite)))

    @property
    def size(self) -> int:
        """How many components the vectors cover."""
        return int(self.total.shape[0])

    def padded(self, size: int) -> Sums:
        """The same sums over ``size`` components (zeros for new ones)."""
        extra = size - self.size
        if extra <= 0:
            return self
        return Sums(*(tf.pad(v, [[0, extra]]) for v in self))

    def __add__(self, other: object) -> Sums:  # type: ignore[override]
        if not isinstance(other, Sums):
            return NotImplemented
        size = max(self.size, other.size)
        a, b = self.padded(size), other.padded(size)
        return Sums(a.total + b.total, a.weight + b.weight, a.nonfinite + b.nonfinite)

    def zeroed(self, index: int) -> Sums:
        """The same sums with component ``index`` set to zero (NaN included)."""
        keep = tf.not_equal(tf.range(self.size), index)
        return Sums(*(tf.where(keep, v, tf.zeros_like(v)) for v in self))


def total(parts: list[Sums]) -> Sums:
    """The merge of one or more ``Sums``."""
    out = parts[0]
    for part in parts[1:]:
        out = out + part
    return out


class HostSum(NamedTuple):
    """A host value (Python or NumPy), reduced on the spot."""

    total: float
    weight: float
    finite: bool
