"""``from lossboard.aggregate import aggregate_root``, as the docs teach: see
``lossboard.compare.aggregate``."""

from lossboard.compare.aggregate import aggregate_root

__all__ = ["aggregate_root"]
