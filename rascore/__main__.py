"""``python -m rascore`` runs the command line."""

from __future__ import annotations

import sys

from rascore.cli import main

sys.exit(main())
