"""The Admin page's PACS tab: search a DICOMweb server's studies and import the ticked ones, with
the same per-file report as an upload. Each function checks the ``import`` permission.

Credentials are the server process's environment (RASCORE_PACS_USER and RASCORE_PACS_PASSWORD,
or RASCORE_PACS_TOKEN): the page never asks for or shows them. What the page may show of a study
is ``Study.row()``: date, modalities, number of instances and frames, no names and no IDs; the
studies themselves (with their UIDs) stay in the page's session state to be imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rascore import pacs
from rascore.config import pacs_credentials
from rascore.permissions import require
from rascore.project import Project
from rascore.services.admin import AdminError, UploadReport

MAX_STUDIES = 500


def credentials_note() -> str:
    """Which credentials the server will use, without their values."""
    found = pacs_credentials()
    if found.token:
        return "A bearer token from RASCORE_PACS_TOKEN is sent."
    if found.user:
        return "Basic auth as the user in RASCORE_PACS_USER (password from RASCORE_PACS_PASSWORD) is sent."
    return "No credentials are set (RASCORE_PACS_USER and RASCORE_PACS_PASSWORD, or RASCORE_PACS_TOKEN)."


def search(
    actor: Mapping,
    url: str,
    since: str | None = None,
    until: str | None = None,
    modality_tag: str | None = None,
) -> list[pacs.Study]:
    """The server's studies in the date range with that modality, each with its instances listed
    (for the frame count); at most MAX_STUDIES, oldest first."""
    require(actor, "import")
    try:
        connection = pacs.connect(url, pacs_credentials())
        try:
            studies = pacs.search_studies(
                connection,
                since=pacs.parse_date(since),
                until=pacs.parse_date(until),
                modality_tag=(modality_tag or "").strip() or None,
            )[:MAX_STUDIES]
            for study in studies:
                pacs.list_instances(connection, study, modality_tag=(modality_tag or "").strip() or None)
        finally:
            connection.close()
    except pacs.PacsError as exc:
        raise AdminError(str(exc)) from None
    return studies


def rows(studies: list[pacs.Study]) -> list[dict]:
    """What the table shows: one row per study, no names, IDs or UIDs."""
    return [study.row() for study in studies]


def import_studies(
    project: Project,
    actor: Mapping,
    url: str,
    studies: list[pacs.Study],
    modality: str,
    cohort: str,
    on_result: Callable[[int, int, dict], None] | None = None,
) -> UploadReport:
    """Import the chosen studies (see ``rascore.pacs.pull``); the report has one row per instance
    fetched, and notes saying how many were already in and whether the server stopped."""
    require(actor, "import")
    if not studies:
        raise AdminError("Tick at least one study to import.")
    report = UploadReport()
    total = [0]

    def planned(n: int) -> None:
        total[0] = n

    def record(entry, status: str, reason: str | None, item_id: int | None) -> None:
        row = {"file": entry.display, "status": status, "reason": reason, "item_id": item_id}
        report.rows.append(row)
        if on_result:
            on_result(len(report.rows), max(total[0], 1), row)

    try:
        connection = pacs.connect(url, pacs_credentials())
        try:
            result = pacs.pull(
                project,
                connection,
                studies,
                modality,
                cohort,
                actor_id=actor["id"],
                on_planned=planned,
                on_result=record,
            )
        finally:
            connection.close()
    except pacs.PacsError as exc:
        raise AdminError(str(exc)) from None
    except ValueError as exc:  # an unknown modality or cohort
        raise AdminError(str(exc)) from None
    report.notes = [f"Already imported before: {result.skipped}.", *result.notes()]
    if result.stopped:
        report.notes.insert(0, f"Stopped: {result.stopped}. Import the same studies again to complete it.")
    project.store.audit(
        "import.pacs",
        user_id=actor["id"],
        detail={
            "studies": len(studies),
            "imported": report.imported,
            "duplicates": report.duplicates,
            "rejected": report.rejected,
            "skipped": result.skipped,
            "stopped": bool(result.stopped),
        },
    )
    return report
