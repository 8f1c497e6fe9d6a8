"""SQL of instances pulled from a PACS (``rascore.pacs``): which keyed SOP Instance UID hashes are
in, and what a push sends back for them. Functions take a ``Store``.

Only ``HMAC-SHA256(project key, SOP Instance UID)`` is stored, never the UID: the map from an
item back to the hospital's UIDs lives in a private file outside the data folder
(``rascore.pacs.uid_map``).
"""

from __future__ import annotations

from collections.abc import Iterable

from rascore.store.db import utcnow
from rascore.store.store import Store


def imported(store: Store, uid_hashes: Iterable[str], modality: str) -> set[str]:
    """The hashes among ``uid_hashes`` already pulled for ``modality``."""
    wanted = sorted(set(uid_hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), 900):  # below SQLite's bound-parameter limit
        chunk = wanted[start : start + 900]
        marks = ",".join("?" * len(chunk))
        found.update(
            row["uid_hash"]
            for row in store.rows(
                f"SELECT uid_hash FROM pacs_instances WHERE modality = ? AND uid_hash IN ({marks})",
                (modality, *chunk),
            )
        )
    return found


def record(store: Store, uid_hash: str, modality: str, item_id: int) -> None:
    """Mark an instance as pulled (call inside the transaction that records its item)."""
    store.execute(
        "INSERT OR IGNORE INTO pacs_instances (uid_hash, modality, item_id, imported_at) VALUES (?,?,?,?)",
        (uid_hash, modality, item_id, utcnow()),
    )


def all_hashes(store: Store) -> set[str]:
    """Every pulled instance's hash (any modality)."""
    return {row["uid_hash"] for row in store.rows("SELECT DISTINCT uid_hash FROM pacs_instances")}


def results_to_push(store: Store, modality: str) -> list[dict]:
    """Per pulled instance of ``modality`` with a reference grade or a prediction of the active
    model: ``uid_hash``, ``item_id``, the reference (``ref_sh``, ``ref_pd``, ``ref_combined``,
    ``ref_method``; None without one) and the active model's (``model_version``, ``model_grade``,
    ``probs_json``; None without a prediction)."""
    return store.rows(
        "SELECT p.uid_hash, p.item_id, r.sh AS ref_sh, r.pd AS ref_pd, r.combined AS ref_combined,"
        " r.method AS ref_method, v.version AS model_version, pr.grade AS model_grade, pr.probs_json"
        " FROM pacs_instances p"
        " LEFT JOIN current_reference r ON r.item_id = p.item_id"
        " LEFT JOIN active_models a ON a.modality = p.modality"
        " LEFT JOIN model_versions v ON v.id = a.model_version_id"
        " LEFT JOIN predictions pr ON pr.item_id = p.item_id AND pr.model_version_id = a.model_version_id"
        " WHERE p.modality = ? AND (r.item_id IS NOT NULL OR pr.id IS NOT NULL)"
        " ORDER BY p.item_id",
        (modality,),
    )
