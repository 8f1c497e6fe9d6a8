"""A reader study's reads as one long table for MRMC analysis, and the time per read.

One row per read: ``reader``, ``case``, ``truth``, ``arm`` (the MRMC "modality": unaided or
aided), ``score``, with the reader's experience, the session, the case's modality and patient,
the grades and the timing. Choices, each a parameter:

* ``grade``: the grade the table scores, SH, PD or the combined EOSS (on a greyscale case the
  combined grade is SH); by default the study's own grade;
* ``truth`` is the current reference grade of that kind thresholded: 1 when it is at least
  ``positive_from`` (default 1: any synovitis), else 0; <NA> where the case has no reference
  (``reference`` is <NA> too; ``attrs["cases_without_reference"]`` counts those cases, which an
  analysis must leave out);
* ``score`` is the reader's ordinal grade 0-3 of that kind (a rating for the ROC/AUC of MRMC).

Blind: while a study is open only its designers (admins) see its reads; once it is closed, so do
those who may see results (experts). The MRMC statistics themselves live in
``rascore.evaluate`` (this module only produces the table).

``aid_table`` gives the aid each case showed (snapshotted when the study opened), with the
suggestion's probability that the grade is at least a threshold, e.g. to analyse the aid as one
more "reader" or to count how often readers followed it; the same permission rule applies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from rascore import scale
from rascore.permissions import PermissionDenied, allowed, require
from rascore.services.study import STUDY_GRADES, StudyError
from rascore.store import Store
from rascore.store import studies as sql

COLUMNS: tuple[str, ...] = (
    "reader",
    "reader_id",
    "experience",
    "case",
    "modality",
    "patient",
    "arm",
    "session",
    "truth",
    "reference",
    "score",
    "sh",
    "pd",
    "combined",
    "duration_ms",
    "started_at",
    "saved_at",
)


def _visible_study(store: Store, actor: Mapping, study_id: int) -> dict:
    """The study row, if this actor may see its reads and aids: designers always, those who may
    see results once it is closed."""
    study = sql.study(store, study_id)
    if study is None:
        raise StudyError(f"There is no study {study_id}.")
    if not allowed(actor, "design_study"):
        require(actor, "view_results")
        if study["status"] != "closed":
            raise PermissionDenied(
                f"The reads of {study['name']!r} are shown once it is closed (readers stay blind)."
            )
    return study


def reads_table(
    store: Store, actor: Mapping, study_id: int, *, grade: str | None = None, positive_from: int = 1
) -> pd.DataFrame:
    """Every read of a study as (reader, case, truth, arm, score, ...), in reader, session, read order."""
    study = _visible_study(store, actor, study_id)
    grade = grade or study["grade"]
    if grade not in STUDY_GRADES:
        raise StudyError(f"The grade must be one of {', '.join(STUDY_GRADES)}.")
    positive_from = scale.check_grade(positive_from, "positive_from")
    if positive_from == 0:
        raise StudyError("positive_from is 1-3 (a grade of 0 or more is every case).")
    column = scale.GRADE_COLUMNS[grade]
    rows = sql.long_reads(store, study_id)
    frame = pd.DataFrame(rows, columns=list(rows[0]) if rows else None)
    if frame.empty:
        table = pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})
    else:
        reference = frame[f"ref_{column}"].astype("Int64")
        table = frame.rename(columns={"item_id": "case"}).assign(
            reference=reference,
            truth=(reference >= positive_from).astype("Int64"),
            score=frame[column].astype("Int64"),
            pd=frame["pd"].astype("Int64"),
        )[list(COLUMNS)]
    missing = 0 if table.empty else int(table.loc[table["reference"].isna(), "case"].nunique())
    table.attrs.update({"grade": grade, "positive_from": positive_from, "cases_without_reference": missing})
    return table.reset_index(drop=True)


def read_times(table: pd.DataFrame) -> pd.DataFrame:
    """Time per read by reader and arm: reads, median and mean seconds, total minutes."""
    if table.empty:
        return pd.DataFrame(
            columns=["reader", "experience", "arm", "reads", "median_s", "mean_s", "total_min"]
        )
    seconds = table.assign(seconds=table["duration_ms"] / 1000.0)
    grouped = seconds.groupby(["reader", "experience", "arm"], sort=True)["seconds"]
    return (
        grouped.agg(reads="count", median_s="median", mean_s="mean", total_min="sum")
        .assign(total_min=lambda t: t["total_min"] / 60.0)
        .reset_index()
    )


def aid_table(store: Store, actor: Mapping, study_id: int, *, threshold: int = 1) -> pd.DataFrame:
    """The aid each case showed: ``case``, the suggested ``grade`` and ``prob``, the suggestion's
    probability that the grade is at least ``threshold`` (the sum of its probabilities from
    ``threshold`` up), in case order; cases without an aid have no row.

    The suggestion grades the modality's model target (SH on greyscale, the combined EOSS on
    power Doppler). Where that is not the study's grade (an SH or PD study of Doppler cases),
    ``prob`` is NaN and ``attrs["reason"]`` says why. ``attrs``: ``source`` ('model',
    'simulated', or None when no case has an aid), ``models`` (the model versions, e.g. "SPD v3"),
    ``grade``, ``threshold``, ``cases_without_aid``. Same permission rule as ``reads_table``.
    """
    study = _visible_study(store, actor, study_id)
    threshold = scale.check_grade(threshold, "threshold")
    if threshold == 0:
        raise StudyError("threshold is 1-3 (a grade of 0 or more is every case).")
    rows = sql.aids(store, study_id)
    grade, reason = study["grade"], None
    targets = {scale.modality(r["modality"]).target for r in rows}
    # the study's combined EOSS is SH on a greyscale case, so a greyscale model's SH suggests it
    mismatched = sorted(t for t in targets if grade not in (t, "EOSS"))
    if mismatched:
        reason = (
            f"the aid suggests the {' and '.join(mismatched)} grade, not the study's {grade} grade: "
            "its probabilities say nothing about the study's grade"
        )
    probs = np.array([json.loads(r["probs_json"]) for r in rows], dtype=float).reshape(len(rows), 4)
    table = pd.DataFrame(
        {
            "case": pd.Series([int(r["item_id"]) for r in rows], dtype="int64"),
            "grade": pd.Series([int(r["grade"]) for r in rows], dtype="int64"),
            "prob": probs[:, threshold:].sum(axis=1) if reason is None else np.full(len(rows), np.nan),
        }
    )
    sources = sorted({r["source"] for r in rows})
    table.attrs.update(
        {
            "source": ", ".join(sources) or None,
            "models": sorted({f"{r['modality']} v{r['version']}" for r in rows if r["source"] == "model"}),
            "grade": grade,
            "threshold": threshold,
            "cases_without_aid": len(sql.cases(store, study_id)) - len(rows),
            "reason": reason,
        }
    )
    return table
