"""SQL of reader calibration: sets of reference-graded items (a target kappa over a window of
reads), their items in order, and each reader's calibration reads. Functions take a ``Store``.

Calibration reads are a table of their own, append-only, one per reader and item: they are never
annotations, so they never reach the labelling queue, agreement, adjudication or the reference
standard. The schema refuses a calibration item without a reference grade, an item that is a
study case, and new items in a set that has reads (migration 005).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from rascore.store.db import utcnow
from rascore.store.store import Store, StoreError


def create_set(
    store: Store,
    *,
    name: str,
    grade: str,
    target_kappa: float,
    window_n: int,
    item_ids: Sequence[int],
    created_by: int | None,
    created_at: str | None = None,
) -> int:
    """Insert a calibration set and its items (positions 0.. in the order given) at once, created
    now unless ``created_at`` is given; its id."""
    try:
        with store.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO calibration_sets (name, grade, target_kappa, window_n, created_by,"
                " created_at) VALUES (?,?,?,?,?,?)",
                (name, grade, float(target_kappa), int(window_n), created_by, created_at or utcnow()),
            )
            set_id = int(cur.lastrowid)
            conn.executemany(
                "INSERT INTO calibration_items (set_id, item_id, position) VALUES (?,?,?)",
                [(set_id, int(item), k) for k, item in enumerate(item_ids)],
            )
    except sqlite3.IntegrityError as exc:
        text = str(exc)
        if "UNIQUE" in text and "calibration_sets.name" in text:
            raise StoreError(f"a calibration set named {name!r} already exists") from None
        raise StoreError(text) from None
    return set_id


def calibration_set(store: Store, set_id: int) -> dict | None:
    """One calibration set with its number of items."""
    return store.one(
        "SELECT s.*, (SELECT count(*) FROM calibration_items c WHERE c.set_id = s.id) AS items"
        " FROM calibration_sets s WHERE s.id = ?",
        (set_id,),
    )


def calibration_sets(store: Store) -> list[dict]:
    """Every calibration set with its number of items, by id."""
    return store.rows(
        "SELECT s.*, (SELECT count(*) FROM calibration_items c WHERE c.set_id = s.id) AS items"
        " FROM calibration_sets s ORDER BY s.id"
    )


def items(store: Store, set_id: int) -> list[dict]:
    """The set's items in position order, with modality and current reference grades."""
    return store.rows(
        "SELECT c.item_id, c.position, i.modality, r.sh AS ref_sh, r.pd AS ref_pd,"
        " r.combined AS ref_combined FROM calibration_items c JOIN items i ON i.id = c.item_id"
        " LEFT JOIN current_reference r ON r.item_id = c.item_id WHERE c.set_id = ?"
        " ORDER BY c.position",
        (set_id,),
    )


def next_unread(store: Store, set_id: int, user_id: int) -> dict | None:
    """The first item of the set, in position order, that this reader has not read."""
    return store.one(
        "SELECT c.item_id, c.position, i.modality FROM calibration_items c JOIN items i"
        " ON i.id = c.item_id WHERE c.set_id = ? AND NOT EXISTS (SELECT 1 FROM calibration_reads d"
        " WHERE d.set_id = c.set_id AND d.item_id = c.item_id AND d.user_id = ?)"
        " ORDER BY c.position LIMIT 1",
        (set_id, user_id),
    )


def add_read(
    store: Store,
    *,
    set_id: int,
    user_id: int,
    item_id: int,
    sh: int,
    pd: int | None,
    combined: int,
    started_at: str | None,
    saved_at: str,
) -> int:
    """Append one calibration read (a second read of the same item is refused); its id."""
    try:
        cur = store.execute(
            "INSERT INTO calibration_reads (set_id, user_id, item_id, sh, pd, combined, started_at,"
            " saved_at) VALUES (?,?,?,?,?,?,?,?)",
            (set_id, user_id, item_id, sh, pd, combined, started_at, saved_at),
        )
    except sqlite3.IntegrityError as exc:
        raise StoreError(str(exc)) from None
    return int(cur.lastrowid)


def reads(store: Store, set_id: int, user_id: int) -> list[dict]:
    """One reader's calibration reads in order, each beside the item's current reference grades."""
    return store.rows(
        "SELECT d.id, d.item_id, i.modality, d.sh, d.pd, d.combined, d.saved_at, r.sh AS ref_sh,"
        " r.pd AS ref_pd, r.combined AS ref_combined FROM calibration_reads d"
        " JOIN items i ON i.id = d.item_id LEFT JOIN current_reference r ON r.item_id = d.item_id"
        " WHERE d.set_id = ? AND d.user_id = ? ORDER BY d.id",
        (set_id, user_id),
    )


def study_case_ids(store: Store, item_ids: Sequence[int]) -> set[int]:
    """Those of ``item_ids`` that are a case of any study."""
    ids = sorted({int(i) for i in item_ids})
    found: set[int] = set()
    for start in range(0, len(ids), 900):  # stay below SQLite's bound-parameter limit
        chunk = ids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        found.update(
            int(r["item_id"])
            for r in store.rows(f"SELECT DISTINCT item_id FROM study_cases WHERE item_id IN ({marks})", chunk)
        )
    return found
