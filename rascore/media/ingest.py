"""Take one scan in: sniff -> validate -> decode -> de-identify -> store -> cache, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from .decode import check_size, checked_path
from .deid import deidentified_bytes, existing_pseudonym, pseudonym
from .dicom import decode_dicom, patient_key, read_dicom
from .errors import Limits, MediaError
from .frames import Decoded
from .images import decode_image
from .sniff import EXTENSIONS, IMAGE_FORMATS, sniff
from .storage import MediaStore
from .video import decode_video


@dataclass
class IngestResult:
    """What the store needs to know about one ingested file (no original name, no identifiers)."""

    sha256: str
    is_new: bool
    kind: str
    format: str
    frames: int
    height: int
    width: int
    fps: float | None
    pseudonym: str | None
    meta: dict = field(default_factory=dict)


def dicom_pseudonym(ds: Dataset, key: bytes) -> str | None:
    """The patient pseudonym of a DICOM data set: the one this project already gave it, else the
    keyed hash of its patient key (PatientID, else name and birth date); None without either."""
    alias = existing_pseudonym(ds)
    if alias is None:
        raw = patient_key(ds)
        alias = pseudonym(raw, key) if raw is not None else None
    return alias


_PATIENT_TAGS = ["PatientID", "PatientName", "PatientBirthDate", "PatientIdentityRemoved"]


def header_pseudonym(path: str | PathLike[str], key: bytes, limits: Limits | None = None) -> str | None:
    """The pseudonym ingest would give a file's patient, read from a DICOM header alone (no pixel
    data); None for other formats and for any file that cannot be read (its import reports why)."""
    try:
        path = checked_path(path, limits or Limits())
        if sniff(path) != "dicom":
            return None
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True, specific_tags=_PATIENT_TAGS)
        return dicom_pseudonym(ds, key)
    except Exception:  # a bad file: the import itself refuses it with the reason
        return None


def _prepare(data: bytes, name: str, key: bytes, limits: Limits) -> tuple[bytes, str, Decoded, str | None]:
    """Validate and decode in memory; returns (bytes to store, extension, decoded, pseudonym)."""
    check_size(len(data), name, limits)
    fmt = sniff(data, name)
    if fmt == "dicom":
        ds = read_dicom(data, name, limits)
        decoded = decode_dicom(ds, name)
        alias = dicom_pseudonym(ds, key)
        try:
            stored = deidentified_bytes(ds, key, alias)
        except Exception as exc:  # pydicom refuses to write an invalid element
            raise MediaError(name, f"cannot write the de-identified DICOM: {exc}") from None
        return stored, EXTENSIONS[fmt], decoded, alias
    if fmt in IMAGE_FORMATS:
        decoded = decode_image(data, fmt, name, limits)
    else:
        decoded = decode_video(data, fmt, name, limits)
    return data, EXTENSIONS[fmt], decoded, None


def _commit(store: MediaStore, stored: bytes, ext: str, decoded: Decoded, name: str) -> tuple[str, bool]:
    """Write the media file and the cache; on any failure remove what this call created."""
    sha = ""
    media_created = cache_created = False
    try:
        sha, is_new = store.put_bytes(stored, ext)
        media_created = is_new
        if is_new or not store.has_cache(sha):
            store.write_cache(sha, decoded.frames)
            cache_created = True
    except BaseException as exc:
        if media_created:
            _remove(store.media_path(sha, ext))
        if cache_created:
            _remove(store.cache_path(sha))
        if isinstance(exc, OSError):
            raise MediaError(name, f"could not be stored: {exc.strerror or exc}") from None
        raise
    return sha, is_new


def _remove(path: Path) -> None:
    """Delete a file this ingest wrote, and its shard folder when that is left empty."""
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass  # not empty (other files) or already gone


def ingest_bytes(
    data: bytes, name: str, store: MediaStore, key: bytes, limits: Limits = Limits()
) -> IngestResult:
    """Ingest an upload held in memory; ``name`` only appears in error messages, never in the store."""
    stored, ext, decoded, alias = _prepare(bytes(data), name, key, limits)
    sha, is_new = _commit(store, stored, ext, decoded, name)
    frames, height, width = decoded.shape
    return IngestResult(
        sha256=sha,
        is_new=is_new,
        kind=decoded.kind,
        format=decoded.format,
        frames=frames,
        height=height,
        width=width,
        fps=decoded.fps,
        pseudonym=alias,
        meta=dict(decoded.meta),
    )


def ingest_file(
    path: str | PathLike[str], store: MediaStore, key: bytes, limits: Limits = Limits()
) -> IngestResult:
    """Ingest one file from disk (see ingest_bytes); raises MediaError and stores nothing if it is bad."""
    path = checked_path(path, limits)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaError(path, f"cannot be read: {exc.strerror or exc}") from None
    return ingest_bytes(data, str(path), store, key, limits)
