"""Who may do what, checked in the library functions themselves (not the pages), and the audit
row each action writes: who and when, in a log that refuses UPDATE and DELETE."""

from __future__ import annotations

import json
import sqlite3

import pytest

from rascore.services import adjudication, admin, labelling, training
from rascore.permissions import ACTIONS, PermissionDenied
from rascore.store import accounts
from rascore.store import registry
from tests.fixtures_media import grey_png
from tests.fixtures_labelling import build_project

ROLES = ("reader", "expert", "admin")
# library action -> the permission it needs
EXPECTED = {
    "grade": {"reader", "expert", "admin"},
    "see_others_grades": {"expert", "admin"},
    "adjudicate": {"expert", "admin"},
    "export": {"expert", "admin"},
    "train_submit": {"expert", "admin"},
    "cancel_job": {"expert", "admin"},
    "promote": {"expert", "admin"},
    "manage_users": {"admin"},
    "import": {"admin"},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = build_project(tmp_path_factory.mktemp("roles") / "project", per_modality=6)
    store = project.store
    for version in (1, 2):
        registry.register_version(
            store,
            modality="SGS",
            version=version,
            path=f"SGS/v{version}/model.pt",
            card_path=None,
            preset="tiny",
            architecture="x",
            metrics={},
            job_id=None,
            activate="always" if version == 1 else "never",
            user_id=None,
        )
    return project


def _users(project) -> dict[str, dict]:
    store = project.store
    return {
        "reader": accounts.user(store, "demo-reader"),
        "expert": accounts.user(store, "demo-expert"),
        "admin": accounts.user(store, "demo-admin"),
    }


def _do(project, action: str, user: dict, k: int):
    """Run one library action as ``user``; returns what it returned."""
    store = project.store
    sgs = [i["id"] for i in store.items(modality="SGS")]
    if action == "grade":
        claim = labelling.next_item(store, user, modality="SGS")
        return labelling.submit(store, user, claim.item_id, 1)
    if action == "see_others_grades":
        return adjudication.grades(store, user, sgs[0])
    if action == "adjudicate":
        return adjudication.set_reference(store, user, sgs[0], 2, None, note="role test")
    if action == "export":
        return admin.export_file(store, user, "labels", "csv")
    if action == "train_submit":
        for job in store.rows("SELECT id FROM jobs WHERE status IN ('queued','running')"):
            store.conn.execute("UPDATE jobs SET status = 'cancelled' WHERE id = ?", (job["id"],))
        return training.submit(store, user, "SGS", preset="fast", epochs=1)
    if action == "cancel_job":
        from rascore.store import jobs

        job_id = jobs.submit(store, "train", "DGS", {}, created_by=None)
        return training.cancel(store, user, job_id)
    if action == "promote":
        active = registry.active_version(store, "SGS")["version"]
        return training.promote(store, user, "SGS", 2 if active == 1 else 1)
    if action == "manage_users":
        return admin.add_account(store, user, f"made-by-{(user or {}).get('role')}-{k}", "reader", None, None)
    if action == "import":
        return admin.import_uploads(
            project, user, [(f"s{k}.png", grey_png(seed=500 + k))], modality="SGS", cohort="train"
        )
    raise AssertionError(action)


def test_the_matrix_matches_permissions():
    need = {
        "grade": "grade",
        "see_others_grades": "view_grades",
        "adjudicate": "adjudicate",
        "export": "export",
        "train_submit": "train",
        "cancel_job": "train",
        "promote": "train",
        "manage_users": "manage_users",
        "import": "import",
    }
    for action, permission in need.items():
        assert set(ACTIONS[permission]) == EXPECTED[action], action


@pytest.mark.parametrize("action", list(EXPECTED))
def test_each_role_may_or_may_not(project, action):
    users = _users(project)
    for k, role in enumerate(ROLES):
        if role in EXPECTED[action]:
            assert _do(project, action, users[role], k) is not None
        else:
            with pytest.raises(PermissionDenied):
                _do(project, action, users[role], k)
    inactive = dict(users["admin"], active=0)
    with pytest.raises(PermissionDenied):
        _do(project, action, inactive, 99)
    with pytest.raises(PermissionDenied):
        _do(project, action, None, 98)


def test_a_refused_action_writes_nothing(project):
    store = project.store
    reader = _users(project)["reader"]
    before = [
        store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("reference_labels", "jobs", "users", "items", "audit_log")
    ]
    for action in ("adjudicate", "train_submit", "manage_users", "import", "export", "promote"):
        with pytest.raises(PermissionDenied):
            _do(project, action, reader, 7)
    after = [
        store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("reference_labels", "jobs", "users", "items", "audit_log")
    ]
    assert after == before


AUDITED = {
    "grade": ("annotation.add", "annotation.edit"),
    "adjudicate": ("reference.adjudicate",),
    "import": ("item.import", "import.upload"),
    "export": ("export",),
    "train_submit": ("job.submit",),
    "cancel_job": ("job.cancel",),
    "promote": ("model.promote",),
    "manage_users": ("user.add",),
}


@pytest.mark.parametrize("action", list(AUDITED))
def test_each_action_writes_an_audit_row_with_who_and_when(project, action):
    store = project.store
    actor = _users(project)["admin"]
    last = store.conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]
    _do(project, action, actor, 200 + len(action))
    rows = store.rows("SELECT * FROM audit_log WHERE id > ? ORDER BY id", (last,))
    mine = [r for r in rows if r["action"] in AUDITED[action]]
    assert mine, (action, [r["action"] for r in rows])
    for row in mine:
        assert row["user_id"] == actor["id"]
        assert row["at"] and row["at"][:4].isdigit() and "T" in row["at"]
        json.loads(row["detail_json"])


def test_role_change_and_deactivation_are_audited(project):
    store = project.store
    actor = _users(project)["admin"]
    admin.add_account(store, actor, "role-change", "reader", None, None)
    admin.change_role(store, actor, "role-change", "expert")
    admin.set_active(store, actor, "role-change", False)
    rows = store.rows(
        "SELECT action, user_id, target, detail_json FROM audit_log WHERE target = 'role-change' ORDER BY id"
    )
    assert [r["action"] for r in rows] == ["user.add", "user.role", "user.deactivate"]
    assert all(r["user_id"] == actor["id"] for r in rows)
    assert json.loads(rows[1]["detail_json"]) == {"from": "reader", "to": "expert"}


def test_the_audit_log_refuses_update_and_delete(project):
    conn = project.store.conn
    count = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    assert count > 0
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit_log SET user_id = NULL")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit_log")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE annotations SET sh = 0")
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == count
