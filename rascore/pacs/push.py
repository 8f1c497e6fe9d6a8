"""Send results back to the PACS: one DICOM Comprehensive SR per pulled instance with a reference
grade or a prediction of the active model, stored with STOW-RS beside the original scan.

The SR (built with ``highdicom``) is in the original study, names the original instance by its
real SOP Class and Instance UIDs (a "Source" image item, and the evidence sequence), and holds:

- the reference standard, when there is one: SH, PD (Doppler modalities) and the combined EOSS,
  with how it was decided (agreement, adjudication, import);
- the active model's prediction, when there is one: the model (modality and version), its grade
  of the modality's target (SH for greyscale, combined EOSS for Doppler) and the probability of
  each grade 0-3.

The real UIDs come from the private ``UidMap``; an instance without an entry there is not pushed
(counted as ``unmapped``). The patient and study attributes of the SR are copied from the
original's metadata, read from the PACS at push time (WADO-RS metadata), never from the store.
The SR's own UIDs are keyed hashes of the instance and the content, so pushing the same result
twice sends the same SR (the server keeps one) and a changed result is a new SR.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from rascore.project import Project
from rascore.scale import modality as lookup_modality
from rascore.store import pacs as sql

from .connection import Connection, PacsError, PacsUnreachable, translated
from .uid_map import UidMap

SCHEME = "99RASCORE"
SERIES_NUMBER = 9901
MANUFACTURER = "RAScore"


@dataclass
class PushReport:
    """What a push did: SRs stored, results without a UID mapping, and failures with reasons."""

    stored: int = 0
    unmapped: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    stopped: str | None = None

    @property
    def ok(self) -> bool:
        """Nothing failed and not stopped early."""
        return not self.failed and self.stopped is None

    def summary(self) -> str:
        """One closing line."""
        return f"stored {self.stored} reports, no UID mapping {self.unmapped}, failed {len(self.failed)}"


def _uid(key: bytes, *parts: str) -> str:
    digest = hmac.new(key, "sr:".join(parts).encode("utf-8"), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def _codes():
    from highdicom.sr import CodedConcept as C

    return {
        "root": C("EOSS-REPORT", SCHEME, "EULAR-OMERACT synovitis score report"),
        "source": C("260753009", "SCT", "Source"),
        "reference": C("REFERENCE", SCHEME, "Reference standard"),
        "method": C("METHOD", SCHEME, "How the reference was decided"),
        "model": C("MODEL", SCHEME, "Model prediction"),
        "version": C("MODEL-VERSION", SCHEME, "Model version"),
        "SH": C("SH", SCHEME, "Synovial hypertrophy grade (EOSS)"),
        "PD": C("PD", SCHEME, "Power Doppler grade (EOSS)"),
        "EOSS": C("EOSS", SCHEME, "Combined EOSS grade"),
        "grade": C("{grade}", "UCUM", "grade"),
        "ratio": C("1", "UCUM", "no units"),
    }


def _probability(grade: int):
    from highdicom.sr import CodedConcept as C

    return C(f"P{grade}", SCHEME, f"Probability of grade {grade}")


def build_sr(row: dict, original, modality: str, key: bytes):
    """The SR of one result row (``rascore.store.pacs.results_to_push``) about ``original`` (a
    pydicom Dataset of the instance's metadata, without pixel data)."""
    import highdicom as hd

    mod = lookup_modality(modality)
    codes = _codes()
    contains = "CONTAINS"

    def number(name: str, value: float, unit: str = "grade"):
        return hd.sr.NumContentItem(
            codes[name] if name in codes else name, value, codes[unit], relationship_type=contains
        )

    items = [
        hd.sr.ImageContentItem(
            codes["source"], original.SOPClassUID, original.SOPInstanceUID, relationship_type=contains
        )
    ]
    if row.get("ref_sh") is not None:
        reference = hd.sr.ContainerContentItem(codes["reference"], relationship_type=contains)
        grades = [number("SH", row["ref_sh"])]
        if mod.doppler and row.get("ref_pd") is not None:
            grades.append(number("PD", row["ref_pd"]))
        grades.append(number("EOSS", row["ref_combined"]))
        grades.append(
            hd.sr.TextContentItem(codes["method"], str(row["ref_method"]), relationship_type=contains)
        )
        reference.ContentSequence = hd.sr.ContentSequence(grades, is_root=False)
        items.append(reference)
    if row.get("model_grade") is not None:
        model = hd.sr.ContainerContentItem(codes["model"], relationship_type=contains)
        parts = [
            hd.sr.TextContentItem(
                codes["version"], f"{mod.code} v{row['model_version']}", relationship_type=contains
            ),
            number(mod.target, row["model_grade"]),
        ]
        probs = json.loads(row["probs_json"] or "[]")
        for grade, p in enumerate(probs):
            parts.append(
                hd.sr.NumContentItem(
                    _probability(grade), float(p), codes["ratio"], relationship_type=contains
                )
            )
        model.ContentSequence = hd.sr.ContentSequence(parts, is_root=False)
        items.append(model)
    root = hd.sr.ContainerContentItem(codes["root"])
    root.ContentSequence = hd.sr.ContentSequence(items, is_root=False)
    content = json.dumps({k: row.get(k) for k in sorted(row) if k != "item_id"}, sort_keys=True)
    return hd.sr.ComprehensiveSR(
        evidence=[original],
        content=root,
        series_instance_uid=_uid(key, "series", str(original.StudyInstanceUID), mod.code),
        series_number=SERIES_NUMBER,
        sop_instance_uid=_uid(key, "instance", row["uid_hash"], content),
        instance_number=int(row["item_id"]),
        manufacturer=MANUFACTURER,
        series_description=f"RAScore EOSS {mod.code}",
    )


def _metadata(connection: Connection, uids: dict):
    from pydicom import Dataset

    url = f"{connection.url}/studies/{uids['study']}/series/{uids['series']}/instances/{uids['sop']}/metadata"
    with translated(url, instance=True):
        records = connection.client.retrieve_instance_metadata(uids["study"], uids["series"], uids["sop"])
        record = records[0] if isinstance(records, list) else records
        plain = {k: v for k, v in record.items() if "BulkDataURI" not in v and "InlineBinary" not in v}
        return Dataset.from_json(plain)


def _store(connection: Connection, sr) -> None:
    with translated(f"{connection.url}/studies", instance=True):
        answer = connection.client.store_instances([sr], study_instance_uid=sr.StudyInstanceUID)
    failed = answer.get("FailedSOPSequence") if answer is not None else None
    if failed:
        reason = failed[0].get("FailureReason")
        raise PacsError(f"{connection.url}/studies: STOW-RS refused the report (failure reason {reason})")


def push(
    project: Project,
    connection: Connection,
    modality: str,
    *,
    on_result: Callable[[int, str, str | None], None] | None = None,
) -> PushReport:
    """Store an SR for every pulled instance of ``modality`` with a result and a UID mapping;
    ``on_result(item_id, status, reason)`` with status stored, unmapped or failed."""
    code = lookup_modality(modality).code
    rows = sql.results_to_push(project.store, code)
    mapping = UidMap(project.settings.pacs_uid_map, project.settings.data_dir).load()
    report = PushReport()
    for row in rows:
        uids = mapping.get(row["uid_hash"])
        if uids is None:
            report.unmapped += 1
            if on_result:
                on_result(row["item_id"], "unmapped", "no entry in the PACS UID map")
            continue
        try:
            original = _metadata(connection, uids)
            _store(connection, build_sr(row, original, code, project.key))
        except PacsUnreachable as exc:
            report.stopped = str(exc)
            break
        except PacsError as exc:
            line = str(exc)
            for uid in (uids.get("study"), uids.get("series"), uids.get("sop")):
                if uid:
                    line = line.replace(uid, "…")  # the line names the server, not the patient's UIDs
            report.failed.append((row["item_id"], line))
            if on_result:
                on_result(row["item_id"], "failed", line)
            continue
        except (ValueError, TypeError, AttributeError) as exc:  # highdicom refuses the metadata
            line = f"the report could not be built: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            report.failed.append((row["item_id"], line))
            if on_result:
                on_result(row["item_id"], "failed", line)
            continue
        report.stored += 1
        if on_result:
            on_result(row["item_id"], "stored", None)
    return report
