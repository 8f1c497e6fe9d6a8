"""Online backup of a project folder, and its restore, while the app and the worker keep writing.

The database is copied with SQLite's online backup API (``sqlite3.Connection.backup``) a few pages
per step with a short sleep between steps, so that readers submitting grades are never held up;
SQLite restarts a stepped backup when another connection writes, so after a few restarts the
rest is copied in one step (under WAL that holds only a read snapshot, which never blocks writers).
The result is one consistent snapshot: every transaction committed before the backup started is
in it.

Then the media, decoded cache, ground-truth and model folders are hard-linked (or copied across
file systems). Their files are content-addressed or written once into a new folder and never
changed in place, so files copied after the snapshot cover every row in it; files newer than the
snapshot are harmless extras. Temporary ``.tmp-*`` names of writes in flight are skipped.

A backup folder is itself a complete project folder (``rascore.db``, ``media/``, ``cache/``,
``truth/``, ``models/``, ``pseudonym.key``, ``BACKUP.json``). Restore = ``restore(backup, new)``:
check the snapshot's integrity and files, copy it into a new, empty folder, then point
``RASCORE_DATA`` at that folder (``RASCORE_DB`` and ``RASCORE_MODELS`` unset, or set inside it).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rascore.config import Settings
from rascore.store import inventory
from rascore.store.db import BUSY_TIMEOUT_MS, utcnow

DB_NAME = "rascore.db"
MANIFEST_NAME = "BACKUP.json"
FOLDERS: tuple[str, ...] = ("media", "cache", "truth")
DEFAULT_PAGES = 256
DEFAULT_SLEEP_S = 0.01
MAX_RESTARTS = 3


class BackupError(RuntimeError):
    """A backup or restore that cannot go on, with a reason the operator can act on."""


@dataclass
class BackupReport:
    """What a backup or restore wrote and checked."""

    dest: str
    started_at: str
    finished_at: str = ""
    db_bytes: int = 0
    db_steps: int = 0
    db_restarts: int = 0
    integrity: str = ""
    files: dict[str, int] = field(default_factory=dict)
    linked: int = 0
    copied: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Integrity check passed and every file the database names is present."""
        return self.integrity == "ok" and not self.missing

    def summary(self) -> str:
        """One line for the command line."""
        files = ", ".join(f"{k} {v}" for k, v in self.files.items())
        state = "ok" if self.ok else f"PROBLEMS: integrity {self.integrity!r}, missing {len(self.missing)}"
        return (
            f"{self.dest}: database {self.db_bytes:,} bytes in {self.db_steps} steps "
            f"({self.db_restarts} restarts); files {files}; {state}"
        )


def _empty_target(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty folder; choose a new one")
    dest.mkdir(parents=True, exist_ok=True)


def snapshot_db(
    source: Path,
    target: Path,
    *,
    pages: int = DEFAULT_PAGES,
    sleep_s: float = DEFAULT_SLEEP_S,
    max_restarts: int = MAX_RESTARTS,
) -> tuple[int, int]:
    """Copy the live database into ``target`` with the online backup API; (steps, restarts)."""
    if not Path(source).is_file():
        raise BackupError(f"there is no database at {source}")
    src = sqlite3.connect(str(source), timeout=BUSY_TIMEOUT_MS / 1000)
    dst = sqlite3.connect(str(target))
    state = {"steps": 0, "restarts": 0, "last": None}

    class _Restarted(Exception):
        pass

    def progress(status: int, remaining: int, total: int) -> None:
        state["steps"] += 1
        last = state["last"]
        if last is not None and remaining > last[0]:  # SQLite restarted after a write elsewhere
            state["restarts"] += 1
            if state["restarts"] >= max_restarts:
                raise _Restarted
        state["last"] = (remaining, total)

    try:
        src.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        try:
            src.backup(dst, pages=max(1, int(pages)), progress=progress, sleep=sleep_s)
        except (_Restarted, sqlite3.Error) as exc:
            if isinstance(exc, sqlite3.Error) and not state["restarts"]:
                raise
            # too busy for small steps: one step under a WAL read snapshot (writers go on)
            src.backup(dst, pages=-1)
            state["steps"] += 1
    finally:
        dst.close()
        src.close()
    return state["steps"], state["restarts"]


def _transfer(src: Path, dst: Path, link: bool) -> bool:
    """Hard-link (True) or copy (False) one immutable file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(src, dst)
            return True
        except OSError:
            pass
    shutil.copy2(src, dst)
    return False


def copy_tree(src: Path, dst: Path, *, link: bool = True) -> tuple[int, int]:
    """Every regular file under ``src`` (skipping ``.tmp-*`` writes in flight); (linked, copied)."""
    linked = copied = 0
    if not src.is_dir():
        return 0, 0
    for folder, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith(".tmp-")]
        for name in files:
            if name.startswith(".tmp-") or name.endswith((".part", ".tmp")):
                continue
            path = Path(folder) / name
            if not path.is_file() or path.is_symlink():
                continue
            try:
                if _transfer(path, dst / path.relative_to(src), link):
                    linked += 1
                else:
                    copied += 1
            except FileNotFoundError:  # removed meanwhile (a rolled-back import): not in the snapshot
                continue
    return linked, copied


def missing_files(db_path: Path, data_dir: Path, models_dir: Path) -> list[str]:
    """Media files and model checkpoints the database names that are not under the folders."""
    media, models = inventory.named_files(db_path)
    missing: list[str] = []
    for sha in media:
        shard = data_dir / "media" / sha[:2]
        if not any(shard.glob(f"{sha}.*")) if shard.is_dir() else True:
            missing.append(f"media/{sha[:2]}/{sha}")
    missing.extend(f"models/{rel}" for rel in models if not (models_dir / rel).is_file())
    return missing


def backup(
    settings: Settings,
    dest: str | Path,
    *,
    pages: int = DEFAULT_PAGES,
    sleep_s: float = DEFAULT_SLEEP_S,
    link: bool = True,
    log: Callable[[str], None] | None = None,
) -> BackupReport:
    """Back up the project into the new folder ``dest`` while it is in use; checked afterwards."""
    dest = Path(dest)
    _empty_target(dest)
    say = log or (lambda _msg: None)
    report = BackupReport(dest=str(dest), started_at=utcnow())
    say(f"database {settings.db_path} -> {dest / DB_NAME}")
    report.db_steps, report.db_restarts = snapshot_db(
        settings.db_path, dest / DB_NAME, pages=pages, sleep_s=sleep_s
    )
    report.db_bytes = (dest / DB_NAME).stat().st_size
    # after the snapshot: every file it names exists already (files are written before rows)
    for name in FOLDERS:
        say(f"{name}/")
        linked, copied = copy_tree(settings.data_dir / name, dest / name, link=link)
        report.files[name] = linked + copied
        report.linked += linked
        report.copied += copied
    say("models/")
    linked, copied = copy_tree(Path(settings.models_dir), dest / "models", link=link)
    report.files["models"] = linked + copied
    report.linked += linked
    report.copied += copied
    if settings.secret_path.is_file():
        shutil.copy2(settings.secret_path, dest / settings.secret_path.name)
        os.chmod(dest / settings.secret_path.name, 0o600)
    report.integrity, report.counts = inventory.check(dest / DB_NAME)
    report.missing = missing_files(dest / DB_NAME, dest, dest / "models")
    report.finished_at = utcnow()
    (dest / MANIFEST_NAME).write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def restore(
    backup_dir: str | Path, dest: str | Path, *, log: Callable[[str], None] | None = None
) -> BackupReport:
    """Check a backup and copy it into the new, empty project folder ``dest`` (never in place)."""
    backup_dir, dest = Path(backup_dir), Path(dest)
    say = log or (lambda _msg: None)
    if not (backup_dir / DB_NAME).is_file():
        raise BackupError(f"{backup_dir} is not a backup folder: it has no {DB_NAME}")
    integrity, _ = inventory.check(backup_dir / DB_NAME)
    if integrity != "ok":
        raise BackupError(f"the backup's database fails its integrity check: {integrity}")
    _empty_target(dest)
    report = BackupReport(dest=str(dest), started_at=utcnow())
    say(f"database {backup_dir / DB_NAME} -> {dest / DB_NAME}")
    report.db_steps, report.db_restarts = snapshot_db(
        backup_dir / DB_NAME, dest / DB_NAME, pages=-1, sleep_s=0
    )
    report.db_bytes = (dest / DB_NAME).stat().st_size
    for name in (*FOLDERS, "models"):
        say(f"{name}/")
        linked, copied = copy_tree(backup_dir / name, dest / name, link=False)
        report.files[name] = linked + copied
        report.copied += copied
    key = backup_dir / "pseudonym.key"
    if key.is_file():
        shutil.copy2(key, dest / key.name)
        os.chmod(dest / key.name, 0o600)
    report.integrity, report.counts = inventory.check(dest / DB_NAME)
    report.missing = missing_files(dest / DB_NAME, dest, dest / "models")
    report.finished_at = utcnow()
    return report


def restored_settings(folder: str | Path, device: str = "auto") -> Settings:
    """The settings of a restored (or backup) folder: what ``RASCORE_DATA=folder`` gives."""
    folder = Path(folder)
    return Settings(db_path=folder / DB_NAME, data_dir=folder, models_dir=folder / "models", device=device)
