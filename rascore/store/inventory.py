"""What a database file holds, read without opening it as a project: its integrity, the row count of
its main tables, and the media and model files it names (for backup and restore checks).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rascore.store.db import connect

COUNTED: tuple[str, ...] = (
    "items",
    "media",
    "users",
    "annotations",
    "reference_labels",
    "model_versions",
    "audit_log",
)


def check(path: Path) -> tuple[str, dict[str, int]]:
    """(SQLite's integrity check, "ok" when sound; rows per main table, 0 where a table is missing)."""
    conn = connect(path, readonly=True)
    try:
        result = "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
        counts = {}
        for table in COUNTED:
            try:
                counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            except sqlite3.OperationalError:
                counts[table] = 0
    finally:
        conn.close()
    return result, counts


def named_files(path: Path) -> tuple[list[str], list[str]]:
    """(sha256 of every media file, every model checkpoint and card path) the database names."""
    conn = connect(path, readonly=True)
    try:
        media = [sha for (sha,) in conn.execute("SELECT sha256 FROM media")]
        models = [
            rel for row in conn.execute("SELECT path, card_path FROM model_versions") for rel in row if rel
        ]
    finally:
        conn.close()
    return media, models
