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
from lossboard.reader.read import FileRead, event_files, read_table
from lossboard.reader.table import Table

_Key = tuple[int, int, bool]  # size, mtime in ns, whether the newest file of its folder


class FileCache:
    """Event files read, by path, each kept with its size and modification time.

    ``read_table(..., cache=...)`` asks it for each file (``get``) and gives it the ones it
    read (``put``). Keep one per selection of tags: what it holds is what was wanted.

    Examples:
        >>> cache = FileCache()
        >>> cache.start()
        >>> table = read_table(".", cache=cache)
        >>> cache.finish(), cache.reads
        (False, 0)
    """

    def __init__(self) -> None:
        self._kept: dict[str, tuple[_Key, FileRead]] = {}
        self._seen: dict[str, tuple[_Key, FileRead]] = {}
        self._before: dict[str, tuple[int, int] | None] = {}
        self.reads = 0  # files read (not found unchanged) since ``start``

    def start(self) -> None:
        """Begins a pass over the root: files not asked for until ``finish`` are forgotten."""
        self._seen, self._before, self.reads = {}, {}, 0

    def finish(self) -> bool:
        """Ends a pass; returns whether anything differs from the pass before."""
        changed = self.reads > 0 or self._seen.keys() != self._kept.keys()
        self._kept = self._seen
        return changed

    def unchanged(self, paths: list[str]) -> bool:
        """Whether ``paths`` are the files of the last pass, each of the same size and mtime."""
        kept = self._kept
        if len(kept) != len(paths):
            return False
        for path in paths:  # as a set: a pass keeps the files it read after the others
            found = kept.get(path)
            if found is None or files.version(path) != found[0][:2]:
                return False
        return True

    def get(self, path: str, last: bool) -> FileRead | None:
        now = files.version(path)
        kept = self._kept.get(path)
        if now is None or kept is None or kept[0] != (*now, last):
            self._before[path] = now  # stat'ed before the read: a file growing meanwhile is
            return None  # kept with its older size, so it is read again next time
        self._seen[path] = kept
        return kept[1]

    def put(self, path: str, last: bool, found: FileRead) -> None:
        self.reads += 1
        now = self._before.pop(path, None)
        if now is not None:
            self._seen[path] = ((*now, last), found)


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
            aggregated: list[str] = []
            paths = list(event_files(self.root, aggregated))
            if self._table is not None and self.files.unchanged(paths):
                if self._table.aggregated == aggregated:
                    self.files.reads = 0
                    return self._table
            self.files.start()
            listed = (paths, aggregated)
            table = read_table(self.root, tags=self.tags, cache=self.files, listed=listed)
            changed = self.files.finish()
            if changed or self._table is None or self._table.aggregated != aggregated:
                self._table = table
            return self._table
