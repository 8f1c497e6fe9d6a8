"""Administration behind the admin page: accounts and roles, uploads (files or a zip with a
manifest, unpacked safely), exports, the audit log. Each function checks the actor's role.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from rascore import auth, export
from rascore.ingest import Entry, RowError, entries_from_manifest, entries_from_paths, ingest
from rascore.permissions import PermissionDenied, require
from rascore.project import Project
from rascore.store import Store, StoreBusy, accounts
from rascore.store import labelling as sql
from rascore.services import tokens

MAX_UNPACKED_BYTES = int(os.environ.get("RASCORE_UPLOAD_MAX_BYTES", 2 * 1024**3))
MAX_MEMBERS = 20_000
MANIFEST_NAMES = ("manifest.csv",)


class AdminError(ValueError):
    """A refused administrative action, with a reason the admin can act on."""


@contextmanager
def _write(store: Store) -> Iterator[None]:
    """The store's write path, a busy database reported as an AdminError the page shows."""
    try:
        with store.transaction():
            yield
    except StoreBusy as exc:
        raise AdminError(str(exc)) from None


# ------------------------------------------------------------------ accounts
def users(store: Store, actor: Mapping) -> list[dict]:
    """Every account (no password hashes) with whether it can sign in."""
    require(actor, "manage_users")
    return accounts.users(store)


def add_account(
    store: Store, actor: Mapping, name: str, role: str, level: str | None, password: str | None
) -> int:
    """Create an account (admin; audited); without a password it can only sign in by OIDC."""
    require(actor, "manage_users")
    try:
        return auth.add_user(store, name.strip(), role, level or None, password or None, actor_id=actor["id"])
    except auth.AuthError as exc:
        raise AdminError(str(exc)) from None


def _account(store: Store, name: str) -> dict:
    user = accounts.user(store, name)
    if user is None:
        raise AdminError(f"There is no account named {name!r}.")
    return user


def change_role(store: Store, actor: Mapping, name: str, role: str) -> None:
    """Give an account another role (admin; audited); the last active admin keeps theirs.

    The account's web sessions end (every browser): it signs in again under its new role."""
    require(actor, "manage_users")
    if role not in auth.ROLES:
        raise AdminError(f"Unknown role {role!r}; expected one of {', '.join(auth.ROLES)}.")
    with _write(store):
        user = _account(store, name)
        if user["role"] == role:
            return
        if user["role"] == "admin" and user["active"] and accounts.count_active_admins(store) <= 1:
            raise AdminError("This is the last active admin: make another admin first.")
        accounts.set_role(store, user["id"], role)
        tokens.revoke_user(store, user["id"], "role")  # signed in again, with the new role
        store.audit(
            "user.role", user_id=actor["id"], target=user["name"], detail={"from": user["role"], "to": role}
        )


def set_active(store: Store, actor: Mapping, name: str, active: bool) -> None:
    """Deactivate (cannot sign in; grades stay; every web session ends) or reactivate an account
    (admin; audited)."""
    require(actor, "manage_users")
    with _write(store):
        user = _account(store, name)
        if bool(user["active"]) == bool(active):
            return
        if not active and user["id"] == actor["id"]:
            raise AdminError("You cannot deactivate your own account.")
        if not active and user["role"] == "admin" and accounts.count_active_admins(store) <= 1:
            raise AdminError("This is the last active admin: make another admin first.")
        accounts.set_active(store, user["id"], active)
        sql.release(store, user["id"])
        if not active:
            tokens.revoke_user(store, user["id"], "deactivated")
        store.audit(
            "user.activate" if active else "user.deactivate", user_id=actor["id"], target=user["name"]
        )


def reset_password(store: Store, actor: Mapping, name: str, password: str) -> None:
    """Set another account's password (admin; audited)."""
    require(actor, "manage_users")
    try:
        auth.set_password(store, name, password, actor_id=actor["id"])
    except auth.AuthError as exc:
        raise AdminError(str(exc)) from None


# ------------------------------------------------------------------ export and audit
@dataclass(frozen=True)
class ExportFile:
    """A file to download."""

    data: bytes
    filename: str
    mime: str
    rows: int


def export_file(store: Store, actor: Mapping, table: str, fmt: str = "csv") -> ExportFile:
    """Labels or the reference standard as CSV or Parquet bytes (expert or admin; audited)."""
    require(actor, "export")
    if fmt not in ("csv", "parquet"):
        raise AdminError(f"Unknown format {fmt!r}; expected csv or parquet.")
    with tempfile.TemporaryDirectory(prefix="rascore-export-") as folder:
        out = Path(folder) / f"{table}.{fmt}"
        try:
            count = export.write(store, table, out, fmt)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        data = out.read_bytes()
    store.audit("export", user_id=actor["id"], target=table, detail={"format": fmt, "rows": count})
    mime = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
    return ExportFile(data, f"rascore-{table}.{fmt}", mime, count)


def audit_log(store: Store, actor: Mapping, limit: int = 500) -> list[dict]:
    """The newest audit entries (admin)."""
    require(actor, "audit")
    return store.audit_rows(limit)


# ------------------------------------------------------------------ uploads
def safe_member_path(name: str) -> PurePosixPath:
    """A zip member's relative path, or AdminError for absolute paths and '..' escapes."""
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise AdminError(f"{name}: absolute paths are not allowed in a zip")
    path = PurePosixPath(cleaned)
    if any(part == ".." for part in path.parts):
        raise AdminError(f"{name}: the path leaves the zip's folder ('..')")
    if "\x00" in cleaned or not path.parts:
        raise AdminError(f"{name}: not a valid file name")
    return path


def unpack_zip(
    data: bytes, dest: Path, max_bytes: int = MAX_UNPACKED_BYTES, max_members: int = MAX_MEMBERS
) -> list[Path]:
    """Unpack a zip under ``dest`` safely; the files written.

    Refused, with nothing left behind: absolute or '..' member paths, links, encrypted members,
    more than ``max_members`` members, and more than ``max_bytes`` unpacked in all (counted
    while unpacking, whatever the headers claim, against zip bombs).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise AdminError("The upload is not a valid zip file.") from None
    written: list[Path] = []
    try:
        with archive:
            members = archive.infolist()
            if len(members) > max_members:
                raise AdminError(f"The zip holds {len(members)} entries; at most {max_members}.")
            declared = sum(m.file_size for m in members)
            if declared > max_bytes:
                raise AdminError(f"The zip unpacks to {declared:,} bytes; at most {max_bytes:,}.")
            total = 0
            root = dest.resolve()
            for member in members:
                relative = safe_member_path(member.filename)
                if member.is_dir():
                    continue
                if stat.S_ISLNK(member.external_attr >> 16):
                    raise AdminError(f"{member.filename}: links are not allowed in a zip")
                if member.flag_bits & 0x1:
                    raise AdminError(f"{member.filename}: encrypted members are not supported")
                target = (root / relative).resolve()
                if not target.is_relative_to(root):
                    raise AdminError(f"{member.filename}: the path leaves the zip's folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(target, "xb") as sink:
                    written.append(target)
                    while chunk := source.read(1 << 20):
                        total += len(chunk)
                        if total > max_bytes:
                            raise AdminError(f"The zip unpacks to more than {max_bytes:,} bytes.")
                        sink.write(chunk)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        RuntimeError,
        OSError,
        EOFError,
    ) as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise AdminError(f"The zip could not be unpacked: {exc}") from None
    except AdminError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


@dataclass
class UploadReport:
    """What an upload did, one row per file, and the import's notes (items without a patient id)."""

    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def imported(self) -> int:
        """Files imported as new items."""
        return sum(r["status"] == "imported" for r in self.rows)

    @property
    def duplicates(self) -> int:
        """Files already in the project."""
        return sum(r["status"] == "duplicate" for r in self.rows)

    @property
    def rejected(self) -> int:
        """Files refused, each with its reason."""
        return sum(r["status"] == "rejected" for r in self.rows)

    def summary(self) -> str:
        """One closing line."""
        return f"imported {self.imported}, duplicates {self.duplicates}, rejected {self.rejected}"


def _visible(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return not any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _entries_in(folder: Path, modality: str | None, cohort: str | None) -> list[Entry]:
    """A folder's entries: from its manifest.csv when there is one, else every file."""
    manifests = [p for p in folder.rglob("*") if p.name.lower() in MANIFEST_NAMES and _visible(p, folder)]
    if len(manifests) > 1:
        raise AdminError("The upload holds more than one manifest.csv; send one per import.")
    if manifests:
        try:
            entries = entries_from_manifest(manifests[0])
        except (RowError, UnicodeDecodeError, OSError) as exc:
            raise AdminError(f"The manifest could not be read: {exc}") from None
        for entry in entries:
            entry.display = entry.display.replace(str(folder) + os.sep, "")
        return entries
    files = sorted(p for p in folder.rglob("*") if p.is_file() and _visible(p, folder))
    entries = entries_from_paths(files, modality, cohort)
    for entry in entries:
        entry.display = str(entry.path.relative_to(folder))
    return entries


def import_uploads(
    project: Project,
    actor: Mapping,
    uploads: list[tuple[str, bytes]],
    modality: str | None = None,
    cohort: str | None = "train",
    on_result: Callable[[int, int, dict], None] | None = None,
    max_bytes: int = MAX_UNPACKED_BYTES,
) -> UploadReport:
    """Import uploaded scans: loose files (with a manifest.csv among them, or all of
    ``modality``/``cohort``) and zips (each with its own manifest.csv, or all of
    ``modality``/``cohort``). Each file is all or nothing; ``on_result(done, total, row)``."""
    require(actor, "import")
    if not uploads:
        raise AdminError("Choose files or a zip to import.")
    report = UploadReport()
    with tempfile.TemporaryDirectory(prefix="rascore-upload-") as tmp:
        tmp_path = Path(tmp)
        batches: list[list[Entry]] = []
        loose = tmp_path / "files"
        loose.mkdir()
        seen: set[str] = set()
        for index, (name, data) in enumerate(uploads):
            base = PurePosixPath(str(name).replace("\\", "/")).name or f"upload-{index}"
            if base.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
                folder = tmp_path / f"zip-{index}"
                folder.mkdir()
                try:
                    unpack_zip(data, folder, max_bytes)
                    batches.append(_entries_in(folder, modality, cohort))
                except AdminError as exc:
                    report.rows.append(
                        {"file": base, "status": "rejected", "reason": str(exc), "item_id": None}
                    )
                continue
            if base in seen or base.startswith("."):
                base = f"{index}-{base.lstrip('.')}"
            seen.add(base)
            (loose / base).write_bytes(data)
        if seen:
            try:
                batches.append(_entries_in(loose, modality, cohort))
            except AdminError as exc:
                report.rows.append(
                    {"file": "manifest.csv", "status": "rejected", "reason": str(exc), "item_id": None}
                )
        entries = [e for batch in batches for e in batch]
        total = len(entries)
        skipped = len(report.rows)  # zips and manifests refused before any file

        def record(entry: Entry, status: str, reason: str | None, item_id: int | None) -> None:
            row = {"file": entry.display, "status": status, "reason": reason, "item_id": item_id}
            report.rows.append(row)
            if on_result:
                on_result(len(report.rows) - skipped, total, row)

        result = ingest(project, entries, actor_id=actor["id"], source="upload", on_result=record)
        report.notes = result.notes()
    project.store.audit(
        "import.upload",
        user_id=actor["id"],
        detail={"imported": report.imported, "duplicates": report.duplicates, "rejected": report.rejected},
    )
    return report


__all__ = [
    "AdminError",
    "ExportFile",
    "PermissionDenied",
    "UploadReport",
    "add_account",
    "audit_log",
    "change_role",
    "export_file",
    "import_uploads",
    "reset_password",
    "safe_member_path",
    "set_active",
    "unpack_zip",
    "users",
]
