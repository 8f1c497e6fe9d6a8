"""The project store: one SQLite file, one connection per thread, every query of the product.

Every write of the product goes through one path, :meth:`Store.transaction` (a context manager)
or :meth:`Store.write` (a function run inside it, after Datasette's ``execute_write_fn``). It runs
in ``BEGIN IMMEDIATE``, waits out other writers up to the busy timeout, and turns SQLite's
"database is locked" into :class:`StoreBusy` with a message a person can act on: the one place
where busy handling lives. Reads go through :meth:`Store.rows` and :meth:`Store.one`. Annotations,
reference labels and the audit log are append-only. SQL lives in this package only, in modules
named for what they hold (``accounts``, ``settings``, ``jobs``, ``registry``, ...).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from rascore import scale
from rascore.store import migrations
from rascore.store.db import connect, is_locked, utcnow, write_transaction

T = TypeVar("T")

BUSY = "The database is busy (locked by another write); nothing was saved. Try again in a moment."


class StoreError(ValueError):
    """A write the store refuses (unknown user, invalid grade pair, ...), with a readable reason."""


class StoreBusy(StoreError, sqlite3.OperationalError):
    """Another writer held the database past the busy timeout: nothing was written.

    A StoreError, so pages show its message; still an ``OperationalError`` for callers that
    catch SQLite's own "database is locked".
    """


class Store:
    """Access to one project's SQLite file; safe to share between threads (a connection each)."""

    def __init__(self, path: str | Path, *, migrate: bool = True) -> None:
        self.path = Path(path)
        self._local = threading.local()
        if migrate:
            migrations.apply(self.conn)

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (Streamlit runs sessions on parallel threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ---------------------------------------------------------------- the one write path
    @contextmanager
    def transaction(self, busy: str = BUSY) -> Iterator[sqlite3.Connection]:
        """The write path: ``BEGIN IMMEDIATE`` ... ``COMMIT`` on this thread's connection.

        Nested calls become savepoints. When another writer holds the database past the busy
        timeout, nothing is written and :class:`StoreBusy` carries ``busy`` (the message for the
        person who asked for the write).
        """
        try:
            with write_transaction(self.conn) as conn:
                yield conn
        except StoreBusy:
            raise
        except sqlite3.OperationalError as exc:
            if is_locked(exc):
                raise StoreBusy(busy) from exc
            raise

    def write(self, fn: Callable[[sqlite3.Connection], T], *, busy: str = BUSY, retries: int = 0) -> T:
        """Run ``fn(conn)`` inside the write path and return what it returns.

        ``retries`` re-runs the whole function that many more times when the database stays busy
        (safe because nothing of a failed attempt was written); then :class:`StoreBusy`.
        """
        for attempt in range(retries + 1):
            try:
                with self.transaction(busy) as conn:
                    return fn(conn)
            except StoreBusy:
                if attempt == retries or self.conn.in_transaction:
                    raise
        raise AssertionError("unreachable")

    def execute(self, sql: str, params: Iterable[Any] = (), *, busy: str = BUSY) -> sqlite3.Cursor:
        """One write statement through the write path; the cursor gives ``lastrowid``/``rowcount``."""
        with self.transaction(busy) as conn:
            return conn.execute(sql, tuple(params))

    # ---------------------------------------------------------------- reads
    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        """Every row of a read query, as dicts."""
        return [dict(r) for r in self.conn.execute(sql, tuple(params))]

    def one(self, sql: str, params: Iterable[Any] = ()) -> dict | None:
        """The first row of a read query as a dict, or None."""
        row = self.conn.execute(sql, tuple(params)).fetchone()
        return dict(row) if row is not None else None

    def value(self, sql: str, params: Iterable[Any] = ()) -> Any:
        """The first column of the first row of a read query, or None."""
        row = self.conn.execute(sql, tuple(params)).fetchone()
        return row[0] if row is not None else None

    # ---------------------------------------------------------------- media and items
    def add_media(
        self,
        sha256: str,
        *,
        format: str,
        kind: str,
        nbytes: int,
        frames: int,
        height: int,
        width: int,
        fps: float | None,
        meta: dict | None = None,
    ) -> bool:
        """Record a stored file once; returns False when it was already there."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO media (sha256, format, kind, bytes, frames, height, width, fps,"
            " meta_json, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                sha256,
                format,
                kind,
                nbytes,
                frames,
                height,
                width,
                fps,
                json.dumps(meta or {}, sort_keys=True, default=str),
                utcnow(),
            ),
        )
        return cur.rowcount == 1

    def add_item(
        self,
        *,
        media_sha256: str,
        modality: str,
        cohort: str,
        frames: int,
        fps: float | None,
        patient: str | None = None,
        joint: str | None = None,
        side: str | None = None,
        scanner_profile: str | None = None,
        source: str = "import",
        external_key: str | None = None,
    ) -> int:
        """Insert an item (one file seen as one modality); returns its id."""
        mod = scale.modality(modality)
        cur = self.conn.execute(
            "INSERT INTO items (media_sha256, modality, cohort, patient, joint, side, dynamic,"
            " frames, fps, scanner_profile, source, external_key, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                media_sha256,
                mod.code,
                scale.cohort(cohort),
                patient,
                joint,
                side,
                int(mod.dynamic),
                frames,
                fps,
                scanner_profile,
                source,
                external_key,
                utcnow(),
            ),
        )
        return int(cur.lastrowid)

    def find_item(self, media_sha256: str, modality: str) -> dict | None:
        """The item for this file and modality, if it exists (duplicate detection)."""
        return self.one(
            "SELECT * FROM items WHERE media_sha256 = ? AND modality = ?", (media_sha256, modality)
        )

    def patient_cohorts(self, patients: Iterable[str]) -> dict[str, dict[str, list[int]]]:
        """Where stored patients are: pseudonym -> cohort -> item ids (by the items.patient index)."""
        wanted = sorted({p for p in patients if p})
        found: dict[str, dict[str, list[int]]] = {}
        for start in range(0, len(wanted), 900):  # stay below SQLite's bound-parameter limit
            chunk = wanted[start : start + 900]
            marks = ",".join("?" * len(chunk))
            for patient, cohort, item_id in self.conn.execute(
                f"SELECT patient, cohort, id FROM items WHERE patient IN ({marks}) ORDER BY id", chunk
            ):
                found.setdefault(patient, {}).setdefault(cohort, []).append(int(item_id))
        return found

    def item(self, item_id: int) -> dict | None:
        """One item with its media row's format and size."""
        return self.one(
            "SELECT i.*, m.format, m.height, m.width FROM items i"
            " JOIN media m ON m.sha256 = i.media_sha256 WHERE i.id = ?",
            (item_id,),
        )

    def items(self, modality: str | None = None, cohort: str | None = None) -> list[dict]:
        """Items, optionally of one modality and cohort, in id order."""
        where, params = [], []
        if modality:
            where.append("modality = ?")
            params.append(scale.modality(modality).code)
        if cohort:
            where.append("cohort = ?")
            params.append(scale.cohort(cohort))
        sql = "SELECT * FROM items" + (" WHERE " + " AND ".join(where) if where else "")
        return self.rows(sql + " ORDER BY id", params)

    def has_source(self, source: str) -> bool:
        """Whether any item came from this source (e.g. 'demo')."""
        return self.one("SELECT 1 AS x FROM items WHERE source = ? LIMIT 1", (source,)) is not None

    def set_truth(self, item_id: int, sh: int, pd: int, mask_path: str | None) -> None:
        """Ground truth of a simulated item (never shown to readers; used to check models)."""
        self.conn.execute(
            "INSERT OR REPLACE INTO ground_truth (item_id, sh, pd, mask_path) VALUES (?,?,?,?)",
            (item_id, sh, pd, mask_path),
        )

    def truth(self, item_id: int) -> dict | None:
        """Ground truth of a simulated item, or None for real scans."""
        return self.one("SELECT * FROM ground_truth WHERE item_id = ?", (item_id,))

    def counts(self) -> dict[str, Any]:
        """Project overview: items per modality and cohort, users by role, annotations, references."""
        per = self.rows("SELECT modality, cohort, count(*) AS n FROM items GROUP BY modality, cohort")
        roles = self.rows("SELECT role, count(*) AS n FROM users GROUP BY role")
        return {
            "items": {f"{r['modality']}/{r['cohort']}": r["n"] for r in per},
            "items_total": sum(r["n"] for r in per),
            "users": {r["role"]: r["n"] for r in roles},
            "annotations": self.one("SELECT count(*) AS n FROM annotations")["n"],
            "annotated_items": self.one("SELECT count(DISTINCT item_id) AS n FROM annotations")["n"],
            "reference_labels": self.one("SELECT count(*) AS n FROM current_reference")["n"],
            "media_files": self.one("SELECT count(*) AS n FROM media")["n"],
        }

    # ---------------------------------------------------------------- users
    def add_user(
        self, name: str, role: str, level: str | None = None, password_hash: str | None = None
    ) -> int:
        """Create a user; raises StoreError if the name is taken."""
        try:
            cur = self.conn.execute(
                "INSERT INTO users (name, role, level, password_hash, created_at) VALUES (?,?,?,?,?)",
                (name, role, level, password_hash, utcnow()),
            )
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise StoreError(f"a user named {name!r} already exists") from None
            raise StoreError(f"invalid user: {exc}") from None
        return int(cur.lastrowid)

    def user(self, name: str) -> dict | None:
        """A user by name (case-insensitive)."""
        return self.one("SELECT * FROM users WHERE name = ?", (name,))

    def user_by_id(self, user_id: int) -> dict | None:
        """A user by id."""
        return self.one("SELECT * FROM users WHERE id = ?", (user_id,))

    def users(self) -> list[dict]:
        """All users without their password hashes."""
        return self.rows(
            "SELECT id, name, role, level, active, created_at,"
            " password_hash IS NOT NULL AS can_sign_in FROM users ORDER BY id"
        )

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace a user's password hash."""
        self.conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    # ---------------------------------------------------------------- annotations
    def add_annotation(
        self,
        item_id: int,
        user_id: int,
        sh: int | None,
        pd: int | None = None,
        *,
        not_assessable: bool = False,
        reason: str | None = None,
        seconds: float | None = None,
        created_at: str | None = None,
    ) -> int:
        """Append a reader's grades; the combined EOSS is derived, never typed.

        A second grade of the same item by the same reader is a new row superseding the first.
        """
        item = self.one("SELECT modality FROM items WHERE id = ?", (item_id,))
        if item is None:
            raise StoreError(f"no item {item_id}")
        mod = scale.modality(item["modality"])
        combined = None
        if not_assessable:
            sh = pd = None
            if not reason:
                raise StoreError("'not assessable' needs a reason")
        else:
            sh = scale.check_grade(sh, "SH")
            if mod.doppler:
                if pd is None:
                    raise StoreError(f"a {mod.code} item needs a PD grade as well as SH")
                pd = scale.check_grade(pd, "PD")
                combined = scale.combined(sh, pd)
            else:
                if pd is not None:
                    raise StoreError(f"a {mod.code} item is greyscale: it has no PD grade")
                combined = sh
        with self.transaction() as conn:
            prev = conn.execute(
                "SELECT max(id) FROM annotations WHERE item_id = ? AND user_id = ?", (item_id, user_id)
            ).fetchone()[0]
            cur = conn.execute(
                "INSERT INTO annotations (item_id, user_id, sh, pd, combined, not_assessable,"
                " reason, seconds, supersedes, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    item_id,
                    user_id,
                    sh,
                    pd,
                    combined,
                    int(not_assessable),
                    reason,
                    seconds,
                    prev,
                    created_at or utcnow(),
                ),
            )
        return int(cur.lastrowid)

    def annotation_history(self, item_id: int, user_id: int) -> list[dict]:
        """Every grade this reader gave this item, oldest first."""
        return self.rows(
            "SELECT * FROM annotations WHERE item_id = ? AND user_id = ? ORDER BY id", (item_id, user_id)
        )

    def latest_annotations(self, item_id: int | None = None) -> list[dict]:
        """The grade that counts per (item, reader), with reader name, role and level."""
        sql = (
            "SELECT a.*, u.name AS reader, u.role, u.level FROM latest_annotations a"
            " JOIN users u ON u.id = a.user_id"
        )
        if item_id is not None:
            return self.rows(sql + " WHERE a.item_id = ? ORDER BY a.id", (item_id,))
        return self.rows(sql + " ORDER BY a.item_id, u.name")

    # ---------------------------------------------------------------- reference standard
    def set_reference(
        self, item_id: int, sh: int, pd: int | None, method: str, decided_by: int | None = None
    ) -> int:
        """Append the reference standard for an item (agreement, adjudication or import)."""
        item = self.one("SELECT modality FROM items WHERE id = ?", (item_id,))
        if item is None:
            raise StoreError(f"no item {item_id}")
        mod = scale.modality(item["modality"])
        sh = scale.check_grade(sh, "SH")
        if mod.doppler:
            if pd is None:
                raise StoreError(f"a {mod.code} reference needs a PD grade")
            pd = scale.check_grade(pd, "PD")
            combined = scale.combined(sh, pd)
        else:
            pd, combined = None, sh
        cur = self.conn.execute(
            "INSERT INTO reference_labels (item_id, sh, pd, combined, method, decided_by,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (item_id, sh, pd, combined, method, decided_by, utcnow()),
        )
        return int(cur.lastrowid)

    def reference(self, item_id: int) -> dict | None:
        """The current reference label of an item."""
        return self.one("SELECT * FROM current_reference WHERE item_id = ?", (item_id,))

    def references(self, modality: str | None = None, cohort: str | None = None) -> list[dict]:
        """Current reference labels joined with their items."""
        where, params = [], []
        if modality:
            where.append("i.modality = ?")
            params.append(scale.modality(modality).code)
        if cohort:
            where.append("i.cohort = ?")
            params.append(scale.cohort(cohort))
        sql = (
            "SELECT r.*, i.modality, i.cohort, i.patient, i.media_sha256 FROM current_reference r"
            " JOIN items i ON i.id = r.item_id"
        )
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.item_id"
        return self.rows(sql, params)

    # ---------------------------------------------------------------- export
    def label_rows(self) -> Iterator[dict]:
        """Each reader's current grade per item, with the item's description, for export."""
        sql = (
            "SELECT i.id AS item_id, i.media_sha256, i.modality, i.cohort, i.patient, i.joint,"
            " i.side, u.name AS reader, u.role, u.level, a.sh, a.pd, a.combined,"
            " a.not_assessable, a.reason, a.seconds, a.created_at"
            " FROM latest_annotations a JOIN items i ON i.id = a.item_id"
            " JOIN users u ON u.id = a.user_id ORDER BY i.id, u.name"
        )
        for row in self.conn.execute(sql):
            yield dict(row)

    def reference_rows(self) -> Iterator[dict]:
        """The current reference standard per item, for export."""
        sql = (
            "SELECT i.id AS item_id, i.media_sha256, i.modality, i.cohort, i.patient, i.joint,"
            " i.side, r.sh, r.pd, r.combined, r.method, u.name AS decided_by, r.created_at"
            " FROM current_reference r JOIN items i ON i.id = r.item_id"
            " LEFT JOIN users u ON u.id = r.decided_by ORDER BY i.id"
        )
        for row in self.conn.execute(sql):
            yield dict(row)

    # ---------------------------------------------------------------- audit
    def audit(
        self,
        action: str,
        *,
        user_id: int | None = None,
        target: str | None = None,
        detail: dict | None = None,
    ) -> None:
        """Append who did what, when (the log refuses updates and deletes)."""
        self.conn.execute(
            "INSERT INTO audit_log (at, user_id, action, target, detail_json) VALUES (?,?,?,?,?)",
            (utcnow(), user_id, action, target, json.dumps(detail or {}, sort_keys=True, default=str)),
        )

    def audit_rows(self, limit: int = 200) -> list[dict]:
        """The newest audit entries with the user's name."""
        return self.rows(
            "SELECT l.id, l.at, u.name AS user, l.action, l.target, l.detail_json FROM audit_log l"
            " LEFT JOIN users u ON u.id = l.user_id ORDER BY l.id DESC LIMIT ?",
            (limit,),
        )
