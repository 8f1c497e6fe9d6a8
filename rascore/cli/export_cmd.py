"""``rascore export``: labels, the reference standard or the patient-level GLOESS as CSV (stdout
or a file) or Parquet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rascore import export
from rascore.cli import CliError
from rascore.project import open_project


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export labels|reference|gloess``."""
    parser = sub.add_parser(
        "export",
        help="export labels, the reference standard or the patient-level GLOESS",
        description="Export each reader's current grades (labels), the reference standard, or the "
        "GLOESS (the sum of the combined EOSS over a patient's joints, per patient, cohort, power "
        "Doppler modality and rater: each reader, the reference, each active model). "
        "Patients appear only as pseudonyms.",
    )
    parser.add_argument("table", choices=sorted(export.TABLES))
    parser.add_argument("--out", type=Path, help="file to write (default: CSV on standard output)")
    parser.add_argument(
        "--format", choices=("csv", "parquet"), help="default: from --out's extension, else csv"
    )
    parser.add_argument("--cohort", help="only this cohort (train, test1, test2, test3)")
    parser.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    fmt = args.format or ("parquet" if args.out and args.out.suffix == ".parquet" else "csv")
    if args.out is None and fmt == "parquet":
        raise CliError("Parquet needs --out FILE")
    if args.out is not None and args.out.is_dir():
        raise CliError(f"--out {args.out} is a folder; give a file name")
    store = open_project().store
    try:
        found = export.table(store, args.table, args.cohort)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.out is None:
        sys.stdout.write(export.to_csv(found.records, found.columns))
    else:
        try:
            n = export.save(found, args.out, fmt)
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from None
        print(f"wrote {n} rows to {args.out}", file=sys.stderr)
    for note in found.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
