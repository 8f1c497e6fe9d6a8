"""``rascore pacs pull|push``: import studies from a PACS over DICOMweb, send results back as SRs.

Credentials come from RASCORE_PACS_USER / RASCORE_PACS_PASSWORD (basic auth) or
RASCORE_PACS_TOKEN (bearer), or from a prompt (``--ask-password``), never from the command line.
"""

from __future__ import annotations

import argparse
import sys

from rascore.cli import CliError
from rascore.cli.ingest_cmd import add_limit_options, limits_from
from rascore.scale import COHORTS, MODALITIES


def _connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="the DICOMweb root, e.g. http://pacs:8042/dicom-web")
    parser.add_argument(
        "--ask-password",
        action="store_true",
        help="prompt for the password (user from RASCORE_PACS_USER, or prompted too)",
    )
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per request (default 20)")
    parser.add_argument(
        "--retries", type=int, default=3, help="retries of a failed connection, with backoff (default 3)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``pacs pull`` and ``pacs push``."""
    parser = sub.add_parser(
        "pacs",
        help="import scans from a PACS (DICOMweb), send results back",
        description="Import studies from a PACS over DICOMweb (QIDO-RS search, WADO-RS retrieve) "
        "exactly as `rascore ingest` imports files, and send grades back as DICOM SRs (STOW-RS). "
        "Credentials: RASCORE_PACS_USER and RASCORE_PACS_PASSWORD, or RASCORE_PACS_TOKEN, or "
        "--ask-password; never on the command line. See docs/PACS.md.",
    )
    pacs_sub = parser.add_subparsers(dest="pacs_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)

    pull = pacs_sub.add_parser(
        "pull",
        help="import studies from the PACS",
        description="Search studies (by UID, or by date and modality in study), list their "
        "instances, and import each one not already pulled for the modality. Each rejected "
        "instance is reported on one line and skipped; the exit code is 1 when anything was "
        "rejected or the server stopped answering.",
    )
    _connection_args(pull)
    pull.add_argument(
        "--study", action="append", default=[], metavar="UID", help="a Study Instance UID (repeat)"
    )
    pull.add_argument("--since", metavar="YYYY-MM-DD", help="studies on or after this date")
    pull.add_argument("--until", metavar="YYYY-MM-DD", help="studies on or before this date")
    pull.add_argument("--modality-tag", metavar="TAG", help="DICOM modality in the study, e.g. US")
    pull.add_argument("--modality", type=str.upper, choices=tuple(MODALITIES), required=True)
    pull.add_argument(
        "--cohort", choices=COHORTS, default="train", help="cohort of the imported items (default train)"
    )
    add_limit_options(pull)
    pull.add_argument(
        "--no-uid-map",
        action="store_true",
        help="keep no private map back to the PACS's UIDs (push then cannot report on these instances)",
    )
    pull.set_defaults(func=_pull)

    push = pacs_sub.add_parser(
        "push",
        help="send grades back to the PACS as DICOM SRs",
        description="For each instance pulled for the modality with a reference grade or a "
        "prediction of the active model, store a DICOM Comprehensive SR in its study (STOW-RS) "
        "naming the original instance. Needs the private UID map written by pull.",
    )
    _connection_args(push)
    push.add_argument("--modality", type=str.upper, choices=tuple(MODALITIES), required=True)
    push.set_defaults(func=_push)


def credentials(args: argparse.Namespace):
    """The environment's credentials, or the prompt's with ``--ask-password``."""
    from rascore.config import PacsCredentials, pacs_credentials

    found = pacs_credentials()
    if not args.ask_password:
        return found
    import getpass

    user = found.user or input("PACS user: ").strip()
    return PacsCredentials(user=user, password=getpass.getpass(f"PACS password for {user}: "))


def _connect(args: argparse.Namespace):
    from rascore.pacs import PacsError, connect

    try:
        return connect(args.url, credentials(args), timeout=args.timeout, retries=max(0, args.retries))
    except PacsError as exc:
        raise CliError(str(exc)) from None


def _pull(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rascore.pacs import PacsError, list_instances, parse_date, pull, search_studies
    from rascore.project import open_project

    try:
        since, until = parse_date(args.since), parse_date(args.until)
    except PacsError as exc:
        raise CliError(str(exc)) from None
    connection = _connect(args)
    project = open_project()
    try:
        studies = search_studies(
            connection, study_uids=args.study, since=since, until=until, modality_tag=args.modality_tag
        )
        for study in studies:
            list_instances(connection, study, modality_tag=args.modality_tag)
    except PacsError as exc:
        raise CliError(str(exc)) from None
    if not studies:
        print("no study found", file=sys.stderr)
    bar = tqdm(total=0, unit="instance", disable=args.quiet or None, file=sys.stderr, leave=False)

    def planned(n: int) -> None:
        bar.total = n
        bar.refresh()

    def report(entry, status, reason, item_id):
        bar.update(1)
        if status == "rejected":
            bar.write(f"rejected {entry.display}: {reason}", file=sys.stderr)
        elif status == "duplicate":
            bar.write(f"duplicate {entry.display}: already in the project", file=sys.stderr)

    try:
        result = pull(
            project,
            connection,
            studies,
            args.modality,
            args.cohort,
            modality_tag=args.modality_tag,
            limits=limits_from(args),
            keep_uids=not args.no_uid_map,
            on_planned=planned,
            on_result=report,
        )
    except PacsError as exc:
        raise CliError(str(exc)) from None
    finally:
        bar.close()
        connection.close()
    if result.stopped:
        print(f"stopped: {result.stopped}; run the same pull again to complete it", file=sys.stderr)
    for note in result.notes():
        print(f"note: {note}", file=sys.stderr)
    print(result.summary())
    return 0 if result.ok else 1


def _push(args: argparse.Namespace) -> int:
    from rascore.pacs import PacsError, push
    from rascore.project import open_project

    connection = _connect(args)
    project = open_project()

    def report(item_id, status, reason):
        if status != "stored":
            print(f"{status} item {item_id}: {reason}", file=sys.stderr)

    try:
        result = push(project, connection, args.modality, on_result=report)
    except PacsError as exc:
        raise CliError(str(exc)) from None
    finally:
        connection.close()
    if result.stopped:
        print(f"stopped: {result.stopped}", file=sys.stderr)
    print(result.summary())
    return 0 if result.ok else 1
