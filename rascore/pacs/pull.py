"""Pull studies from a PACS: QIDO-RS lists each study's instances, WADO-RS retrieves each one, and
``rascore.ingest`` imports it exactly as ``rascore ingest`` imports a file (same checks,
de-identification, pseudonyms, report).

- **Incremental.** Each instance is known by ``HMAC-SHA256(project key, SOP Instance UID)``
  (``instance_key``); those already in ``pacs_instances`` for the modality are skipped before
  anything is downloaded. The hash is written in the same transaction as the item, so an
  instance is in the store whole or not at all, and a pull cut short is completed by the next.
- **Errors.** An instance the server refuses (4xx/5xx) or answers with something that is not
  DICOM, or that does not decode, is rejected with one line and the batch goes on; a server that
  cannot be reached, stops, or refuses the credentials ends the batch with one line
  (``PullReport.stopped``), everything before it complete.
- **UIDs.** The real UIDs of each instance go to the private ``UidMap`` (outside the data folder)
  before it is fetched, and entries whose instance did not end up in the store are dropped after.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rascore.ingest import Entry, IngestReport, RowError, ingest
from rascore.project import Project
from rascore.store import pacs as sql

from .connection import Connection, PacsError, PacsUnreachable, shown, translated
from .search import Instance, Study, list_instances
from .uid_map import UidMap


def instance_key(sop_uid: str, key: bytes) -> str:
    """The stored name of a pulled instance: HMAC-SHA256 of its SOP Instance UID (64 hex)."""
    return hmac.new(
        key, b"pacs-sop:" + sop_uid.strip().encode("ascii", "replace"), hashlib.sha256
    ).hexdigest()


@dataclass
class PullStats:
    """Where a pull's time went: ``network_s`` waiting for WADO-RS answers (and parsing their
    multipart body), the rest of ``total_s`` searching and importing; ``bytes`` retrieved."""

    instances: int = 0
    bytes: int = 0
    network_s: float = 0.0
    total_s: float = 0.0


@dataclass
class PullReport:
    """The ingest report of the instances fetched, plus those skipped as already in, and the line
    that stopped the batch early (None when it ran to the end)."""

    report: IngestReport = field(default_factory=IngestReport)
    found: int = 0
    skipped: int = 0
    stopped: str | None = None
    stats: PullStats = field(default_factory=PullStats)

    @property
    def ok(self) -> bool:
        """Nothing rejected and not stopped early."""
        return self.report.ok and self.stopped is None

    def summary(self) -> str:
        """One closing line (the ingest summary, plus what was already in)."""
        return f"{self.report.summary()}, already imported {self.skipped}"

    def notes(self) -> list[str]:
        """The ingest report's notes."""
        return self.report.notes()


def _display(study_index: int, study: Study, series_index: int, instance: Instance) -> str:
    """How a report line names an instance: by position and date, never by a UID or a name."""
    date = study.date.isoformat() if study.date else "undated"
    number = instance.number if instance.number is not None else "?"
    return f"study {study_index} ({date}) series {series_index} instance {number}"


def _fetch(connection: Connection, instance: Instance, stats: PullStats) -> Callable[[], bytes]:
    def fetch() -> bytes:
        import pydicom

        url = (
            f"{connection.url}/studies/{instance.study_uid}/series/{instance.series_uid}"
            f"/instances/{instance.sop_uid}"
        )
        started = time.perf_counter()
        try:
            with translated(url, instance=True):
                ds = connection.client.retrieve_instance(
                    instance.study_uid,
                    instance.series_uid,
                    instance.sop_uid,
                    media_types=(("application/dicom", "*"),),
                )
                buffer = io.BytesIO()
                pydicom.dcmwrite(buffer, ds)
        except PacsError as exc:
            # the line names the server, not the instance's UIDs
            line = str(exc).replace(shown(url), f"{shown(connection.url)} (WADO-RS)", 1)
            if isinstance(exc, PacsUnreachable):
                raise PacsUnreachable(line) from None
            raise RowError(line) from None
        finally:
            stats.network_s += time.perf_counter() - started
        data = buffer.getvalue()
        stats.bytes += len(data)
        stats.instances += 1
        return data

    return fetch


def _recorder(uid_hash: str, modality: str) -> Callable[[object, int], None]:
    def on_record(store, item_id: int) -> None:
        sql.record(store, uid_hash, modality, item_id)

    return on_record


def pull(
    project: Project,
    connection: Connection,
    studies: list[Study],
    modality: str,
    cohort: str,
    *,
    modality_tag: str | None = None,
    limits=None,
    actor_id: int | None = None,
    keep_uids: bool = True,
    on_planned: Callable[[int], None] | None = None,
    on_result: Callable[[Entry, str, str | None, int | None], None] | None = None,
) -> PullReport:
    """Import every instance of ``studies`` not yet pulled for ``modality`` into ``cohort``.

    ``keep_uids``: write the real UIDs to the private UID map (what a later push needs); False
    keeps no link back to the PACS at all. ``on_planned(n)`` is told how many instances will be fetched (for a progress bar) and
    ``on_result`` each one's outcome, as ``rascore.ingest.ingest`` tells it. PacsError when the
    search itself fails (nothing was imported then)."""
    from rascore.media import dicom_pseudonym
    from rascore.scale import cohort as check_cohort
    from rascore.scale import modality as lookup_modality

    started = time.perf_counter()
    code = lookup_modality(modality).code
    cohort = check_cohort(cohort)
    uid_map = UidMap(project.settings.pacs_uid_map, project.settings.data_dir) if keep_uids else None
    result = PullReport()
    planned: list[tuple[Study, int, int, Instance, str]] = []
    for s_index, study in enumerate(studies, start=1):
        instances = (
            study.instances
            if study.instances is not None
            else list_instances(connection, study, modality_tag=modality_tag)
        )
        series_order = {
            uid: n for n, uid in enumerate(dict.fromkeys(i.series_uid for i in instances), start=1)
        }
        for instance in instances:
            planned.append(
                (
                    study,
                    s_index,
                    series_order[instance.series_uid],
                    instance,
                    instance_key(instance.sop_uid, project.key),
                )
            )
    result.found = len(planned)
    done = sql.imported(project.store, [p[4] for p in planned], code)
    todo = [p for p in planned if p[4] not in done]
    result.skipped = len(planned) - len(todo)
    if on_planned:
        on_planned(len(todo))
    if uid_map is not None:
        uid_map.add(
            {
                h: {
                    "study": i.study_uid,
                    "series": i.series_uid,
                    "sop": i.sop_uid,
                    "sop_class": i.sop_class_uid,
                }
                for _, _, _, i, h in todo
            }
        )
    entries = []
    for study, s_index, series_index, instance, uid_hash in todo:
        entry = Entry(path=None, display=_display(s_index, study, series_index, instance))  # type: ignore[arg-type]
        entry.modality = code
        entry.cohort = cohort
        entry.fetch = _fetch(connection, instance, result.stats)
        entry.planned = dicom_pseudonym(study.header, project.key) if study.header is not None else None
        entry.on_record = _recorder(uid_hash, code)
        entries.append(entry)

    def record(entry: Entry, status: str, reason: str | None, item_id: int | None) -> None:
        if status == "imported":
            result.report.imported.append(item_id)
        elif status == "duplicate":
            result.report.duplicates.append(entry.display)
        else:
            result.report.rejected.append((entry.display, reason or ""))
        if on_result:
            on_result(entry, status, reason, item_id)

    try:
        final = ingest(project, entries, limits=limits, actor_id=actor_id, on_result=record)
        result.report = final
    except PacsUnreachable as exc:
        result.stopped = str(exc)
    finally:
        if todo and uid_map is not None:
            uid_map.keep_only(sql.all_hashes(project.store), {p[4] for p in todo})
        result.stats.total_s = time.perf_counter() - started
    return result
