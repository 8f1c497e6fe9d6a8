"""SQL of the exports: each reader's current grade per item and the current reference standard,
each row with the item's description, and every current combined grade (readers, reference,
active models) of the power Doppler items, for the patient-level GLOESS. Functions take a
``Store`` and yield dicts, so a large export is streamed rather than held twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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


def combined_grade_rows(store: Store, modalities: Sequence[str], cohort: str | None = None) -> Iterator[dict]:
    """Every current combined grade of the items of ``modalities`` (optionally one cohort), with
    the item's patient, joint and side and who gave it: ``source`` "reader" (each reader's latest
    grade; ``reader`` names them; a not-assessable grade has ``combined`` NULL), "reference" (the
    current reference standard) or "model" (the stored predicted grade of the modality's active
    version; ``version`` numbers it)."""
    item = "i.patient, i.cohort, i.modality, i.joint, i.side"
    where = f"i.modality IN ({','.join('?' * len(modalities))})" + (" AND i.cohort = ?" if cohort else "")
    params = [*modalities, *([cohort] if cohort else [])]
    queries = (
        f"SELECT {item}, 'reader' AS source, u.name AS reader, NULL AS version, a.combined"
        " FROM latest_annotations a JOIN items i ON i.id = a.item_id JOIN users u ON u.id = a.user_id"
        f" WHERE {where} ORDER BY i.id, u.name",
        f"SELECT {item}, 'reference' AS source, NULL AS reader, NULL AS version, r.combined"
        f" FROM current_reference r JOIN items i ON i.id = r.item_id WHERE {where} ORDER BY i.id",
        f"SELECT {item}, 'model' AS source, NULL AS reader, v.version, p.grade AS combined"
        " FROM active_models m JOIN model_versions v ON v.id = m.model_version_id"
        " JOIN predictions p ON p.model_version_id = v.id JOIN items i ON i.id = p.item_id"
        f" WHERE i.modality = v.modality AND {where} ORDER BY v.modality, i.id",
    )
    for sql in queries:
        for row in store.conn.execute(sql, params):
            yield dict(row)
