"""``python -m lossboard``: the same as the ``lossboard`` command."""

import sys

from lossboard.cli import main

sys.exit(main())
