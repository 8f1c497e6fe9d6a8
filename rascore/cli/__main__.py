"""``python -m rascore.cli`` runs the command line (and ``torchrun ... -m rascore.cli train ...``)."""

from __future__ import annotations

import sys

from rascore.cli import main

sys.exit(main())
