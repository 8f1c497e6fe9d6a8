"""Reading and checking the CSV files of ``rascore metrics``, ``rascore icc`` and ``rascore mrmc``.

Every refusal is a ``CliError`` naming the file, and the CSV line where there is one, so a user
can fix the file without reading code.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rascore.cli import CliError

PROB_COLUMNS = ("p0", "p1", "p2", "p3")
DEFAULT_MODEL = "model"
ID_COLUMN_NAMES = {"target", "id", "case", "item", "image"}


def _read_csv(path: Path, text_columns: tuple[str, ...] = ()) -> Any:
    """Read a CSV with pandas (strings kept as written, ``text_columns`` read as text even when
    they look numeric), or raise CliError naming the file."""
    import pandas as pd

    if not path.is_file():
        raise CliError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, skipinitialspace=True, dtype={c: str for c in text_columns})
    except pd.errors.EmptyDataError:
        raise CliError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(f"{path}: not a readable CSV ({first_line})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise CliError(f"{path}: no data rows")
    return frame


def _shown(value: Any) -> str:
    """A cell value as the user wrote it: strings quoted, numbers plain."""
    if isinstance(value, str):
        return repr(value)
    return str(value.item() if hasattr(value, "item") else value)


def _numeric_column(frame: Any, column: str, path: Path, allow_missing: bool = False) -> Any:
    """Column as floats; CliError naming the CSV line of the first empty or non-numeric value."""
    import pandas as pd

    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    empty = raw.isna()
    bad = values.isna() & ~empty
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise CliError(f"{path}: column {column} is not numeric (line {row + 2}: {_shown(raw.iloc[row])})")
    if not allow_missing and empty.any():
        row = int(empty.to_numpy().nonzero()[0][0])
        raise CliError(f"{path}: line {row + 2} has no value in column {column}")
    finite = values.isna() | values.abs().lt(math.inf)
    if not finite.all():
        row = int((~finite).to_numpy().nonzero()[0][0])
        raise CliError(f"{path}: column {column} has an infinite value (line {row + 2})")
    return values.astype(float)


def load_predictions(path: Path) -> tuple[Any, dict[str, Any]]:
    """Validated (y_true, {model: (n, 4) scores}) from a metrics CSV, aligned across models."""
    y_true, probs, _ = load_predictions_with_patients(path)
    return y_true, probs


def load_predictions_with_patients(path: Path) -> tuple[Any, dict[str, Any], list | None]:
    """Validated (y_true, {model: (n, 4) scores}, patient per case or None) from a metrics CSV.

    A case's patient must be the same in every model's rows; an empty patient cell makes the
    case its own cluster."""
    import numpy as np

    frame = _read_csv(path)
    missing = [c for c in ("y_true", *PROB_COLUMNS) if c not in frame.columns]
    if missing:
        raise CliError(
            f"{path}: missing column(s) {', '.join(missing)} "
            f"(need y_true, {', '.join(PROB_COLUMNS)}; optional model, case, patient)"
        )
    y_true = _numeric_column(frame, "y_true", path)
    bad = ~y_true.isin([0, 1, 2, 3])
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise CliError(
            f"{path}: y_true must be a grade 0-3 (line {row + 2}: {_shown(frame['y_true'].iloc[row])})"
        )
    frame["y_true"] = y_true.astype(int)
    for column in PROB_COLUMNS:
        frame[column] = _numeric_column(frame, column, path)
    for column in ("model", "case"):
        if column in frame.columns and frame[column].isna().any():
            row = int(frame[column].isna().to_numpy().nonzero()[0][0])
            raise CliError(f"{path}: line {row + 2} has no value in column {column}")
    if "model" not in frame.columns:
        frame["model"] = DEFAULT_MODEL
    frame["model"] = frame["model"].astype(str)
    groups = {str(name): group for name, group in frame.groupby("model", sort=False)}

    if "case" in frame.columns:
        frame["case"] = frame["case"].astype(str)
        groups = {name: frame[frame["model"] == name] for name in groups}
        first_name, first = next(iter(groups.items()))
        order = list(first["case"])
        for name, group in groups.items():
            dupes = group["case"][group["case"].duplicated()]
            if len(dupes):
                raise CliError(f"{path}: model {name} lists case {dupes.iloc[0]!r} twice")
            if set(group["case"]) != set(order):
                raise CliError(f"{path}: model {name} does not have the same cases as model {first_name}")
        aligned = {name: g.set_index("case").loc[order] for name, g in groups.items()}
        y_ref = aligned[first_name]["y_true"].to_numpy()
        for name, group in aligned.items():
            differ = np.flatnonzero(group["y_true"].to_numpy() != y_ref)
            if differ.size:
                raise CliError(
                    f"{path}: models {first_name} and {name} disagree on y_true for case {order[differ[0]]!r}"
                )
    else:
        aligned = {name: g.reset_index(drop=True) for name, g in groups.items()}
        first_name, first = next(iter(aligned.items()))
        y_ref = first["y_true"].to_numpy()
        for name, group in aligned.items():
            if len(group) != len(first):
                raise CliError(
                    f"{path}: model {name} has {len(group)} rows but model "
                    f"{first_name} has {len(first)}; add a case column to align them"
                )
            differ = np.flatnonzero(group["y_true"].to_numpy() != y_ref)
            if differ.size:
                raise CliError(
                    f"{path}: models {first_name} and {name} disagree on y_true "
                    f"at case {differ[0] + 1} of each; add a case column to align them"
                )
    probs = {name: g[list(PROB_COLUMNS)].to_numpy(dtype=float) for name, g in aligned.items()}
    return y_ref.astype(int), probs, _patients(aligned, first_name, path)


def _patients(aligned: dict[str, Any], first_name: str, path: Path) -> list | None:
    """The patient of each case from an aligned ``patient`` column (None without the column)."""
    first = aligned[first_name]
    if "patient" not in first.columns:
        return None

    def ids(group: Any) -> list:
        return [
            None if (isinstance(v, float) and math.isnan(v)) or not str(v).strip() else str(v).strip()
            for v in group["patient"].tolist()
        ]

    reference = ids(first)
    for name, group in aligned.items():
        other = ids(group)
        differ = [i for i, (a, b) in enumerate(zip(reference, other)) if a != b]
        if differ:
            raise CliError(
                f"{path}: models {first_name} and {name} give case {differ[0] + 1} "
                f"different patients ({reference[differ[0]]!r} and "
                f"{other[differ[0]]!r})"
            )
    return reference


def load_ratings(path: Path) -> tuple[Any, list[str]]:
    """Validated (targets x raters float matrix, rater names) from an ICC CSV."""
    import pandas as pd

    frame = _read_csv(path)
    first = frame.columns[0]
    converted = pd.to_numeric(frame[first], errors="coerce")
    non_numeric = (converted.isna() & frame[first].notna()).any()
    if non_numeric or first.lower() in ID_COLUMN_NAMES:
        frame = frame.drop(columns=[first])
    columns = list(frame.columns)
    matrix = pd.DataFrame({c: _numeric_column(frame, c, path, allow_missing=True) for c in columns})
    return matrix.to_numpy(dtype=float), columns


def load_mrmc_table(path: Path) -> Any:
    """The long reading table of ``rascore mrmc`` as read: reader, case and arm kept as text
    (a reader ``007`` stays ``007``); ``rascore.evaluate.mrmc_input`` checks the rest."""
    from rascore.evaluate.mrmc_input import LABEL_COLUMNS

    return _read_csv(path, text_columns=LABEL_COLUMNS)
