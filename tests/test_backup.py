"""Online backup while readers write, restore into a new folder, and the app's library on it."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from rascore import backup as backups
from rascore.services import labelling
from rascore.cli import main as cli_main
from rascore.project import Project
from rascore.store import Store, registry
from rascore.store import accounts
from tests.fixtures_labelling import build_project


def _pad(project: Project, n: int) -> None:
    """Many extra items (tiny stand-in media files are enough for grading) to make the file big."""
    store = project.store
    with store.transaction():
        for k in range(n):
            sha = f"{k:064x}"
            path = project.media.media_path(sha, "png")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"stand-in")
            store.add_media(
                sha,
                format="png",
                kind="image",
                nbytes=1,
                frames=1,
                height=8,
                width=8,
                fps=None,
                meta={"pad": "x" * 200},
            )
            store.add_item(media_sha256=sha, modality="SGS", cohort="train", frames=1, fps=None)


def _model(project: Project) -> None:
    """A registered model version with its files, as publish leaves it."""
    folder = Path(project.settings.models_dir) / "SGS" / "v1"
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"weights")
    (folder / "card.md").write_text("# SGS v1\n")
    registry.register_version(
        project.store,
        modality="SGS",
        version=1,
        path="SGS/v1/model.pt",
        card_path="SGS/v1/card.md",
        preset="tiny",
        architecture="x",
        metrics={},
        job_id=None,
        activate="always",
        user_id=None,
    )


class _Writers:
    """Readers grading in threads (each its own Store connection) until stopped, each at most
    ``limit`` items: a slow backup on a loaded machine must not let them grade every item, or
    the restored project would have nothing left for them to grade."""

    limit = 1000

    def __init__(self, db: Path, names: list[str]) -> None:
        self.db, self.names = db, names
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.count = 0
        self.by_name = {n: 0 for n in names}
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in names]

    def _run(self, name: str) -> None:
        store = Store(self.db, migrate=False)
        try:
            user = accounts.user(store, name)
            after = None
            while not self.stop.is_set() and self.by_name[name] < self.limit:
                claim = labelling.next_item(store, user, modality="SGS", after=after)
                if claim is None:
                    return
                labelling.submit(
                    store,
                    user,
                    claim.item_id,
                    1 + claim.item_id % 3,
                    reason="note <b>'; DROP TABLE x;--",
                    seconds=1.0,
                )
                after = claim.position
                with self.lock:
                    self.count += 1
                    self.by_name[name] += 1
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)
        finally:
            store.close()

    def __enter__(self) -> _Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_backup_during_writes_then_restore(tmp_path):
    project = build_project(tmp_path / "project")
    store = project.store
    _pad(project, 1500)
    _model(project)
    with _Writers(project.settings.db_path, ["demo-reader", "reader-two", "demo-expert"]) as writers:
        while (writers.count < 20 or min(writers.by_name.values()) == 0) and not writers.errors:
            time.sleep(0.02)
        before = {r["id"]: dict(r) for r in store.conn.execute("SELECT * FROM annotations")}
        audit_before = store.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        started = writers.count
        report = backups.backup(project.settings, tmp_path / "backup", pages=4, sleep_s=0.002)
        during = writers.count
        time.sleep(0.1)
    assert not writers.errors, writers.errors
    assert during > started >= 20, "the writers did not keep going during the backup"
    assert report.ok, (report.integrity, report.missing[:5])
    assert report.db_steps > 3  # stepped, not one long copy
    assert report.files["media"] >= 1516 and report.files["cache"] == 16 and report.files["models"] == 2
    assert (tmp_path / "backup" / backups.MANIFEST_NAME).is_file()

    restored = backups.restore(tmp_path / "backup", tmp_path / "restored")
    assert restored.ok
    conn = sqlite3.connect(tmp_path / "restored" / "rascore.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.row_factory = sqlite3.Row
    after = {r["id"]: dict(r) for r in conn.execute("SELECT * FROM annotations")}
    assert set(before) <= set(after)
    assert all(after[i] == row for i, row in before.items())  # verbatim, reasons included
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] >= audit_before
    conn.close()

    # the app's library opens the restored folder: sign-in data, grades, media, models
    again = Project(backups.restored_settings(tmp_path / "restored", device="cpu"))
    reader = accounts.user(again.store, "demo-reader")
    graded = [a for a in before.values() if a["user_id"] == reader["id"]]
    assert graded
    mine = labelling.my_grade(again.store, reader, graded[-1]["item_id"])
    assert mine is not None and mine["id"] >= graded[-1]["id"]
    first_item = again.store.items()[0]
    assert again.media.load_cache(first_item["media_sha256"]).ndim == 4
    assert registry.active_version(again.store, "SGS")["version"] == 1
    assert (tmp_path / "restored" / "models" / "SGS" / "v1" / "model.pt").read_bytes() == b"weights"
    assert again.key == project.key  # pseudonyms stay stable after a restore
    claim = labelling.next_item(again.store, reader, modality="SGS")
    assert claim is not None  # still gradeable
    new_id = labelling.submit(again.store, reader, claim.item_id, 2)
    assert new_id > max(after)


def test_backup_refuses_a_non_empty_folder_and_restore_refuses_a_non_backup(tmp_path):
    project = build_project(tmp_path / "project", per_modality=1, expert_grades=False)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "precious.txt").write_text("keep me")
    with pytest.raises(backups.BackupError, match="not an empty folder"):
        backups.backup(project.settings, dest)
    assert (dest / "precious.txt").read_text() == "keep me"
    with pytest.raises(backups.BackupError, match="not a backup folder"):
        backups.restore(dest, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_backup_reports_files_the_database_names_but_the_folder_lacks(tmp_path):
    project = build_project(tmp_path / "project", per_modality=1, expert_grades=False)
    report = backups.backup(project.settings, tmp_path / "b1")
    assert report.ok
    gone = next((tmp_path / "b1" / "media").rglob("*.*"))
    gone.unlink()
    restored = backups.restore(tmp_path / "b1", tmp_path / "r1")
    assert not restored.ok and any(gone.stem in m for m in restored.missing)


def test_cli_backup_and_restore(tmp_path, monkeypatch, capsys):
    project = build_project(tmp_path / "project", per_modality=1)
    monkeypatch.setenv("RASCORE_DATA", str(tmp_path / "project"))
    monkeypatch.setenv("RASCORE_DB", str(project.settings.db_path))
    monkeypatch.setenv("RASCORE_MODELS", str(project.settings.models_dir))
    assert cli_main(["backup", str(tmp_path / "bk"), "--copy", "--pages", "2"]) == 0
    assert "ok" in capsys.readouterr().out
    assert cli_main(["backup", "--restore", str(tmp_path / "bk"), str(tmp_path / "new")]) == 0
    assert "RASCORE_DATA=" in capsys.readouterr().out
    assert cli_main(["backup", str(tmp_path / "bk")]) == 2  # not empty: refused, one line
    assert "not an empty folder" in capsys.readouterr().err
    names = {u["name"] for u in accounts.users(Store(tmp_path / "new" / "rascore.db"))}
    assert {"demo-admin", "demo-reader", "expert-a"} <= names
