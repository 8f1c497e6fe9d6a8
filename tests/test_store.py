"""The store: migrations, pragmas, append-only tables, derived combined score, concurrent writers."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from rascore.store import Store, StoreError, connect
from rascore.store import accounts

SHA = "a" * 64


def _item(store: Store, modality: str = "SPD", sha: str = SHA) -> int:
    store.add_media(sha, format="png", kind="image", nbytes=10, frames=1, height=4, width=4, fps=None)
    return store.add_item(media_sha256=sha, modality=modality, cohort="train", frames=1, fps=None)


def test_cohort_test3_migration_widens_the_check_and_keeps_every_row(tmp_path):
    """008_cohort_test3 on a store made before it: old rows and references stay, test3 is accepted
    (also by a connection opened before the migration), other names are still refused."""
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

    from rascore.store.migrations import migrations

    path = tmp_path / "old.db"
    before = Migrations("rascore")
    before._migrations = [m for m in migrations._migrations if m.name < "008"]
    old = connect(path)
    before.apply(Database(old))
    old.execute(
        "INSERT INTO media (sha256, format, kind, bytes, frames, height, width, created_at)"
        " VALUES (?, 'png', 'image', 10, 1, 4, 4, '2026-01-01')",
        [SHA],
    )
    old.execute(
        "INSERT INTO items (media_sha256, modality, cohort, dynamic, frames, source, created_at)"
        " VALUES (?, 'SPD', 'test2', 0, 1, 'demo', '2026-01-01')",
        [SHA],
    )
    old.execute("INSERT INTO ground_truth (item_id, sh, pd) VALUES (1, 2, 1)")
    with pytest.raises(sqlite3.IntegrityError):
        old.execute("UPDATE items SET cohort = 'test3' WHERE id = 1")
    store = Store(path)  # applies 008
    names = [r[0] for r in connect(path).execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert names[-1] == "008_cohort_test3"
    store.add_media("b" * 64, format="png", kind="image", nbytes=10, frames=1, height=4, width=4, fps=None)
    store.add_item(media_sha256="b" * 64, modality="SGS", cohort="test3", frames=1, fps=None)
    old.execute("UPDATE items SET cohort = 'test3' WHERE id = 1")  # opened before the migration
    conn = connect(path)
    assert [r[0] for r in conn.execute("SELECT cohort FROM items ORDER BY id")] == ["test3", "test3"]
    assert tuple(conn.execute("SELECT sh, pd FROM ground_truth WHERE item_id = 1").fetchone()) == (2, 1)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE items SET cohort = 'test4' WHERE id = 1")


def test_migrations_idempotent_and_pragmas(tmp_path):
    path = tmp_path / "x.db"
    Store(path)
    Store(path)  # a second open applies nothing
    conn = connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    from rascore.store.migrations import migrations

    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert names[0] == "001_initial"
    assert names == [m.name for m in migrations._migrations]  # each applied once, in order
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "media",
        "items",
        "users",
        "annotations",
        "reference_labels",
        "model_versions",
        "predictions",
        "jobs",
        "audit_log",
        "ground_truth",
    } <= tables


def test_foreign_keys_enforced(tmp_path):
    store = Store(tmp_path / "x.db")
    with pytest.raises(sqlite3.IntegrityError):
        store.add_item(media_sha256="b" * 64, modality="SGS", cohort="train", frames=1, fps=None)


def test_annotation_history_append_only_and_combined_derived(tmp_path):
    store = Store(tmp_path / "x.db")
    item = _item(store)
    reader = accounts.add_user(store, "reader-1", "reader", "junior")
    first = store.add_annotation(item, reader, 1, 2, seconds=3.5)
    second = store.add_annotation(item, reader, 2, 3, seconds=2.0)
    history = store.annotation_history(item, reader)
    assert [h["id"] for h in history] == [first, second]
    assert history[1]["supersedes"] == first
    assert [h["combined"] for h in history] == [2, 3]
    latest = store.latest_annotations(item)
    assert len(latest) == 1 and latest[0]["sh"] == 2 and latest[0]["reader"] == "reader-1"
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE annotations SET sh = 0")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM annotations")
    store.audit("test", target="x")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM audit_log")


def test_invalid_grades_refused_by_library_and_schema(tmp_path):
    from rascore.scale import InvalidGrade

    store = Store(tmp_path / "x.db")
    item = _item(store)
    grey = _item(store, "SGS", "c" * 64)
    reader = accounts.add_user(store, "reader-1", "reader")
    with pytest.raises(InvalidGrade):
        store.add_annotation(item, reader, 0, 2)
    with pytest.raises(InvalidGrade):
        store.add_annotation(item, reader, 4, 0)
    with pytest.raises(InvalidGrade, match="needs a PD"):
        store.add_annotation(item, reader, 2, None)
    with pytest.raises(InvalidGrade, match="no PD"):
        store.add_annotation(grey, reader, 2, 1)
    with pytest.raises(StoreError, match="no item 999"):
        store.add_annotation(999, reader, 2, None)
    with pytest.raises(StoreError, match="reason"):
        store.add_annotation(item, reader, None, None, not_assessable=True)
    # even raw SQL cannot store SH 0 with PD > 0
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute(
            "INSERT INTO annotations (item_id, user_id, sh, pd, created_at) VALUES (?,?,0,1,'t')",
            (item, reader),
        )
    assert store.annotation_history(item, reader) == []
    na = store.add_annotation(item, reader, None, None, not_assessable=True, reason="motion blur")
    assert store.annotation_history(item, reader)[0]["id"] == na


def test_reference_latest_wins_and_duplicate_user(tmp_path):
    store = Store(tmp_path / "x.db")
    item = _item(store)
    store.set_reference(item, 1, 1, "agreement")
    store.set_reference(item, 2, 3, "adjudication")
    ref = store.reference(item)
    assert (ref["sh"], ref["pd"], ref["combined"], ref["method"]) == (2, 3, 3, "adjudication")
    accounts.add_user(store, "Expert-A", "expert")
    with pytest.raises(StoreError, match="already exists"):
        accounts.add_user(store, "expert-a", "expert")


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "x.db"
    store = Store(path)
    items = [_item(store, "SGS", f"{i:064x}") for i in range(20)]
    readers = [accounts.add_user(store, f"reader-{i}", "reader") for i in range(6)]

    errors: list[BaseException] = []

    def grade(user_id: int) -> None:
        own = Store(path)  # a separate connection, as another session thread would have
        try:
            for round_ in range(3):
                for item in items:
                    own.add_annotation(item, user_id, (item + round_) % 4)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=grade, args=(r,)) for r in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    total = store.conn.execute("SELECT count(*) FROM annotations").fetchone()[0]
    assert total == 6 * 3 * 20
    latest = store.latest_annotations()
    assert len(latest) == 6 * 20
    assert all(row["sh"] == (row["item_id"] + 2) % 4 for row in latest)
    # every edit chain is complete: each row supersedes the previous one of the same pair
    chains = store.conn.execute(
        "SELECT count(*) FROM annotations a WHERE supersedes IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM annotations b WHERE b.id = a.supersedes AND b.item_id = a.item_id"
        " AND b.user_id = a.user_id)"
    ).fetchone()[0]
    assert chains == 0


# pairs the EOSS refuses on a power Doppler item (SPD) and on a greyscale one (SGS)
BAD_PAIRS = [("SPD", 0, 2), ("SPD", 2, None), ("SPD", None, 1), ("SPD", 4, 0), ("SGS", 1, 1)]


@pytest.mark.parametrize(("modality", "sh", "pd"), BAD_PAIRS)
def test_one_grade_rule_same_refusal_in_library_and_store(tmp_path, modality, sh, pd):
    from rascore import scale

    store = Store(tmp_path / "x.db")
    item = _item(store, modality)
    reader = accounts.add_user(store, "reader-1", "reader")
    with pytest.raises(scale.InvalidGrade) as rule:
        scale.check_pair(modality, sh, pd)
    with pytest.raises(scale.InvalidGrade) as annotation:
        store.add_annotation(item, reader, sh, pd)
    with pytest.raises(scale.InvalidGrade) as reference:
        store.set_reference(item, sh, pd, "import")
    assert str(annotation.value) == str(reference.value) == str(rule.value)
    assert store.annotation_history(item, reader) == [] and store.reference(item) is None


def test_write_retries_a_busy_write_and_busy_leaves_nothing(tmp_path):
    from rascore.store import StoreBusy

    path = tmp_path / "x.db"
    store = Store(path)
    calls: list[str] = []

    def add(conn: sqlite3.Connection) -> int:
        calls.append("add")
        user_id = accounts.add_user(store, "reader-1", "reader")
        store.audit("user.add", target="reader-1")
        if len(calls) == 1:  # the first attempt meets a busy database half way
            raise sqlite3.OperationalError("database is locked")
        return user_id

    user_id = store.write(add, busy="busy, try again", retries=1)
    assert calls == ["add", "add"]
    assert [u["id"] for u in accounts.users(store)] == [user_id]  # the first attempt left nothing
    assert [r["action"] for r in store.audit_rows()] == ["user.add"]

    # another writer holds the lock through every attempt: StoreBusy with the caller's message
    store.conn.execute("PRAGMA busy_timeout = 50")
    holder = connect(path)
    holder.execute("BEGIN IMMEDIATE")
    calls.clear()
    with pytest.raises(StoreBusy, match="busy, try again"):
        store.write(
            lambda conn: accounts.add_user(store, "reader-2", "reader"), busy="busy, try again", retries=2
        )
    holder.rollback()
    assert accounts.user(store, "reader-2") is None and len(accounts.users(store)) == 1

    # busy half way through, retries spent: the statements already run are rolled back
    def half(conn: sqlite3.Connection) -> None:
        accounts.add_user(store, "reader-3", "reader")
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(StoreBusy, match="busy, try again"):
        store.write(half, busy="busy, try again")
    assert accounts.user(store, "reader-3") is None and not store.conn.in_transaction
