"""``rascore mrmc``: multi-reader multi-case ROC analysis of a reader study from a CSV file.

``rascore mrmc FILE.csv [--json]``: one row per reading with columns ``reader``, ``case``,
``truth`` (0/1), ``arm`` (modality or treatment) and ``score`` (rating or probability, higher =
more likely positive); every reader reads every case in every arm. Writes each reader's AUC per
arm, the arm means, the OR error covariances and the three analyses of
``rascore.evaluate.mrmc``: random readers and random cases (Hillis's ddf), fixed readers and
random cases, random readers and fixed cases, each with every pair of arms (earlier arm minus
later, in the order the arms first appear in the file). ``--json`` writes
``MRMCResult.to_json()``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from rascore.cli import CliError
from rascore.cli.csv_input import load_mrmc_table
from rascore.cli.numbers import number, p_value


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``mrmc`` subcommand."""
    parser = sub.add_parser(
        "mrmc",
        help="multi-reader multi-case ROC analysis (Obuchowski-Rockette, Hillis df) of a reader study",
        description="Obuchowski-Rockette MRMC analysis with Hillis's degrees of freedom, as the "
        "University of Iowa's OR-DBM MRMC software makes it: empirical AUC per reader and arm, "
        "error covariances by jackknifing cases, and the tests of equal arm AUCs for random "
        "readers and cases, fixed readers, and fixed cases. CSV columns: reader, case, truth "
        "(0/1), arm, score; fully crossed (every reader reads every case in every arm).",
    )
    parser.add_argument("file", type=Path, metavar="FILE.csv")
    parser.add_argument("--json", action="store_true", help="write JSON instead of a table")
    parser.set_defaults(func=run_mrmc)


def _comparison_lines(rows: list[dict], stat: str, width: int) -> list[str]:
    """One line per pair of arms: difference, stderr, 95% CI, statistic, p."""
    lines = [f"    {'arms':<{width}}{'diff':>9}{'stderr':>9}  {'95% CI':<20}{stat:>7}{'p':>9}"]
    for row in rows:
        ci = f"{number(row['ci_low'], 4)} to {number(row['ci_high'], 4)}"
        pair = f"{row['a']} - {row['b']}"
        lines.append(
            f"    {pair:<{width}}{number(row['diff'], 4):>9}{number(row['stderr'], 4):>9}  {ci:<20}"
            f"{number(row[stat], 2):>7}{p_value(row['p']):>9}"
        )
    return lines


def _arm_lines(d: dict, first: int) -> list[str]:
    """Each arm's mean AUC with its 95% CI under each of the three analyses."""
    heads = ("random readers+cases", "fixed readers", "fixed cases")
    lines = [f"  {'arm':<{first}}{'AUC':>8}   " + "".join(f"{h:<24}" for h in heads).rstrip()]
    for arm in d["arms"]:
        cells = []
        for key in ("rrrc", "frrc", "rrfc"):
            s = d[key].get("single", {}).get(arm)
            cells.append(f"{number(s['ci_low'], 4)} to {number(s['ci_high'], 4)}" if s else "n/a")
        lines.append(
            f"  {arm:<{first}}{number(d['auc'][arm], 4):>8}   " + "".join(f"{c:<24}" for c in cells).rstrip()
        )
    return lines


def _print_table(result: Any, out: Any) -> None:
    """Readable tables of one MRMC analysis."""
    d = result.to_dict()
    arms, readers = d["arms"], d["readers"]
    print(
        "Obuchowski-Rockette MRMC analysis, Hillis degrees of freedom; empirical AUC, "
        "covariances by jackknifing cases",
        file=out,
    )
    print(
        f"{len(arms)} arms, {len(readers)} readers, {d['n_cases']} cases "
        f"({d['n_positive']} positive, {d['n_negative']} negative)",
        file=out,
    )
    print(file=out)
    col = max(8, *(len(a) + 2 for a in arms))
    first = max(8, *(len(r) + 2 for r in readers))
    print("AUC per reader and arm", file=out)
    print("  " + f"{'reader':<{first}}" + "".join(f"{a:>{col}}" for a in arms), file=out)
    for reader in readers:
        cells = "".join(f"{number(d['reader_auc'][a][reader], 4):>{col}}" for a in arms)
        print(f"  {reader:<{first}}{cells}", file=out)
    print("  " + f"{'mean':<{first}}" + "".join(f"{number(d['auc'][a], 4):>{col}}" for a in arms), file=out)
    print(file=out)
    print("Mean AUC per arm with its 95% CI in each analysis", file=out)
    for line in _arm_lines(d, max(first, *(len(a) + 2 for a in arms))):
        print(line, file=out)
    print(file=out)
    print(
        f"Error covariances: Var {number(d['var'], 8)}  Cov1 {number(d['cov1'], 8)}  "
        f"Cov2 {number(d['cov2'], 8)}  Cov3 {number(d['cov3'], 8)}",
        file=out,
    )
    print(
        f"Mean squares:      MS(T) {number(d['ms_t'], 8)}  MS(R) {number(d['ms_r'], 8)}  "
        f"MS(T*R) {number(d['ms_tr'], 8)}",
        file=out,
    )
    width = max(8, *(len(a) + len(b) + 5 for a in arms for b in arms))
    sections = (
        ("Random readers, random cases", "rrrc", "t"),
        ("Fixed readers, random cases", "frrc", "z"),
        ("Random readers, fixed cases", "rrfc", "t"),
    )
    for title, key, stat in sections:
        a = d[key]
        print(file=out)
        if a.get("reason"):
            print(f"{title}: undefined ({a['reason']})", file=out)
            continue
        if key == "rrrc":
            head = f"F({a['df1']}, {number(a['ddf'], 2)}) = {number(a['F'], 2)}"
        elif key == "frrc":
            head = f"X2({a['df']}) = {number(a['chi2'], 3)}"
        else:
            head = f"F({a['df1']}, {a['df2']}) = {number(a['F'], 2)}"
        print(f"{title}: {head}, p = {p_value(a['p'])}", file=out)
        for line in _comparison_lines(a["comparisons"], stat, width):
            print(line, file=out)


def run_mrmc(args: argparse.Namespace) -> int:
    """``rascore mrmc``: read, check, analyse, print."""
    from rascore.evaluate.mrmc import MRMCInputError, mrmc_analysis
    from rascore.evaluate.mrmc_input import mrmc_data
    from rascore.evaluate.undefined import UndefinedMetricWarning

    frame = load_mrmc_table(args.file)
    try:
        data = mrmc_data(frame, first_row=2, row_word="line")
    except MRMCInputError as exc:
        raise CliError(f"{args.file}: {exc}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        result = mrmc_analysis(data)
    if args.json:
        print(result.to_json())
    else:
        _print_table(result, sys.stdout)
    return 0
