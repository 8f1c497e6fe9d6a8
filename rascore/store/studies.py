"""SQL of reader studies: a study's design, its case set, its readers (experience, first arm), the
model version per modality its aided arm shows, each case's aid, and the reads. Functions take a
``Store``.

The rules the schema keeps (migrations 005, 006): a study's design, cases, readers, models and
aids change only while it is a draft; reads are taken only while it is open, are append-only and name a case and a
reader of that study; an item is never both a study case and a calibration item. What is due next
for a reader is decided by ``rascore.services.study``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from rascore.store.db import utcnow
from rascore.store.store import Store, StoreError


def _refused(exc: sqlite3.IntegrityError, what: str) -> StoreError:
    """A constraint or trigger refusal as one readable line."""
    text = str(exc)
    if "UNIQUE" in text and "studies.name" in text:
        return StoreError(f"a study named {what!r} already exists")
    return StoreError(text)


# ------------------------------------------------------------------ design
def create_study(
    store: Store,
    *,
    name: str,
    design: str,
    washout_days: int,
    grade: str,
    seed: int,
    calibration_set_id: int | None,
    created_by: int | None,
    created_at: str | None = None,
) -> int:
    """Insert a draft study (created now unless ``created_at`` is given); returns its id
    (StoreError when the name is taken)."""
    try:
        cur = store.execute(
            "INSERT INTO studies (name, design, washout_days, grade, seed, calibration_set_id,"
            " created_by, created_at) VALUES (?,?,?,?,?,?,?,?)",
            (name, design, washout_days, grade, seed, calibration_set_id, created_by, created_at or utcnow()),
        )
    except sqlite3.IntegrityError as exc:
        raise _refused(exc, name) from None
    return int(cur.lastrowid)


def add_cases(store: Store, study_id: int, item_ids: Sequence[int]) -> None:
    """The study's case set, positions 0.. in the order given (draft only)."""
    try:
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO study_cases (study_id, item_id, position) VALUES (?,?,?)",
                [(study_id, int(item), k) for k, item in enumerate(item_ids)],
            )
    except sqlite3.IntegrityError as exc:
        raise _refused(exc, "") from None


def add_readers(store: Store, study_id: int, readers: Iterable[tuple[int, str, str | None]]) -> None:
    """(user id, experience, first arm or None) per reader (draft only)."""
    try:
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO study_readers (study_id, user_id, experience, first_arm) VALUES (?,?,?,?)",
                [(study_id, int(u), e, a) for u, e, a in readers],
            )
    except sqlite3.IntegrityError as exc:
        raise _refused(exc, "") from None


def set_models(store: Store, study_id: int, versions: dict[str, int]) -> None:
    """Freeze the model version per modality that the aided arm shows (draft only)."""
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO study_models (study_id, modality, model_version_id) VALUES (?,?,?)",
            [(study_id, m, int(v)) for m, v in sorted(versions.items())],
        )


def set_aids(store: Store, study_id: int, aids: Iterable[tuple]) -> int:
    """Snapshot each case's aid, (item id, source, model version id or None, grade, probabilities
    as JSON text), stamped now (draft only); returns how many rows were written."""
    now = utcnow()
    rows = [(study_id, int(i), src, v, int(g), probs, now) for i, src, v, g, probs in aids]
    try:
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO study_aids (study_id, item_id, source, model_version_id, grade, probs_json,"
                " created_at) VALUES (?,?,?,?,?,?,?)",
                rows,
            )
    except sqlite3.IntegrityError as exc:
        raise _refused(exc, "") from None
    return len(rows)


def set_status(store: Store, study_id: int, status: str, at: str | None = None) -> None:
    """Move a study to 'open' or 'closed', stamping when (now unless ``at`` is given; the schema
    refuses any other move)."""
    column = {"open": "opened_at", "closed": "closed_at"}[status]
    try:
        store.execute(
            f"UPDATE studies SET status = ?, {column} = ? WHERE id = ?", (status, at or utcnow(), study_id)
        )
    except sqlite3.IntegrityError as exc:
        raise _refused(exc, "") from None


# ------------------------------------------------------------------ reads of the design
def study(store: Store, study_id: int) -> dict | None:
    """One study row with its calibration set's name."""
    return store.one(
        "SELECT s.*, c.name AS calibration_set FROM studies s"
        " LEFT JOIN calibration_sets c ON c.id = s.calibration_set_id WHERE s.id = ?",
        (study_id,),
    )


def studies(store: Store, user_id: int | None = None) -> list[dict]:
    """Studies (those this user reads in, when given) with their numbers of cases, readers, reads."""
    where, params = "", []
    if user_id is not None:
        where = " WHERE EXISTS (SELECT 1 FROM study_readers r WHERE r.study_id = s.id AND r.user_id = ?)"
        params.append(user_id)
    return store.rows(
        "SELECT s.*, (SELECT count(*) FROM study_cases c WHERE c.study_id = s.id) AS cases,"
        " (SELECT count(*) FROM study_readers r WHERE r.study_id = s.id) AS readers,"
        f" (SELECT count(*) FROM study_reads d WHERE d.study_id = s.id) AS reads FROM studies s{where}"
        " ORDER BY s.id",
        params,
    )


def cases(store: Store, study_id: int) -> list[dict]:
    """The case set in position order: item id and modality."""
    return store.rows(
        "SELECT c.item_id, c.position, i.modality FROM study_cases c JOIN items i ON i.id = c.item_id"
        " WHERE c.study_id = ? ORDER BY c.position",
        (study_id,),
    )


def readers(store: Store, study_id: int) -> list[dict]:
    """The study's readers with name, role, experience and first arm, by user id."""
    return store.rows(
        "SELECT r.user_id, u.name, u.role, r.experience, r.first_arm FROM study_readers r"
        " JOIN users u ON u.id = r.user_id WHERE r.study_id = ? ORDER BY r.user_id",
        (study_id,),
    )


def reader(store: Store, study_id: int, user_id: int) -> dict | None:
    """One reader's enrolment in a study, or None."""
    return store.one("SELECT * FROM study_readers WHERE study_id = ? AND user_id = ?", (study_id, user_id))


def models(store: Store, study_id: int) -> dict[str, int]:
    """The frozen model version id per modality of an opened study."""
    rows = store.rows("SELECT modality, model_version_id FROM study_models WHERE study_id = ?", (study_id,))
    return {r["modality"]: int(r["model_version_id"]) for r in rows}


def calibration_item_ids(store: Store, item_ids: Iterable[int]) -> set[int]:
    """Those of ``item_ids`` that are in any calibration set."""
    ids = sorted({int(i) for i in item_ids})
    found: set[int] = set()
    for start in range(0, len(ids), 900):  # stay below SQLite's bound-parameter limit
        chunk = ids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        found.update(
            int(r["item_id"])
            for r in store.rows(
                f"SELECT DISTINCT item_id FROM calibration_items WHERE item_id IN ({marks})", chunk
            )
        )
    return found


def candidate_items(store: Store, cohorts: Sequence[str], modalities: Sequence[str]) -> list[dict]:
    """Items of these cohorts and modalities in id order, each with whether it is a calibration item."""
    cmarks = ",".join("?" * len(cohorts))
    mmarks = ",".join("?" * len(modalities))
    return store.rows(
        "SELECT i.id, i.modality, EXISTS (SELECT 1 FROM calibration_items c WHERE c.item_id = i.id)"
        f" AS calibration FROM items i WHERE i.cohort IN ({cmarks}) AND i.modality IN ({mmarks})"
        " ORDER BY i.id",
        [*cohorts, *modalities],
    )


def items_by_id(store: Store, item_ids: Iterable[int]) -> dict[int, dict]:
    """id -> (id, modality) of the stored items among ``item_ids``."""
    ids = sorted({int(i) for i in item_ids})
    found: dict[int, dict] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        for row in store.rows(f"SELECT id, modality FROM items WHERE id IN ({marks})", chunk):
            found[int(row["id"])] = row
    return found


# ------------------------------------------------------------------ reads
def add_read(
    store: Store,
    *,
    study_id: int,
    user_id: int,
    item_id: int,
    arm: str,
    session: int,
    sh: int,
    pd: int | None,
    combined: int,
    started_at: str,
    saved_at: str,
    duration_ms: int,
) -> int:
    """Append one read (the schema refuses a second read of the same case and arm); its id."""
    try:
        cur = store.execute(
            "INSERT INTO study_reads (study_id, user_id, item_id, arm, session, sh, pd, combined,"
            " started_at, saved_at, duration_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (study_id, user_id, item_id, arm, session, sh, pd, combined, started_at, saved_at, duration_ms),
        )
    except sqlite3.IntegrityError as exc:
        raise _refused(exc, "") from None
    return int(cur.lastrowid)


def reads_of(store: Store, study_id: int, user_id: int) -> list[dict]:
    """One reader's reads in a study, oldest first (their own grades only)."""
    return store.rows(
        "SELECT * FROM study_reads WHERE study_id = ? AND user_id = ? ORDER BY id", (study_id, user_id)
    )


def long_reads(store: Store, study_id: int) -> list[dict]:
    """Every read of a study with its reader, experience, case modality, patient and current
    reference grades (NULL where the case has none), in reader, session, read order."""
    return store.rows(
        "SELECT d.id AS read_id, d.user_id AS reader_id, u.name AS reader, r.experience, d.item_id,"
        " i.modality, i.patient, d.arm, d.session, d.sh, d.pd, d.combined, d.started_at, d.saved_at,"
        " d.duration_ms, ref.sh AS ref_sh, ref.pd AS ref_pd, ref.combined AS ref_combined"
        " FROM study_reads d JOIN users u ON u.id = d.user_id"
        " JOIN study_readers r ON r.study_id = d.study_id AND r.user_id = d.user_id"
        " JOIN items i ON i.id = d.item_id LEFT JOIN current_reference ref ON ref.item_id = d.item_id"
        " WHERE d.study_id = ? ORDER BY d.user_id, d.session, d.id",
        (study_id,),
    )


# ------------------------------------------------------------------ aids
def frozen_predictions(store: Store, study_id: int) -> list[dict]:
    """Each case's stored prediction by the model version frozen for its modality (cases without
    one are left out): item id, model version id, grade, probabilities as JSON text."""
    return store.rows(
        "SELECT c.item_id, m.model_version_id, p.grade, p.probs_json FROM study_cases c"
        " JOIN items i ON i.id = c.item_id"
        " JOIN study_models m ON m.study_id = c.study_id AND m.modality = i.modality"
        " JOIN predictions p ON p.model_version_id = m.model_version_id AND p.item_id = c.item_id"
        " WHERE c.study_id = ? ORDER BY c.position",
        (study_id,),
    )


def aid(store: Store, study_id: int, item_id: int) -> dict | None:
    """One case's snapshotted aid with its model version's number (NULL for a simulated aid)."""
    return store.one(
        "SELECT a.*, v.version FROM study_aids a LEFT JOIN model_versions v ON v.id = a.model_version_id"
        " WHERE a.study_id = ? AND a.item_id = ?",
        (study_id, item_id),
    )


def aids(store: Store, study_id: int) -> list[dict]:
    """Every snapshotted aid of a study in case order, with the case's modality and the model
    version's number (NULL for a simulated aid)."""
    return store.rows(
        "SELECT a.item_id, i.modality, a.source, a.model_version_id, v.version, a.grade, a.probs_json,"
        " a.created_at FROM study_aids a JOIN study_cases c ON c.study_id = a.study_id"
        " AND c.item_id = a.item_id JOIN items i ON i.id = a.item_id"
        " LEFT JOIN model_versions v ON v.id = a.model_version_id WHERE a.study_id = ?"
        " ORDER BY c.position",
        (study_id,),
    )


def aid_sources(store: Store, study_id: int) -> list[str]:
    """The distinct sources of a study's aids ('model', 'simulated'), sorted."""
    rows = store.rows(
        "SELECT DISTINCT source FROM study_aids WHERE study_id = ? ORDER BY source", (study_id,)
    )
    return [r["source"] for r in rows]
