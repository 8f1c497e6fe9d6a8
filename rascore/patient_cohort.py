"""One patient, one cohort: an import that would put a patient's items in two cohorts is refused.

A patient's joints are correlated, so a patient seen in training and again in a test cohort makes
the test figures optimistic. Every import path (``rascore ingest`` with files, folders or a
manifest, and the Admin page's uploads) asks ``cohort_conflicts`` before it records a row: once
for the whole batch before any file is stored, and again for each row inside its store
transaction. The rule:

- a patient the project already holds stays in that cohort: rows putting them in another cohort
  are refused, rows of the same cohort go on;
- a new patient whom one batch places in two cohorts has all of those rows refused, since nothing
  says which cohort is right;
- a patient the project already holds in several cohorts (data from before this rule) gets no
  further rows until that is resolved.

Rows without a patient id are never refused here: each such item is its own patient in
clustered statistics (``rascore.evaluate.clusters``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: how many rows or items a message names before it says "and N more"
NAMED = 6
RULE = "a patient belongs to one cohort"


@dataclass(frozen=True)
class Placement:
    """One row of an import: which patient (pseudonym, or None) it would put in which cohort."""

    patient: str | None
    cohort: str
    display: str  # the row as the report names it: a file, or "manifest.csv:LINE path"


def _named(things: Sequence[str]) -> str:
    shown = ", ".join(things[:NAMED])
    return shown + (f" and {len(things) - NAMED} more" if len(things) > NAMED else "")


def _stored(cohorts: dict[str, list[int]]) -> str:
    parts = [
        f"cohort {cohort} (item{'s' if len(ids) > 1 else ''} {_named([str(i) for i in ids])})"
        for cohort, ids in sorted(cohorts.items())
    ]
    return " and ".join(parts)


def cohort_conflicts(store, rows: Sequence[Placement]) -> dict[int, str]:
    """Index -> reason for every row that would leave its patient in more than one cohort,
    judged against the project's items (``store.patient_cohorts``) and the other rows given."""
    by_patient: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        if row.patient:
            by_patient.setdefault(row.patient, []).append(index)
    stored = store.patient_cohorts(by_patient) if by_patient else {}
    refused: dict[int, str] = {}
    for patient, indices in by_patient.items():
        held = stored.get(patient, {})
        if len(held) > 1:
            reason = (
                f"patient {patient} is already in {_stored(held)} of the project; no more "
                f"rows are imported for them until that is resolved ({RULE})"
            )
            refused.update({i: reason for i in indices})
        elif held:
            (home,) = held
            for i in indices:
                if rows[i].cohort != home:
                    refused[i] = (
                        f"patient {patient} is already in {_stored(held)} of the project; "
                        f"this row would put them in cohort {rows[i].cohort} ({RULE})"
                    )
        elif len({rows[i].cohort for i in indices}) > 1:
            named = _named([f"{rows[i].display} (cohort {rows[i].cohort})" for i in indices])
            reason = (
                f"patient {patient} would span cohorts in this import: {named}; "
                f"none of these rows is imported ({RULE})"
            )
            refused.update({i: reason for i in indices})
    return refused


def without_patient_note(count: int) -> str | None:
    """The import report's line about items that have no patient id (None when there are none)."""
    if count <= 0:
        return None
    if count == 1:
        return "1 item has no patient id: it counts as its own patient in clustered statistics"
    return f"{count} items have no patient id: each counts as its own patient in clustered statistics"


__all__ = ["RULE", "Placement", "cohort_conflicts", "without_patient_note"]
