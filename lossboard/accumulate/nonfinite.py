"""What a NaN or an infinity in a loss component does: one policy object, asked by every module."""

from __future__ import annotations

import enum
from typing import Any


class Nonfinite(enum.Enum):
    """The ``nonfinite`` policy of a ``LossLogger``; see its docstring for what each does.

    The code asks the policy questions (``skips``, ``checks_each_batch``,
    ``raises``) instead of comparing strings, so a new policy is one change here.

    Examples:
        >>> Nonfinite.parse("skip").skips
        True
    """

    RAISE = "raise"
    WARN = "warn"
    SKIP = "skip"
    RAISE_PER_BATCH = "raise_per_batch"

    @classmethod
    def parse(cls, value: Any) -> Nonfinite:
        """The policy named ``value`` (a string or a ``Nonfinite``)."""
        if isinstance(value, Nonfinite):
            return value
        try:
            return cls(value)
        except ValueError:
            names = [p.value for p in cls]
            raise ValueError(f"nonfinite: got {value!r}; expected one of {names}.") from None

    @property
    def skips(self) -> bool:
        """Batches holding a NaN or an infinity are left out of the sums."""
        return self is Nonfinite.SKIP

    @property
    def checks_each_batch(self) -> bool:
        """Each eager batch is checked on the host, and refused at its call."""
        return self is Nonfinite.RAISE_PER_BATCH

    @property
    def raises(self) -> bool:
        """``on_epoch_end`` raises for a component that held a non-finite value.

        True for ``raise_per_batch`` too: values logged inside a ``tf.function``
        cannot be checked per batch, and are caught at the epoch end instead.
        """
        return self in (Nonfinite.RAISE, Nonfinite.RAISE_PER_BATCH)

    def fate(self) -> str:
        """What happened to the non-finite batches, for warnings."""
        return "left out of" if self.skips else "included in"
