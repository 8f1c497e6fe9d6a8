"""Sign-in: rate limit per user name persisted in the store, idle expiry, sign-out, OIDC mapping."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rascore.services import session
from rascore.project import Project
from rascore.services.session import Policy, SignInError, SignInLocked
from rascore.store import accounts
from rascore.store.labelling import now_utc
from tests.fixtures_labelling import PASSWORDS, build_project

POLICY = Policy(max_failures=3, lock_s=120, idle_s=60)


@pytest.fixture
def project(tmp_path):
    return build_project(tmp_path / "p", per_modality=1)


def test_sign_in_ok_and_wrong_password(project):
    user = session.sign_in(project, "demo-reader", PASSWORDS["demo-reader"], policy=POLICY)
    assert user["name"] == "demo-reader"
    with pytest.raises(SignInError, match="Wrong user name or password \\(2 attempts left"):
        session.sign_in(project, "demo-reader", "not the password", policy=POLICY)
    with pytest.raises(SignInError, match="Enter your user name"):
        session.sign_in(project, "", "", policy=POLICY)
    actions = [r["action"] for r in project.store.audit_rows()]
    assert actions[:2] == ["sign_in.failed", "sign_in"]


def audit_actions(project) -> list[str]:
    return [r["action"] for r in project.store.audit_rows()]


def test_lock_after_failures_survives_a_restart_and_ends(project):
    start = now_utc()
    for k in range(POLICY.max_failures):
        with pytest.raises(SignInError):
            session.sign_in(project, "demo-expert", f"wrong-{k}", policy=POLICY, now=start)
    # a new process: a fresh Project on the same files still sees the lock
    restarted = Project(project.settings)
    with pytest.raises(SignInLocked, match="Try again in 2 minutes"):
        session.sign_in(
            restarted,
            "demo-expert",
            PASSWORDS["demo-expert"],
            policy=POLICY,
            now=start + timedelta(seconds=5),
        )
    assert audit_actions(restarted)[0] == "sign_in.locked"  # a refused attempt is audited
    # the same name in other letter case is the same name
    with pytest.raises(SignInLocked):
        session.sign_in(
            restarted,
            "DEMO-EXPERT",
            PASSWORDS["demo-expert"],
            policy=POLICY,
            now=start + timedelta(seconds=6),
        )
    # other names are not affected
    assert session.sign_in(restarted, "demo-reader", PASSWORDS["demo-reader"], policy=POLICY)
    # after the lock: the right password works and the count starts again
    later = start + timedelta(seconds=POLICY.lock_s + 1)
    assert (
        session.sign_in(restarted, "demo-expert", PASSWORDS["demo-expert"], policy=POLICY, now=later)["role"]
        == "expert"
    )
    assert (
        restarted.store.conn.execute(
            "SELECT count(*) FROM sign_in_attempts WHERE name = 'demo-expert'"
        ).fetchone()[0]
        == 0
    )


def test_unknown_names_are_limited_too(project):
    for _ in range(POLICY.max_failures):
        with pytest.raises(SignInError):
            session.sign_in(project, "nobody-here", "whatever-password", policy=POLICY)
    with pytest.raises(SignInLocked):
        session.sign_in(project, "nobody-here", "whatever-password", policy=POLICY)


def test_deactivated_account_cannot_sign_in(project):
    store = project.store
    store.conn.execute("UPDATE users SET active = 0 WHERE name = 'demo-reader'")
    with pytest.raises(SignInError):
        session.sign_in(project, "demo-reader", PASSWORDS["demo-reader"], policy=POLICY)


def test_session_expires_after_inactivity_and_sees_role_changes(project):
    state: dict = {}
    user = accounts.user(project.store, "demo-reader")
    session.begin(state, user, now=1000.0)
    state["label.claim"] = "something"
    assert session.current_user(project, state, policy=POLICY, now=1030.0)["name"] == "demo-reader"
    # activity moved last_seen to 1030: still in at 1080, gone at 1200
    assert session.current_user(project, state, policy=POLICY, now=1080.0) is not None
    project.store.conn.execute("UPDATE users SET role = 'expert' WHERE name = 'demo-reader'")
    assert session.current_user(project, state, policy=POLICY, now=1090.0)["role"] == "expert"
    assert "password_hash" not in session.current_user(project, state, policy=POLICY, now=1091.0)
    assert session.current_user(project, state, policy=POLICY, now=1200.0) is None
    assert session.was_expired(state) and "label.claim" not in state
    assert project.store.audit_rows()[0]["action"] == "session.expired"


def test_sign_out_ends_the_session_and_releases_leases(project):
    from rascore.services import labelling

    state: dict = {}
    user = accounts.user(project.store, "demo-reader")
    session.begin(state, user)
    assert labelling.next_item(project.store, user) is not None
    session.end(project, state)
    assert session.current_user(project, state) is None
    assert project.store.conn.execute("SELECT count(*) FROM reservations").fetchone()[0] == 0
    assert project.store.audit_rows()[0]["action"] == "sign_out"


def test_deactivation_ends_a_running_session(project):
    state: dict = {}
    session.begin(state, accounts.user(project.store, "demo-reader"))
    project.store.conn.execute("UPDATE users SET active = 0 WHERE name = 'demo-reader'")
    assert session.current_user(project, state) is None


def test_oidc_identity_maps_to_a_local_account(project):
    from rascore import auth

    auth.add_user(project.store, "sso-reader@example.org", "reader")
    user = session.oidc_user(project, {"email": "sso-reader@example.org", "name": "SSO reader"})
    assert user["name"] == "sso-reader@example.org"
    with pytest.raises(SignInError, match="No RAScore account for unknown@example.org"):
        session.oidc_user(project, {"email": "unknown@example.org"})
