"""``rascore user``: add accounts and set passwords (read from stdin or a prompt, never argv)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from rascore.auth import LEVELS, ROLES, AuthError, add_user, set_password
from rascore.cli import CliError
from rascore.project import open_project
from rascore.store import accounts


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``user add``, ``user passwd`` and ``user list``."""
    parser = sub.add_parser(
        "user",
        help="manage accounts",
        description="Manage accounts. Passwords are read from standard input "
        "(--password-stdin) or a prompt, never from the command line.",
    )
    user_sub = parser.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    add = user_sub.add_parser(
        "add", help="create an account", description="Create an account with a bcrypt-hashed password."
    )
    add.add_argument("name", help="user name (letters, digits, . _ @ -)")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--level", choices=LEVELS, help="experience level (reader study)")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    add.set_defaults(func=_add)

    passwd = user_sub.add_parser("passwd", help="set a user's password", description="Set a user's password.")
    passwd.add_argument("name")
    passwd.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    passwd.set_defaults(func=_passwd)

    listing = user_sub.add_parser("list", help="list accounts", description="List accounts.")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_list)


def read_password(from_stdin: bool) -> str:
    """One line from stdin, or an interactive prompt asked twice."""
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CliError("no terminal to prompt on: pipe the password with --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise CliError("the passwords differ")
    return first


def _add(args: argparse.Namespace) -> int:
    password = read_password(args.password_stdin)
    try:
        add_user(open_project().store, args.name, args.role, args.level, password)
    except AuthError as exc:
        raise CliError(str(exc)) from None
    print(f"added {args.role} {args.name}")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    password = read_password(args.password_stdin)
    try:
        set_password(open_project().store, args.name, password)
    except AuthError as exc:
        raise CliError(str(exc)) from None
    print(f"password set for {args.name}")
    return 0


def _list(args: argparse.Namespace) -> int:
    users = accounts.users(open_project().store)
    if args.json:
        print(json.dumps(users, indent=2))
        return 0
    for u in users:
        sign_in = "can sign in" if u["can_sign_in"] else "no password"
        print(f"{u['name']:<20} {u['role']:<7} {u['level'] or '-':<13} {sign_in}")
    return 0
