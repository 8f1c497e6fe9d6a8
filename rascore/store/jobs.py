"""SQL of the durable job queue: submit, claim, heartbeat, cancel, finish, recover stale claims.

Staleness is decided here alone (``stale_for``): a running job whose heartbeat is older than
``STALE_AFTER_S``, twelve of the worker's heartbeat intervals, has lost its worker. The command
line, the Train page and the worker's recovery all ask this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, UTC
from typing import Any

from rascore.store.db import utcnow
from rascore.store.store import Store, StoreError

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL = ("succeeded", "failed", "cancelled")
HEARTBEAT_S = 5.0  # how often a worker writes a running job's heartbeat (rascore worker --heartbeat)
STALE_AFTER_S = 12 * HEARTBEAT_S  # twelve heartbeats missed: the job's worker is gone


def _decode(row: dict | None) -> dict | None:
    if row is None:
        return None
    for key in ("params", "progress"):
        row[key] = json.loads(row.pop(f"{key}_json") or "{}")
    return row


def submit(
    store: Store, kind: str, modality: str | None, params: dict[str, Any], created_by: int | None = None
) -> int:
    """Queue a job (audited); returns its id."""
    with store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO jobs (kind, modality, params_json, created_by, created_at) VALUES (?,?,?,?,?)",
            (kind, modality, json.dumps(params, sort_keys=True), created_by, utcnow()),
        )
        job_id = int(cur.lastrowid)
        store.audit(
            "job.submit",
            user_id=created_by,
            target=str(job_id),
            detail={"kind": kind, "modality": modality, **params},
        )
    return job_id


def get(store: Store, job_id: int) -> dict | None:
    """One job with its params and progress decoded."""
    return _decode(store.one("SELECT * FROM jobs WHERE id = ?", (job_id,)))


def listing(
    store: Store, limit: int = 50, status: str | None = None, modality: str | None = None
) -> list[dict]:
    """Newest jobs first."""
    where, params = [], []
    if status:
        where.append("status = ?")
        params.append(status)
    if modality:
        where.append("modality = ?")
        params.append(modality)
    sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
    rows = store.rows(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
    return [_decode(r) for r in rows]


def request_cancel(store: Store, job_id: int, user_id: int | None = None) -> str:
    """Cancel a queued job at once, or flag a running one (the worker stops between steps)."""
    with store.transaction() as conn:
        job = store.one("SELECT status FROM jobs WHERE id = ?", (job_id,))
        if job is None:
            raise StoreError(f"no job {job_id}")
        status = job["status"]
        if status == "queued":
            conn.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ?,"
                " error = 'cancelled before it started' WHERE id = ?",
                (utcnow(), job_id),
            )
            status = "cancelled"
        elif status == "running":
            conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            status = "cancelling"
        else:
            return status
        store.audit("job.cancel", user_id=user_id, target=str(job_id))
    return status


def cancel_requested(store: Store, job_id: int) -> bool:
    """Whether someone asked this job to stop."""
    row = store.one("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,))
    return bool(row and row["cancel_requested"])


def claim(store: Store, worker: str, kinds: tuple[str, ...] = ("train",)) -> dict | None:
    """Atomically take the oldest queued job (two workers never get the same one)."""
    marks = ",".join("?" * len(kinds))
    with store.transaction() as conn:
        row = store.one(
            f"SELECT id FROM jobs WHERE status = 'queued' AND kind IN ({marks}) ORDER BY id LIMIT 1", kinds
        )
        if row is None:
            return None
        now = utcnow()
        cur = conn.execute(
            "UPDATE jobs SET status = 'running', worker = ?, started_at = ?, heartbeat_at = ?"
            " WHERE id = ? AND status = 'queued'",
            (worker, now, now, row["id"]),
        )
        if cur.rowcount != 1:  # pragma: no cover - BEGIN IMMEDIATE makes this impossible
            return None
    return get(store, row["id"])


def heartbeat(store: Store, job_id: int, progress: dict | None = None, log_tail: str | None = None) -> None:
    """Prove the worker is alive; optionally record progress and the log's tail."""
    sets, params = ["heartbeat_at = ?"], [utcnow()]
    if progress is not None:
        sets.append("progress_json = ?")
        params.append(json.dumps(progress, sort_keys=True, default=float))
    if log_tail is not None:
        sets.append("log_tail = ?")
        params.append(log_tail)
    store.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND status = 'running'", (*params, job_id))


def finish(
    store: Store,
    job_id: int,
    status: str,
    *,
    error: str | None = None,
    model_version_id: int | None = None,
    log_tail: str | None = None,
) -> None:
    """Close a running job as succeeded, failed or cancelled."""
    if status not in FINAL:
        raise StoreError(f"not a final status: {status}")
    with store.transaction() as conn:
        conn.execute(
            "UPDATE jobs SET status = ?, error = ?, model_version_id = coalesce(?, model_version_id),"
            " log_tail = coalesce(?, log_tail), finished_at = ? WHERE id = ?",
            (status, error, model_version_id, log_tail, utcnow(), job_id),
        )
        store.audit(f"job.{status}", target=str(job_id), detail={"error": error} if error else {})


def age_s(stamp: str | None, now: datetime | None = None) -> float | None:
    """Seconds since a timestamp of the store (None when there is none)."""
    if not stamp:
        return None
    then = datetime.fromisoformat(stamp)
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, ((now or datetime.now(UTC)) - then).total_seconds())


def heartbeat_age_s(job: Mapping, now: datetime | None = None) -> float | None:
    """Seconds since a running job's last heartbeat (since its start if it has none); None otherwise."""
    if job["status"] != "running":
        return None
    return age_s(job.get("heartbeat_at") or job.get("started_at") or job.get("created_at"), now)


def stale_for(
    job: Mapping, now: datetime | None = None, stale_after_s: float = STALE_AFTER_S
) -> float | None:
    """Seconds without a heartbeat when a running job's worker seems gone, else None."""
    age = heartbeat_age_s(job, now)
    if age is None or age <= stale_after_s:
        return None
    return age


def stale_note(seconds: float) -> str:
    """How a stale job is described: "no heartbeat for N s"."""
    return f"no heartbeat for {seconds:.0f} s"


def recover_stale(store: Store, stale_after_s: float = STALE_AFTER_S, requeue: bool = False) -> list[int]:
    """Running jobs whose heartbeat stopped (``stale_for``): failed with a reason, or queued again."""
    recovered = []
    with store.transaction() as conn:
        now = datetime.now(UTC)
        rows = store.rows("SELECT * FROM jobs WHERE status = 'running'")
        for row in rows:
            if stale_for(row, now, stale_after_s) is None:
                continue
            recovered.append(row["id"])
            reason = (
                f"the worker {row['worker']} stopped (no heartbeat since "
                f"{row['heartbeat_at']}); the active model was not changed"
            )
            if requeue:
                conn.execute(
                    "UPDATE jobs SET status = 'queued', worker = NULL, started_at = NULL,"
                    " heartbeat_at = NULL, error = ? WHERE id = ?",
                    (reason, row["id"]),
                )
            else:
                conn.execute(
                    "UPDATE jobs SET status = 'failed', error = ?, finished_at = ? WHERE id = ?",
                    (reason, utcnow(), row["id"]),
                )
            store.audit(
                "job.recovered", target=str(row["id"]), detail={"requeued": requeue, "worker": row["worker"]}
            )
    return recovered
