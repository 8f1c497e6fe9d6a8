"""Export of labels and the reference standard as CSV or Parquet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

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
TABLES = {
    "labels": (exports.label_rows, LABEL_COLUMNS),
    "reference": (exports.reference_rows, REFERENCE_COLUMNS),
}


def rows(store: Store, table: str) -> tuple[Iterable[dict], tuple[str, ...]]:
    """The rows and columns of an exportable table."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}")
    fetch, columns = TABLES[table]
    return fetch(store), columns


def to_csv(records: Iterable[dict], columns: tuple[str, ...]) -> str:
    """CSV text with a header row."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(record)
    return buffer.getvalue()


def write(store: Store, table: str, out: Path, fmt: str = "csv") -> int:
    """Write a table to a file (atomically) as CSV or Parquet; returns the row count."""
    import os

    records, columns = rows(store, table)
    records = list(records)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if fmt == "parquet":
        import pandas as pd

        frame = pd.DataFrame(records, columns=list(columns))
        for column in ("sh", "pd", "combined", "not_assessable", "item_id"):
            if column in frame:
                frame[column] = frame[column].astype("Int64")  # grades stay integers, gaps stay null
        frame.to_parquet(tmp, index=False)
    else:
        tmp.write_text(to_csv(records, columns), encoding="utf-8")
    os.replace(tmp, out)
    return len(records)
