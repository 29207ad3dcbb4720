"""``python -m napari_autoconfig``: the command line (see :mod:`napari_autoconfig.cli`)."""

import sys

from .cli import main

sys.exit(main())
