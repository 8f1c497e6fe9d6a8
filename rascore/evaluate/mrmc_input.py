"""Input of the multi-reader multi-case (MRMC) analysis: a long table, checked and laid out.

One row per reading: ``reader``, ``case``, ``truth`` (0/1, the same in every row of a case),
``arm`` (the modality or treatment) and ``score`` (an ordinal rating or a probability, higher =
more likely positive). The design must be fully crossed: every reader reads every case in every
arm, once. ``mrmc_data`` returns the scores as a (arms, readers, cases) array with arms, readers
and cases in the order they first appear in the table; any problem raises ``MRMCInputError``
with one line naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

COLUMNS: tuple[str, ...] = ("reader", "case", "truth", "arm", "score")
LABEL_COLUMNS: tuple[str, ...] = ("reader", "case", "arm")


class MRMCInputError(ValueError):
    """The reading table cannot be analysed; the message is one line naming the problem."""


@dataclass(frozen=True)
class MRMCData:
    """A checked, fully crossed reading table."""

    arms: tuple[str, ...]
    readers: tuple[str, ...]
    cases: tuple[str, ...]
    truth: np.ndarray  # (cases,) bool, True = positive
    scores: np.ndarray  # (arms, readers, cases) float

    @property
    def n_positive(self) -> int:
        """Cases with truth 1."""
        return int(self.truth.sum())

    @property
    def n_negative(self) -> int:
        """Cases with truth 0."""
        return int((~self.truth).sum())


def _frame(table: Any) -> Any:
    """The table as a pandas DataFrame with the five columns, or MRMCInputError."""
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        frame = table
    elif isinstance(table, Mapping):
        try:
            frame = pd.DataFrame({k: np.asarray(v).ravel() for k, v in table.items()})
        except ValueError as exc:
            raise MRMCInputError(f"the columns are not all the same length ({exc})") from None
    else:
        raise MRMCInputError(f"expected a DataFrame or a mapping of columns, got {type(table).__name__}")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise MRMCInputError(f"missing column(s) {', '.join(missing)} (need {', '.join(COLUMNS)})")
    if len(frame) == 0:
        raise MRMCInputError("the table has no rows")
    return frame.reset_index(drop=True)


def _shown(value: Any) -> str:
    """A cell as the user wrote it: strings quoted, numbers plain."""
    if isinstance(value, str):
        return repr(value)
    return str(value.item() if isinstance(value, np.generic) else value)


def _first(mask: np.ndarray) -> int:
    """Index of the first True."""
    return int(np.flatnonzero(mask)[0])


@dataclass(frozen=True)
class _Rows:
    """How messages name a row: ``row 1`` for the first by default, ``line 2`` for a CSV file."""

    first: int = 1
    word: str = "row"

    def __call__(self, index: int) -> str:
        return f"{self.word} {index + self.first}"


def _labels(frame: Any, column: str, rows: _Rows) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes (order of first appearance) and the labels, as strings, of one column."""
    import pandas as pd

    raw = frame[column]
    empty = raw.isna().to_numpy() | (raw.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        raise MRMCInputError(f"{rows(_first(empty))} has no {column}")
    codes, uniques = pd.factorize(raw.astype(str).str.strip(), sort=False)
    return codes.astype(np.int64), tuple(str(u) for u in uniques)


def _scores(frame: Any, rows: _Rows) -> np.ndarray:
    """The score column as finite floats, or MRMCInputError naming the first bad row."""
    import pandas as pd

    raw = frame["score"]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    empty = raw.isna().to_numpy()
    if empty.any():
        row = _first(empty)
        raise MRMCInputError(
            f"{rows(row)} (reader {frame['reader'].iloc[row]}, case {frame['case'].iloc[row]}) has no score"
        )
    bad = np.isnan(values)
    if bad.any():
        row = _first(bad)
        raise MRMCInputError(f"score is not numeric ({rows(row)}: {_shown(raw.iloc[row])})")
    infinite = ~np.isfinite(values)
    if infinite.any():
        raise MRMCInputError(f"score is infinite ({rows(_first(infinite))})")
    return values


def _truth(frame: Any, case_codes: np.ndarray, cases: tuple[str, ...], rows: _Rows) -> np.ndarray:
    """One bool per case (True = positive), or MRMCInputError naming the case."""
    import pandas as pd

    raw = frame["truth"]
    empty = raw.isna().to_numpy()
    if empty.any():
        row = _first(empty)
        raise MRMCInputError(f"case {cases[case_codes[row]]} has no truth ({rows(row)})")
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        row = _first(bad)
        raise MRMCInputError(
            f"truth must be 0 or 1, case {cases[case_codes[row]]} has {_shown(raw.iloc[row])} ({rows(row)})"
        )
    n_cases = len(cases)
    rows = np.bincount(case_codes, minlength=n_cases)
    ones = np.bincount(case_codes, weights=values, minlength=n_cases)
    mixed = (ones > 0) & (ones < rows)
    if mixed.any():
        case = _first(mixed)
        raise MRMCInputError(
            f"case {cases[case]} has truth 0 in some rows and 1 in others ({int(ones[case])} of "
            f"{int(rows[case])} rows say 1)"
        )
    return ones > 0


def _check_classes(truth: np.ndarray, cases: tuple[str, ...]) -> None:
    """At least 2 positive and 2 negative cases, else MRMCInputError saying why."""
    for label, mask in (("1 (positive)", truth), ("0 (negative)", ~truth)):
        count = int(mask.sum())
        if count == 0:
            raise MRMCInputError(f"no case has truth {label}: the AUC needs both positive and negative cases")
        if count == 1:
            raise MRMCInputError(
                f"only one case ({cases[_first(mask)]}) has truth {label}: leaving it out of the "
                "case jackknife leaves no such case, so at least 2 are needed"
            )


def _check_crossed(
    cell: np.ndarray, arms: tuple[str, ...], readers: tuple[str, ...], cases: tuple[str, ...]
) -> None:
    """Every (arm, reader, case) read exactly once, else MRMCInputError naming the first gap."""
    n_arms, n_readers, n_cases = len(arms), len(readers), len(cases)
    counts = np.bincount(cell, minlength=n_arms * n_readers * n_cases).reshape(n_arms, n_readers, n_cases)
    if (counts > 1).any():
        a, r, c = np.argwhere(counts > 1)[0]
        raise MRMCInputError(
            f"reader {readers[r]} read case {cases[c]} in arm {arms[a]} {counts[a, r, c]} times "
            "(one score per reader, case and arm)"
        )
    per_cell = counts.sum(axis=2)
    if (per_cell == 0).any():
        a, r = np.argwhere(per_cell == 0)[0]
        raise MRMCInputError(
            f"reader {readers[r]} has no readings in arm {arms[a]}: every reader must read "
            "every case in every arm"
        )
    if (counts == 0).any():
        a, r, c = np.argwhere(counts == 0)[0]
        lacking = n_cases - int(per_cell[a, r])
        raise MRMCInputError(
            f"reader {readers[r]} lacks {lacking} of the {n_cases} cases in arm {arms[a]} "
            f"(first: case {cases[c]}): every reader must read every case in every arm"
        )


def mrmc_data(table: Any, first_row: int = 1, row_word: str = "row") -> MRMCData:
    """Check a long reading table and lay it out as (arms, readers, cases) scores.

    ``table``: a pandas DataFrame, or a mapping of column name to values, with columns
    ``reader, case, truth, arm, score`` (other columns are ignored). Labels are compared as
    stripped strings. Raises ``MRMCInputError`` (a ValueError) naming the first problem; a
    message names the table's first row "``row_word`` ``first_row``" (a CSV reader passes 2 and
    "line").
    """
    rows = _Rows(first_row, row_word)
    frame = _frame(table)
    reader_codes, readers = _labels(frame, "reader", rows)
    case_codes, cases = _labels(frame, "case", rows)
    arm_codes, arms = _labels(frame, "arm", rows)
    scores = _scores(frame, rows)
    truth = _truth(frame, case_codes, cases, rows)
    if len(arms) < 2:
        raise MRMCInputError(f"only one arm ({arms[0]}): the analysis compares arms, so it needs at least 2")
    cell = (arm_codes * len(readers) + reader_codes) * len(cases) + case_codes
    _check_crossed(cell, arms, readers, cases)
    _check_classes(truth, cases)
    laid_out = np.empty(len(arms) * len(readers) * len(cases))
    laid_out[cell] = scores
    return MRMCData(
        arms=arms,
        readers=readers,
        cases=cases,
        truth=truth,
        scores=laid_out.reshape(len(arms), len(readers), len(cases)),
    )
