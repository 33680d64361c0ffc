"""Runs side by side, without TensorFlow (``aggregate`` imports it only to write).

Everything here consumes the reader's column ``Table`` (``lossboard.reader.table``): one
NumPy array per field, one ``Series`` (two arrays) per curve, never an object per point.

- ``run_table.py``: one row per run: final and best values, rendered as text, Markdown, CSV.
- ``configurations.py``: runs grouped into configurations by their hparams (``--over seed``).
- ``config_table.py``: one row per configuration: mean ± std, Welch's test; ``compare_groups``.
- ``stats.py``: ``Spread`` and Welch's t-test, without SciPy.
- ``plot.py``: the curves as a PNG (matplotlib).
- ``aggregate.py``: one mean run per configuration, written for TensorBoard.

The per-run table's functions are here too, as before the folders existed
(``from lossboard import compare``; ``compare.as_text(compare.summarize(points, hparams), tag)``).
"""

from lossboard.compare.run_table import (
    RunSummary,
    as_csv,
    as_markdown,
    as_text,
    summarize,
)

__all__ = ["RunSummary", "as_csv", "as_markdown", "as_text", "summarize"]
