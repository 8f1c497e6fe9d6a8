"""SQL of labelling and adjudication: the queue and its leases, a reader's grading history, the
model's suggestion, expert disagreements and pairwise grade data. Functions take a ``Store``.

The queue serves items in a stable total order, (phase, confidence, item id): phase 0 holds items
with a prediction from their modality's active model, least confident first (an expression index
on ``predictions`` serves it); phase 1 the rest by id. A caller passes the position of the last
item it was served, so the next query starts there instead of re-reading what is done.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC

from rascore.store.migrations import CONFIDENCE_SQL
from rascore.store.store import Store


def iso(moment: datetime) -> str:
    """A datetime in the store's one text format (see ``utcnow``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def now_utc() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


@dataclass(frozen=True, order=True)
class Position:
    """Where an item sits in the queue order: (phase, confidence, item id)."""

    phase: int
    confidence: float
    item_id: int


START = Position(-1, 0.0, 0)


@dataclass(frozen=True)
class QueueScope:
    """Which items a queue covers, and how many readers may grade one item (None: everyone)."""

    modalities: tuple[str, ...]
    cohort: str | None = None
    max_readers: int | None = None


def _avail(scope: QueueScope, alias: str) -> str:
    """Capacity clause: other readers' grades plus their live leases stay below max_readers."""
    if scope.max_readers is None:
        return ""
    sql = (
        f" AND ((SELECT count(DISTINCT g.user_id) FROM annotations g WHERE g.item_id = {alias}"
        f" AND g.user_id != :user) + (SELECT count(*) FROM reservations r WHERE r.item_id = {alias}"
        f" AND r.user_id != :user AND r.expires_at > :now)) < :max_readers"
    )
    return sql


def _not_reserved(alias: str) -> str:
    """Items a study or a calibration set holds stay out of the ordinary queue and the atlas: a
    calibration read shows the reference grade, and a study case read in the queue first (or
    after, with the model's help seen), or seen in the atlas beside its reference grade, would
    no longer be a blind read."""
    return (
        f" AND NOT EXISTS (SELECT 1 FROM calibration_items c WHERE c.item_id = {alias})"
        f" AND NOT EXISTS (SELECT 1 FROM study_cases s WHERE s.item_id = {alias})"
    )


def active_versions(store: Store, modalities: Iterable[str]) -> dict[str, int]:
    """Active model version id per modality, for those that have one."""
    mods = tuple(modalities)
    if not mods:
        return {}
    marks = ",".join("?" * len(mods))
    rows = store.rows(
        f"SELECT modality, model_version_id FROM active_models WHERE modality IN ({marks})", mods
    )
    return {r["modality"]: int(r["model_version_id"]) for r in rows}


def first_available(
    store: Store, user_id: int, scope: QueueScope, after: Position, now: str
) -> Position | None:
    """The first item after ``after`` in queue order that this reader may grade now, or None."""
    params = {"user": user_id, "now": now, "max_readers": scope.max_readers, "cohort": scope.cohort}
    cohort_sql = " AND i.cohort = :cohort" if scope.cohort else ""
    versions = active_versions(store, scope.modalities)
    if after.phase <= 0 and versions:
        avail = _avail(scope, "p.item_id")
        best: Position | None = None
        for version_id in versions.values():
            if after.phase < 0:
                bound = ""
            else:
                bound = f" AND ({CONFIDENCE_SQL}, p.item_id) > (:conf, :after_id)"
            row = store.one(
                f"SELECT p.item_id, {CONFIDENCE_SQL} AS confidence FROM predictions p"
                f" JOIN items i ON i.id = p.item_id"
                f" WHERE p.model_version_id = :version{bound}{cohort_sql}"
                f" AND {CONFIDENCE_SQL} IS NOT NULL"
                " AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.user_id = :user"
                f" AND a.item_id = p.item_id){_not_reserved('p.item_id')}{avail}"
                f" ORDER BY {CONFIDENCE_SQL}, p.item_id LIMIT 1",
                {**params, "version": version_id, "conf": after.confidence, "after_id": after.item_id},
            )
            if row is not None:
                found = Position(0, float(row["confidence"]), int(row["item_id"]))
                best = found if best is None or found < best else best
        if best is not None:
            return best
    mods = scope.modalities
    marks = ",".join(f":m{k}" for k in range(len(mods)))
    params.update({f"m{k}": m for k, m in enumerate(mods)})
    avail = _avail(scope, "i.id")
    after_id = after.item_id if after.phase == 1 else 0
    no_prediction = ""
    if versions:
        no_prediction = (
            " AND NOT EXISTS (SELECT 1 FROM active_models am JOIN predictions p"
            " ON p.model_version_id = am.model_version_id AND p.item_id = i.id"
            f" WHERE am.modality = i.modality AND {CONFIDENCE_SQL} IS NOT NULL)"
        )
    row = store.one(
        f"SELECT i.id FROM items i WHERE i.id > :after_id AND i.modality IN ({marks}){cohort_sql}"
        " AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.user_id = :user"
        f" AND a.item_id = i.id){no_prediction}{_not_reserved('i.id')}{avail} ORDER BY i.id LIMIT 1",
        {**params, "after_id": after_id},
    )
    return Position(1, 0.0, int(row["id"])) if row is not None else None


def held_elsewhere(store: Store, item_id: int) -> bool:
    """Whether a study or a calibration set holds the item (the ordinary queue never serves it)."""
    return not store.value(f"SELECT EXISTS (SELECT 1 WHERE 1{_not_reserved(':item')})", {"item": item_id})


def has_room(store: Store, user_id: int, item_id: int, max_readers: int | None, now: str) -> bool:
    """Whether the project's readers-per-item limit leaves this reader room on the item."""
    if max_readers is None:
        return True
    avail = _avail(QueueScope((), None, max_readers), ":item")
    return bool(
        store.value(
            f"SELECT EXISTS (SELECT 1 WHERE 1{avail})",
            {"user": user_id, "item": item_id, "now": now, "max_readers": max_readers},
        )
    )


def position_of(store: Store, item_id: int) -> Position:
    """The queue position of an item (phase 0 with its confidence when the active model scored it)."""
    row = store.one(
        f"SELECT {CONFIDENCE_SQL} AS confidence FROM items i JOIN active_models am"
        " ON am.modality = i.modality JOIN predictions p ON p.model_version_id = am.model_version_id"
        " AND p.item_id = i.id WHERE i.id = ?",
        (item_id,),
    )
    if row is not None and row["confidence"] is not None:
        return Position(0, float(row["confidence"]), item_id)
    return Position(1, 0.0, item_id)


def reserve(store: Store, user_id: int, item_id: int, now: datetime, lease_s: float) -> str:
    """Lease an item to a reader (their other leases end); returns when the lease ends."""
    expires = iso(now + timedelta(seconds=lease_s))
    with store.transaction() as conn:
        conn.execute("DELETE FROM reservations WHERE user_id = ? AND item_id != ?", (user_id, item_id))
        conn.execute(
            "INSERT INTO reservations (item_id, user_id, expires_at, created_at) VALUES (?,?,?,?)"
            " ON CONFLICT(item_id, user_id) DO UPDATE SET expires_at = excluded.expires_at",
            (item_id, user_id, expires, iso(now)),
        )
    return expires


def held_reservation(store: Store, user_id: int, now: str) -> dict | None:
    """The live lease a reader holds on an item they have not graded yet, if any."""
    return store.one(
        "SELECT r.item_id, r.expires_at FROM reservations r WHERE r.user_id = ? AND r.expires_at > ?"
        " AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.user_id = r.user_id"
        " AND a.item_id = r.item_id) ORDER BY r.created_at DESC LIMIT 1",
        (user_id, now),
    )


def release(store: Store, user_id: int, item_id: int | None = None) -> None:
    """End a reader's lease on one item (or all their leases)."""
    if item_id is None:
        store.execute("DELETE FROM reservations WHERE user_id = ?", (user_id,))
    else:
        store.execute("DELETE FROM reservations WHERE user_id = ? AND item_id = ?", (user_id, item_id))


def reservations(store: Store) -> list[dict]:
    """Every lease with its reader's name (live and expired)."""
    return store.rows(
        "SELECT r.*, u.name AS reader FROM reservations r"
        " JOIN users u ON u.id = r.user_id ORDER BY r.item_id, r.user_id"
    )


def count_scope(store: Store, user_id: int, scope: QueueScope) -> tuple[int, int]:
    """(items in scope, of those graded by this reader)."""
    mods = scope.modalities
    marks = ",".join("?" * len(mods))
    where = f"i.modality IN ({marks})" + (" AND i.cohort = ?" if scope.cohort else "") + _not_reserved("i.id")
    params = [*mods, *([scope.cohort] if scope.cohort else [])]
    total = store.one(f"SELECT count(*) AS n FROM items i WHERE {where}", params)["n"]
    done = store.one(
        f"SELECT count(DISTINCT a.item_id) AS n FROM annotations a JOIN items i ON i.id = a.item_id"
        f" WHERE a.user_id = ? AND {where}",
        [user_id, *params],
    )["n"]
    return int(total), int(done)


# ------------------------------------------------------------------ this reader's grades
def latest_grade(store: Store, user_id: int, item_id: int) -> dict | None:
    """The grade that counts of one reader on one item."""
    return store.one(
        "SELECT * FROM annotations WHERE user_id = ? AND item_id = ? ORDER BY id DESC LIMIT 1",
        (user_id, item_id),
    )


def recent_items(store: Store, user_id: int, limit: int = 50) -> list[int]:
    """Items this reader graded most recently, oldest first (each once)."""
    rows = store.rows(
        "SELECT item_id, max(id) AS last FROM (SELECT item_id, id FROM annotations"
        " WHERE user_id = ? ORDER BY id DESC LIMIT ?) GROUP BY item_id ORDER BY last",
        (user_id, limit * 4),
    )
    return [int(r["item_id"]) for r in rows][-limit:]


def prediction(store: Store, item_id: int) -> dict | None:
    """The active model's stored prediction for an item, if any."""
    return store.one(
        "SELECT p.grade, p.probs_json, v.version, v.modality FROM items i"
        " JOIN active_models am ON am.modality = i.modality"
        " JOIN predictions p ON p.model_version_id = am.model_version_id AND p.item_id = i.id"
        " JOIN model_versions v ON v.id = am.model_version_id WHERE i.id = ?",
        (item_id,),
    )


def atlas_candidates(
    store: Store, modality: str, column: str, per_grade: int, exclude: int | None = None
) -> list[dict]:
    """Reference-labelled training items of a modality, a few per grade of ``column``, never ``exclude``.

    Never a calibration item or a study case either: a reader is tested on those, and the atlas
    shows each example's reference grade.
    """
    if column not in ("sh", "pd", "combined"):
        raise ValueError(f"not a grade column: {column}")
    return store.rows(
        f"SELECT item_id, media_sha256, grade, sh, pd, combined FROM (SELECT r.item_id,"
        f" i.media_sha256, r.{column} AS grade, r.sh, r.pd, r.combined, row_number() OVER"
        f" (PARTITION BY r.{column} ORDER BY r.item_id) AS k FROM current_reference r"
        " JOIN items i ON i.id = r.item_id WHERE i.modality = ? AND i.cohort = 'train'"
        f" AND r.{column} IS NOT NULL AND r.item_id IS NOT ?{_not_reserved('r.item_id')})"
        " WHERE k <= ? ORDER BY grade, item_id",
        (modality, exclude, per_grade),
    )


# ------------------------------------------------------------------ adjudication
def expert_disagreements(
    store: Store, modalities: tuple[str, ...], cohort: str | None, include_resolved: bool
) -> list[dict]:
    """Items on which the latest grades of expert accounts differ (SH, PD, combined or assessable).

    Resolved means: the current reference was decided by a person (decided_by set) after the
    last expert grade (a tie in time counts as open); simulated or imported references without
    a decider stay open.
    """
    marks = ",".join("?" * len(modalities))
    cohort_sql = " AND i.cohort = ?" if cohort else ""
    params = [*modalities, *([cohort] if cohort else [])]
    rows = store.rows(
        "WITH latest AS (SELECT a.* FROM annotations a JOIN users u ON u.id = a.user_id"
        " WHERE u.role = 'expert' AND a.id = (SELECT max(b.id) FROM annotations b"
        " WHERE b.item_id = a.item_id AND b.user_id = a.user_id)),"
        " agg AS (SELECT item_id, count(*) AS experts, max(created_at) AS last_grade_at,"
        " count(DISTINCT coalesce(sh, -1)) AS n_sh, count(DISTINCT coalesce(pd, -1)) AS n_pd,"
        " count(DISTINCT coalesce(combined, -1)) AS n_combined,"
        " count(DISTINCT not_assessable) AS n_na FROM latest GROUP BY item_id HAVING count(*) >= 2)"
        " SELECT i.id AS item_id, i.modality, i.cohort, i.joint, i.side, agg.experts,"
        " agg.n_sh > 1 AS differ_sh, agg.n_pd > 1 AS differ_pd, agg.n_combined > 1 AS differ_combined,"
        " agg.n_na > 1 AS differ_assessable, r.method AS reference_method,"
        " r.decided_by AS reference_decided_by,"
        " (r.decided_by IS NOT NULL AND r.created_at > agg.last_grade_at) AS resolved"
        " FROM agg JOIN items i ON i.id = agg.item_id"
        " LEFT JOIN current_reference r ON r.item_id = i.id"
        " WHERE (agg.n_sh > 1 OR agg.n_pd > 1 OR agg.n_combined > 1 OR agg.n_na > 1)"
        f" AND i.modality IN ({marks}){cohort_sql} ORDER BY i.id",
        params,
    )
    if not include_resolved:
        rows = [r for r in rows if not r["resolved"]]
    return rows


def item_grades(store: Store, item_id: int) -> list[dict]:
    """Every reader's grade that counts on one item, experts first."""
    return store.rows(
        "SELECT u.name AS reader, u.role, u.level, a.sh, a.pd, a.combined, a.not_assessable,"
        " a.reason, a.seconds, a.created_at FROM latest_annotations a JOIN users u"
        " ON u.id = a.user_id WHERE a.item_id = ?"
        " ORDER BY CASE u.role WHEN 'expert' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, u.name",
        (item_id,),
    )


def grade_table(
    store: Store, modalities: tuple[str, ...], cohort: str | None, roles: tuple[str, ...]
) -> list[dict]:
    """Latest assessable grades (reader, item, modality, sh, pd, combined) for pairwise agreement."""
    marks = ",".join("?" * len(modalities))
    role_marks = ",".join("?" * len(roles))
    cohort_sql = " AND i.cohort = ?" if cohort else ""
    return store.rows(
        "SELECT u.name AS reader, a.item_id, i.modality, a.sh, a.pd, a.combined"
        " FROM annotations a JOIN users u ON u.id = a.user_id JOIN items i ON i.id = a.item_id"
        " WHERE a.id = (SELECT max(b.id) FROM annotations b WHERE b.item_id = a.item_id"
        " AND b.user_id = a.user_id) AND a.not_assessable = 0"
        f" AND i.modality IN ({marks}){cohort_sql} AND u.role IN ({role_marks})",
        [*modalities, *([cohort] if cohort else []), *roles],
    )


def annotation_fingerprint(store: Store) -> tuple[int, int]:
    """(newest annotation id, count): changes whenever a grade is added."""
    row = store.one("SELECT coalesce(max(id), 0) AS last, count(*) AS n FROM annotations")
    return int(row["last"]), int(row["n"])


def uncertainty_order(probabilities: Mapping[int, Sequence[float]]) -> list[int]:
    """Item ids in the labelling queue's model order: least confident first (the lowest top-grade
    probability, ``CONFIDENCE_SQL``), then by id.

    The same SQL expression and ORDER BY the queue serves from, run on an in-memory table, so a
    simulation of the queue (bench/bench_label_efficiency.py) orders items exactly as readers
    would be served them.
    """
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE predictions (item_id INTEGER PRIMARY KEY, probs_json TEXT)")
        conn.executemany(
            "INSERT INTO predictions VALUES (?, ?)",
            [(int(k), json.dumps([float(p) for p in v])) for k, v in probabilities.items()],
        )
        rows = conn.execute(f"SELECT item_id FROM predictions ORDER BY {CONFIDENCE_SQL}, item_id").fetchall()
    finally:
        conn.close()
    return [int(r[0]) for r in rows]
