"""``rascore ingest``: import files, folders or a manifest CSV, with a per-file report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rascore.cli import CliError
from rascore.ingest import RowError, entries_from_manifest, entries_from_paths, ingest
from rascore.project import open_project
from rascore.scale import COHORTS, MODALITIES


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``ingest``."""
    parser = sub.add_parser(
        "ingest",
        help="import scans (DICOM, images, clips)",
        description="Import scans: files, folders (recursive) or a manifest CSV with columns "
        "path, modality, cohort, patient, joint, side and optional readers' grades "
        "sh:NAME, pd:NAME and reference_sh, reference_pd. Paths in a manifest are relative to "
        "its folder. Each bad file is reported on one line and skipped; the exit code is 1 when "
        "anything was rejected. A patient belongs to one cohort: rows that would put a patient "
        "(manifest patient or DICOM patient ID) in a second cohort are refused.",
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    parser.add_argument("--manifest", type=Path, metavar="CSV")
    parser.add_argument(
        "--modality", type=str.upper, choices=tuple(MODALITIES), help="modality of the files given as PATH"
    )
    parser.add_argument(
        "--cohort", choices=COHORTS, default="train", help="cohort of the files given as PATH (default train)"
    )
    add_limit_options(parser)
    parser.add_argument(
        "--shift-check",
        action="store_true",
        help="then compare the imported items with the training data of each modality's active "
        "model and report those that do not look like it (one forward pass per item; docs/SHIFT.md)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_ingest)


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """``--max-frames`` and ``--max-pixels``: the decoder's limits on one file (read by limits_from)."""
    parser.add_argument(
        "--max-frames", type=int, default=None, help="refuse clips with more frames (default 2000)"
    )
    parser.add_argument(
        "--max-pixels", type=int, default=None, help="refuse frames with more pixels (default 40 million)"
    )


def limits_from(args: argparse.Namespace):
    """Media limits with the command line's overrides."""
    from dataclasses import replace

    from rascore.media import Limits

    limits = Limits()
    if args.max_frames is not None:
        limits = replace(limits, max_frames=args.max_frames)
    if args.max_pixels is not None:
        limits = replace(limits, max_pixels=args.max_pixels)
    return limits


def _ingest(args: argparse.Namespace) -> int:
    if not args.paths and not args.manifest:
        raise CliError("give files, folders or --manifest CSV")
    entries = []
    if args.manifest:
        if not args.manifest.is_file():
            raise CliError(f"{args.manifest}: no such manifest")
        try:
            entries += entries_from_manifest(args.manifest)
        except RowError as exc:
            raise CliError(str(exc)) from None
    entries += entries_from_paths(args.paths, args.modality, args.cohort)
    project = open_project()

    from tqdm import tqdm

    bar = tqdm(total=len(entries), unit="file", disable=args.quiet or None, file=sys.stderr, leave=False)

    def report(entry, status, reason, item_id):
        bar.update(1)
        if status == "rejected":
            bar.write(f"rejected {entry.display}: {reason}", file=sys.stderr)
        elif status == "duplicate":
            bar.write(f"duplicate {entry.display}: already in the project", file=sys.stderr)

    result = ingest(
        project, entries, limits=limits_from(args), on_result=report, shift_check=args.shift_check
    )
    bar.close()
    for note in result.notes():
        print(f"note: {note}", file=sys.stderr)
    print(result.summary())
    return 0 if result.ok else 1
