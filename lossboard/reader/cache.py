"""A root read again and again (a dashboard's reloads): only changed files are read again.

``RootCache.table()`` walks the root each time (new runs and files appear) and reads an event
file only when its size or modification time differs from the last read, or it is new; files
that are gone are forgotten. When nothing changed, the same ``Table`` object is returned, so a
caller may keep what it computed from it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from lossboard.events import files
from lossboard.reader.read import FileRead, event_files, read_points, read_table
from lossboard.reader.table import Table


class FileCache:
    """Event files read, by path, each kept with its ``(size, mtime)``: a ``FileReader``.

    Examples:
        >>> cache = FileCache()
        >>> table = read_table(".", reader=cache)
        >>> cache.reads, len(cache.seen)
        (0, 0)
    """

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[int, int, bool, object], FileRead]] = {}
        self.seen: dict[str, tuple[tuple[int, int, bool, object], FileRead]] = {}
        self.reads = 0  # files read (not found in the cache) since ``start``

    def start(self) -> None:
        """Begins a pass over the root: files not asked for until ``finish`` are forgotten."""
        self.seen, self.reads = {}, 0

    def finish(self) -> bool:
        """Ends a pass; returns whether anything differs from the pass before."""
        changed = self.reads > 0 or self.seen.keys() != self._kept.keys()
        self._kept = self.seen
        return changed

    def unchanged(self, paths: list[str]) -> bool:
        """Whether ``paths`` are the files of the last pass, each of the same size and mtime."""
        if list(self._kept) != paths:
            return False
        return all(files.version(p) == self._kept[p][0][:2] for p in paths)

    def __call__(self, path: str, tags: Iterable[str] | str | None, last: bool) -> FileRead:
        now = files.version(path)
        wanted = tags if tags is None or isinstance(tags, str) else tuple(tags)
        if now is not None:
            key = (*now, last, wanted)
            kept = self._kept.get(path)
            if kept is not None and kept[0] == key:
                self.seen[path] = kept
                return kept[1]
        self.reads += 1
        found = read_points(path, tags, last)
        if now is not None:
            self.seen[path] = ((*now, last, wanted), found)
        return found


class RootCache:
    """The ``Table`` of one root, re-read file by file as it changes (thread-safe).

    Args:
        root: The folder that holds the runs.
        tags: Tag names or shell patterns to read (``"epoch_*"``); None reads all.

    Examples:
        >>> cache = RootCache(".", tags="epoch_*")
        >>> cache.table() is cache.table()  # nothing changed: the same table
        True
    """

    def __init__(self, root: str | os.PathLike, tags: Iterable[str] | str | None = None) -> None:
        self.root = os.fspath(root)
        self.tags = tags
        self.files = FileCache()
        self._table: Table | None = None
        self._lock = threading.Lock()

    def table(self) -> Table:
        """The root's scalars now; the same object as last time when no file changed.

        Raises:
            FileNotFoundError: When the root is not a directory.
        """
        with self._lock:
            if not files.isdir(self.root):
                self._table = None
                raise FileNotFoundError(
                    f"{self.root!r} is not a directory (any more); pass the folder that holds "
                    "your runs."
                )
            paths = list(event_files(self.root))
            if self._table is not None and self.files.unchanged(paths):
                self.files.reads = 0
                return self._table
            self.files.start()
            table = read_table(self.root, tags=self.tags, reader=self.files, paths=paths)
            if self.files.finish() or self._table is None:
                self._table = table
            return self._table
