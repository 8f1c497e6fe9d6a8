"""Model registry queries: numbered versions per modality, the active one, and stored predictions.

Promotion is one ``BEGIN IMMEDIATE`` transaction: the new version's row, the comparison with the
active version and the switch of ``active_models`` either all happen or none does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from rascore import scale
from rascore.store.db import utcnow
from rascore.store.store import Store, StoreError

ACTIVATE_POLICIES: tuple[str, ...] = ("if-better", "always", "never")


def _decode(row: dict | None) -> dict | None:
    if row is None:
        return None
    row = dict(row)
    row["metrics"] = json.loads(row.pop("metrics_json") or "{}")
    if "active" in row:
        row["active"] = bool(row["active"])
    return row


def _select(where: str = "") -> str:
    return (
        "SELECT v.*, (a.model_version_id IS NOT NULL) AS active FROM model_versions v"
        " LEFT JOIN active_models a ON a.model_version_id = v.id" + where
    )


def validation_auc(metrics: dict) -> float:
    """The figure promotion compares: validation macro AUC (NaN when absent)."""
    value = (metrics or {}).get("validation", {}).get("macro_auc")
    return float(value) if value is not None else math.nan


def max_version(store: Store, modality: str) -> int:
    """Highest version number registered for a modality (0 when none)."""
    row = store.conn.execute(
        "SELECT max(version) FROM model_versions WHERE modality = ?", (scale.modality(modality).code,)
    ).fetchone()
    return int(row[0] or 0)


def register_version(
    store: Store,
    *,
    modality: str,
    version: int,
    path: str,
    card_path: str | None,
    preset: str | None,
    architecture: str | None,
    metrics: dict,
    job_id: int | None = None,
    activate: str = "if-better",
    user_id: int | None = None,
) -> tuple[int, bool]:
    """Insert a model version and, in the same transaction, make it active when the policy says so.

    ``if-better``: when no version is active or its validation macro AUC is >= the active one's;
    ``always``; ``never``. Returns (model_version_id, activated).
    """
    if activate not in ACTIVATE_POLICIES:
        raise StoreError(f"activate must be one of {', '.join(ACTIVATE_POLICIES)}")
    code = scale.modality(modality).code
    with store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO model_versions (modality, version, path, card_path, preset, architecture,"
            " metrics_json, job_id, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                code,
                version,
                path,
                card_path,
                preset,
                architecture,
                json.dumps(metrics, sort_keys=True, default=str),
                job_id,
                utcnow(),
            ),
        )
        new_id = int(cur.lastrowid)
        current = _decode(
            store.one(
                "SELECT v.* FROM active_models a JOIN model_versions v ON v.id = a.model_version_id"
                " WHERE a.modality = ?",
                (code,),
            )
        )
        if activate == "always" or current is None:
            promote = activate != "never"
        elif activate == "never":
            promote = False
        else:
            new, old = validation_auc(metrics), validation_auc(current["metrics"])
            promote = math.isnan(old) or (not math.isnan(new) and new >= old)
        if promote:
            _set_active(conn, code, new_id)
        store.audit(
            "model.register",
            user_id=user_id,
            target=f"{code}/v{version}",
            detail={"model_version_id": new_id, "activated": promote, "job_id": job_id},
        )
    return new_id, promote


def _set_active(conn, modality: str, model_version_id: int) -> None:
    conn.execute(
        "INSERT INTO active_models (modality, model_version_id, changed_at) VALUES (?,?,?)"
        " ON CONFLICT(modality) DO UPDATE SET model_version_id = excluded.model_version_id,"
        " changed_at = excluded.changed_at",
        (modality, model_version_id, utcnow()),
    )


def activate_version(store: Store, modality: str, version: int, user_id: int | None = None) -> dict:
    """Make an existing version the active one of its modality (one transaction)."""
    code = scale.modality(modality).code
    with store.transaction() as conn:
        row = get_version(store, code, version)
        if row is None:
            raise StoreError(f"no {code} model version {version}")
        _set_active(conn, code, row["id"])
        store.audit("model.activate", user_id=user_id, target=f"{code}/v{version}")
    return row


def get_version(store: Store, modality: str, version: int) -> dict | None:
    """One version of a modality, with ``metrics`` decoded and ``active``."""
    return _decode(
        store.one(
            _select(" WHERE v.modality = ? AND v.version = ?"), (scale.modality(modality).code, int(version))
        )
    )


def get_version_by_id(store: Store, model_version_id: int) -> dict | None:
    """One version by its row id."""
    return _decode(store.one(_select(" WHERE v.id = ?"), (model_version_id,)))


def active_version(store: Store, modality: str) -> dict | None:
    """The active version of a modality, or None."""
    return _decode(store.one(_select(" WHERE a.modality = ?"), (scale.modality(modality).code,)))


def list_versions(store: Store, modality: str | None = None) -> list[dict]:
    """Every version (optionally of one modality), newest first within a modality."""
    if modality:
        rows = store.rows(
            _select(" WHERE v.modality = ? ORDER BY v.version DESC"), (scale.modality(modality).code,)
        )
    else:
        rows = store.rows(_select(" ORDER BY v.modality, v.version DESC"))
    return [_decode(r) for r in rows]


def update_metrics(store: Store, model_version_id: int, metrics: dict) -> None:
    """Replace a version's stored metrics (after a re-evaluation on the test cohorts)."""
    store.conn.execute(
        "UPDATE model_versions SET metrics_json = ? WHERE id = ?",
        (json.dumps(metrics, sort_keys=True, default=str), model_version_id),
    )


def save_predictions(store: Store, model_version_id: int, predictions: Iterable[tuple]) -> int:
    """Store (item_id, grade, probabilities[, crop]) per item for a version, replacing earlier ones.

    ``crop``: "crop", "fallback" or "none" (rascore.train.roi), how the network saw the item.
    """
    now = utcnow()
    rows = [
        (
            int(p[0]),
            model_version_id,
            int(p[1]),
            json.dumps([float(v) for v in p[2]]),
            p[3] if len(p) > 3 else None,
            now,
        )
        for p in predictions
    ]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO predictions (item_id, model_version_id, grade, probs_json, crop, created_at)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT(item_id, model_version_id) DO UPDATE SET"
            " grade = excluded.grade, probs_json = excluded.probs_json, crop = excluded.crop,"
            " created_at = excluded.created_at",
            rows,
        )
    return len(rows)


def get_predictions(store: Store, model_version_id: int, cohort: str | None = None) -> list[dict]:
    """Stored predictions of a version (with the item's cohort), probabilities decoded."""
    sql = (
        "SELECT p.item_id, p.grade, p.probs_json, p.crop, p.created_at, i.cohort, i.modality"
        " FROM predictions p JOIN items i ON i.id = p.item_id WHERE p.model_version_id = ?"
    )
    params: list = [model_version_id]
    if cohort:
        sql += " AND i.cohort = ?"
        params.append(scale.cohort(cohort))
    rows = store.rows(sql + " ORDER BY p.item_id", params)
    for row in rows:
        row["probs"] = json.loads(row.pop("probs_json"))
    return rows
