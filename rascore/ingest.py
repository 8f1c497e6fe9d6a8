"""Batch import of scans into a project: files, folders or a manifest CSV, one report at the end.

Each file is all or nothing: validated, decoded, de-identified, stored and cached by
``rascore.media``, then recorded in one store transaction; on any failure nothing of that file
remains (no media file, no cache entry, no row) and the batch goes on. A row that would put its
patient in a second cohort is refused (``rascore.patient_cohort``), for the whole batch before any
file is stored and again inside each row's transaction.

An entry's bytes come from its ``path``, or from its ``fetch`` callable (``rascore.pacs``: a
WADO-RS retrieve), which may raise RowError for that file alone; any other exception it raises
(the server went away) ends the batch, with every file before it complete.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rascore import scale
from rascore.patient_cohort import Placement, cohort_conflicts, without_patient_note
from rascore.project import Project
from rascore.store import accounts

MANIFEST_COLUMNS = ("path", "modality", "cohort", "patient", "joint", "side")
_JOINT = re.compile(r"^[A-Za-z0-9 _-]{1,32}$")
_SIDES = {"l": "L", "left": "L", "r": "R", "right": "R"}


class RowError(ValueError):
    """A manifest row or file that cannot be imported, with the reason."""


@dataclass
class Entry:
    """One file to import with what is known about it."""

    path: Path
    display: str
    modality: str | None = None
    cohort: str = "train"
    patient: str | None = None
    joint: str | None = None
    side: str | None = None
    grades: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    reference: tuple[int, int | None] | None = None
    error: str | None = None
    # Bytes from elsewhere than ``path`` (a network retrieve); ``planned`` is then the patient
    # pseudonym its header will give, known beforehand for the batch's cohort check.
    fetch: Callable[[], bytes] | None = None
    planned: str | None = None
    # Called with (store, item id) inside the transaction that records the file, for a new item or
    # the item it duplicates, so what the caller records commits with the item or not at all.
    on_record: Callable[[object, int], None] | None = None


@dataclass
class IngestReport:
    """What a batch did: item ids imported, duplicates, rejected files with reasons, and how many
    imported items have no patient id."""

    imported: list[int] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    without_patient: int = 0
    shift: dict | None = None  # the shift check when asked for (rascore.predict.check_items)

    @property
    def ok(self) -> bool:
        """True when nothing was rejected."""
        return not self.rejected

    def summary(self) -> str:
        """One closing line."""
        return (
            f"imported {len(self.imported)}, duplicates {len(self.duplicates)}, rejected {len(self.rejected)}"
        )

    def notes(self) -> list[str]:
        """Lines the report adds after the summary (items without a patient id, the shift check)."""
        note = without_patient_note(self.without_patient)
        return ([note] if note else []) + self.shift_notes()

    def shift_notes(self) -> list[str]:
        """The shift check's outcome in words (docs/SHIFT.md), when it was asked for."""
        if self.shift is None:
            return []
        lines = []
        checked, flagged = self.shift["checked"], self.shift["flagged"]
        if checked:
            ids = ", ".join(f"#{i}" for i in flagged[:20]) + (" ..." if len(flagged) > 20 else "")
            lines.append(
                f"shift check: {len(flagged)} of {checked} imported items do not look like the training "
                "data of their modality's active model" + (f" ({ids})" if flagged else "")
            )
        for modality, reason in sorted(self.shift["not_checked"].items()):
            lines.append(f"shift check not made for {modality}: {reason}")
        return lines


def _grade(value: str, what: str) -> int | None:
    value = (value or "").strip()
    if value == "":
        return None
    try:
        return scale.check_grade(float(value) if "." in value else int(value), what)
    except (ValueError, scale.InvalidGrade) as exc:
        raise RowError(
            str(exc)
            if isinstance(exc, scale.InvalidGrade)
            else f"{what} must be an integer 0-3, got {value!r}"
        ) from None


def _pair(mod: scale.Modality, sh: int | None, pd: int | None, who: str) -> tuple[int, int | None]:
    """Validate one reader's grades for a modality by the EOSS rule (``scale.check_pair``)."""
    if sh is None:
        raise RowError(f"{who}: PD given without SH")
    try:
        scale.check_pair(mod, sh, pd)
    except scale.InvalidGrade as exc:
        raise RowError(f"{who}: {exc}") from None
    return sh, pd


def _within(folder: Path, relative: str) -> Path:
    """Resolve a manifest path, refusing absolute paths and any that escape the manifest folder."""
    if not relative.strip():
        raise RowError("empty path")
    raw = Path(relative)
    if raw.is_absolute() or relative.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", relative):
        raise RowError("absolute paths are not allowed in a manifest")
    if ".." in raw.parts:
        raise RowError("the path escapes the manifest's folder ('..')")
    resolved = (folder / raw).resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise RowError("the path escapes the manifest's folder (through a link)")
    return resolved


def _describe(
    entry: Entry,
    modality: str | None,
    cohort: str | None,
    patient: str | None,
    joint: str | None,
    side: str | None,
) -> None:
    """Fill and validate an entry's fields; sets entry.error instead of raising."""
    try:
        if modality:
            entry.modality = scale.modality(modality).code
        entry.cohort = scale.cohort(cohort) if cohort else "train"
        entry.patient = (patient or "").strip() or None
        joint = (joint or "").strip()
        if joint and not _JOINT.match(joint):
            raise RowError(f"joint {joint!r} is not a short name such as MCP2")
        entry.joint = joint or None
        side = (side or "").strip().lower()
        if side and side not in _SIDES:
            raise RowError(f"side must be L or R, got {side!r}")
        entry.side = _SIDES.get(side)
    except (ValueError, RowError) as exc:
        entry.error = str(exc)


def entries_from_manifest(manifest: Path) -> list[Entry]:
    """Read a manifest CSV; a bad row becomes an entry carrying its error, so the batch goes on."""
    folder = manifest.parent
    with open(manifest, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in ("path", "modality") if c not in columns]
        if missing:
            raise RowError(f"{manifest.name}: missing column(s) {', '.join(missing)}")
        readers = sorted({c.split(":", 1)[1] for c in columns if c.startswith(("sh:", "pd:"))})
        entries = []
        for lineno, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "") for k, v in raw.items()}
            rel = row.get("path", "")
            entry = Entry(path=folder / rel, display=f"{manifest.name}:{lineno} {rel}")
            try:
                entry.path = _within(folder, rel)
            except RowError as exc:
                entry.error = str(exc)
                entries.append(entry)
                continue
            _describe(
                entry,
                row.get("modality") or "?",
                row.get("cohort"),
                row.get("patient"),
                row.get("joint"),
                row.get("side"),
            )
            if entry.error is None:
                try:
                    mod = scale.modality(entry.modality)
                    for name in readers:
                        sh = _grade(row.get(f"sh:{name}", ""), f"sh:{name}")
                        pd = _grade(row.get(f"pd:{name}", ""), f"pd:{name}")
                        if sh is not None or pd is not None:
                            entry.grades[name] = _pair(mod, sh, pd, name)
                    ref_sh = _grade(row.get("reference_sh", ""), "reference_sh")
                    ref_pd = _grade(row.get("reference_pd", ""), "reference_pd")
                    if ref_sh is not None or ref_pd is not None:
                        entry.reference = _pair(mod, ref_sh, ref_pd, "reference")
                except RowError as exc:
                    entry.error = str(exc)
            entries.append(entry)
    return entries


def entries_from_paths(paths: Iterable[Path], modality: str | None, cohort: str | None) -> list[Entry]:
    """Files and folders (walked recursively, hidden files skipped), all of one modality and cohort."""
    entries: list[Entry] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            found = [(p, str(p)) for p in files]
        else:
            found = [(path, str(path))]
        for file, display in found:
            entry = Entry(path=file, display=display)
            if not file.exists():
                entry.error = "no such file"
            elif modality is None:
                entry.error = "no modality: give --modality SGS|DGS|SPD|DPD or a manifest"
            else:
                _describe(entry, modality, cohort, None, None, None)
            entries.append(entry)
    return entries


def _check_frames(mod: scale.Modality, frames: int) -> None:
    if mod.dynamic and frames < 2:
        raise RowError(f"{mod.code} is a dynamic modality but the file has a single frame")
    if not mod.dynamic and frames != 1:
        raise RowError(f"{mod.code} is a static modality but the file has {frames} frames")


def import_entry(
    project: Project, entry: Entry, limits=None, *, actor_id: int | None = None, source: str = "import"
) -> tuple[str, int | None]:
    """Import one file; returns ("imported", item_id) or ("duplicate", None); raises RowError."""
    from rascore.media import Limits, MediaError, ingest_bytes, ingest_file

    if entry.error:
        raise RowError(entry.error)
    mod = scale.modality(entry.modality)
    try:
        if entry.fetch is not None:
            data = entry.fetch()
            result = ingest_bytes(data, entry.display, project.media, project.key, limits or Limits())
        else:
            result = ingest_file(entry.path, project.media, project.key, limits or Limits())
    except MediaError as exc:
        raise RowError(exc.reason) from None
    store = project.store
    try:
        _check_frames(mod, result.frames)
        with store.transaction():
            store.add_media(
                result.sha256,
                format=result.format,
                kind=result.kind,
                nbytes=project.media.media_path(result.sha256).stat().st_size,
                frames=result.frames,
                height=result.height,
                width=result.width,
                fps=result.fps,
                meta=result.meta,
            )
            existing = store.find_item(result.sha256, mod.code)
            if existing is not None:
                if entry.on_record:
                    entry.on_record(store, existing["id"])
                return "duplicate", None
            patient = entry.patient
            patient = _pseudonym(patient, project.key) if patient else result.pseudonym
            conflict = cohort_conflicts(store, [Placement(patient, entry.cohort, entry.display)])
            if conflict:
                raise RowError(conflict[0])
            item_id = store.add_item(
                media_sha256=result.sha256,
                modality=mod.code,
                cohort=entry.cohort,
                frames=result.frames,
                fps=result.fps,
                patient=patient,
                joint=entry.joint,
                side=entry.side,
                source=source,
            )
            for name, (sh, pd) in sorted(entry.grades.items()):
                user = accounts.user(store, name)
                user_id = user["id"] if user else accounts.add_user(store, name, "reader")
                store.add_annotation(item_id, user_id, sh, pd, modality=mod.code, supersedes=None)
            if entry.reference is not None:
                sh, pd = entry.reference
                store.set_reference(item_id, sh, pd, "import", decided_by=actor_id, modality=mod.code)
            store.audit(
                "item.import",
                user_id=actor_id,
                target=str(item_id),
                detail={
                    "sha256": result.sha256,
                    "modality": mod.code,
                    "cohort": entry.cohort,
                    "readers": len(entry.grades),
                },
            )
            if entry.on_record:
                entry.on_record(store, item_id)
    except BaseException as exc:
        if result.is_new:
            project.media.discard(result.sha256)
        if isinstance(exc, Exception) and not isinstance(exc, RowError):
            raise RowError(f"could not record it: {exc}") from exc
        raise
    return "imported", item_id


def _pseudonym(patient: str, key: bytes) -> str:
    from rascore.media import pseudonym

    return pseudonym(patient, key)


def planned_patient(project: Project, entry: Entry, limits=None) -> str | None:
    """The pseudonym an entry's row would carry: from its manifest patient, else from its DICOM
    header (read without pixel data); None when it has neither or cannot be read."""
    from rascore.media import Limits, header_pseudonym

    if entry.error:
        return None
    if entry.fetch is not None:
        return entry.planned
    if entry.patient:
        return _pseudonym(entry.patient, project.key)
    return header_pseudonym(entry.path, project.key, limits or Limits())


def batch_conflicts(project: Project, entries: list[Entry], limits=None) -> dict[int, str]:
    """Index -> reason for each entry that would put its patient in a second cohort, judged
    against the project and the whole batch before anything is stored."""
    rows = [
        Placement(planned_patient(project, entry, limits), entry.cohort, entry.display) for entry in entries
    ]
    return cohort_conflicts(project.store, rows)


def ingest(
    project: Project,
    entries: list[Entry],
    *,
    limits=None,
    actor_id: int | None = None,
    source: str = "import",
    on_result: Callable[[Entry, str, str | None, int | None], None] | None = None,
    shift_check: bool = False,
) -> IngestReport:
    """Import entries one by one after the batch's patient/cohort check; each outcome goes to
    ``on_result(entry, status, reason, item_id)``. With ``shift_check`` the imported items are
    then compared with the training data of their modality's active model (one forward pass
    each; ``IngestReport.shift``)."""
    from rascore.store.results import patients

    report = IngestReport()
    refused = batch_conflicts(project, entries, limits)
    for index, entry in enumerate(entries):
        item_id = None
        try:
            if index in refused:
                raise RowError(refused[index])
            status, item_id = import_entry(project, entry, limits, actor_id=actor_id, source=source)
        except RowError as exc:
            report.rejected.append((entry.display, str(exc)))
            status, reason = "rejected", str(exc)
        else:
            reason = None
            if status == "imported":
                report.imported.append(item_id)
            else:
                report.duplicates.append(entry.display)
        if on_result:
            on_result(entry, status, reason, item_id)
    report.without_patient = sum(p is None for p in patients(project.store, report.imported))
    if shift_check:
        from rascore.predict import check_items

        report.shift = check_items(project, report.imported)
    return report
