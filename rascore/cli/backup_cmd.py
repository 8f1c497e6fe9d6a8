"""``rascore backup``: an online backup of the project while it is in use, and its restore."""

from __future__ import annotations

import argparse

RESTORE_HELP = """\
Restore: stop the app and the worker, then
  rascore backup --restore BACKUP_DIR NEW_PROJECT_DIR
checks the backup (PRAGMA integrity_check, every media file and checkpoint the database names)
and copies it into NEW_PROJECT_DIR, which must be new or empty. Start the app on it with
  RASCORE_DATA=NEW_PROJECT_DIR streamlit run app.py
(RASCORE_DB and RASCORE_MODELS unset: the database and the models live inside the folder).
A backup folder is itself a complete project folder; restore never writes over a project.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``backup``."""
    parser = sub.add_parser(
        "backup",
        help="back up the project while it runs (or restore a backup)",
        description="Copy the project's database with SQLite's online backup API (a few pages "
        "per step, so the app and the worker keep writing), then its media, cache, truth and "
        "model files (hard links where possible), into DEST, a new or empty folder. "
        "Every grade committed before the backup started is in it.",
        epilog=RESTORE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "dest",
        metavar="DEST",
        help="new or empty folder for the backup (with --restore: the new project folder)",
    )
    parser.add_argument(
        "--restore", metavar="BACKUP_DIR", help="restore this backup into DEST instead of backing up"
    )
    parser.add_argument("--pages", type=int, default=256, help="database pages copied per step (default 256)")
    parser.add_argument(
        "--sleep",
        type=float,
        default=0.01,
        help="seconds between steps, for writers to proceed (default 0.01)",
    )
    parser.add_argument(
        "--copy",
        action="store_true",
        help="copy files instead of hard-linking them (use when the backup "
        "must survive the disk the project is on; links share that disk)",
    )
    parser.set_defaults(func=_backup)


def _backup(args: argparse.Namespace) -> int:
    from rascore import backup as backups
    from rascore.cli import CliError
    from rascore.config import settings

    try:
        if args.restore:
            report = backups.restore(args.restore, args.dest, log=lambda m: print(f"  {m}"))
        else:
            report = backups.backup(
                settings(),
                args.dest,
                pages=args.pages,
                sleep_s=args.sleep,
                link=not args.copy,
                log=lambda m: print(f"  {m}"),
            )
    except backups.BackupError as exc:
        raise CliError(str(exc)) from None
    print(report.summary())
    for path in report.missing[:20]:
        print(f"  missing {path}")
    if args.restore and report.ok:
        print(f"restored: start the app with RASCORE_DATA={args.dest}")
    return 0 if report.ok else 1
