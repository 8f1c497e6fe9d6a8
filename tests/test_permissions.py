"""Roles are enforced inside the library functions that act, not by hiding buttons."""

from __future__ import annotations

from pathlib import Path

import pytest

from rascore import permissions
from rascore.services import adjudication, admin, labelling
from rascore.permissions import PermissionDenied, allowed, require
from rascore.store import accounts
from tests.fixtures_labelling import build_project

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return build_project(tmp_path_factory.mktemp("perm") / "p", per_modality=2)


def test_role_matrix():
    reader, expert, boss = (
        {"id": 1, "name": "x", "role": r, "active": 1} for r in ("reader", "expert", "admin")
    )
    assert allowed(reader, "grade") and not allowed(reader, "view_grades")
    for action in ("export", "adjudicate", "train", "manage_users", "import", "audit"):
        assert not allowed(reader, action)
    assert allowed(expert, "adjudicate") and allowed(expert, "train") and allowed(expert, "export")
    assert not allowed(expert, "manage_users") and not allowed(expert, "import")
    assert all(allowed(boss, action) for action in permissions.ACTIONS)
    assert not allowed(None, "grade")
    assert not allowed({**boss, "active": 0}, "grade")  # deactivated: nothing
    assert not allowed({**boss, "role": "superuser"}, "grade")
    with pytest.raises(ValueError):
        allowed(boss, "launch_rockets")
    with pytest.raises(PermissionDenied, match="x \\(reader\\) may not export labels"):
        require(reader, "export")


def test_reader_is_refused_by_every_guarded_function(project):
    store = project.store
    reader = accounts.user(store, "demo-reader")
    refused = [
        lambda: adjudication.disagreements(store, reader),
        lambda: adjudication.grades(store, reader, 1),
        lambda: adjudication.set_reference(store, reader, 1, 1, None),
        lambda: adjudication.pairwise_agreement(store, reader),
        lambda: adjudication.current_reference(store, reader, 1),
        lambda: admin.export_file(store, reader, "labels", "csv"),
        lambda: admin.add_account(store, reader, "new-one", "admin", None, "long-enough-pw"),
        lambda: admin.change_role(store, reader, "demo-reader", "admin"),
        lambda: admin.set_active(store, reader, "demo-expert", False),
        lambda: admin.users(store, reader),
        lambda: admin.audit_log(store, reader),
        lambda: admin.import_uploads(project, reader, [("a.png", b"x")], "SGS", "train"),
        lambda: labelling.set_preannotation(store, reader, True),
        lambda: labelling.set_max_readers(store, reader, 1),
    ]
    before = store.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    for call in refused:
        with pytest.raises(PermissionDenied):
            call()
    assert accounts.user(store, "demo-reader")["role"] == "reader"
    assert accounts.user(store, "new-one") is None
    assert store.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == before


def test_expert_adjudicates_and_exports_but_does_not_manage_users(project):
    store = project.store
    expert = accounts.user(store, "demo-expert")
    assert adjudication.disagreements(store, expert)
    assert admin.export_file(store, expert, "reference", "csv").rows > 0
    with pytest.raises(PermissionDenied):
        admin.add_account(store, expert, "someone", "reader", None, "long-enough-pw")
    with pytest.raises(PermissionDenied):
        admin.import_uploads(project, expert, [("a.png", b"x")], "SGS", "train")


def test_deactivated_account_loses_every_right(project):
    store = project.store
    boss = accounts.user(store, "demo-admin")
    admin.set_active(store, boss, "reader-two", False)
    gone = accounts.user(store, "reader-two")
    with pytest.raises(PermissionDenied):
        labelling.next_item(store, gone)
    admin.set_active(store, boss, "reader-two", True)
    assert labelling.next_item(store, accounts.user(store, "reader-two")) is not None


def test_pages_for_each_role_only_lists_existing_files(tmp_path):
    (tmp_path / "pages").mkdir()
    for name in ("home", "label", "adjudicate", "admin", "train"):
        (tmp_path / "pages" / f"{name}.py").write_text("")
    titles = {
        role: [p.title for p in permissions.pages_for({"role": role, "active": 1}, tmp_path)]
        for role in ("reader", "expert", "admin")
    }
    assert titles["reader"] == ["Home", "Label"]
    assert titles["expert"] == ["Home", "Label", "Adjudicate", "Train", "Admin"]
    assert titles["admin"] == ["Home", "Label", "Adjudicate", "Train", "Admin"]
    (tmp_path / "pages" / "dashboard.py").write_text("")
    assert "Dashboard" in [p.title for p in permissions.pages_for({"role": "admin"}, tmp_path)]
    assert "Dashboard" not in [p.title for p in permissions.pages_for({"role": "reader"}, tmp_path)]
