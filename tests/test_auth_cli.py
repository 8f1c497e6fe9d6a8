"""Accounts: bcrypt hashes, passwords only from stdin, sign-in, the env vars honoured by the CLI."""

from __future__ import annotations

import json
import subprocess

import pytest

from rascore import auth
from rascore.store import accounts
from tests.conftest import BIN, cli_env


def run(data, *args, stdin: str | None = None):
    return subprocess.run(
        [str(BIN / "rascore"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_env(data),
        timeout=60,
    )


def test_user_add_reads_password_from_stdin(project_env):
    done = run(
        project_env,
        "user",
        "add",
        "lead-expert",
        "--role",
        "expert",
        "--level",
        "senior",
        "--password-stdin",
        stdin="a long enough secret\n",
    )
    assert done.returncode == 0, done.stderr
    from rascore.store import Store

    store = Store(project_env / "rascore.db")
    user = accounts.user(store, "lead-expert")
    assert user["role"] == "expert" and user["level"] == "senior"
    assert user["password_hash"].startswith("$2b$")
    assert "a long enough secret" not in user["password_hash"]
    assert auth.authenticate(store, "lead-expert", "a long enough secret")["name"] == "lead-expert"
    assert auth.authenticate(store, "lead-expert", "wrong password!") is None
    assert auth.authenticate(store, "nobody", "a long enough secret") is None
    audit = store.audit_rows()
    assert audit[0]["action"] == "user.add" and audit[0]["target"] == "lead-expert"
    listing = json.loads(run(project_env, "user", "list", "--json").stdout)
    assert listing[0]["name"] == "lead-expert" and "password_hash" not in listing[0]


def test_password_never_from_argv(project_env):
    done = run(project_env, "user", "add", "x1", "--role", "reader", "--password", "secretsecret")
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr
    # no terminal and no --password-stdin: refuses instead of hanging
    done = run(project_env, "user", "add", "x1", "--role", "reader", stdin="")
    assert done.returncode == 2 and "--password-stdin" in done.stderr


@pytest.mark.parametrize(
    "name,password,message",
    [
        ("ok-name", "short", "at least"),
        ("<script>", "a long enough secret", "user name"),
        ("x' OR 1=1 --", "a long enough secret", "user name"),
    ],
)
def test_bad_accounts_refused(project_env, name, password, message):
    done = run(
        project_env, "user", "add", name, "--role", "reader", "--password-stdin", stdin=password + "\n"
    )
    assert done.returncode == 2 and message in done.stderr
    assert json.loads(run(project_env, "user", "list", "--json").stdout) == []


def test_env_vars_point_every_command_at_the_project(project_env, tmp_path):
    info = json.loads(run(project_env, "info", "--json").stdout)
    assert info["paths"]["db"] == str(project_env / "rascore.db")
    assert info["paths"]["data"] == str(project_env)
    assert info["paths"]["models"] == str(project_env / "models")
    assert (project_env / "rascore.db").exists()
    assert info["items_total"] == 0


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["demo"],
        ["ingest"],
        ["export"],
        ["user"],
        ["user", "add"],
        ["user", "passwd"],
        ["info"],
        ["pacs"],
        ["pacs", "pull"],
        ["pacs", "push"],
    ],
)
def test_help_on_every_subcommand(project_env, command):
    done = run(project_env, *command, "--help")
    assert done.returncode == 0 and "usage: rascore" in done.stdout
