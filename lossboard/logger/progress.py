"""What ``LossLogger(verbose=...)`` prints: an epoch line, and a live line while training."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO


def resolve_verbose(verbose: int | str, stream: TextIO) -> int:
    """``"auto"`` is 1 on an interactive terminal and 0 otherwise (CI logs, files)."""
    if verbose == "auto":
        isatty = getattr(stream, "isatty", None)
        return 1 if isatty is not None and isatty() else 0
    if verbose in (0, 1, 2) and not isinstance(verbose, bool):
        return int(verbose)
    raise ValueError(
        f"verbose: got {verbose!r}; expected 'auto', 0 (silent), 1 (a line per epoch) or "
        "2 (also a live line of running means while the epoch trains)."
    )


def format_values(values: Mapping[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in values.items())


class Progress:
    """Prints epoch summaries, and with ``level`` 2 a live line of running means.

    The live line reads the running means (a fold and one host read) at most
    every ``interval`` seconds, never per batch.

    Args:
        level: 0 silent, 1 a line per epoch, 2 also the live line.
        running_means: Returns the train means so far (a fold and a host read).
        stream: Where to print (standard output by default).
        interval: Seconds between live refreshes.
        clock: Returns the time in seconds (``time.monotonic`` by default).
    """

    def __init__(
        self,
        level: int,
        running_means: Callable[[], Mapping[str, float]],
        stream: TextIO | None = None,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.level = level
        self._running_means = running_means
        self._stream = stream
        self._interval = interval
        self._clock = clock
        self._epoch_started = clock()
        self._next_refresh = self._epoch_started + interval
        self._batches = 0
        self._live = False

    def batch(self) -> None:
        """Called per train batch: a clock read, and a refresh when one is due."""
        self._batches += 1
        if self.level < 2:
            return
        now = self._clock()
        if now < self._next_refresh:
            return
        self._next_refresh = now + self._interval
        text = format_values(self._running_means())
        elapsed = now - self._epoch_started
        self._write(f"\r{self._batches} batches - {elapsed:.1f}s - {text}\x1b[K")
        self._live = True

    def _write(self, text: str) -> None:
        out = self._stream or sys.stdout  # the current one: notebooks and pytest swap it
        out.write(text)
        out.flush()

    def epoch(self, epoch: int, history: Mapping[str, float]) -> None:
        """Prints the epoch's line (level >= 1) and starts the next epoch's clock."""
        if self.level >= 1:
            elapsed = self._clock() - self._epoch_started
            prefix = "\r" if self._live else ""
            values = format_values(history)
            line = f"{prefix}Epoch {epoch}: {self._batches} batches - {elapsed:.1f}s - {values}"
            self._write(line + ("\x1b[K\n" if self._live else "\n"))
        self._live = False
        self._batches = 0
        self._epoch_started = self._clock()
        self._next_refresh = self._epoch_started + self._interval
