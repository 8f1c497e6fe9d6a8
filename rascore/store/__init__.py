"""SQLite store: schema, migrations and every query of the product."""

from __future__ import annotations

from rascore.store.db import connect, utcnow
from rascore.store.store import Store, StoreBusy, StoreError

__all__ = ["Store", "StoreBusy", "StoreError", "connect", "utcnow"]
