"""Session tokens: issued at sign-in, kept hashed, restored by a new tab, slid at most once a
minute, expired (idle and absolute), revoked by sign-out, an admin's role change or deactivation
and a password change, and a forged or tampered token refused."""

from __future__ import annotations

import hashlib
from pathlib import Path
from datetime import UTC, datetime

import pytest

from rascore import auth
from rascore.services import admin, session, tokens
from rascore.services.session import Policy
from rascore.store import accounts
from tests.fixtures_labelling import build_project

POLICY = Policy(idle_s=600, max_s=3600)
T0 = 1_750_000_000.0  # a fixed moment (2025), as the page runs' clock would give


@pytest.fixture
def project(tmp_path):
    return build_project(tmp_path / "p", per_modality=1)


def signed_in(project, name: str = "demo-reader", now: float = T0, method: str = "password"):
    """(tab state, token) of a fresh sign-in."""
    state: dict = {}
    token = session.start(project, state, accounts.user(project.store, name), method, policy=POLICY, now=now)
    return state, token


def row(project, token: str) -> dict:
    return project.store.one("SELECT * FROM session_tokens WHERE token_hash = ?", (tokens.digest(token),))


def test_a_token_is_random_opaque_and_stored_only_as_its_hash(project):
    state, token = signed_in(project)
    other_state, other = signed_in(project)
    assert tokens.well_formed(token) and len(token) == 43 and token != other
    assert row(project, token)["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert state[session.STATE_KEY].token_hash == tokens.digest(token)
    # nowhere in the database (rows, audit, anything) is the token itself
    dump = "\n".join(project.store.conn.iterdump())
    assert token not in dump and other not in dump
    assert tokens.digest(token) in dump
    fresh = row(project, token)
    assert (fresh["method"], fresh["revoked_at"]) == ("password", None)
    assert fresh["created_at"] < fresh["expires_at"] < fresh["ends_at"]


def test_a_new_tab_restores_the_user_and_a_restore_is_audited(project):
    _, token = signed_in(project)
    tab: dict = {}
    user = session.restore(project, tab, token, policy=POLICY, now=T0 + 5)
    assert user["name"] == "demo-reader" and "password_hash" not in user
    assert session.current_user(project, tab, policy=POLICY, now=T0 + 6)["name"] == "demo-reader"
    last = project.store.audit_rows()[0]
    assert last["action"] == "session.restore" and last["user"] == "demo-reader"
    assert token not in last["detail_json"] and str(row(project, token)["id"]) in last["detail_json"]


def test_the_idle_expiry_slides_at_most_once_a_minute(project):
    state, token = signed_in(project)
    first = row(project, token)["expires_at"]
    writes = project.store.conn.total_changes
    for k in range(1, 30):  # 29 reruns within the first minute: reads only
        assert session.current_user(project, state, policy=POLICY, now=T0 + 2 * k) is not None
    assert project.store.conn.total_changes == writes and row(project, token)["expires_at"] == first
    assert session.current_user(project, state, policy=POLICY, now=T0 + 61) is not None
    slid = row(project, token)
    assert slid["expires_at"] > first and slid["last_seen_at"] > row(project, token)["created_at"]
    # activity keeps it alive past the first idle limit
    for k in range(1, 12):
        assert session.current_user(project, state, policy=POLICY, now=T0 + 61 + 300 * k) is not None


def test_idle_and_absolute_expiry(project):
    state, token = signed_in(project)
    # no activity for longer than the idle limit: this tab and any reload are signed out
    assert session.current_user(project, state, policy=POLICY, now=T0 + 601) is None
    assert session.was_expired(state)
    assert project.store.audit_rows()[0]["action"] == "session.expired"
    tab: dict = {}
    assert session.restore(project, tab, token, policy=POLICY, now=T0 + 602) is None
    assert session.was_expired(tab)
    # steady activity still ends at the absolute end (ends_at), never later
    state, token = signed_in(project)
    moment = T0
    while moment < T0 + 3600 - 300:
        moment += 300
        assert session.current_user(project, state, policy=POLICY, now=moment) is not None
    assert session.current_user(project, state, policy=POLICY, now=T0 + 3601) is None
    assert row(project, token)["expires_at"] <= row(project, token)["ends_at"]


def test_sign_out_in_one_tab_ends_the_other(project):
    state, token = signed_in(project)
    other: dict = {}
    assert session.restore(project, other, token, policy=POLICY, now=T0 + 1)
    session.end(project, state)  # sign-out
    assert row(project, token)["revoked_reason"] == "sign_out"
    assert session.current_user(project, other, policy=POLICY, now=T0 + 2) is None
    assert session.was_revoked(other) and not session.was_expired(other)
    assert project.store.audit_rows()[0]["action"] == "session.revoked"
    assert session.restore(project, {}, token, policy=POLICY, now=T0 + 3) is None
    # sign-out ends the user's sessions in other browsers too, and no other user's
    second, _ = signed_in(project, now=T0)
    third, _ = signed_in(project, now=T0)
    bystander, _ = signed_in(project, "reader-two", now=T0)
    session.end(project, second)
    assert session.current_user(project, third, policy=POLICY, now=T0 + 4) is None
    assert session.current_user(project, bystander, policy=POLICY, now=T0 + 4) is not None


@pytest.mark.parametrize("change", ["role", "deactivate", "password", "admin password"])
def test_account_changes_end_every_session_of_that_user(project, change):
    store = project.store
    actor = accounts.user(store, "demo-admin")
    browsers = [signed_in(project)[0] for _ in range(2)]
    bystander, _ = signed_in(project, "reader-two")
    if change == "role":
        admin.change_role(store, actor, "demo-reader", "expert")
    elif change == "deactivate":
        admin.set_active(store, actor, "demo-reader", False)
    elif change == "password":
        auth.set_password(store, "demo-reader", "a-new-password-1", rounds=4)
    else:
        admin.reset_password(store, actor, "demo-reader", "a-new-password-2")
    for state in browsers:
        assert session.current_user(project, state, policy=POLICY, now=T0 + 5) is None
    moment = datetime.fromtimestamp(T0 + 5, UTC)
    assert tokens.live_sessions(store, accounts.user(store, "demo-reader")["id"], moment) == 0
    assert tokens.live_sessions(store, accounts.user(store, "reader-two")["id"], moment) == 1
    assert session.current_user(project, bystander, policy=POLICY, now=T0 + 5)["name"] == "reader-two"


def test_forged_tampered_or_malformed_tokens_are_refused(project):
    _, token = signed_in(project)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (tampered, tokens.new_token(), token[:-1], token + "x", f"{token[:40]};x=", "", None, 7):
        tab: dict = {}
        assert session.restore(project, tab, bad, policy=POLICY, now=T0 + 1) is None
        assert not session.was_revoked(tab) and session.STATE_KEY not in tab
    assert session.restore(project, {}, token, policy=POLICY, now=T0 + 1) is not None


def test_single_sign_on_sessions_keep_their_method_and_old_rows_are_pruned(project):
    _, token = signed_in(project, method="oidc")
    tab: dict = {}
    session.restore(project, tab, token, policy=POLICY, now=T0 + 1)
    assert tab[session.STATE_KEY].method == "oidc"
    with pytest.raises(ValueError, match="unknown sign-in method"):
        session.start(project, {}, accounts.user(project.store, "demo-reader"), "cookie", policy=POLICY)
    # a token ended more than a day ago is gone at the next sign-in
    signed_in(project, now=T0 + 2 * 86400)
    assert row(project, token) is None


def test_the_cookie_script_writes_only_a_well_formed_token(tmp_path, monkeypatch):
    """The app's one script: it sets the cookie with its attributes, or clears it; a value that is
    not a token's shape is never written into the page."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import env_for

    root = tmp_path / "app"
    build_project(root, per_modality=1)
    for key, value in env_for(root).items():
        monkeypatch.setenv(key, value)
    project = session.shared_project()
    app = str(Path(__file__).resolve().parents[1] / "app.py")

    def scripts(pending=None, clear=None, name: str | None = "demo-reader") -> list[str]:
        at = AppTest.from_file(app, default_timeout=60)
        if name:
            session.begin(at.session_state, accounts.user(project.store, name))
        if pending is not None:
            at.session_state["rascore.web.cookie"] = pending
        if clear is not None:
            at.session_state["web.cookie_clear"] = clear
        at.run()
        return [h.proto.body for h in at.get("html") if "document.cookie" in h.proto.body]

    token = tokens.new_token()
    (written,) = scripts(pending=(token, 43200))
    assert f"rascore_session={token}; Path=/; Max-Age=43200; SameSite=Strict" in written
    assert "location.protocol === 'https:' ? '; Secure' : ''" in written
    assert scripts(pending=("x'; alert(1); '", 43200)) == []
    assert scripts() == []  # nothing to write: no script at all
    (cleared,) = scripts(clear=True, name=None)
    assert "rascore_session=; Path=/; Max-Age=0" in cleared and "includes" not in cleared
    (only_if,) = scripts(clear=token, name=None)  # only while the browser still holds that token
    assert f"includes('rascore_session={token}')" in only_if
    assert scripts(clear="</script><script>alert(1)", name=None) == []
