"""Read-only queries behind the Dashboard and Reader-study pages.

``fingerprint`` is polled every few seconds by every open dashboard, so it is gated: SQLite's
``PRAGMA data_version`` (changes when another connection commits) and the connection's own
``total_changes`` are read first (microseconds); only when one of them moved since this
connection's last call is the full fingerprint (max ids and counts) queried again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

_GLOBAL_SQL = (
    "SELECT (SELECT max(id) FROM reference_labels),"
    " (SELECT count(*) FROM items), (SELECT max(id) FROM items),"
    " (SELECT count(*) FROM predictions), (SELECT max(id) FROM predictions),"
    " (SELECT max(created_at) FROM predictions),"
    " (SELECT count(*) FROM model_versions), (SELECT max(id) FROM model_versions),"
    " (SELECT total(length(metrics_json)) FROM model_versions),"
    " (SELECT group_concat(modality || ':' || model_version_id || ':' || changed_at, ',')"
    "  FROM active_models)"
)
_READERS_SQL = (
    ", (SELECT max(id) FROM annotations),"
    " (SELECT group_concat(id || ':' || role || ':' || coalesce(level, '') || ':' ||"
    "  active || ':' || name, ',') FROM users)"
)


def change_token(store) -> tuple[int, int]:
    """(data_version, total_changes) of this thread's connection: equal tokens, nothing committed."""
    conn = store.conn
    return int(conn.execute("PRAGMA data_version").fetchone()[0]), int(conn.total_changes)


def full_fingerprint(store, with_readers: bool = False) -> tuple:
    """Max ids and counts that change whenever labels, models or predictions change."""
    sql = _GLOBAL_SQL + (_READERS_SQL if with_readers else "")
    return tuple(store.conn.execute(sql).fetchone())


def fingerprint(store, with_readers: bool = False) -> tuple:
    """``full_fingerprint``, re-queried only when something was committed since this connection's
    previous call (other connections, other processes, or this one)."""
    local = store.thread_state  # per thread, as the connection itself
    memo = getattr(local, "fingerprints", None)
    if memo is None or getattr(local, "fingerprint_conn", None) is not store.conn:
        memo = local.fingerprints = {}
        local.fingerprint_conn = store.conn
    token = change_token(store)
    hit = memo.get(with_readers)
    if hit is not None and hit[0] == token:
        return hit[1]
    value = full_fingerprint(store, with_readers)
    memo[with_readers] = (token, value)
    return value


def section_fingerprint(store, modality: str, cohort: str, version_ids: Sequence[int]) -> tuple:
    """What one section's figures depend on: its reference rows, each version's predictions."""
    conn = store.conn
    refs = tuple(
        conn.execute(
            "SELECT count(*), max(r.id) FROM reference_labels r JOIN items i ON i.id = r.item_id"
            " WHERE i.modality = ? AND i.cohort = ?",
            (modality, cohort),
        ).fetchone()
    )
    parts: list = [refs]
    for version_id in version_ids:
        preds = tuple(
            conn.execute(
                "SELECT count(*), max(p.id), max(p.created_at) FROM predictions p"
                " JOIN items i ON i.id = p.item_id WHERE p.model_version_id = ? AND i.cohort = ?",
                (version_id, cohort),
            ).fetchone()
        )
        metrics = conn.execute(
            "SELECT metrics_json FROM model_versions WHERE id = ?", (version_id,)
        ).fetchone()
        digest = hashlib.sha1((metrics[0] if metrics else "").encode()).hexdigest()
        parts.append((version_id, preds, digest))
    return tuple(parts)


def held_cohorts(store) -> set[str]:
    """The cohorts that hold at least one item."""
    return {row[0] for row in store.conn.execute("SELECT DISTINCT cohort FROM items")}


def reference_rows(store, modality: str, cohort: str) -> list[tuple[int, int, int]]:
    """(item id, SH, combined) of the current reference labels of one modality and cohort."""
    return store.conn.execute(
        "SELECT r.item_id, r.sh, r.combined FROM current_reference r JOIN items i ON i.id = r.item_id"
        " WHERE i.modality = ? AND i.cohort = ? ORDER BY r.item_id",
        (modality, cohort),
    ).fetchall()


def case_keys(store, modality: str, cohort: str) -> list[tuple]:
    """(item id, file sha256, patient, joint, side) of one modality and cohort."""
    return store.conn.execute(
        "SELECT id, media_sha256, patient, joint, side FROM items WHERE modality = ? AND cohort = ?",
        (modality, cohort),
    ).fetchall()


def predictions(store, version_id: int, cohort: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item ids, predicted grades, (n, 4) probabilities) of a version in a cohort, in item order."""
    rows = store.conn.execute(
        "SELECT p.item_id, p.grade, p.probs_json FROM predictions p JOIN items i ON i.id = p.item_id"
        " WHERE p.model_version_id = ? AND i.cohort = ? ORDER BY p.item_id",
        (version_id, cohort),
    ).fetchall()
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4))
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    grades = np.fromiter((r[1] for r in rows), np.int64, len(rows))
    probs = np.asarray(json.loads("[" + ",".join(r[2] for r in rows) + "]"), dtype=float)
    return ids, grades, probs.reshape(len(rows), -1)


def patients(store, item_ids: Sequence[int]) -> list[str | None]:
    """The patient pseudonym of each item id, in the order given (None where an item has none)."""
    ids = [int(i) for i in item_ids]
    found: dict[int, str | None] = {}
    for start in range(0, len(ids), 900):  # stay below SQLite's bound-parameter limit
        chunk = ids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        found.update(
            store.conn.execute(f"SELECT id, patient FROM items WHERE id IN ({marks})", chunk).fetchall()
        )
    return [found.get(i) for i in ids]


def stored_test_figures(metrics: dict | None, cohort: str) -> dict:
    """A version's stored test figures for one cohort (``metrics["test"]["cohorts"][cohort]``, as
    ``rascore evaluate`` writes them), or {} where there are none."""
    return (((metrics or {}).get("test") or {}).get("cohorts") or {}).get(cohort) or {}
