"""SQL of web-session tokens: the hashed token of each browser sign-in, its sliding and absolute
expiry, and its revocation. Functions take a ``Store``; times are the store's ISO text (UTC).

The rules (token format, hashing, how long a session lasts, when one is revoked) live in
``rascore.services.tokens``. Only the sha256 of a token is ever stored.
"""

from __future__ import annotations

from rascore.store.store import Store


def add(
    store: Store,
    token_hash: str,
    user_id: int,
    method: str,
    now: str,
    expires_at: str,
    ends_at: str,
) -> int:
    """Store a new session token (by its hash) and return its row id."""
    cur = store.execute(
        "INSERT INTO session_tokens (token_hash, user_id, method, created_at, last_seen_at,"
        " expires_at, ends_at) VALUES (?,?,?,?,?,?,?)",
        (token_hash, user_id, method, now, now, expires_at, ends_at),
    )
    return int(cur.lastrowid)


def session_user(store: Store, token_hash: str) -> dict | None:
    """The token's row joined with its user (one read: the check of every page run), or None.

    The user's columns keep their names; the token's come as ``token_id``, ``token_method``,
    ``token_last_seen_at``, ``token_expires_at``, ``token_ends_at``, ``token_revoked_at``.
    """
    return store.one(
        "SELECT u.*, t.id AS token_id, t.method AS token_method, t.last_seen_at AS token_last_seen_at,"
        " t.expires_at AS token_expires_at, t.ends_at AS token_ends_at,"
        " t.revoked_at AS token_revoked_at FROM session_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = ?",
        (token_hash,),
    )


def slide(store: Store, token_id: int, now: str, expires_at: str) -> None:
    """Record activity: a new idle expiry (the caller keeps it within ``ends_at``)."""
    store.execute(
        "UPDATE session_tokens SET last_seen_at = ?, expires_at = min(?, ends_at)"
        " WHERE id = ? AND revoked_at IS NULL",
        (now, expires_at, token_id),
    )


def revoke(store: Store, token_hash: str, now: str, reason: str) -> int:
    """Revoke one token (no change when it already is); how many rows changed."""
    cur = store.execute(
        "UPDATE session_tokens SET revoked_at = ?, revoked_reason = ?"
        " WHERE token_hash = ? AND revoked_at IS NULL",
        (now, reason, token_hash),
    )
    return int(cur.rowcount)


def revoke_user(store: Store, user_id: int, now: str, reason: str) -> int:
    """Revoke every token of a user not revoked yet; how many."""
    cur = store.execute(
        "UPDATE session_tokens SET revoked_at = ?, revoked_reason = ?"
        " WHERE user_id = ? AND revoked_at IS NULL",
        (now, reason, user_id),
    )
    return int(cur.rowcount)


def prune(store: Store, before: str) -> int:
    """Delete tokens that expired or were revoked before ``before``; how many."""
    cur = store.execute("DELETE FROM session_tokens WHERE expires_at < ? OR revoked_at < ?", (before, before))
    return int(cur.rowcount)


def live_count(store: Store, user_id: int, now: str) -> int:
    """How many of a user's tokens would still restore a session now."""
    return int(
        store.value(
            "SELECT count(*) FROM session_tokens WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?",
            (user_id, now),
        )
    )
