"""Faults: a long writer holding the database, a full disk while storing a scan or publishing a
checkpoint, and the server restarted in the middle of a reader's session."""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from rascore import atomic
from rascore.services import admin, labelling
from rascore.store import registry
from rascore.store import StoreBusy, StoreError
from rascore.store import accounts
from rascore.train import checkpoint as checkpoint_module
from rascore.train import versions
from tests.fixtures_media import grey_png
from tests.fixtures_labelling import build_project


@pytest.fixture
def project(tmp_path):
    return build_project(tmp_path / "project", per_modality=2)


def _hold_write_lock(db: Path, seconds: float, ready: threading.Event) -> threading.Thread:
    """Another connection holds BEGIN IMMEDIATE (the write lock) for ``seconds``."""

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO project_settings (key, value_json) VALUES ('holder', '1')")
        ready.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def _state(store) -> tuple[int, int, int]:
    one = store.conn.execute
    return (
        one("SELECT count(*) FROM annotations").fetchone()[0],
        one("SELECT count(*) FROM audit_log").fetchone()[0],
        one("SELECT count(*) FROM reservations").fetchone()[0],
    )


def test_grade_waits_for_a_long_writer_within_the_busy_timeout(project):
    store = project.store
    reader = accounts.user(store, "demo-reader")
    claim = labelling.next_item(store, reader, modality="SGS")
    ready = threading.Event()
    holder = _hold_write_lock(project.settings.db_path, 1.5, ready)
    ready.wait(5)
    t0 = time.monotonic()
    annotation = labelling.submit(store, reader, claim.item_id, 2)
    waited = time.monotonic() - t0
    holder.join()
    assert waited >= 1.0  # it waited for the lock instead of failing at once
    assert labelling.my_grade(store, reader, claim.item_id)["id"] == annotation
    assert (
        store.conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'annotation.add' AND target = ?",
            (str(claim.item_id),),
        ).fetchone()[0]
        == 1
    )


class _FullDiskOS:
    """The os module, except that files opened with fdopen fail with ENOSPC after some bytes."""

    def __init__(self, fail_on: int = 1) -> None:
        self.calls, self.fail_on = 0, fail_on

    def __getattr__(self, name: str):
        return getattr(os, name)

    def fdopen(self, fd: int, *args, **kwargs):
        handle = os.fdopen(fd, *args, **kwargs)
        self.calls += 1
        if self.calls < self.fail_on:
            return handle
        real_write = handle.write

        def write(data: bytes) -> int:
            real_write(bytes(data)[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        handle.write = write
        return handle


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("fail_on", [1, 2], ids=["media-file", "cache-file"])
def test_full_disk_while_storing_a_scan(project, monkeypatch, fail_on):
    admin_user = accounts.user(project.store, "demo-admin")
    media_before = _files(project.settings.media_dir)
    cache_before = _files(project.settings.cache_dir)
    items_before = len(project.store.items())
    monkeypatch.setattr(atomic, "os", _FullDiskOS(fail_on))  # every atomic write: media, then cache
    report = admin.import_uploads(
        project, admin_user, [("scan.png", grey_png(seed=99))], modality="SGS", cohort="train"
    )
    assert report.rejected == 1 and report.imported == 0
    assert "No space left on device" in report.rows[0]["reason"]
    assert "scan.png" in report.rows[0]["file"]
    assert _files(project.settings.media_dir) == media_before  # no half file, no temp file
    assert _files(project.settings.cache_dir) == cache_before
    assert len(project.store.items()) == items_before
    monkeypatch.undo()
    again = admin.import_uploads(
        project, admin_user, [("scan.png", grey_png(seed=99))], modality="SGS", cohort="train"
    )
    assert again.imported == 1  # the same file goes in once there is room


def _checkpoint(modality: str = "SGS") -> dict:
    return {
        "modality": modality,
        "arch": "tiny",
        "args": {"preset": "tiny"},
        "metrics": {"val": {"auc_macro": 0.7}},
        "model": {"w": [1.0, 2.0]},
    }


def test_full_disk_while_publishing_a_checkpoint(project, monkeypatch):
    first = versions.publish(project, _checkpoint(), lambda v: f"# v{v}\n", activate="always")
    assert first.activated
    root = versions.modality_dir(project.settings.models_dir, "SGS")
    listing = sorted(p.relative_to(root) for p in root.rglob("*"))

    def full_disk_save(obj, handle, *args, **kwargs):
        handle.write(b"partial checkpoint bytes")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk_save)
    with pytest.raises(OSError) as caught:
        versions.publish(project, _checkpoint(), lambda v: f"# v{v}\n", activate="always")
    assert caught.value.errno == errno.ENOSPC
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == listing  # no partial folder
    assert registry.active_version(project.store, "SGS")["version"] == 1
    assert [r["version"] for r in registry.list_versions(project.store, "SGS")] == [1]
    monkeypatch.undo()

    def full_disk_card(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(versions, "write_text_atomic", full_disk_card)
    with pytest.raises(OSError):
        versions.publish(project, _checkpoint(), lambda v: f"# v{v}\n", activate="always")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == listing
    assert registry.active_version(project.store, "SGS")["version"] == 1


# ------------------------------------------------------------------ busy past the timeout
def test_grade_past_the_busy_timeout_is_a_clear_store_error(project):
    store = project.store
    reader = accounts.user(store, "demo-reader")
    claim = labelling.next_item(store, reader, modality="SGS")
    before = _state(store)
    store.conn.execute("PRAGMA busy_timeout = 300")  # stand-in for the 15 s of production
    ready = threading.Event()
    holder = _hold_write_lock(project.settings.db_path, 2.0, ready)
    ready.wait(5)
    try:
        with pytest.raises(StoreBusy) as caught:
            labelling.submit(store, reader, claim.item_id, 2)
        # the store's own error, with the message the labelling page shows as it is
        assert isinstance(caught.value, StoreError)
        assert str(caught.value) == labelling.BUSY_GRADE
        assert "database is busy" in str(caught.value) and "not saved" in str(caught.value)
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        with pytest.raises(StoreBusy, match="next item could not be loaded"):
            labelling.next_item(store, reader, modality="SGS")
        assert not store.conn.in_transaction  # nothing left open
    finally:
        holder.join()
    assert _state(store) == before  # no grade, no audit row, the lease untouched
    assert labelling.my_grade(store, reader, claim.item_id) is None
    labelling.submit(store, reader, claim.item_id, 2)  # pressed again: saved once
    assert [r["sh"] for r in labelling.my_history(store, reader, claim.item_id)] == [2]


def test_label_page_says_the_grade_was_not_saved_when_the_database_is_busy(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from rascore.services import session
    from rascore.store import db as db_module
    from tests.apptest import assert_page_ok
    from tests.conftest import env_for

    root = tmp_path / "busy"
    build_project(root, per_modality=1)
    for key, value in env_for(root).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 300)  # the page's new connections
    shared = session.shared_project()
    reader = accounts.user(shared.store, "demo-reader")
    root_dir = Path(__file__).resolve().parents[1]
    at = AppTest.from_file(str(root_dir / "app.py"), default_timeout=60)
    session.begin(at.session_state, reader)
    at.run()
    at.switch_page(str(root_dir / "pages" / "label.py")).run()
    item_id = int(at.markdown[0].value.split("Item #")[1].split(" ")[0])
    at.button(key="label.sh2").click().run()
    ready = threading.Event()
    holder = _hold_write_lock(root / "rascore.db", 3.0, ready)
    ready.wait(5)
    try:
        at.button(key="label.submit").click().run()
    finally:
        holder.join()
    assert_page_ok(at, expected_errors=[labelling.BUSY_GRADE])
    assert [e.value for e in at.error] == [labelling.BUSY_GRADE]
    assert f"#{item_id} " in at.markdown[0].value  # still on the same item, grade still chosen
    assert at.button(key="label.sh2").proto.type == "primary"
    assert shared.store.annotation_history(item_id, reader["id"]) == []
    at.button(key="label.submit").click().run()  # pressed again once the writer is gone
    assert_page_ok(at)
    assert [r["sh"] for r in shared.store.annotation_history(item_id, reader["id"])] == [2]
