"""``rascore export``: labels and the reference standard as CSV (stdout or a file) or Parquet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rascore import export
from rascore.cli import CliError
from rascore.project import open_project


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export labels|reference``."""
    parser = sub.add_parser(
        "export",
        help="export labels or the reference standard",
        description="Export each reader's current grades (labels) or the reference standard. "
        "Patients appear only as pseudonyms.",
    )
    parser.add_argument("table", choices=sorted(export.TABLES))
    parser.add_argument("--out", type=Path, help="file to write (default: CSV on standard output)")
    parser.add_argument(
        "--format", choices=("csv", "parquet"), help="default: from --out's extension, else csv"
    )
    parser.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    store = open_project().store
    fmt = args.format or ("parquet" if args.out and args.out.suffix == ".parquet" else "csv")
    if args.out is None:
        if fmt == "parquet":
            raise CliError("Parquet needs --out FILE")
        records, columns = export.rows(store, args.table)
        sys.stdout.write(export.to_csv(records, columns))
        return 0
    n = export.write(store, args.table, args.out, fmt)
    print(f"wrote {n} rows to {args.out}", file=sys.stderr)
    return 0
