"""AppTest of the sign-in gate, navigation per role, labelling, adjudication and admin pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rascore.services import session
from rascore.project import Project
from rascore.store import accounts
from tests.apptest import assert_page_ok, texts
from tests.conftest import env_for
from tests.fixtures_labelling import PASSWORDS, build_project

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    root = tmp_path / "p"
    build_project(root, per_modality=2)
    for key, value in env_for(root).items():
        monkeypatch.setenv(key, value)
    return session.shared_project()


def app_as(project: Project, name: str | None) -> AppTest:
    """The app, run once, with ``name`` signed in (or no one)."""
    at = AppTest.from_file(APP, default_timeout=60)
    if name is not None:
        session.begin(at.session_state, accounts.user(project.store, name))
    return at.run()


def page_as(project: Project, name: str, page: str) -> AppTest:
    """One page opened through the app's navigation."""
    at = app_as(project, name)
    return at.switch_page(str(ROOT / page)).run()


# ------------------------------------------------------------------ sign-in
def test_sign_in_gate_then_home_and_sign_out(project):
    at = app_as(project, None)
    assert_page_ok(at)
    assert at.text_input(key="sign_in.password").proto.type == 1  # PASSWORD: masked
    at.text_input(key="sign_in.name").input("demo-reader")
    at.text_input(key="sign_in.password").input("wrong password!")
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert "Wrong user name or password" in texts(at)
    at.text_input(key="sign_in.password").input(PASSWORDS["demo-reader"])
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert_page_ok(at)
    assert "Your grading" in texts(at) and "Signed in as demo-reader (reader)" in texts(at)
    at.button(key="sign_out").click().run()
    assert at.text_input(key="sign_in.name") is not None
    assert [r["action"] for r in project.store.audit_rows()[:3]] == ["sign_out", "sign_in", "sign_in.failed"]


def test_sign_in_lock_shown(project, monkeypatch):
    monkeypatch.setenv("RASCORE_SIGNIN_MAX_FAILURES", "2")
    at = app_as(project, None)
    for _ in range(3):
        at.text_input(key="sign_in.name").input("demo-admin")
        at.text_input(key="sign_in.password").input("not-the-password")
        next(b for b in at.button if b.label == "Sign in").click().run()
    assert "Too many failed sign-ins" in texts(at)


def test_navigation_per_role_and_refusals(project):
    reader = app_as(project, "demo-reader")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        reader.switch_page(str(ROOT / "pages/admin.py"))
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        reader.switch_page(str(ROOT / "pages/adjudicate.py"))
    # opening the page files directly as a reader: refused by the page's own check
    for page in ("pages/admin.py", "pages/adjudicate.py"):
        at = AppTest.from_file(str(ROOT / page), default_timeout=60)
        session.begin(at.session_state, accounts.user(project.store, "demo-reader"))
        at.run()
        assert_page_ok(at, expected_errors=["Not allowed: demo-reader (reader) may not"])
        assert "Not allowed: demo-reader (reader) may not" in at.error[0].value
        assert not at.tabs
    expert = page_as(project, "demo-expert", "pages/admin.py")
    assert [t.label for t in expert.tabs] == ["Export"]  # an expert exports, nothing else


# ------------------------------------------------------------------ label
def test_grade_from_the_label_page_is_stored_with_seconds(project):
    at = page_as(project, "demo-reader", "pages/label.py")
    assert_page_ok(at)
    assert "Item #1 · SGS" in at.markdown[0].value
    assert "0-3" in texts(at) and "No synovial hypertrophy" in texts(at)
    at.button(key="label.sh2").click().run()
    assert at.button(key="label.sh2").proto.type == "primary"
    assert "SH grade (this item's score): **2**" in texts(at)
    at.button(key="label.submit").click().run()
    assert_page_ok(at)
    mine = project.store.annotation_history(1, accounts.user(project.store, "demo-reader")["id"])
    assert [(a["sh"], a["pd"]) for a in mine] == [(2, None)]
    assert mine[0]["seconds"] is not None and mine[0]["seconds"] >= 0
    assert "Item #2 · DGS" in at.markdown[0].value
    assert "Saved item #1: SH 2" in [t.value for t in at.toast]
    # blind: no other reader's name appears on the page
    assert "expert-a" not in texts(at) and "expert-b" not in texts(at)


def test_pd_item_needs_pd_and_invalid_pair_refused(project):
    at = page_as(project, "demo-reader", "pages/label.py")
    at.selectbox(key="label.modality").select("SPD").run()
    assert "SPD" in at.markdown[0].value
    item_id = int(at.markdown[0].value.split("#")[-1].split(" ")[0])
    at.button(key="label.sh2").click().run()
    at.button(key="label.submit").click().run()
    assert "needs a PD grade as well as SH" in at.error[0].value
    at.button(key="label.sh0").click().run()
    at.button(key="label.pd2").click().run()
    assert "SH 0 with PD 2 is not a valid EOSS combination" in at.warning[0].value
    at.button(key="label.submit").click().run()
    assert "SH 0 with PD 2 is not a valid EOSS combination" in at.error[0].value
    reader_id = accounts.user(project.store, "demo-reader")["id"]
    assert project.store.annotation_history(item_id, reader_id) == []
    at.button(key="label.sh1").click().run()
    assert "Combined EOSS score: **2**" in texts(at)
    at.button(key="label.submit").click().run()
    assert [
        (a["sh"], a["pd"], a["combined"]) for a in project.store.annotation_history(item_id, reader_id)
    ] == [(1, 2, 2)]


def test_back_and_edit_makes_a_history_row(project):
    at = page_as(project, "demo-reader", "pages/label.py")
    reader_id = accounts.user(project.store, "demo-reader")["id"]
    at.button(key="label.sh1").click().run()
    at.button(key="label.submit").click().run()  # item 1 graded, item 2 shown
    at.button(key="label.back").click().run()
    assert "Editing your grade: Item #1" in at.markdown[0].value
    assert at.button(key="label.sh1").proto.type == "primary"  # the earlier grade preselected
    at.button(key="label.sh3").click().run()
    at.button(key="label.submit").click().run()
    history = project.store.annotation_history(1, reader_id)
    assert [a["sh"] for a in history] == [1, 3] and history[1]["supersedes"] == history[0]["id"]
    assert "Item #2" in at.markdown[0].value and "Editing" not in at.markdown[0].value


def test_not_assessable_with_reason_and_skip(project):
    at = page_as(project, "demo-reader", "pages/label.py")
    at.button(key="label.skip").click().run()
    assert "Item #2" in at.markdown[0].value
    at.button(key="label.na").click().run()
    at.selectbox(key="label.na_reason").select("other").run()
    at.text_input(key="label.na_text").input("probe slipped <b>off</b>").run()
    at.button(key="label.na_submit").click().run()
    grade = project.store.annotation_history(2, accounts.user(project.store, "demo-reader")["id"])[0]
    assert grade["not_assessable"] == 1 and grade["reason"] == "probe slipped <b>off</b>"


def test_atlas_and_clip_view(project):
    at = page_as(project, "demo-reader", "pages/label.py")
    at.button(key="label.sh0").click().run()
    at.button(key="label.submit").click().run()  # to item 2, a clip
    assert at.select_slider(key="label.frame").value == "▶ play"
    at.select_slider(key="label.frame").set_value(2).run()
    assert_page_ok(at)
    at.toggle(key="label.atlas").set_value(True).run()
    assert_page_ok(at)
    assert "SH 1" in texts(at)


# ------------------------------------------------------------------ adjudicate
def test_adjudicate_sets_the_reference(project):
    at = page_as(project, "demo-expert", "pages/adjudicate.py")
    assert_page_ok(at)
    assert at.selectbox(key="adj.item").value == 1
    assert set(at.dataframe[0].value["reader"]) == {"expert-a", "expert-b"}
    at.radio(key="adj.sh.1").set_value(2)
    at.text_input(key="adj.note.1").input("after review")
    next(b for b in at.button if b.label == "Set reference").click().run()
    assert_page_ok(at)
    reference = project.store.reference(1)
    assert (reference["sh"], reference["method"]) == (2, "adjudication")
    assert reference["decided_by"] == accounts.user(project.store, "demo-expert")["id"]
    assert "Reference of item #1 set: SH 2" in texts(at)
    assert at.selectbox(key="adj.item").value == 2  # item 1 is resolved and left the list
    assert len(at.get("plotly_chart")) == 1


# ------------------------------------------------------------------ admin
def test_admin_adds_a_user_and_changes_settings(project):
    at = page_as(project, "demo-admin", "pages/admin.py")
    assert_page_ok(at)
    assert [t.label for t in at.tabs] == [
        "Users",
        "Import",
        "PACS",
        "Export",
        "Audit log",
        "Settings",
        "Studies",
    ]
    at.text_input(key="admin.new_name").input("reader-three")
    at.selectbox(key="admin.new_role").select("expert")
    at.text_input(key="admin.new_password").input("a-long-password")
    at.text_input(key="admin.new_password2").input("a-long-password")
    next(b for b in at.button if b.label == "Add user").click().run()
    assert_page_ok(at)
    added = accounts.user(project.store, "reader-three")
    assert added["role"] == "expert"
    assert "Added reader-three (expert)." in texts(at)
    assert project.store.audit_rows()[0]["action"] == "user.add"
    at.toggle(key="admin.preannotation").set_value(True).run()
    from rascore.services import labelling

    assert labelling.preannotation_enabled(project.store)
    assert len(at.get("download_button")) == 4


def test_single_sign_on_button_only_when_configured(project):
    plain = app_as(project, None)
    assert "Sign in with single sign-on" not in [b.label for b in plain.button]
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "rascore",
        "client_secret": "not-a-secret",
        "server_metadata_url": "https://idp.invalid/.well-known/openid-configuration",
    }
    at.run()
    assert_page_ok(at)
    assert "Sign in with single sign-on" in [b.label for b in at.button]


def test_expired_session_returns_to_sign_in(project):
    at = app_as(project, "demo-reader")
    assert "Signed in as demo-reader (reader)" in texts(at)
    at.session_state[session.STATE_KEY].last_seen -= 3600  # an hour without activity
    at.run()
    assert "signed out after a period of inactivity" in texts(at)
    assert project.store.audit_rows()[0]["action"] == "session.expired"
