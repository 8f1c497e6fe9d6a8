"""Numbered schema migrations (sqlite-utils ``Migrations``), applied under one write lock.

A migration is only ever added, never edited once released: the store records which ran.
"""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from rascore.store.db import write_transaction

migrations = Migrations("rascore")

_GRADE = "BETWEEN 0 AND 3"
_MODALITY = "IN ('SGS','DGS','SPD','DPD')"

M001 = [
    # Files, once each, named by the sha256 of the bytes stored (de-identified for DICOM).
    """CREATE TABLE media (
        sha256 TEXT PRIMARY KEY CHECK (length(sha256) = 64),
        format TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('image','clip','dicom')),
        bytes INTEGER NOT NULL,
        frames INTEGER NOT NULL CHECK (frames >= 1),
        height INTEGER NOT NULL,
        width INTEGER NOT NULL,
        fps REAL,
        meta_json TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    )""",
    f"""CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        media_sha256 TEXT NOT NULL REFERENCES media(sha256),
        modality TEXT NOT NULL CHECK (modality {_MODALITY}),
        cohort TEXT NOT NULL CHECK (cohort IN ('train','test1','test2')),
        patient TEXT,
        joint TEXT,
        side TEXT CHECK (side IN ('L','R')),
        dynamic INTEGER NOT NULL CHECK (dynamic IN (0,1)),
        frames INTEGER NOT NULL,
        fps REAL,
        scanner_profile TEXT,
        source TEXT NOT NULL CHECK (source IN ('demo','import','upload')),
        external_key TEXT UNIQUE,
        created_at TEXT NOT NULL,
        UNIQUE (media_sha256, modality)
    )""",
    "CREATE INDEX items_modality_cohort ON items (modality, cohort)",
    "CREATE INDEX items_patient ON items (patient)",
    # Simulated items know their truth; masks live in a file under the data folder.
    f"""CREATE TABLE ground_truth (
        item_id INTEGER PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
        sh INTEGER NOT NULL CHECK (sh {_GRADE}),
        pd INTEGER NOT NULL CHECK (pd {_GRADE}),
        mask_path TEXT
    )""",
    """CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        role TEXT NOT NULL CHECK (role IN ('reader','expert','admin')),
        level TEXT CHECK (level IN ('junior','intermediate','senior','expert')),
        password_hash TEXT,
        active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0,1)),
        created_at TEXT NOT NULL
    )""",
    # Append-only: an edit is a new row that names the row it supersedes; the latest counts.
    f"""CREATE TABLE annotations (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items(id),
        user_id INTEGER NOT NULL REFERENCES users(id),
        sh INTEGER CHECK (sh {_GRADE}),
        pd INTEGER CHECK (pd {_GRADE}),
        combined INTEGER CHECK (combined {_GRADE}),
        not_assessable INTEGER NOT NULL DEFAULT 0 CHECK (not_assessable IN (0,1)),
        reason TEXT,
        seconds REAL CHECK (seconds IS NULL OR seconds >= 0),
        supersedes INTEGER REFERENCES annotations(id),
        created_at TEXT NOT NULL,
        CHECK (NOT (sh = 0 AND pd > 0)),
        CHECK (not_assessable = 1 OR sh IS NOT NULL)
    )""",
    "CREATE INDEX annotations_item_user ON annotations (item_id, user_id, id)",
    "CREATE INDEX annotations_user ON annotations (user_id, item_id)",
    """CREATE TRIGGER annotations_no_update BEFORE UPDATE ON annotations
       BEGIN SELECT RAISE(ABORT, 'annotations are append-only'); END""",
    """CREATE TRIGGER annotations_no_delete BEFORE DELETE ON annotations
       BEGIN SELECT RAISE(ABORT, 'annotations are append-only'); END""",
    """CREATE VIEW latest_annotations AS
       SELECT a.* FROM annotations a
       WHERE a.id = (SELECT max(b.id) FROM annotations b
                     WHERE b.item_id = a.item_id AND b.user_id = a.user_id)""",
    # The reference standard, append-only too; the latest row per item is the current one.
    f"""CREATE TABLE reference_labels (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items(id),
        sh INTEGER NOT NULL CHECK (sh {_GRADE}),
        pd INTEGER CHECK (pd {_GRADE}),
        combined INTEGER NOT NULL CHECK (combined {_GRADE}),
        method TEXT NOT NULL CHECK (method IN ('agreement','adjudication','import')),
        decided_by INTEGER REFERENCES users(id),
        created_at TEXT NOT NULL,
        CHECK (NOT (sh = 0 AND pd > 0))
    )""",
    "CREATE INDEX reference_item ON reference_labels (item_id, id)",
    """CREATE TRIGGER reference_no_update BEFORE UPDATE ON reference_labels
       BEGIN SELECT RAISE(ABORT, 'reference labels are append-only'); END""",
    """CREATE TRIGGER reference_no_delete BEFORE DELETE ON reference_labels
       BEGIN SELECT RAISE(ABORT, 'reference labels are append-only'); END""",
    """CREATE VIEW current_reference AS
       SELECT r.* FROM reference_labels r
       WHERE r.id = (SELECT max(s.id) FROM reference_labels s WHERE s.item_id = r.item_id)""",
    f"""CREATE TABLE model_versions (
        id INTEGER PRIMARY KEY,
        modality TEXT NOT NULL CHECK (modality {_MODALITY}),
        version INTEGER NOT NULL,
        path TEXT NOT NULL,
        card_path TEXT,
        preset TEXT,
        architecture TEXT,
        metrics_json TEXT NOT NULL DEFAULT '{{}}',
        job_id INTEGER REFERENCES jobs(id),
        created_at TEXT NOT NULL,
        UNIQUE (modality, version)
    )""",
    # One active version per modality, switched atomically by replacing this row.
    f"""CREATE TABLE active_models (
        modality TEXT PRIMARY KEY CHECK (modality {_MODALITY}),
        model_version_id INTEGER NOT NULL REFERENCES model_versions(id),
        changed_at TEXT NOT NULL
    )""",
    f"""CREATE TABLE predictions (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items(id),
        model_version_id INTEGER NOT NULL REFERENCES model_versions(id),
        grade INTEGER NOT NULL CHECK (grade {_GRADE}),
        probs_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (item_id, model_version_id)
    )""",
    "CREATE INDEX predictions_model ON predictions (model_version_id)",
    f"""CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL DEFAULT 'train',
        modality TEXT CHECK (modality {_MODALITY}),
        params_json TEXT NOT NULL DEFAULT '{{}}',
        status TEXT NOT NULL DEFAULT 'queued'
            CHECK (status IN ('queued','running','succeeded','failed','cancelled')),
        progress_json TEXT NOT NULL DEFAULT '{{}}',
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        worker TEXT,
        heartbeat_at TEXT,
        error TEXT,
        log_tail TEXT,
        model_version_id INTEGER REFERENCES model_versions(id),
        created_by INTEGER REFERENCES users(id),
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    )""",
    "CREATE INDEX jobs_status ON jobs (status, id)",
    """CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        user_id INTEGER REFERENCES users(id),
        action TEXT NOT NULL,
        target TEXT,
        detail_json TEXT NOT NULL DEFAULT '{}'
    )""",
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TABLE project_settings (
        key TEXT PRIMARY KEY,
        value_json TEXT NOT NULL
    )""",
]


@migrations(name="001_initial")
def m001_initial(db: Database) -> None:
    """Every table of the first release."""
    for statement in M001:
        db.execute(statement)


def apply(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations under ``BEGIN IMMEDIATE``, so concurrent first starts never race."""
    db = Database(conn, execute_plugins=False)
    with write_transaction(conn):
        pending = [m.name for m in migrations.pending(db)]
        if pending:
            migrations.apply(db)
    return pending


# Labelling leases, sign-in rate limiting, and indexes for the web app's hot queries.
CONFIDENCE_SQL = (
    "(CASE WHEN json_valid(probs_json) THEN max(json_extract(probs_json, '$[0]'),"
    " json_extract(probs_json, '$[1]'), json_extract(probs_json, '$[2]'),"
    " json_extract(probs_json, '$[3]')) END)"
)

M002 = [
    # A reader's lease on an item served to them; expired leases are simply ignored and reused.
    """CREATE TABLE reservations (
        item_id INTEGER NOT NULL REFERENCES items(id),
        user_id INTEGER NOT NULL REFERENCES users(id),
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (item_id, user_id)
    )""",
    "CREATE INDEX reservations_user ON reservations (user_id)",
    # Failed sign-ins per typed user name (whether or not an account exists), so a restart
    # does not reset a lock.
    """CREATE TABLE sign_in_attempts (
        name TEXT PRIMARY KEY COLLATE NOCASE,
        failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
        last_attempt_at TEXT NOT NULL,
        locked_until TEXT
    )""",
    # Queue order by model uncertainty: lowest top-class probability first, per model version.
    f"CREATE INDEX predictions_confidence ON predictions (model_version_id, {CONFIDENCE_SQL}, item_id)",
    # A reader's most recent grades (back and edit).
    "CREATE INDEX annotations_user_recent ON annotations (user_id, id)",
]


@migrations(name="002_labelling")
def m002_labelling(db: Database) -> None:
    """Reservations, sign-in attempts, queue and history indexes."""
    for statement in M002:
        db.execute(statement)


# The dashboard loads a version's predictions in one cohort in item order (rascore.store.results.predictions):
# without this index SQLite walks the whole predictions table (every version) in item order
# through the UNIQUE (item_id, model_version_id) index; with it, only that version's rows, already
# in item order (bench/bench_store_scale.py shows both plans).
M003 = ["CREATE INDEX predictions_model_item ON predictions (model_version_id, item_id)"]


@migrations(name="003_predictions_by_version")
def m003_predictions_by_version(db: Database) -> None:
    """Predictions of one version in item order."""
    for statement in M003:
        db.execute(statement)


# How the network saw each predicted item: through the joint crop, or the full frame because the
# joint fit was weak ("fallback"), or a model without a crop ("none"); NULL for older predictions.
M004 = [
    "ALTER TABLE predictions ADD COLUMN crop TEXT CHECK (crop IS NULL OR crop IN ('crop','fallback','none'))"
]


@migrations(name="004_prediction_crop")
def m004_prediction_crop(db: Database) -> None:
    """Predictions record the joint crop or its fallback."""
    for statement in M004:
        db.execute(statement)


# Reader studies with AI assistance and reader calibration (rascore.store.studies,
# rascore.store.calibration; docs/DESIGN.md, "Reader studies and calibration").
# - A study's design, case set, readers and frozen model versions are written while it is a draft
#   and fixed once it opens (triggers); reads are accepted only while it is open.
# - Study reads and calibration reads are append-only, like annotations, and are neither: they
#   never reach `annotations`, `reference_labels` or the labelling queue.
# - An item is never both a calibration item and a study case (triggers both ways), and a
#   calibration item needs a reference grade (its feedback shows it).
_DRAFT = "(SELECT status FROM studies WHERE id = {row}.study_id) IS NOT 'draft'"
_FIXED = "RAISE(ABORT, 'a study''s design, cases, readers and models are fixed once it opens')"


def _draft_only(table: str) -> list[str]:
    """Triggers that let rows of ``table`` change only while their study is a draft."""
    return [
        f"""CREATE TRIGGER {table}_draft_insert BEFORE INSERT ON {table}
           WHEN {_DRAFT.format(row="NEW")} BEGIN SELECT {_FIXED}; END""",
        f"""CREATE TRIGGER {table}_draft_update BEFORE UPDATE ON {table}
           WHEN {_DRAFT.format(row="OLD")} BEGIN SELECT {_FIXED}; END""",
        f"""CREATE TRIGGER {table}_draft_delete BEFORE DELETE ON {table}
           WHEN {_DRAFT.format(row="OLD")} BEGIN SELECT {_FIXED}; END""",
    ]


def _append_only(table: str, what: str) -> list[str]:
    """Triggers that refuse UPDATE and DELETE on ``table``."""
    return [
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
           BEGIN SELECT RAISE(ABORT, '{what} are append-only'); END""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
           BEGIN SELECT RAISE(ABORT, '{what} are append-only'); END""",
    ]


_GRADE_KIND = "IN ('SH','PD','EOSS')"
_PAIR = "CHECK (NOT (sh = 0 AND pd > 0))"

M005 = [
    # ---------------------------------------------------------------- calibration
    f"""CREATE TABLE calibration_sets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        grade TEXT NOT NULL DEFAULT 'EOSS' CHECK (grade {_GRADE_KIND}),
        target_kappa REAL NOT NULL CHECK (target_kappa > 0 AND target_kappa <= 1),
        window_n INTEGER NOT NULL CHECK (window_n >= 2),
        created_by INTEGER REFERENCES users(id),
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE calibration_items (
        set_id INTEGER NOT NULL REFERENCES calibration_sets(id),
        item_id INTEGER NOT NULL REFERENCES items(id),
        position INTEGER NOT NULL CHECK (position >= 0),
        PRIMARY KEY (set_id, item_id),
        UNIQUE (set_id, position)
    )""",
    "CREATE INDEX calibration_items_item ON calibration_items (item_id)",
    """CREATE TRIGGER calibration_items_need_reference BEFORE INSERT ON calibration_items
       WHEN NOT EXISTS (SELECT 1 FROM reference_labels WHERE item_id = NEW.item_id)
       BEGIN SELECT RAISE(ABORT, 'a calibration item needs a reference grade'); END""",
    """CREATE TRIGGER calibration_items_not_cases BEFORE INSERT ON calibration_items
       WHEN EXISTS (SELECT 1 FROM study_cases WHERE item_id = NEW.item_id)
       BEGIN SELECT RAISE(ABORT, 'a study case cannot be a calibration item'); END""",
    """CREATE TRIGGER calibration_items_before_reads BEFORE INSERT ON calibration_items
       WHEN EXISTS (SELECT 1 FROM calibration_reads WHERE set_id = NEW.set_id)
       BEGIN SELECT RAISE(ABORT, 'a calibration set is fixed once it has reads'); END""",
    """CREATE TRIGGER calibration_items_no_update BEFORE UPDATE ON calibration_items
       BEGIN SELECT RAISE(ABORT, 'calibration items are fixed'); END""",
    """CREATE TRIGGER calibration_items_no_delete BEFORE DELETE ON calibration_items
       BEGIN SELECT RAISE(ABORT, 'calibration items are fixed'); END""",
    # one read per reader and item: the reader saw the reference after it
    f"""CREATE TABLE calibration_reads (
        id INTEGER PRIMARY KEY,
        set_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id),
        item_id INTEGER NOT NULL,
        sh INTEGER NOT NULL CHECK (sh {_GRADE}),
        pd INTEGER CHECK (pd {_GRADE}),
        combined INTEGER NOT NULL CHECK (combined {_GRADE}),
        started_at TEXT,
        saved_at TEXT NOT NULL,
        {_PAIR},
        UNIQUE (set_id, user_id, item_id),
        FOREIGN KEY (set_id, item_id) REFERENCES calibration_items (set_id, item_id)
    )""",
    "CREATE INDEX calibration_reads_reader ON calibration_reads (set_id, user_id, id)",
    *_append_only("calibration_reads", "calibration reads"),
    # ---------------------------------------------------------------- studies
    f"""CREATE TABLE studies (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        design TEXT NOT NULL CHECK (design IN ('sequential','crossover')),
        washout_days INTEGER NOT NULL DEFAULT 0 CHECK (washout_days >= 0),
        grade TEXT NOT NULL DEFAULT 'EOSS' CHECK (grade {_GRADE_KIND}),
        status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft','open','closed')),
        seed INTEGER NOT NULL,
        calibration_set_id INTEGER REFERENCES calibration_sets(id),
        created_by INTEGER REFERENCES users(id),
        created_at TEXT NOT NULL,
        opened_at TEXT,
        closed_at TEXT,
        CHECK (design = 'crossover' OR washout_days = 0)
    )""",
    # draft -> open -> closed; nothing but the status and its time changes once open
    """CREATE TRIGGER studies_lifecycle BEFORE UPDATE ON studies
       WHEN NOT ((OLD.status = 'draft' AND NEW.status IN ('draft','open'))
                 OR (OLD.status = 'open' AND NEW.status = 'closed'
                     AND NEW.name IS OLD.name AND NEW.design IS OLD.design
                     AND NEW.washout_days IS OLD.washout_days AND NEW.grade IS OLD.grade
                     AND NEW.seed IS OLD.seed AND NEW.calibration_set_id IS OLD.calibration_set_id
                     AND NEW.opened_at IS OLD.opened_at))
       BEGIN SELECT RAISE(ABORT, 'a study goes draft -> open -> closed, its design fixed once open'); END""",
    """CREATE TRIGGER studies_no_delete BEFORE DELETE ON studies WHEN OLD.status != 'draft'
       BEGIN SELECT RAISE(ABORT, 'only a draft study can be deleted'); END""",
    """CREATE TABLE study_cases (
        study_id INTEGER NOT NULL REFERENCES studies(id),
        item_id INTEGER NOT NULL REFERENCES items(id),
        position INTEGER NOT NULL CHECK (position >= 0),
        PRIMARY KEY (study_id, item_id),
        UNIQUE (study_id, position)
    )""",
    "CREATE INDEX study_cases_item ON study_cases (item_id)",
    """CREATE TRIGGER study_cases_not_calibration BEFORE INSERT ON study_cases
       WHEN EXISTS (SELECT 1 FROM calibration_items WHERE item_id = NEW.item_id)
       BEGIN SELECT RAISE(ABORT, 'a calibration item cannot be a study case'); END""",
    *_draft_only("study_cases"),
    """CREATE TABLE study_readers (
        study_id INTEGER NOT NULL REFERENCES studies(id),
        user_id INTEGER NOT NULL REFERENCES users(id),
        experience TEXT NOT NULL CHECK (experience IN ('junior','intermediate','senior')),
        first_arm TEXT CHECK (first_arm IS NULL OR first_arm IN ('unaided','aided')),
        PRIMARY KEY (study_id, user_id)
    )""",
    *_draft_only("study_readers"),
    # the model version of each modality that the aided arm shows, frozen when the study opens
    f"""CREATE TABLE study_models (
        study_id INTEGER NOT NULL REFERENCES studies(id),
        modality TEXT NOT NULL CHECK (modality {_MODALITY}),
        model_version_id INTEGER NOT NULL REFERENCES model_versions(id),
        PRIMARY KEY (study_id, modality)
    )""",
    *_draft_only("study_models"),
    f"""CREATE TABLE study_reads (
        id INTEGER PRIMARY KEY,
        study_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        item_id INTEGER NOT NULL,
        arm TEXT NOT NULL CHECK (arm IN ('unaided','aided')),
        session INTEGER NOT NULL CHECK (session IN (1,2)),
        sh INTEGER NOT NULL CHECK (sh {_GRADE}),
        pd INTEGER CHECK (pd {_GRADE}),
        combined INTEGER NOT NULL CHECK (combined {_GRADE}),
        started_at TEXT NOT NULL,
        saved_at TEXT NOT NULL,
        duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
        {_PAIR},
        UNIQUE (study_id, user_id, item_id, arm),
        FOREIGN KEY (study_id, item_id) REFERENCES study_cases (study_id, item_id),
        FOREIGN KEY (study_id, user_id) REFERENCES study_readers (study_id, user_id)
    )""",
    "CREATE INDEX study_reads_reader ON study_reads (study_id, user_id, id)",
    """CREATE TRIGGER study_reads_open BEFORE INSERT ON study_reads
       WHEN (SELECT status FROM studies WHERE id = NEW.study_id) IS NOT 'open'
       BEGIN SELECT RAISE(ABORT, 'a study takes reads only while it is open'); END""",
    *_append_only("study_reads", "study reads"),
]


@migrations(name="005_reader_studies")
def m005_reader_studies(db: Database) -> None:
    """Reader studies (design, cases, readers, frozen models, reads) and reader calibration."""
    for statement in M005:
        db.execute(statement)


# The aid each case of a study shows, snapshotted when the study opens (rascore.services.study):
# the frozen model version's stored prediction ('model'), or the demo's simulated suggestion
# ('simulated'; no model version). A model's stored predictions may be replaced later (a re-run
# of predict), so the study keeps its own copy; a case without a prediction has no row. Rows are
# written only while the study is a draft (in the transaction that opens it), then fixed.
# Studies opened before this migration get their snapshot here, from their frozen model's
# predictions as stored now (created_at says when).
M006 = [
    f"""CREATE TABLE study_aids (
        study_id INTEGER NOT NULL,
        item_id INTEGER NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('model','simulated')),
        model_version_id INTEGER REFERENCES model_versions(id),
        grade INTEGER NOT NULL CHECK (grade {_GRADE}),
        probs_json TEXT NOT NULL CHECK (json_valid(probs_json) AND json_array_length(probs_json) = 4),
        created_at TEXT NOT NULL,
        PRIMARY KEY (study_id, item_id),
        FOREIGN KEY (study_id, item_id) REFERENCES study_cases (study_id, item_id),
        CHECK ((source = 'model') = (model_version_id IS NOT NULL))
    )""",
    """INSERT INTO study_aids (study_id, item_id, source, model_version_id, grade, probs_json, created_at)
       SELECT c.study_id, c.item_id, 'model', m.model_version_id, p.grade, p.probs_json,
              strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
       FROM study_cases c JOIN studies s ON s.id = c.study_id AND s.status != 'draft'
       JOIN items i ON i.id = c.item_id
       JOIN study_models m ON m.study_id = c.study_id AND m.modality = i.modality
       JOIN predictions p ON p.model_version_id = m.model_version_id AND p.item_id = c.item_id
       WHERE json_valid(p.probs_json) AND json_array_length(p.probs_json) = 4""",
    *_draft_only("study_aids"),
]


@migrations(name="006_study_aids")
def m006_study_aids(db: Database) -> None:
    """Each study case's aid, snapshotted when the study opens."""
    for statement in M006:
        db.execute(statement)


# Web sessions that survive a reload (rascore.services.tokens): one row per sign-in on a browser.
# The browser keeps a random token in a cookie; the store keeps only its sha256 (a stolen copy of
# the database gives no usable token). ``expires_at`` slides with activity (the idle rule) but
# never past ``ends_at`` (the absolute lifetime); a revoked row stays until pruned, so a
# revoked token is told apart from an unknown one.
M007 = [
    """CREATE TABLE session_tokens (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
        user_id INTEGER NOT NULL REFERENCES users(id),
        method TEXT NOT NULL CHECK (method IN ('password','oidc')),
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        revoked_at TEXT,
        revoked_reason TEXT,
        CHECK (expires_at <= ends_at)
    )""",
    "CREATE INDEX session_tokens_user ON session_tokens (user_id)",
]


@migrations(name="007_session_tokens")
def m007_session_tokens(db: Database) -> None:
    """Hashed web-session tokens with their idle and absolute expiry and revocation."""
    for statement in M007:
        db.execute(statement)


# Test cohort 3: scans from a scanner that no training item comes from (the simulator's
# "unseen" scanner-C). SQLite cannot alter a CHECK constraint, and rebuilding ``items`` would
# cascade into every table that references it, so the CHECK's text is widened in place, the
# procedure SQLite documents for changes that leave the stored rows valid
# (https://www.sqlite.org/lang_altertable.html, "making other kinds of table schema changes").
_COHORTS_OLD = "cohort IN ('train','test1','test2')"
_COHORTS_NEW = "cohort IN ('train','test1','test2','test3')"


@migrations(name="008_cohort_test3")
def m008_cohort_test3(db: Database) -> None:
    """Items may belong to cohort test3."""
    (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'items'").fetchone()
    if _COHORTS_OLD not in sql:
        raise RuntimeError("items: the cohort CHECK is not the one this migration widens")
    (version,) = db.execute("PRAGMA schema_version").fetchone()
    db.execute("PRAGMA writable_schema = ON")
    db.execute(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'items'",
        [sql.replace(_COHORTS_OLD, _COHORTS_NEW)],
    )
    db.execute(f"PRAGMA schema_version = {int(version) + 1}")
    db.execute("PRAGMA writable_schema = OFF")
