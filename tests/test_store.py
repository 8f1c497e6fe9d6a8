"""The store: migrations, pragmas, append-only tables, derived combined score, concurrent writers."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from rascore.store import Store, StoreError, connect

SHA = "a" * 64


def _item(store: Store, modality: str = "SPD", sha: str = SHA) -> int:
    store.add_media(sha, format="png", kind="image", nbytes=10, frames=1, height=4, width=4, fps=None)
    return store.add_item(media_sha256=sha, modality=modality, cohort="train", frames=1, fps=None)


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
    reader = store.add_user("reader-1", "reader", "junior")
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
    reader = store.add_user("reader-1", "reader")
    with pytest.raises(InvalidGrade):
        store.add_annotation(item, reader, 0, 2)
    with pytest.raises(InvalidGrade):
        store.add_annotation(item, reader, 4, 0)
    with pytest.raises(StoreError, match="needs a PD"):
        store.add_annotation(item, reader, 2, None)
    with pytest.raises(StoreError, match="no PD"):
        store.add_annotation(grey, reader, 2, 1)
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
    store.add_user("Expert-A", "expert")
    with pytest.raises(StoreError, match="already exists"):
        store.add_user("expert-a", "expert")


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "x.db"
    store = Store(path)
    items = [_item(store, "SGS", f"{i:064x}") for i in range(20)]
    readers = [store.add_user(f"reader-{i}", "reader") for i in range(6)]

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
