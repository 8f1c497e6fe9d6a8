"""SQL of the exports: each reader's current grade per item and the current reference standard,
each row with the item's description. Functions take a ``Store`` and yield dicts, so a large
export is streamed rather than held twice.
"""

from __future__ import annotations

from collections.abc import Iterator

from rascore.store.store import Store


def label_rows(store: Store) -> Iterator[dict]:
    """Each reader's current grade per item, with the item's description."""
    sql = (
        "SELECT i.id AS item_id, i.media_sha256, i.modality, i.cohort, i.patient, i.joint,"
        " i.side, u.name AS reader, u.role, u.level, a.sh, a.pd, a.combined,"
        " a.not_assessable, a.reason, a.seconds, a.created_at"
        " FROM latest_annotations a JOIN items i ON i.id = a.item_id"
        " JOIN users u ON u.id = a.user_id ORDER BY i.id, u.name"
    )
    for row in store.conn.execute(sql):
        yield dict(row)


def reference_rows(store: Store) -> Iterator[dict]:
    """The current reference standard per item, with the item's description and who decided it."""
    sql = (
        "SELECT i.id AS item_id, i.media_sha256, i.modality, i.cohort, i.patient, i.joint,"
        " i.side, r.sh, r.pd, r.combined, r.method, u.name AS decided_by, r.created_at"
        " FROM current_reference r JOIN items i ON i.id = r.item_id"
        " LEFT JOIN users u ON u.id = r.decided_by ORDER BY i.id"
    )
    for row in store.conn.execute(sql):
        yield dict(row)
