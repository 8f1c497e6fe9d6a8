"""The model versions: numbered versions per modality, the active one, promotion, and predictions.

This is the versions layer (torch-free, so the pages and the command line use it directly);
rascore.train.versions writes a version's files and calls ``register_version`` here. Every change
of the active version is one ``BEGIN IMMEDIATE`` transaction with one audit row:
``model.register`` (a new version, activated or not by the policy), ``model.promote`` (a chosen
version) or ``model.rollback`` (the one before the active one). The promotion policy is a project
setting, read here, applied here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from rascore import scale
from rascore.names import ACTIVATE_POLICIES, DEFAULT_POLICY, PROMOTION_POLICIES
from rascore.store.db import utcnow
from rascore.store.settings import get_setting, set_setting
from rascore.store.store import Store, StoreError

PROMOTION_SETTING = "promotion_policy"


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
    return int(
        store.value(
            "SELECT max(version) FROM model_versions WHERE modality = ?", (scale.modality(modality).code,)
        )
        or 0
    )


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

    ``activate`` is one of ``ACTIVATE_POLICIES`` (``should_activate``). Returns
    (model_version_id, activated).
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
        current = active_version(store, code)
        promote = should_activate(activate, metrics, current["metrics"] if current else None)
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


def should_activate(policy: str, metrics: dict, active_metrics: dict | None) -> bool:
    """Whether a new version with ``metrics`` becomes active under ``policy``.

    ``never``: no; ``always``: yes; ``if-better``: when no version is active, or the active one
    has no validation macro AUC, or the new one's is at least the active one's.
    """
    if policy == "never":
        return False
    if policy == "always" or active_metrics is None:
        return True
    new, old = validation_auc(metrics), validation_auc(active_metrics)
    return math.isnan(old) or (not math.isnan(new) and new >= old)


def promote_version(store: Store, modality: str, version: int, user_id: int | None = None) -> dict:
    """Make an existing version the active one of its modality: one transaction, one audit row
    (``model.promote``). StoreError when there is no such version or it is already active."""
    code = scale.modality(modality).code
    with store.transaction() as conn:
        target = get_version(store, code, int(version))
        if target is None:
            raise StoreError(f"There is no {code} version {version}.")
        current = active_version(store, code)
        if current is not None and current["id"] == target["id"]:
            raise StoreError(f"{code} v{version} is already the active model.")
        return _switch(store, conn, "model.promote", code, current, target, user_id)


def rollback_version(store: Store, modality: str, user_id: int | None = None) -> dict:
    """Activate the newest version older (by number) than the active one: one transaction, one
    audit row (``model.rollback``). StoreError when none is active or the active one is the oldest."""
    code = scale.modality(modality).code
    with store.transaction() as conn:
        current = active_version(store, code)
        if current is None:
            raise StoreError(f"No {code} version is active: there is nothing to roll back.")
        earlier = [r for r in list_versions(store, code) if r["version"] < current["version"]]
        if not earlier:
            raise StoreError(
                f"{code} v{current['version']} is the oldest version: there is no earlier one to go back to."
            )
        return _switch(store, conn, "model.rollback", code, current, earlier[0], user_id)


def _switch(
    store: Store, conn, action: str, code: str, current: dict | None, target: dict, user_id: int | None
) -> dict:
    """Point ``active_models`` at ``target`` and audit it (inside the caller's transaction)."""
    _set_active(conn, code, target["id"])
    moved = {"from": current["version"] if current else None, "to": target["version"]}
    store.audit(action, user_id=user_id, target=f"{code}/v{target['version']}", detail=moved)
    return {"modality": code, **moved}


def promotion_policy(store: Store) -> str:
    """The project's promotion policy for new versions (``PROMOTION_POLICIES``; ``if-better`` unset)."""
    value = get_setting(store, PROMOTION_SETTING, DEFAULT_POLICY)
    return value if value in PROMOTION_POLICIES else DEFAULT_POLICY


def set_promotion_policy(store: Store, value: str, user_id: int | None = None) -> None:
    """Set the project's promotion policy (audited as a setting); StoreError for an unknown one."""
    if value not in PROMOTION_POLICIES:
        raise StoreError(f"The promotion policy must be one of {', '.join(PROMOTION_POLICIES)}.")
    set_setting(store, PROMOTION_SETTING, value, user_id=user_id)


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
    store.execute(
        "UPDATE model_versions SET metrics_json = ? WHERE id = ?",
        (json.dumps(metrics, sort_keys=True, default=str), model_version_id),
    )


def save_predictions(store: Store, model_version_id: int, predictions: Iterable[tuple]) -> int:
    """Store (item_id, grade, probabilities[, crop[, shift score, out of distribution]]) per item
    for a version, replacing earlier ones.

    ``crop``: "crop", "fallback" or "none" (rascore.train.roi), how the network saw the item;
    the shift score and flag (rascore.train.shift) are None where the model has no reference.
    """
    now = utcnow()
    rows = [
        (
            int(p[0]),
            model_version_id,
            int(p[1]),
            json.dumps([float(v) for v in p[2]]),
            p[3] if len(p) > 3 else None,
            None if len(p) <= 4 or p[4] is None else float(p[4]),
            None if len(p) <= 5 or p[5] is None else int(bool(p[5])),
            now,
        )
        for p in predictions
    ]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO predictions (item_id, model_version_id, grade, probs_json, crop, shift_score,"
            " out_of_distribution, created_at) VALUES (?,?,?,?,?,?,?,?)"
            " ON CONFLICT(item_id, model_version_id) DO UPDATE SET"
            " grade = excluded.grade, probs_json = excluded.probs_json, crop = excluded.crop,"
            " shift_score = excluded.shift_score, out_of_distribution = excluded.out_of_distribution,"
            " created_at = excluded.created_at",
            rows,
        )
    return len(rows)


def get_predictions(store: Store, model_version_id: int, cohort: str | None = None) -> list[dict]:
    """Stored predictions of a version (with the item's cohort), probabilities decoded."""
    sql = (
        "SELECT p.item_id, p.grade, p.probs_json, p.crop, p.shift_score, p.out_of_distribution,"
        " p.created_at, i.cohort, i.modality"
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
