"""Web-session tokens: what lets a sign-in survive a reload, a second tab or a lost connection.

Signing in issues a random, opaque token (``secrets.token_urlsafe(32)``: 256 bits). The browser
keeps it in a cookie (set by the app, ``views/signin.py``); the store keeps only its sha256, with
the user, the sign-in method, when it was made, when it was last used, and two expiries: an idle
one that slides with activity (``Policy.idle_s``, 30 minutes) and an absolute one it never slides
past (``Policy.max_s``, 12 hours). A plain sha256 is enough for a value of 256 random bits: there
is nothing to guess a password-style hash would slow down, and the lookup must be one indexed
read on every page run.

Every token of the user is revoked on sign-out (every tab of every browser ends), on an admin's
role change or deactivation and on a password change. A page run checks
its token in the same read that re-reads the user (``rascore.services.session.current_user``);
the idle expiry is written at most once a minute (``SLIDE_EVERY_S``), never on every rerun.

Tokens never appear in URLs, logs, audit rows or exports: the audit names a session by its row id.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from rascore.store import Store, tokens as sql
from rascore.store.labelling import iso, now_utc

COOKIE = "rascore_session"
SLIDE_EVERY_S = 60.0
KEEP_ENDED_S = 86400.0  # ended rows stay a day (a revoked token is told apart from a forged one)
METHODS = ("password", "oidc")
_FORMAT = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32): 32 bytes in unpadded base64url


def new_token() -> str:
    """A fresh random token (URL-safe text, 43 characters)."""
    return secrets.token_urlsafe(32)


def well_formed(token: object) -> bool:
    """Whether ``token`` has the shape of an issued token (anything else is refused unread)."""
    return isinstance(token, str) and _FORMAT.fullmatch(token) is not None


def digest(token: str) -> str:
    """The token's sha256 in hex: the only form the store keeps."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def issue(
    store: Store,
    user: Mapping,
    method: str,
    *,
    idle_s: float,
    max_s: float,
    now: datetime | None = None,
) -> tuple[str, int]:
    """A new token for a signed-in user: (the token for the cookie, its row id).

    Runs inside the caller's transaction when there is one; prunes rows ended over a day ago.
    """
    if method not in METHODS:
        raise ValueError(f"unknown sign-in method {method!r}; expected one of {', '.join(METHODS)}")
    moment = now or now_utc()
    token = new_token()
    ends = moment + timedelta(seconds=max_s)
    expires = min(moment + timedelta(seconds=idle_s), ends)
    with store.transaction():
        sql.prune(store, iso(moment - timedelta(seconds=KEEP_ENDED_S)))
        token_id = sql.add(
            store, digest(token), int(user["id"]), method, iso(moment), iso(expires), iso(ends)
        )
    return token, token_id


@dataclass(frozen=True)
class Check:
    """What a token is worth now: the user (None when refused) and why it was refused."""

    user: dict | None
    reason: str | None = None  # unknown | revoked | expired | deactivated
    token_id: int | None = None
    method: str | None = None


def check(store: Store, token_hash: str, now: datetime | None = None) -> Check:
    """Look a token up by its hash (one read, with its user) and say whether it holds now."""
    row = sql.session_user(store, token_hash)
    if row is None:
        return Check(None, "unknown")
    token_id, method = int(row["token_id"]), row["token_method"]
    if row["token_revoked_at"] is not None:
        return Check(None, "revoked", token_id, method)
    if row["token_expires_at"] <= iso(now or now_utc()):
        return Check(None, "expired", token_id, method)
    if not row["active"]:
        return Check(None, "deactivated", token_id, method)
    user = {k: v for k, v in row.items() if not k.startswith("token_") and k != "password_hash"}
    return Check(user, None, token_id, method)


def slide(store: Store, token_id: int, idle_s: float, now: datetime | None = None) -> None:
    """Activity on a session: its idle expiry moves to ``now + idle_s`` (within its absolute end)."""
    moment = now or now_utc()
    with store.transaction():
        sql.slide(store, token_id, iso(moment), iso(moment + timedelta(seconds=idle_s)))


def revoke(store: Store, token_hash: str, reason: str, now: datetime | None = None) -> int:
    """Revoke one token (inside the caller's transaction when there is one)."""
    return sql.revoke(store, token_hash, iso(now or now_utc()), reason)


def revoke_user(store: Store, user_id: int, reason: str, now: datetime | None = None) -> int:
    """Revoke every live token of a user: their sessions end on every browser at the next run."""
    return sql.revoke_user(store, int(user_id), iso(now or now_utc()), reason)


def live_sessions(store: Store, user_id: int, now: datetime | None = None) -> int:
    """How many of a user's tokens would restore a session now."""
    return sql.live_count(store, int(user_id), iso(now or now_utc()))
