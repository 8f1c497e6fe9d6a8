"""Web sessions, library side: sign-in with a persisted per-name rate limit, idle expiry, sign-out,
and the token that lets a session survive a reload.

The app keeps one small record in its per-browser-tab state (any mutable mapping, so this module
never imports streamlit). Each page run calls ``current_user``, which re-reads the account so a
role change or deactivation takes effect at once, and ends the session after ``idle`` seconds
without activity. Failed sign-ins are counted per typed user name in the store, whether or not
such an account exists, so a restart does not reset a lock and names cannot be probed.

A sign-in through the app (``start``) also issues a session token (``rascore.services.tokens``)
that the browser keeps in a cookie; a new tab or a reload calls ``restore`` with it. A session
with a token is checked against its row on every run, in the same read as the user: signed out
in another tab, revoked by an admin or expired (idle, sliding; or past its absolute end) and
this tab is signed out too. Its idle expiry is the token's, shared by the browser's tabs.

Settings (environment): RASCORE_SESSION_IDLE_MINUTES (default 30), RASCORE_SESSION_MAX_HOURS
(default 12: a token's absolute lifetime, and its cookie's), RASCORE_SIGNIN_MAX_FAILURES
(default 5), RASCORE_SIGNIN_LOCK_MINUTES (default 5).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rascore import auth
from rascore.config import Settings, settings as read_settings
from rascore.project import Project
from rascore.services import tokens
from rascore.store import Store, StoreBusy, accounts
from rascore.store import labelling as sql
from rascore.store.labelling import iso, now_utc

STATE_KEY = "rascore.services.session"
EXPIRED_KEY = "rascore.session_expired"
REVOKED_KEY = "rascore.session_revoked"
BUSY_SIGN_IN = (
    "The database is busy (locked by another write); you were not signed in. Try again in a moment."
)


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Policy:
    """Sign-in and session limits."""

    max_failures: int = 5
    lock_s: float = 300.0
    idle_s: float = 1800.0
    max_s: float = 43200.0
    forget_after_s: float = 86400.0

    @classmethod
    def from_env(cls) -> Policy:
        """Limits from the environment, with the documented defaults."""
        return cls(
            max_failures=int(_env_float("RASCORE_SIGNIN_MAX_FAILURES", 5)),
            lock_s=60 * _env_float("RASCORE_SIGNIN_LOCK_MINUTES", 5),
            idle_s=60 * _env_float("RASCORE_SESSION_IDLE_MINUTES", 30),
            max_s=3600 * _env_float("RASCORE_SESSION_MAX_HOURS", 12),
        )


class SignInError(ValueError):
    """A refused sign-in, with a message fit for the page."""


class SignInLocked(SignInError):
    """Too many failed attempts for this user name: wait until the lock ends."""


# ------------------------------------------------------------------ the shared project
_projects: dict[tuple[str, str, str], Project] = {}
_projects_lock = threading.Lock()


def shared_project(settings: Settings | None = None) -> Project:
    """One Project per project folder and server process (the store opens a connection per thread)."""
    settings = settings or read_settings()
    key = (
        str(settings.db_path.resolve()),
        str(settings.data_dir.resolve()),
        str(settings.models_dir.resolve()),
    )
    with _projects_lock:
        project = _projects.get(key)
        if project is None:
            project = _projects[key] = Project(settings)
            project.store  # migrate once, here, not on a page run  # noqa: B018
        return project


# ------------------------------------------------------------------ sign-in
def _normal(name: str) -> str:
    return (name or "").strip()


def sign_in(
    project: Project, name: str, password: str, *, policy: Policy | None = None, now: datetime | None = None
) -> dict:
    """Check a user name and password; the user row on success, SignInError otherwise.

    At most ``max_failures`` wrong attempts per name, then the name is locked for ``lock_s``;
    the attempt is counted before the (slow) password check, so parallel guesses cannot slip
    past the limit. Every outcome is audited.
    """
    policy = policy or Policy.from_env()
    store = project.store
    name = _normal(name)
    if not name or not password:
        raise SignInError("Enter your user name and password.")
    if len(name) > 64 or len(password.encode()) > 1024:
        raise SignInError("Wrong user name or password.")
    moment = now or now_utc()
    try:
        failures, locked_until = store.write(
            lambda _conn: _count_attempt(store, name, moment, policy), busy=BUSY_SIGN_IN
        )
        if locked_until is not None:
            raise SignInLocked(_locked_message(locked_until, moment))
        user = auth.authenticate(store, name, password)
        with store.transaction(BUSY_SIGN_IN):
            if user is not None:
                accounts.clear_sign_in_state(store, name)
                store.audit("sign_in", user_id=user["id"], target=user["name"], detail={"method": "password"})
                return user
            store.audit("sign_in.failed", target=name, detail={"failures": failures})
    except StoreBusy as exc:
        raise SignInError(str(exc)) from None
    if failures >= policy.max_failures:
        raise SignInLocked(
            "Wrong user name or password. Too many failed attempts: this user name "
            f"is locked for {_minutes(policy.lock_s)}."
        )
    left = policy.max_failures - failures
    raise SignInError(
        f"Wrong user name or password ({left} attempt{'s' if left != 1 else ''} left before a lock)."
    )


def _count_attempt(store: Store, name: str, moment: datetime, policy: Policy) -> tuple[int, str | None]:
    """Count one more attempt on a name: (failures so far, None), or (0, lock end) while the name
    is locked, which is audited and counts nothing."""
    at = iso(moment)
    accounts.prune_sign_in_states(store, iso(moment - timedelta(seconds=policy.forget_after_s)))
    state = accounts.sign_in_state(store, name)
    failures = state["failures"] if state else 0
    if state and state["locked_until"] and state["locked_until"] > at:
        store.audit("sign_in.locked", target=name)
        return 0, state["locked_until"]
    if state and state["locked_until"] and state["locked_until"] <= at:
        failures = 0  # the lock has run out: a fresh allowance
    failures += 1
    locked_until = iso(moment + timedelta(seconds=policy.lock_s)) if failures >= policy.max_failures else None
    accounts.set_sign_in_state(store, name, failures, at, locked_until)
    return failures, None


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _locked_message(locked_until: str, now: datetime) -> str:
    until = datetime.fromisoformat(locked_until)
    return (
        "Too many failed sign-ins for this user name. Try again in "
        f"{_minutes((until - now).total_seconds())}."
    )


def unlock(project: Project, actor: Mapping, name: str) -> None:
    """Clear a name's failed attempts (admin only; audited)."""
    from rascore.permissions import require

    require(actor, "manage_users")
    with project.store.transaction():
        accounts.clear_sign_in_state(project.store, _normal(name))
        project.store.audit("sign_in.unlock", user_id=actor["id"], target=_normal(name))


def oidc_user(project: Project, claims: Mapping[str, Any]) -> dict:
    """The local account of an identity-provider sign-in (matched by e-mail, then user name).

    Accounts are created by an admin (role and level are local decisions); an unknown or
    deactivated identity is refused with a message naming what to ask for.
    """
    store = project.store
    candidates = [str(claims[k]) for k in ("email", "preferred_username", "name") if claims.get(k)]
    for candidate in candidates:
        user = accounts.user(store, candidate)
        if user is not None:
            if not user["active"]:
                raise SignInError(f"The account {user['name']} is deactivated.")
            with store.transaction():
                store.audit("sign_in", user_id=user["id"], target=user["name"], detail={"method": "oidc"})
            return user
    shown = candidates[0] if candidates else "this identity"
    raise SignInError(f"No RAScore account for {shown}: ask an admin to add one with that name.")


# ------------------------------------------------------------------ the session record
@dataclass
class SessionRecord:
    """Who is signed in on this browser tab and when they were last active.

    ``token_hash``: the sha256 of the browser's session token (None: a session of this tab only);
    ``slid_at``: when this tab last wrote the token's idle expiry."""

    user_id: int
    name: str
    method: str
    started: float
    last_seen: float
    data: dict = field(default_factory=dict)
    token_hash: str | None = None
    slid_at: float = 0.0


def begin(
    state: MutableMapping,
    user: Mapping,
    method: str = "password",
    now: float | None = None,
    token_hash: str | None = None,
) -> SessionRecord:
    """Start a session for a signed-in user (held by this tab alone unless ``token_hash`` is given)."""
    moment = time.time() if now is None else now
    record = SessionRecord(
        int(user["id"]), str(user["name"]), method, moment, moment, token_hash=token_hash, slid_at=moment
    )
    state[STATE_KEY] = record
    for key in (EXPIRED_KEY, REVOKED_KEY):
        if key in state:
            del state[key]
    return record


def _at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def start(
    project: Project,
    state: MutableMapping,
    user: Mapping,
    method: str = "password",
    *,
    policy: Policy | None = None,
    now: float | None = None,
) -> str:
    """Start a session that survives a reload: issue a token and return it (for the cookie only)."""
    policy = policy or Policy.from_env()
    moment = time.time() if now is None else now
    token, _ = tokens.issue(
        project.store, user, method, idle_s=policy.idle_s, max_s=policy.max_s, now=_at(moment)
    )
    begin(state, user, method, moment, token_hash=tokens.digest(token))
    return token


def restore(
    project: Project,
    state: MutableMapping,
    token: object,
    *,
    policy: Policy | None = None,
    now: float | None = None,
) -> dict | None:
    """Sign this tab in from the browser's token (a reload, a new tab), or None when it does not
    hold: malformed or unknown (forged), revoked, expired, or its account deactivated. A restore
    is audited (naming the session by its row id, never the token) and counts as activity."""
    if not tokens.well_formed(token):
        return None
    policy = policy or Policy.from_env()
    moment = time.time() if now is None else now
    store = project.store
    token_hash = tokens.digest(str(token))
    found = tokens.check(store, token_hash, _at(moment))
    if found.user is None:
        if found.reason == "expired":
            state[EXPIRED_KEY] = True
        elif found.reason in ("revoked", "deactivated"):
            state[REVOKED_KEY] = True
        return None
    user = found.user
    try:
        with store.transaction():
            tokens.slide(store, found.token_id, policy.idle_s, _at(moment))
            store.audit(
                "session.restore",
                user_id=user["id"],
                target=user["name"],
                detail={"session": found.token_id, "method": found.method},
            )
    except StoreBusy:
        pass  # a busy database must not sign anyone out; the next run slides the expiry
    begin(state, user, found.method or "password", moment, token_hash=token_hash)
    return user


def current_user(
    project: Project,
    state: MutableMapping,
    *,
    policy: Policy | None = None,
    now: float | None = None,
    touch: bool = True,
) -> dict | None:
    """The signed-in, active user of this tab, or None (idle sessions end here).

    A session with a token is as good as its token: one read checks the token and the user
    together; the token's idle expiry is written at most once a minute (``touch``)."""
    record = state.get(STATE_KEY)
    if not isinstance(record, SessionRecord):
        return None
    policy = policy or Policy.from_env()
    moment = time.time() if now is None else now
    if record.token_hash is not None:
        return _token_user(project, state, record, policy, moment, touch)
    if moment - record.last_seen > policy.idle_s:
        end(project, state, reason="expired")
        state[EXPIRED_KEY] = True
        return None
    user = accounts.user_by_id(project.store, record.user_id)
    if user is None or not user["active"]:
        end(project, state, reason="deactivated")
        return None
    if touch:
        record.last_seen = moment
    user.pop("password_hash", None)
    return user


def _token_user(
    project: Project, state: MutableMapping, record: SessionRecord, policy: Policy, moment: float, touch: bool
) -> dict | None:
    """``current_user`` for a session held by a token."""
    store = project.store
    found = tokens.check(store, record.token_hash, _at(moment))
    if found.user is None:
        reason = found.reason if found.reason in ("expired", "deactivated") else "revoked"
        end(project, state, reason=reason)
        state[EXPIRED_KEY if reason == "expired" else REVOKED_KEY] = True
        return None
    if touch:
        record.last_seen = moment
        if moment - record.slid_at >= tokens.SLIDE_EVERY_S:
            try:
                tokens.slide(store, found.token_id, policy.idle_s, _at(moment))
                record.slid_at = moment
            except StoreBusy:
                pass  # the next run tries again; nobody is signed out by a busy database
    return found.user


def end(project: Project, state: MutableMapping, reason: str = "sign_out") -> None:
    """End this tab's session (audited) and drop everything the pages kept for it.

    Signing out revokes every token of the user, so every tab of every browser they are signed
    in with ends at its next run (a reader who forgot a session elsewhere ends it too)."""
    record = state.get(STATE_KEY)
    if isinstance(record, SessionRecord):
        with project.store.transaction():
            if reason == "sign_out":
                tokens.revoke_user(project.store, record.user_id, reason)
            elif record.token_hash is not None and reason == "deactivated":
                tokens.revoke(project.store, record.token_hash, reason)
            sql.release(project.store, record.user_id)
            project.store.audit(
                f"session.{reason}" if reason != "sign_out" else "sign_out",
                user_id=record.user_id,
                target=record.name,
            )
    prefixes = ("rascore.", "label.", "adj.", "admin.")
    for key in [k for k in list(state.keys()) if str(k).startswith(prefixes)]:
        del state[key]


def was_expired(state: Mapping) -> bool:
    """Whether this tab's last session ended by inactivity (to say so on the sign-in form)."""
    return bool(state.get(EXPIRED_KEY))


def was_revoked(state: Mapping) -> bool:
    """Whether this tab's session was ended elsewhere: sign-out in another tab, or an admin."""
    return bool(state.get(REVOKED_KEY))
