"""``rascore metrics`` and ``rascore icc``: evaluation statistics from CSV files.

``rascore metrics FILE.csv``: columns ``y_true`` (reference grade 0-3), ``p0``-``p3`` (the model's
score or probability for each grade), optionally ``model`` (several models on the same cases),
``case`` (case ids to align the models on; without it every model must list the same cases
in the same order) and ``patient`` (the patient of each case: the bootstrap then resamples
patients and the paired test between models is Obuchowski's clustered one). Writes per-grade
AUC with percentile bootstrap CIs, macro AUC (with the grades it averaged), accuracy, ECE and
linear/quadratic weighted kappa of the top grade (argmax, lowest grade on ties), and the paired
AUC test between every pair of models per grade and for the macro average, with the paired
bootstrap CI of the difference. All figures come from ``rascore.evaluate.report``.

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

from rascore.cli.numbers import number, p_value
from rascore.cli import CliError
from rascore.cli.csv_input import load_predictions_with_patients, load_ratings

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
        "CIs, macro AUC, accuracy, weighted kappa, ECE, and the paired AUC test between models "
        "(DeLong; Obuchowski's clustered test with a patient column, whose bootstrap then "
        "resamples patients). CSV columns: y_true, p0, p1, p2, p3, optionally model, case and "
        "patient.",
    )
    metrics.add_argument("file", type=Path, metavar="FILE.csv")
    metrics.add_argument("--json", action="store_true", help="write JSON instead of a table")
    metrics.add_argument(
        "--n-boot",
        type=int,
        default=1000,
        metavar="N",
        help="bootstrap resamples for the AUC CIs (default 1000)",
    )
    metrics.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the bootstrap (default 0)")
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


# ---------------------------------------------------------------- computing


def _grade_entry(entry: dict) -> dict:
    """JSON entry of one grade's AUC (from ``ModelReport.to_dict``)."""
    keys = ("auc", "ci_low", "ci_high", "n_pos", "n_neg", "n_excluded", "reason")
    return {k: entry[k] for k in keys if k in entry}


def compute_metrics(
    y_true: Any, probs: dict[str, Any], n_boot: int, seed: int, patients: list | None = None
) -> dict:
    """The ``rascore metrics`` report as a dict (NaN still NaN; see ``to_json``)."""
    from rascore.evaluate import UndefinedMetricWarning
    from rascore.evaluate.auc import auc_differences
    from rascore.evaluate.clusters import Clusters
    from rascore.evaluate.obuchowski import paired_auc_tests
    from rascore.evaluate.report import model_reports

    clusters = Clusters.of(patients, n_items=len(y_true))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        reports = model_reports(y_true, probs, n_boot=n_boot, seed=seed, patients=patients)
        models: dict[str, dict] = {}
        for name, report in reports.items():
            figures = report.to_dict()
            entry: dict = {
                "n": figures["n"],
                "per_grade": {g: _grade_entry(e) for g, e in figures["auc"].items()},
                "macro_auc": figures["macro_auc"],
                "macro_grades": figures["macro_grades"],
                "macro_n_grades": figures["macro_n_grades"],
                "accuracy": figures["accuracy"],
                "kappa_linear": figures["kappa_linear"],
                "kappa_quadratic": figures["kappa_quadratic"],
                "ece": figures["ece"],
            }
            reasons = [f"{key}: {reason}" for key, reason in (figures.get("reasons") or {}).items()]
            reasons += [f"macro_auc: grade {g} left out ({r})" for g, r in figures["macro_left_out"].items()]
            if reasons:
                entry["reason"] = "; ".join(reasons)
            models[name] = entry
        delong = []
        for a, b in itertools.combinations(probs, 2):
            diffs = auc_differences(y_true, probs[a], probs[b], n_boot=n_boot, seed=seed, patients=patients)
            for row in paired_auc_tests(y_true, probs[a], probs[b], patients):
                diff = diffs[row["grade"]]
                item = {
                    "a": a,
                    "b": b,
                    "grade": row["grade"],
                    "method": row["method"],
                    "z": row["z"],
                    "p": row["p"],
                    "auc_a": row["auc_a"],
                    "auc_b": row["auc_b"],
                    "diff": row["auc_a"] - row["auc_b"],
                    "diff_ci_low": diff.ci_low,
                    "diff_ci_high": diff.ci_high,
                    "n_excluded": diff.n_boot_excluded,
                }
                if row["grade"] == "macro":
                    item["grades"] = row["grades"]
                if row["reason"]:
                    item["reason"] = row["reason"]
                delong.append(item)
    line = next(iter(reports.values())).resampled if reports else ""
    return {
        "cluster": clusters.kind,
        "n_clusters": clusters.n_clusters,
        "resampled": line,
        "models": models,
        "delong": delong,
    }


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


def _print_metrics(report: dict, out: Any) -> None:
    """Readable tables of the metrics report."""
    print(report["resampled"], file=out)
    print(file=out)
    for name, model in report["models"].items():
        print(f"model {name}  (n = {model['n']})", file=out)
        print(f"  {'grade':<6}{'AUC':>7}  {'95% CI':<15}{'n_pos':>7}{'n_neg':>7}{'excluded':>10}", file=out)
        for grade, g in model["per_grade"].items():
            ci = f"{number(g['ci_low'])}-{number(g['ci_high'])}"
            line = (
                f"  {grade:<6}{number(g['auc']):>7}  {ci:<15}{g['n_pos']:>7}{g['n_neg']:>7}"
                f"{g.get('n_excluded', 0):>10}"
            )
            if g.get("reason"):
                line += f"  ({g['reason']})"
            print(line, file=out)
        print(
            f"  macro AUC {number(model['macro_auc'])} ({model['macro_n_grades']} grades)   "
            f"accuracy {number(model['accuracy'])}   "
            f"kappa linear {number(model['kappa_linear'])}   "
            f"quadratic {number(model['kappa_quadratic'])}   ECE {number(model['ece'])}",
            file=out,
        )
        if model.get("reason"):
            print(f"  ({model['reason']})", file=out)
        print(file=out)
    if report["delong"]:
        method = (
            "Obuchowski's clustered test (patients)"
            if report["cluster"] == "patient"
            else "DeLong's test (items independent)"
        )
        print(
            f"Paired AUC test, {method}, per grade and macro (two-sided); "
            "difference a - b with its paired bootstrap 95% CI",
            file=out,
        )
        print(
            f"  {'a':<12}{'b':<12}{'grade':<7}{'AUC a':>7}{'AUC b':>7}{'diff':>8}  "
            f"{'95% CI':<16}{'z':>7}{'p':>9}",
            file=out,
        )
        for row in report["delong"]:
            ci = f"{number(row['diff_ci_low'])} to {number(row['diff_ci_high'])}"
            line = (
                f"  {row['a']:<12}{row['b']:<12}{row['grade']!s:<7}{number(row['auc_a']):>7}"
                f"{number(row['auc_b']):>7}{number(row['diff']):>8}  {ci:<16}"
                f"{number(row['z'], 2):>7}{p_value(row['p']):>9}"
            )
            if row.get("reason"):
                line += f"  ({row['reason']})"
            print(line, file=out)


def _print_icc(table: dict, raters: list[str], out: Any) -> None:
    """Readable table of the six ICC forms."""
    print(f"{table['n_targets']} targets x {table['n_raters']} raters ({', '.join(raters)})", file=out)
    if table.get("note"):
        print(f"note: {table['note']}", file=out)
    print(f"  {'form':<7}{'ICC':>7}  {'95% CI':<18}meaning", file=out)
    for form, meaning in ICC_DESCRIPTIONS.items():
        row = table[form]
        ci = f"{number(row['ci_low'])} to {number(row['ci_high'])}"
        line = f"  {form:<7}{number(row['icc']):>7}  {ci:<18}{meaning}"
        if row.get("reason"):
            line += f"  ({row['reason']})"
        print(line, file=out)


# ---------------------------------------------------------------- entry points


def run_metrics(args: argparse.Namespace) -> int:
    """``rascore metrics``: read, check, compute, print."""
    if args.n_boot < 0:
        raise CliError(f"--n-boot must be >= 0, got {args.n_boot}")
    y_true, probs, patients = load_predictions_with_patients(args.file)
    report = compute_metrics(y_true, probs, args.n_boot, args.seed, patients)
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
