"""Export of labels, the reference standard and the patient-level GLOESS as CSV or Parquet.

``gloess``: one row per patient x cohort x Doppler modality x rater with the sum of the combined
EOSS over the joints that rater graded (``rascore.evaluate.gloess``). The raters are every
reader by user name (experts and admins included: their grades make the reference, so their
agreement with it is not independent), ``reference`` (the current reference standard) and each
modality's active model as ``model:SPD v3`` (its stored predicted grade: the argmax of its
prior-corrected probabilities over the combined EOSS, the target a Doppler model learns).
``rascore.evaluate`` is imported only by the GLOESS export (it takes over a second to import).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from rascore import scale
from rascore.atomic import write_atomic
from rascore.store import Store, exports

LABEL_COLUMNS = (
    "item_id",
    "media_sha256",
    "modality",
    "cohort",
    "patient",
    "joint",
    "side",
    "reader",
    "role",
    "level",
    "sh",
    "pd",
    "combined",
    "not_assessable",
    "reason",
    "seconds",
    "created_at",
)
REFERENCE_COLUMNS = (
    "item_id",
    "media_sha256",
    "modality",
    "cohort",
    "patient",
    "joint",
    "side",
    "sh",
    "pd",
    "combined",
    "method",
    "decided_by",
    "created_at",
)
INTEGER_COLUMNS = ("sh", "pd", "combined", "not_assessable", "item_id", "gloess", "n_joints")


@dataclass
class Table:
    """An export's rows and columns, and notes on what it left out (one line each)."""

    records: list[dict]
    columns: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _in_cohort(records: Iterable[dict], cohort: str | None) -> list[dict]:
    return [r for r in records if cohort is None or r["cohort"] == cohort]


def _labels(store: Store, cohort: str | None) -> Table:
    return Table(_in_cohort(exports.label_rows(store), cohort), LABEL_COLUMNS)


def _reference(store: Store, cohort: str | None) -> Table:
    return Table(_in_cohort(exports.reference_rows(store), cohort), REFERENCE_COLUMNS)


def model_rater(modality: str, version: int) -> str:
    """How a model is named as a rater: ``model:SPD v3``."""
    return f"model:{modality} v{version}"


def rater_rows(store: Store, cohort: str | None = None) -> list[dict]:
    """Every rater's combined grade per power Doppler item (optionally of one cohort): each
    reader by user name, ``reference``, each active model as ``model:MODALITY vN``.

    ValueError when a reader's user name is ``reference`` (it would be taken for the reference).
    """
    from rascore.evaluate.gloess import GLOESS_MODALITIES, REFERENCE

    cohort = scale.cohort(cohort) if cohort is not None else None
    out = []
    for row in exports.combined_grade_rows(store, GLOESS_MODALITIES, cohort):
        source = row.pop("source")
        if source == "reader":
            if row["reader"].lower() == REFERENCE:
                raise ValueError(
                    f"a user is named {row['reader']!r}, the name the GLOESS export gives the "
                    "reference standard: the two cannot be told apart"
                )
            rater = row["reader"]
        elif source == "model":
            rater = model_rater(row["modality"], row["version"])
        else:
            rater = REFERENCE
        item = {k: row[k] for k in ("patient", "cohort", "modality", "joint", "side")}
        out.append({**item, "rater": rater, "combined": row["combined"]})
    return out


def gloess_table(store: Store, cohort: str | None = None) -> Table:
    """GLOESS and joint count per patient x cohort x modality x rater: columns ``patient, cohort,
    modality, rater, gloess, n_joints`` (``rascore.evaluate.gloess.SCORE_COLUMNS``)."""
    from rascore.evaluate.gloess import SCORE_COLUMNS, patient_scores

    scores = patient_scores(rater_rows(store, cohort))
    records = scores.table[list(SCORE_COLUMNS)].to_dict("records")
    return Table(records, SCORE_COLUMNS, tuple(scores.notes()))


TABLES: dict[str, Callable[[Store, str | None], Table]] = {
    "labels": _labels,
    "reference": _reference,
    "gloess": gloess_table,
}


def table(store: Store, name: str, cohort: str | None = None) -> Table:
    """An exportable table, optionally of one cohort; ValueError for an unknown table or cohort."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; expected one of {', '.join(TABLES)}")
    return TABLES[name](store, scale.cohort(cohort) if cohort is not None else None)


def rows(store: Store, name: str, cohort: str | None = None) -> tuple[Iterable[dict], tuple[str, ...]]:
    """The rows and columns of an exportable table."""
    found = table(store, name, cohort)
    return found.records, found.columns


def to_csv(records: Iterable[dict], columns: tuple[str, ...]) -> str:
    """CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(record)
    return buffer.getvalue()


def save(found: Table, out: Path, fmt: str = "csv") -> int:
    """Write a table to a file (atomically) as CSV or Parquet; returns the row count."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown format {fmt!r}; expected csv or parquet")
    if fmt == "parquet":
        import pandas as pd

        frame = pd.DataFrame(found.records, columns=list(found.columns))
        for column in INTEGER_COLUMNS:
            if column in frame:
                frame[column] = frame[column].astype("Int64")  # grades stay integers, gaps stay null
        write_atomic(out, lambda handle: frame.to_parquet(handle, index=False))
    else:
        write_atomic(out, to_csv(found.records, found.columns).encode("utf-8"))
    return len(found.records)


def write(store: Store, name: str, out: Path, fmt: str = "csv", cohort: str | None = None) -> int:
    """Write a table (optionally of one cohort) to a file, atomically; returns the row count."""
    return save(table(store, name, cohort), out, fmt)
