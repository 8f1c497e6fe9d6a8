"""The ``rascore`` command line: one module per subcommand group, each with ``register(subparsers)``.

A subcommand module adds its parser with ``sub.add_parser(...)`` and sets ``func`` to a callable
taking the parsed ``argparse.Namespace`` and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# Subcommand modules, in the order ``rascore --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "rascore.cli.demo_cmd",
    "rascore.cli.ingest_cmd",
    "rascore.cli.pacs_cmd",
    "rascore.cli.export_cmd",
    "rascore.cli.user_cmd",
    "rascore.cli.info_cmd",
    "rascore.cli.metrics_cmd",
    "rascore.cli.mrmc_cmd",
    "rascore.cli.train_cmd",
    "rascore.cli.jobs_cmd",
    "rascore.cli.explain_cmd",
    "rascore.cli.backup_cmd",
)


class CliError(Exception):
    """An error the user can act on: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="rascore",
        description="Score rheumatoid-arthritis synovitis on joint ultrasound (EOSS). "
        "Honours RASCORE_DB, RASCORE_DATA, RASCORE_MODELS and RASCORE_DEVICE.",
    )
    from rascore import __version__

    parser.add_argument("--version", action="version", version=f"rascore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a subcommand not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rascore`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"rascore {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`rascore ... | head`)
        # point stdout at /dev/null so the interpreter's final flush does not fail a second time
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
