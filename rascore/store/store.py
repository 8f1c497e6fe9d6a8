"""The project store: one SQLite file, one connection per thread; items, media, annotations, the
reference standard and the audit log.

Every write of the product goes through one path, :meth:`Store.transaction` (a context manager),
:meth:`Store.write` (a function run inside it, after Datasette's ``execute_write_fn``) or
:meth:`Store.execute` (one statement). It runs in ``BEGIN IMMEDIATE``, waits out other writers up
to the busy timeout, and turns SQLite's "database is locked" into :class:`StoreBusy` with a message
a person can act on: the one place where busy handling lives. Reads go through :meth:`Store.rows`,
:meth:`Store.one` and :meth:`Store.value`. Annotations, reference labels and the audit log are
append-only. SQL lives in this package only, in modules named for what they hold (``accounts``,
``settings``, ``labelling``, ``exports``, ``results``, ``jobs``, ``registry``, ``inventory``,
``studies``, ``calibration``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

from rascore import scale
from rascore.store import migrations
from rascore.store.db import connect, is_locked, utcnow, write_transaction

T = TypeVar("T")

BUSY = "The database is busy (locked by another write); nothing was saved. Try again in a moment."
NEEDS_REASON = "Say why the item is not assessable (a reason is needed)."

Params = Iterable[Any] | Mapping[str, Any]


def _bind(params: Params) -> tuple | Mapping[str, Any]:
    """Positional parameters as a tuple; named ones (``:name``) as the mapping itself."""
    return params if isinstance(params, Mapping) else tuple(params)


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
            # the schema's own transaction (BEGIN IMMEDIATE on the raw connection, in migrations.py):
            # it runs before this Store is usable and must not depend on it
            migrations.apply(self.conn)

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (Streamlit runs sessions on parallel threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
        return conn

    @property
    def thread_state(self) -> threading.local:
        """Per-thread scratch space beside this thread's connection (readers memoise into it)."""
        return self._local

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

    def execute(self, sql: str, params: Params = (), *, busy: str = BUSY) -> sqlite3.Cursor:
        """One write statement through the write path; the cursor gives ``lastrowid``/``rowcount``.

        Inside an open transaction it simply joins it: one statement is atomic on its own, so it
        needs no savepoint of its own.
        """
        if self.conn.in_transaction:
            return self.conn.execute(sql, _bind(params))
        with self.transaction(busy) as conn:
            return conn.execute(sql, _bind(params))

    # ---------------------------------------------------------------- reads
    def rows(self, sql: str, params: Params = ()) -> list[dict]:
        """Every row of a read query, as dicts."""
        return [dict(r) for r in self.conn.execute(sql, _bind(params))]

    def one(self, sql: str, params: Params = ()) -> dict | None:
        """The first row of a read query as a dict, or None."""
        row = self.conn.execute(sql, _bind(params)).fetchone()
        return dict(row) if row is not None else None

    def value(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row of a read query, or None."""
        row = self.conn.execute(sql, _bind(params)).fetchone()
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
        cur = self.execute(
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
        cur = self.execute(
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
            for row in self.rows(
                f"SELECT patient, cohort, id FROM items WHERE patient IN ({marks}) ORDER BY id", chunk
            ):
                found.setdefault(row["patient"], {}).setdefault(row["cohort"], []).append(int(row["id"]))
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
        self.execute(
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

    # ---------------------------------------------------------------- annotations
    def add_annotation(
        self,
        item_id: int,
        user_id: int,
        sh: int | None,
        pd: int | None = None,
        *,
        modality: str | None = None,
        supersedes: int | None | Literal["latest"] = "latest",
        not_assessable: bool = False,
        reason: str | None = None,
        seconds: float | None = None,
        created_at: str | None = None,
    ) -> int:
        """Append a reader's grades, checked by ``scale.check_pair``; the combined EOSS is derived.

        A second grade of the same item by the same reader is a new row superseding the first. A
        caller that has read the item and the reader's previous grade passes ``modality`` and
        ``supersedes`` (its id, or None); otherwise the item is read here and the previous grade
        is found by the INSERT itself.
        """
        if not_assessable:
            if not reason:
                raise StoreError(NEEDS_REASON)
            sh = pd = combined = None
        else:
            combined = scale.check_pair(modality or self._modality(item_id), sh, pd)
            sh, pd = int(sh), None if pd is None else int(pd)
        latest = "(SELECT max(id) FROM annotations WHERE item_id = :item AND user_id = :user)"
        cur = self.execute(
            "INSERT INTO annotations (item_id, user_id, sh, pd, combined, not_assessable, reason,"
            " seconds, supersedes, created_at) VALUES (:item, :user, :sh, :pd, :combined, :na,"
            f" :reason, :seconds, {latest if supersedes == 'latest' else ':supersedes'}, :at)",
            {
                "item": item_id,
                "user": user_id,
                "sh": sh,
                "pd": pd,
                "combined": combined,
                "na": int(not_assessable),
                "reason": reason,
                "seconds": seconds,
                "supersedes": supersedes,
                "at": created_at or utcnow(),
            },
        )
        return int(cur.lastrowid)

    def _modality(self, item_id: int) -> str:
        """An item's modality code, or StoreError when there is no such item."""
        modality = self.value("SELECT modality FROM items WHERE id = ?", (item_id,))
        if modality is None:
            raise StoreError(f"no item {item_id}")
        return modality

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
        self,
        item_id: int,
        sh: int,
        pd: int | None,
        method: str,
        decided_by: int | None = None,
        *,
        modality: str | None = None,
    ) -> int:
        """Append the reference standard for an item (agreement, adjudication or import), checked by
        ``scale.check_pair``; ``modality`` spares the item read when the caller has the item."""
        combined = scale.check_pair(modality or self._modality(item_id), sh, pd)
        cur = self.execute(
            "INSERT INTO reference_labels (item_id, sh, pd, combined, method, decided_by,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (item_id, int(sh), None if pd is None else int(pd), combined, method, decided_by, utcnow()),
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
            "SELECT r.*, i.modality, i.cohort, i.patient, i.media_sha256, i.source FROM current_reference r"
            " JOIN items i ON i.id = r.item_id"
        )
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.item_id"
        return self.rows(sql, params)

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
        self.execute(
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
