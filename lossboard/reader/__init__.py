"""The read side, without TensorFlow: every scalar under a root, as columns or a DataFrame.

- ``read.py``: event files found under a root, read (``read_file``, ``read_table``,
  ``read_root``, ``load``) and checked (``read_back``); ``EventFileWarning``.
- ``table.py``: ``Table``, the column table (one row per point, newest point per step)
  that compare, plot, aggregate and grouping all consume; ``Series``, one curve as two arrays.
- ``cache.py``: ``RootCache``, a root read again and again (the TensorBoard dashboard's
  reloads), reading only the event files whose size or modification time changed.

Examples:
    >>> from lossboard.reader import read_root
    >>> read_root(".")
    ([], {})
"""

from lossboard.reader.read import (
    COLUMNS,
    EventFileWarning,
    Point,
    event_files,
    load,
    read_back,
    read_file,
    read_root,
    read_table,
    records,
    run_and_split,
)
from lossboard.reader.table import Series, Table

__all__ = [
    "COLUMNS",
    "EventFileWarning",
    "Point",
    "event_files",
    "load",
    "read_back",
    "read_file",
    "read_root",
    "read_table",
    "records",
    "run_and_split",
    "Series",
    "Table",
]
