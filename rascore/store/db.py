"""SQLite connections with the project's pragmas, and the write-transaction helper.

Every connection: WAL journal, foreign keys on, a busy timeout. Transactions are explicit
(``isolation_level=None``); a read-then-write runs in ``BEGIN IMMEDIATE`` so that it takes the
write lock up front instead of failing with SQLITE_BUSY half way (docs/DESIGN.md, "The store").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, UTC
from pathlib import Path

BUSY_TIMEOUT_MS = 15_000


def utcnow() -> str:
    """UTC timestamp as ISO 8601 text with milliseconds, the store's one time format."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def connect(path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the database file with WAL, foreign keys and a busy timeout; rows behave like dicts."""
    path = Path(path)
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    uri = f"file:{path.resolve()}?mode=ro" if readonly else str(path)
    conn = sqlite3.connect(
        uri,
        uri=readonly,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def is_locked(exc: sqlite3.OperationalError) -> bool:
    """SQLite's SQLITE_BUSY / SQLITE_LOCKED ("database is locked") after the busy timeout."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (
        (code is not None and (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED))
        or "locked" in str(exc)
        or "busy" in str(exc)
    )


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception; nests as a savepoint."""
    if conn.in_transaction:
        conn.execute("SAVEPOINT nested")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO SAVEPOINT nested")
            conn.execute("RELEASE SAVEPOINT nested")
            raise
        conn.execute("RELEASE SAVEPOINT nested")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
