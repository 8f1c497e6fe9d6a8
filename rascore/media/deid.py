"""DICOM de-identification (PS3.15 Basic Profile, retaining patient sex and age) and keyed pseudonyms.

What is done to a data set, deterministically for a given key (so one original always gives the
same bytes, and sha256 de-duplication works):
- PatientName and PatientID become the pseudonym "pt-" + 12 hex of HMAC-SHA256(key, patient ID,
  else "NAME|birth date"); PatientSex is kept; PatientAge is kept, capped at 090Y.
- Every person name (PN) anywhere is emptied; every date, time and date-time (DA, TM, DT) is
  emptied (dates identify; longitudinal information is therefore removed).
- Every instance UID (UI values that are not registered DICOM UIDs or class UIDs) is replaced by
  "2.25." + a keyed hash of the original, so references between files stay consistent.
- Private tags, curves (50xx) and overlays (60xx) are removed; so are the identifying attributes
  listed in deid_profile.REMOVE (addresses, phones, other IDs, institution, department, station, serial
  numbers, accession/study/visit identifiers, free-text comments and descriptions, requests,
  procedure steps, icons, digital signatures, original-attribute sequences).
- Application entity titles (AE) and URLs (UR) are removed.
- Any remaining text element (LO, SH, LT, ST, UT, UC, CS) that contains one of the original
  identifying values or their words (patient ID and names, accession number, birth date,
  institution, department, station, staff names) is removed too: a safety net for vendor fields.
- The 128-byte preamble is zeroed; source/sending AE titles leave the file meta.
- PatientIdentityRemoved = YES, DeidentificationMethod and its code sequence are set.
Burned-in pixel text is out of scope (BurnedInAnnotation is left as the file states it).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
import tempfile
from os import PathLike
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.datadict import keyword_for_tag
from pydicom.uid import UID_dictionary

from rascore.media.deid_profile import (
    ADDRESS_VRS,
    DATE_VRS,
    FREE_TEXT_VRS,
    EMPTY,
    IDENTIFYING,
    META_REMOVE,
    METHOD,
    PROTECTED,
    REMOVE,
)

PSEUDONYM_PATTERN = re.compile(r"^pt-[0-9a-f]{12}$")


def pseudonym(patient_key: str, key: bytes) -> str:
    """Stable per-patient pseudonym "pt-" + 12 hex chars of HMAC-SHA256(key, identifier)."""
    digest = hmac.new(key, patient_key.strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return "pt-" + digest[:12]


def keyed_uid(uid: str, key: bytes) -> str:
    """Replacement UID "2.25.<128-bit keyed hash>": deterministic, not reversible without the key."""
    digest = hmac.new(key, b"uid:" + uid.strip().encode("ascii", "replace"), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def load_or_create_key(path: str | PathLike[str]) -> bytes:
    """Read the project secret, or create it (32 random bytes, mode 0600) on first use."""
    path = Path(path)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = b""
    if key:
        if len(key) < 16:
            raise ValueError(f"{path}: pseudonym key is too short ({len(key)} bytes)")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "wb") as fh:
            fh.write(os.urandom(32))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic and never overwrites a key another process just made
        except FileExistsError:
            pass
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path.read_bytes()


def existing_pseudonym(ds: Dataset) -> str | None:
    """The pseudonym of a file this project already de-identified, else None."""
    patient_id = str(ds.get("PatientID") or "").strip()
    removed = str(ds.get("PatientIdentityRemoved") or "").upper() == "YES"
    return patient_id if removed and PSEUDONYM_PATTERN.match(patient_id) else None


def identifying_words(ds: Dataset) -> list[str]:
    """Original identifying strings (whole values >= 3 chars and their words >= 4 chars), case-folded.

    Any kept text that contains one is dropped, so e.g. a manufacturer named like the institution
    does not carry the institution's name into the store.
    """
    found: set[str] = set()
    for keyword in IDENTIFYING:
        value = ds.get(keyword)
        if value is None:
            continue
        values = (
            list(value)
            if type(value).__name__ == "MultiValue" or isinstance(value, (list, tuple))
            else [value]
        )
        for item in values:
            text = str(item).strip()
            if len(text) >= 3:
                found.add(text)
            found.update(word for word in re.split(r"[\^=\s,*;:/()]+", text) if len(word) >= 4)
    return sorted({v.casefold() for v in found})


def contains_identifier(text: str, words: list[str]) -> bool:
    """True when ``text`` contains any of the identifying words (case-insensitive)."""
    folded = text.casefold()
    return any(word in folded for word in words)


def _is_kept_uid(uid: str, keyword: str) -> bool:
    return (
        uid in UID_dictionary
        or keyword.endswith("ClassUID")
        or keyword
        in (
            "TransferSyntaxUID",
            "CodingSchemeUID",
            "ContextGroupExtensionCreatorUID",
            "MappingResourceUID",
            "SOPClassesInStudy",
            "ReferencedTransferSyntaxUIDInFile",
            "SpecificCharacterSet",
        )
    )


def _clean(ds: Dataset, key: bytes, identifiers: list[str], remap_uids: bool = True) -> None:
    """Apply the rules to one data set and, recursively, to every sequence item in it."""
    for tag in list(ds.keys()):
        if tag.is_private or 0x5000 <= tag.group <= 0x50FF or 0x6000 <= tag.group <= 0x60FF:
            del ds[tag]
            continue
        elem = ds[tag]
        keyword = elem.keyword or keyword_for_tag(tag)
        if keyword in REMOVE or elem.VR in ADDRESS_VRS:
            del ds[tag]
        elif elem.VR == "SQ":
            for item in elem.value or []:
                _clean(item, key, identifiers, remap_uids)
        elif keyword in EMPTY or elem.VR == "PN" or elem.VR in DATE_VRS:
            elem.value = None
        elif elem.VR == "UI" and elem.value and remap_uids:
            values = list(elem.value) if elem.VM > 1 else [elem.value]
            mapped = [v if _is_kept_uid(str(v), keyword) else keyed_uid(str(v), key) for v in values]
            elem.value = mapped if elem.VM > 1 else mapped[0]
        elif elem.VR in FREE_TEXT_VRS and elem.value and keyword not in PROTECTED:
            if contains_identifier(str(elem.value), identifiers):
                del ds[tag]


def _cap_age(age: str) -> str | None:
    """Ages over 89 years are identifying (HIPAA): cap at 090Y."""
    match = re.fullmatch(r"(\d{3})([DWMY])", age.strip())
    if not match:
        return None
    number, unit = int(match.group(1)), match.group(2)
    return "090Y" if unit == "Y" and number >= 90 else age.strip()


def already_ours(ds: Dataset) -> bool:
    """True for a file this project de-identified before (its UIDs are keyed hashes already)."""
    method = ds.get("DeidentificationMethod")
    methods = [str(m) for m in method] if type(method).__name__ == "MultiValue" else [str(method or "")]
    return existing_pseudonym(ds) is not None and METHOD[0] in methods


def deidentify(ds: Dataset, key: bytes, pseudonym_value: str | None) -> None:
    """De-identify ``ds`` in place (see the module docstring); pixel data is left untouched.

    A file this project already de-identified keeps its UIDs, so taking an exported file back in
    gives the same bytes (and is found to be a duplicate).
    """
    identifiers = identifying_words(ds)
    age = str(ds.get("PatientAge") or "")
    _clean(ds, key, identifiers, remap_uids=not already_ours(ds))
    ds.PatientName = pseudonym_value or ""
    ds.PatientID = pseudonym_value or ""
    if "PatientAge" in ds:
        capped = _cap_age(age)
        if capped is None:
            del ds.PatientAge
        else:
            ds.PatientAge = capped
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    codes = []
    for value, meaning in (
        ("113100", "Basic Application Confidentiality Profile"),
        ("113108", "Retain Patient Characteristics Option"),
    ):
        code = Dataset()
        code.CodeValue = value
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = meaning
        codes.append(code)
    ds.DeidentificationMethodCodeSequence = codes
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    ds.preamble = b"\x00" * 128  # a preamble may hold anything (e.g. a TIFF header)
    meta = ds.file_meta
    for keyword in META_REMOVE:
        if keyword in meta:
            delattr(meta, keyword)
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID


def deidentified_bytes(ds: Dataset, key: bytes, pseudonym_value: str | None) -> bytes:
    """De-identify ``ds`` in place and return it written as a DICOM file (same transfer syntax)."""
    deidentify(ds, key, pseudonym_value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
