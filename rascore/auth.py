"""Accounts: user names, roles, bcrypt password hashes, sign-in checks."""

from __future__ import annotations

import re
from functools import cache

import bcrypt

from rascore.permissions import ROLES  # defined once, beside what each role may do
from rascore.store import Store, StoreError, accounts, utcnow
from rascore.store import tokens as session_tokens

LEVELS: tuple[str, ...] = ("junior", "intermediate", "senior", "expert")
MIN_PASSWORD_LENGTH = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class AuthError(ValueError):
    """A refused account action, with a reason a user can act on."""


def check_name(name: str) -> str:
    """User names: 1-64 of letters, digits, '.', '_', '@', '-', starting with a letter or digit."""
    if not _NAME.match(name or ""):
        raise AuthError(
            "a user name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    """Refuse short passwords; bcrypt reads at most 72 bytes, so longer ones are refused too."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode()) > 72:
        raise AuthError("a password may be at most 72 bytes (bcrypt's limit)")
    return password


def hash_password(password: str, rounds: int = 12) -> str:
    """bcrypt hash of a checked password."""
    check_password(password)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when the password matches; accounts without a hash cannot sign in."""
    if not password_hash:
        return False
    try:
        return bcrypt.checkpw(password.encode(), password_hash.encode())
    except ValueError:
        return False


def add_user(
    store: Store,
    name: str,
    role: str,
    level: str | None = None,
    password: str | None = None,
    *,
    actor_id: int | None = None,
    rounds: int = 12,
) -> int:
    """Create an account (audited); without a password it cannot sign in (a simulated reader)."""
    check_name(name)
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if level is not None and level not in LEVELS:
        raise AuthError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    password_hash = hash_password(password, rounds) if password is not None else None
    try:
        with store.transaction():
            user_id = accounts.add_user(store, name, role, level, password_hash)
            store.audit("user.add", user_id=actor_id, target=name, detail={"role": role, "level": level})
    except StoreError as exc:
        raise AuthError(str(exc)) from None
    return user_id


def set_password(
    store: Store, name: str, password: str, *, actor_id: int | None = None, rounds: int = 12
) -> None:
    """Replace a user's password (audited); every web session of the user ends."""
    user = accounts.user(store, name)
    if user is None:
        raise AuthError(f"no user named {name!r}")
    password_hash = hash_password(password, rounds)
    with store.transaction():
        accounts.set_password_hash(store, user["id"], password_hash)
        session_tokens.revoke_user(store, user["id"], utcnow(), "password")
        store.audit("user.password", user_id=actor_id, target=user["name"])


def authenticate(store: Store, name: str, password: str) -> dict | None:
    """The user row when name and password match an active account, else None."""
    user = accounts.user(store, name)
    if user is None or not user["active"]:
        bcrypt.checkpw(b"x", _dummy_hash())  # same cost whether or not the name exists
        return None
    return user if verify_password(password, user["password_hash"]) else None


@cache
def _dummy_hash() -> bytes:
    return bcrypt.hashpw(b"not a password", bcrypt.gensalt(12))
