"""``from lossboard.plot import plot_runs``, as the docs teach: see ``lossboard.compare.plot``."""

from lossboard.compare.plot import plot_runs

__all__ = ["plot_runs"]
