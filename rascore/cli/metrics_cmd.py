"""``rascore metrics`` and ``rascore icc``: evaluation statistics from CSV files.

``rascore metrics FILE.csv``: columns ``y_true`` (reference grade 0-3), ``p0``-``p3`` (the model's
score or probability for each grade), optionally ``model`` (several models on the same cases)
and ``case`` (case ids to align the models on; without it every model must list the same cases
in the same order). Writes per-grade AUC with percentile bootstrap CIs, macro AUC, accuracy and
linear/quadratic weighted kappa of the top grade (argmax, lowest grade on ties), and DeLong's
test between every pair of models per grade.

``rascore icc FILE.csv``: one row per target, one column per rater (a first non-numeric column,
or one named target/id/case/item/image, holds target ids); writes the six Shrout-Fleiss ICCs.

JSON output writes NaN as ``null`` with a ``"reason"`` key beside it.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

from rascore.cli import CliError

PROB_COLUMNS = ("p0", "p1", "p2", "p3")
DEFAULT_MODEL = "model"
ID_COLUMN_NAMES = {"target", "id", "case", "item", "image"}
ICC_DESCRIPTIONS = {
    "ICC1": "one-way random, single rater",
    "ICC2": "two-way random, absolute agreement, single rater",
    "ICC3": "two-way mixed, consistency, single rater",
    "ICC1k": "one-way random, mean of k raters",
    "ICC2k": "two-way random, absolute agreement, mean of k raters",
    "ICC3k": "two-way mixed, consistency, mean of k raters",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``metrics`` and ``icc`` subcommands."""
    metrics = sub.add_parser(
        "metrics",
        help="per-grade AUC (bootstrap CI), kappa and DeLong from a CSV of predictions",
        description="Per-grade AUC (one grade against the rest) with percentile bootstrap "
        "CIs, macro AUC, accuracy, weighted kappa, and DeLong's test between models. "
        "CSV columns: y_true, p0, p1, p2, p3, optionally model and case.",
    )
    metrics.add_argument("file", type=Path, metavar="FILE.csv")
    metrics.add_argument("--json", action="store_true", help="write JSON instead of a table")
    metrics.add_argument("--n-boot", type=int, default=1000, metavar="N",
                         help="bootstrap resamples for the AUC CIs (default 1000)")
    metrics.add_argument("--seed", type=int, default=0, metavar="S",
                         help="seed of the bootstrap (default 0)")
    metrics.set_defaults(func=run_metrics)

    icc = sub.add_parser(
        "icc",
        help="the six Shrout-Fleiss ICCs of a targets x raters CSV",
        description="Intraclass correlation (ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k with 95% "
        "CIs, via pingouin). CSV: one row per target, one column per rater; a first "
        "non-numeric column (or one named target, id, case, item or image) holds target ids. "
        "Rows with a missing rating are dropped.",
    )
    icc.add_argument("file", type=Path, metavar="FILE.csv")
    icc.add_argument("--json", action="store_true", help="write JSON instead of a table")
    icc.set_defaults(func=run_icc)


# ---------------------------------------------------------------- reading and checking CSVs


def _read_csv(path: Path) -> Any:
    """Read a CSV with pandas (strings kept as written), or raise CliError naming the file."""
    import pandas as pd

    if not path.is_file():
        raise CliError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
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
        raise CliError(f"{path}: column {column} is not numeric "
                       f"(line {row + 2}: {_shown(raw.iloc[row])})")
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
    import numpy as np

    frame = _read_csv(path)
    missing = [c for c in ("y_true", *PROB_COLUMNS) if c not in frame.columns]
    if missing:
        raise CliError(f"{path}: missing column(s) {', '.join(missing)} "
                       f"(need y_true, {', '.join(PROB_COLUMNS)}; optional model, case)")
    y_true = _numeric_column(frame, "y_true", path)
    bad = ~y_true.isin([0, 1, 2, 3])
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise CliError(f"{path}: y_true must be a grade 0-3 (line {row + 2}: "
                       f"{_shown(frame['y_true'].iloc[row])})")
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
                raise CliError(f"{path}: model {name} does not have the same cases as "
                               f"model {first_name}")
        aligned = {name: g.set_index("case").loc[order] for name, g in groups.items()}
        y_ref = aligned[first_name]["y_true"].to_numpy()
        for name, group in aligned.items():
            differ = np.flatnonzero(group["y_true"].to_numpy() != y_ref)
            if differ.size:
                raise CliError(f"{path}: models {first_name} and {name} disagree on y_true "
                               f"for case {order[differ[0]]!r}")
    else:
        aligned = {name: g.reset_index(drop=True) for name, g in groups.items()}
        first_name, first = next(iter(aligned.items()))
        y_ref = first["y_true"].to_numpy()
        for name, group in aligned.items():
            if len(group) != len(first):
                raise CliError(f"{path}: model {name} has {len(group)} rows but model "
                               f"{first_name} has {len(first)}; add a case column to align them")
            differ = np.flatnonzero(group["y_true"].to_numpy() != y_ref)
            if differ.size:
                raise CliError(f"{path}: models {first_name} and {name} disagree on y_true "
                               f"at case {differ[0] + 1} of each; add a case column to align them")
    probs = {name: g[list(PROB_COLUMNS)].to_numpy(dtype=float) for name, g in aligned.items()}
    return y_ref.astype(int), probs


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
    matrix = pd.DataFrame({c: _numeric_column(frame, c, path, allow_missing=True)
                           for c in columns})
    return matrix.to_numpy(dtype=float), columns


# ---------------------------------------------------------------- computing


def _grade_entry(result: Any) -> dict:
    """JSON entry of one grade's AUC."""
    entry = {"auc": result.auc, "ci_low": result.ci_low, "ci_high": result.ci_high,
             "n_pos": result.n_pos, "n_neg": result.n_neg}
    if result.reason:
        entry["reason"] = result.reason
    return entry


def compute_metrics(y_true: Any, probs: dict[str, Any], n_boot: int, seed: int) -> dict:
    """The ``rascore metrics`` report as a dict (NaN still NaN; see ``to_json``)."""
    from rascore.evaluate import (
        UndefinedMetricWarning, accuracy, delong_per_grade, macro_from, per_grade_auc_models,
        reason_of, weighted_kappa,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        per_model = per_grade_auc_models(y_true, probs, n_boot=n_boot, seed=seed)
        models: dict[str, dict] = {}
        for name, p in probs.items():
            predicted = p.argmax(axis=1)
            entry: dict = {
                "n": int(len(y_true)),
                "per_grade": {str(g): _grade_entry(r) for g, r in per_model[name].items()},
                "macro_auc": macro_from(per_model[name]),
                "accuracy": accuracy(y_true, predicted),
                "kappa_linear": weighted_kappa(y_true, predicted, "linear"),
                "kappa_quadratic": weighted_kappa(y_true, predicted, "quadratic"),
            }
            reasons = [f"{key}: {reason_of(entry[key])}" for key in
                       ("macro_auc", "accuracy", "kappa_linear", "kappa_quadratic")
                       if reason_of(entry[key])]
            if reasons:
                entry["reason"] = "; ".join(reasons)
            models[name] = entry
        delong = []
        for a, b in itertools.combinations(probs, 2):
            for row in delong_per_grade(y_true, probs[a], probs[b]):
                item = {"a": a, "b": b, "grade": row["grade"], "z": row["z"], "p": row["p"],
                        "auc_a": row["auc_a"], "auc_b": row["auc_b"]}
                if row["reason"]:
                    item["reason"] = row["reason"]
                delong.append(item)
    return {"models": models, "delong": delong}


def to_json(report: Any) -> str:
    """JSON text with every NaN or infinity written as null."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            value = value.item()  # numpy scalar
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else None
        return value

    return json.dumps(clean(report), indent=2, allow_nan=False)


# ---------------------------------------------------------------- printing


def _fmt(value: Any, digits: int = 3) -> str:
    """A number for the table, 'n/a' when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _fmt_p(value: Any) -> str:
    """A p-value for the table: 4 decimals, scientific below 0.001."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.4f}"


def _print_metrics(report: dict, out: Any) -> None:
    """Readable tables of the metrics report."""
    for name, model in report["models"].items():
        print(f"model {name}  (n = {model['n']})", file=out)
        print(f"  {'grade':<6}{'AUC':>7}  {'95% CI':<15}{'n_pos':>7}{'n_neg':>7}", file=out)
        for grade, g in model["per_grade"].items():
            ci = f"{_fmt(g['ci_low'])}-{_fmt(g['ci_high'])}"
            line = f"  {grade:<6}{_fmt(g['auc']):>7}  {ci:<15}{g['n_pos']:>7}{g['n_neg']:>7}"
            if g.get("reason"):
                line += f"  ({g['reason']})"
            print(line, file=out)
        print(f"  macro AUC {_fmt(model['macro_auc'])}   accuracy {_fmt(model['accuracy'])}   "
              f"kappa linear {_fmt(model['kappa_linear'])}   "
              f"quadratic {_fmt(model['kappa_quadratic'])}", file=out)
        if model.get("reason"):
            print(f"  ({model['reason']})", file=out)
        print(file=out)
    if report["delong"]:
        print("DeLong's test, paired, per grade (two-sided)", file=out)
        print(f"  {'a':<12}{'b':<12}{'grade':<7}{'AUC a':>7}{'AUC b':>7}{'z':>8}{'p':>9}",
              file=out)
        for row in report["delong"]:
            line = (f"  {row['a']:<12}{row['b']:<12}{row['grade']:<7}{_fmt(row['auc_a']):>7}"
                    f"{_fmt(row['auc_b']):>7}{_fmt(row['z'], 2):>8}{_fmt_p(row['p']):>9}")
            if row.get("reason"):
                line += f"  ({row['reason']})"
            print(line, file=out)


def _print_icc(table: dict, raters: list[str], out: Any) -> None:
    """Readable table of the six ICC forms."""
    print(f"{table['n_targets']} targets x {table['n_raters']} raters "
          f"({', '.join(raters)})", file=out)
    if table.get("note"):
        print(f"note: {table['note']}", file=out)
    print(f"  {'form':<7}{'ICC':>7}  {'95% CI':<18}meaning", file=out)
    for form, meaning in ICC_DESCRIPTIONS.items():
        row = table[form]
        ci = f"{_fmt(row['ci_low'])} to {_fmt(row['ci_high'])}"
        line = f"  {form:<7}{_fmt(row['icc']):>7}  {ci:<18}{meaning}"
        if row.get("reason"):
            line += f"  ({row['reason']})"
        print(line, file=out)


# ---------------------------------------------------------------- entry points


def run_metrics(args: argparse.Namespace) -> int:
    """``rascore metrics``: read, check, compute, print."""
    if args.n_boot < 0:
        raise CliError(f"--n-boot must be >= 0, got {args.n_boot}")
    y_true, probs = load_predictions(args.file)
    report = compute_metrics(y_true, probs, args.n_boot, args.seed)
    if args.json:
        print(to_json(report))
    else:
        _print_metrics(report, sys.stdout)
    return 0


def run_icc(args: argparse.Namespace) -> int:
    """``rascore icc``: read, check, compute, print."""
    from rascore.evaluate import UndefinedMetricWarning, icc_table

    ratings, raters = load_ratings(args.file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        table = icc_table(ratings)
    if args.json:
        print(to_json(table))
    else:
        _print_icc(table, raters, sys.stdout)
    return 0
