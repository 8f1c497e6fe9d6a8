"""QIDO-RS searches: studies (by date, modality tag or UID), then their series, then instances.

What a search returns keeps the UIDs (needed to retrieve) and the few patient attributes the
batch's one-patient-one-cohort check needs (``header``); ``Study.row()`` is what may be shown:
date, modalities, number of instances and frames, never a name or an ID.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from .connection import Connection, PacsError, translated

STUDY_FIELDS = (
    "StudyDate",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedInstances",
    "PatientID",
    "PatientName",
    "PatientBirthDate",
)
INSTANCE_FIELDS = ("SOPClassUID", "InstanceNumber", "NumberOfFrames")
PAGE = 500
_UID_TAG = {"study": "0020000D", "series": "0020000E", "instance": "00080018"}


def _paged(search, level: str, page: int = PAGE) -> list[dict]:
    """Every record of a QIDO-RS search, ``page`` at a time (``search(offset=, limit=)``).

    Paging stops at a short page, or at a page that brings nothing new: some servers ignore
    ``offset`` for some filters (Orthanc 1.10 with ModalitiesInStudy), and dicomweb-client's own
    ``get_remaining`` would then ask forever."""
    tag = _UID_TAG[level]
    seen: set[str] = set()
    records: list[dict] = []
    offset = 0
    while True:
        batch = search(offset=offset, limit=page)
        if not isinstance(batch, list) or not all(isinstance(r, dict) for r in batch):
            raise ValueError("a QIDO-RS answer must be a JSON array of data sets")
        new = []
        for record in batch:
            uid = json.dumps(record.get(tag, {}).get("Value"), sort_keys=True)
            if uid not in seen:
                seen.add(uid)
                new.append(record)
        records += new
        if len(batch) < page or not new:
            return records
        offset += len(batch)


@dataclass
class Instance:
    """One instance found by QIDO-RS."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str | None
    number: int | None
    frames: int


@dataclass
class Study:
    """One study found by QIDO-RS; ``instances`` is filled by ``list_instances``."""

    uid: str
    date: dt.date | None
    modalities: tuple[str, ...]
    count: int | None
    header: object = field(repr=False, default=None)  # pydicom Dataset: patient attributes only
    instances: list[Instance] | None = None

    def row(self) -> dict:
        """What a table may show of the study: no names, no IDs, no UIDs."""
        listed = self.instances is not None
        return {
            "date": self.date.isoformat() if self.date else None,
            "modalities": ", ".join(self.modalities),
            "instances": len(self.instances) if listed else self.count,
            "frames": sum(i.frames for i in self.instances) if listed else None,
        }


def parse_date(text: str | None) -> dt.date | None:
    """YYYY-MM-DD (or None/empty) as a date; PacsError saying the expected form otherwise."""
    if not text:
        return None
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise PacsError(f"{text!r} is not a date; expected YYYY-MM-DD") from None


def _dataset(record: dict):
    from pydicom import Dataset

    return Dataset.from_json(record)


def _text(ds, keyword: str) -> str | None:
    value = ds.get(keyword)
    return str(value).strip() or None if value not in (None, "") else None


def _int(ds, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _study(record: dict) -> Study:
    from pydicom import Dataset

    ds = _dataset(record)
    uid = _text(ds, "StudyInstanceUID")
    if not uid:
        raise ValueError("a study without a StudyInstanceUID")
    raw_date = _text(ds, "StudyDate")
    try:
        date = dt.datetime.strptime(raw_date, "%Y%m%d").date() if raw_date else None
    except ValueError:
        date = None
    raw = ds.get("ModalitiesInStudy")
    if raw is None or raw == "":
        modalities: tuple[str, ...] = ()
    elif isinstance(raw, str):
        modalities = (raw,)
    else:
        modalities = tuple(str(m) for m in raw)
    header = Dataset()
    for keyword in ("PatientID", "PatientName", "PatientBirthDate"):
        if keyword in ds:
            setattr(header, keyword, ds.get(keyword))
    return Study(
        uid=uid,
        date=date,
        modalities=modalities,
        count=_int(ds, "NumberOfStudyRelatedInstances"),
        header=header,
    )


def search_studies(
    connection: Connection,
    *,
    study_uids: Iterable[str] = (),
    since: dt.date | None = None,
    until: dt.date | None = None,
    modality_tag: str | None = None,
) -> list[Study]:
    """Studies by UID (each looked up), else by study date range and modality in study."""
    client = connection.client
    filters: dict[str, str] = {}
    if since or until:
        filters["StudyDate"] = (
            f"{since.strftime('%Y%m%d') if since else ''}-{until.strftime('%Y%m%d') if until else ''}"
        )
    if modality_tag:
        filters["ModalitiesInStudy"] = modality_tag.strip().upper()
    queries = [{**filters, "StudyInstanceUID": uid.strip()} for uid in study_uids if uid.strip()] or [filters]
    studies: dict[str, Study] = {}
    for query in queries:
        with translated(connection.url):
            found = _paged(
                lambda offset, limit, query=query: client.search_for_studies(
                    fields=list(STUDY_FIELDS), search_filters=query, offset=offset, limit=limit
                ),
                "study",
            )
            for record in found:
                study = _study(record)
                studies.setdefault(study.uid, study)
    return sorted(studies.values(), key=lambda s: (s.date or dt.date.min, s.uid))


def list_instances(
    connection: Connection, study: Study, *, modality_tag: str | None = None
) -> list[Instance]:
    """The study's series (of ``modality_tag`` when given), then each series' instances, in series
    and instance-number order; stores them on ``study.instances`` too."""
    client = connection.client
    instances: list[Instance] = []
    with translated(connection.url):
        filters = {"Modality": modality_tag.strip().upper()} if modality_tag else None
        series = _paged(
            lambda offset, limit: client.search_for_series(
                study.uid, search_filters=filters, offset=offset, limit=limit
            ),
            "series",
        )
        series_uids = sorted(
            {
                str(_dataset(r).get("SeriesInstanceUID") or "")
                for r in series
                if _dataset(r).get("SeriesInstanceUID")
            }
        )
        for series_uid in series_uids:
            found = _paged(
                lambda offset, limit, series_uid=series_uid: client.search_for_instances(
                    study.uid, series_uid, fields=list(INSTANCE_FIELDS), offset=offset, limit=limit
                ),
                "instance",
            )
            for record in found:
                ds = _dataset(record)
                sop = _text(ds, "SOPInstanceUID")
                if not sop:
                    raise ValueError("an instance without a SOPInstanceUID")
                instances.append(
                    Instance(
                        study_uid=study.uid,
                        series_uid=series_uid,
                        sop_uid=sop,
                        sop_class_uid=_text(ds, "SOPClassUID"),
                        number=_int(ds, "InstanceNumber"),
                        frames=_int(ds, "NumberOfFrames") or 1,
                    )
                )
    instances.sort(key=lambda i: (i.series_uid, i.number if i.number is not None else 0, i.sop_uid))
    study.instances = instances
    return instances
