"""SQL of accounts and sign-in: users (names, roles, levels, password hashes, active or not) and
the failed sign-in attempts counted per typed user name. Functions take a ``Store``.

Rules about accounts (valid names, roles, password strength, hashing) live in ``rascore.auth``;
the sign-in rate limit in ``rascore.services.session``. User names compare case-insensitively
(the column is ``COLLATE NOCASE``).
"""

from __future__ import annotations

import sqlite3

from rascore.store.db import utcnow
from rascore.store.store import Store, StoreError


# ------------------------------------------------------------------ users
def add_user(
    store: Store, name: str, role: str, level: str | None = None, password_hash: str | None = None
) -> int:
    """Create a user and return its id; StoreError if the name is taken."""
    try:
        cur = store.execute(
            "INSERT INTO users (name, role, level, password_hash, created_at) VALUES (?,?,?,?,?)",
            (name, role, level, password_hash, utcnow()),
        )
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            raise StoreError(f"a user named {name!r} already exists") from None
        raise StoreError(f"invalid user: {exc}") from None
    return int(cur.lastrowid)


def user(store: Store, name: str) -> dict | None:
    """A user by name (case-insensitive), password hash included."""
    return store.one("SELECT * FROM users WHERE name = ?", (name,))


def user_by_id(store: Store, user_id: int) -> dict | None:
    """A user by id, password hash included."""
    return store.one("SELECT * FROM users WHERE id = ?", (user_id,))


def users(store: Store) -> list[dict]:
    """All users without their password hashes, with whether each can sign in by password."""
    return store.rows(
        "SELECT id, name, role, level, active, created_at,"
        " password_hash IS NOT NULL AS can_sign_in FROM users ORDER BY id"
    )


def set_password_hash(store: Store, user_id: int, password_hash: str) -> None:
    """Replace a user's password hash."""
    store.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


def set_role(store: Store, user_id: int, role: str) -> None:
    """Change a user's role."""
    store.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id))


def set_active(store: Store, user_id: int, active: bool) -> None:
    """Activate or deactivate an account (a deactivated one cannot sign in)."""
    store.execute("UPDATE users SET active = ? WHERE id = ?", (int(active), user_id))


def count_active_admins(store: Store) -> int:
    """Active admin accounts."""
    return int(store.value("SELECT count(*) FROM users WHERE role = 'admin' AND active = 1"))


# ------------------------------------------------------------------ sign-in attempts
def sign_in_state(store: Store, name: str) -> dict | None:
    """The failed-attempt record of a typed user name."""
    return store.one("SELECT * FROM sign_in_attempts WHERE name = ?", (name,))


def set_sign_in_state(store: Store, name: str, failures: int, at: str, locked_until: str | None) -> None:
    """Write the failed-attempt record of a typed user name."""
    store.execute(
        "INSERT INTO sign_in_attempts (name, failures, last_attempt_at, locked_until)"
        " VALUES (?,?,?,?) ON CONFLICT(name) DO UPDATE SET failures = excluded.failures,"
        " last_attempt_at = excluded.last_attempt_at, locked_until = excluded.locked_until",
        (name, failures, at, locked_until),
    )


def clear_sign_in_state(store: Store, name: str) -> None:
    """Forget failed attempts after a successful sign-in (or an admin's unlock)."""
    store.execute("DELETE FROM sign_in_attempts WHERE name = ?", (name,))


def prune_sign_in_states(store: Store, before: str) -> None:
    """Drop records whose last attempt is older than ``before`` and that lock nothing now."""
    store.execute(
        "DELETE FROM sign_in_attempts WHERE last_attempt_at < ?"
        " AND (locked_until IS NULL OR locked_until < ?)",
        (before, before),
    )
