"""Deep links: the link helpers, opening an item by its id under the queue's rules (study cases
and calibration items never; the readers-per-item limit holds), and the pages that a link opens
on a thing (AppTest: Label, Adjudicate, Dashboard; Predict is in test_pages_predict)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rascore.permissions import PAGES
from rascore.services import calibration, labelling, links, session, study_design
from rascore.services.labelling import LabelError
from rascore.store import accounts
from tests.apptest import assert_page_ok, texts
from tests.conftest import env_for
from tests.fixtures_labelling import build_project
from tests.fixtures_study import T0, build_study_project, user

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


# ------------------------------------------------------------------ helpers
def test_every_page_has_its_stable_path():
    assert sorted(links.page_paths()) == sorted(
        ["home", "label", "adjudicate", "train", "predict", "dashboard", "readers", "admin"]
    )
    assert [links.path_of(p) for p in PAGES if p.default] == ["home"]  # served at / as well


def test_link_values_are_checked():
    assert links.item_id("12") == 12 and links.item_id(" #7 ") == 7
    for bad in ("", "x", "-3", "1.5", "9" * 13, "1;2"):
        with pytest.raises(links.LinkError, match="not an item number"):
            links.item_id(bad)
    assert links.choice("spd", ("SGS", "SPD"), "modality") == "SPD"
    with pytest.raises(links.LinkError, match="unknown modality 'XYZ'; expected one of SGS, SPD"):
        links.choice("XYZ", ("SGS", "SPD"), "modality")
    page = "http://host:8501/app/label"
    assert links.share_url(page, "label", {"item": 5}) == "http://host:8501/app/label?item=5"
    assert (
        links.share_url(None, "dashboard", {"modality": "SPD", "cohort": None}) == "/dashboard?modality=SPD"
    )


# ------------------------------------------------------------------ opening an item by its id
@pytest.fixture
def study_project(tmp_path):
    return build_study_project(tmp_path / "s")


def test_open_item_leases_it_or_opens_the_readers_own_grade(study_project):
    store, reader = study_project.store, user(study_project, "demo-reader")
    opened = labelling.open_item(store, reader, 9, now=T0)
    assert opened.claim is not None and opened.claim.item_id == 9
    assert store.value("SELECT item_id FROM reservations WHERE user_id = ?", (reader["id"],)) == 9
    labelling.submit(store, reader, 9, 1)
    again = labelling.open_item(store, reader, 9, now=T0)
    assert again.claim is None  # graded already: the page opens it as an edit of their own grade
    with pytest.raises(LabelError, match="There is no item #9999"):
        labelling.open_item(store, reader, 9999)


def test_study_cases_and_calibration_items_are_never_opened_by_a_link(study_project):
    store, admin, reader = (
        study_project.store,
        user(study_project, "demo-admin"),
        user(study_project, "junior-1"),
    )
    calibration.create_set(store, admin, "calib", [5, 9], target_kappa=0.8, window_n=2)
    study_design.design_study(
        store, admin, "s", design="sequential", readers={"junior-1": "junior"}, items=[7, 11]
    )
    for item in (5, 9, 7, 11):
        with pytest.raises(LabelError, match="belongs to a reader study or a calibration set"):
            labelling.open_item(store, reader, item, now=T0)
    assert labelling.open_item(store, reader, 8, now=T0).claim is not None


def test_the_readers_per_item_limit_holds_for_links(study_project):
    store, admin = study_project.store, user(study_project, "demo-admin")
    labelling.set_max_readers(store, admin, 1)
    first, second = user(study_project, "demo-reader"), user(study_project, "reader-two")
    labelling.open_item(store, first, 3, now=T0)  # a live lease
    with pytest.raises(LabelError, match="already has the 1 reader"):
        labelling.open_item(store, second, 3, now=T0 + timedelta(seconds=1))
    # once the lease has run out, the item is free again
    later = T0 + timedelta(seconds=labelling.LEASE_S + 1)
    assert labelling.open_item(store, second, 3, now=later).claim is not None


# ------------------------------------------------------------------ pages opened by a link
@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "p"
    build_project(root, per_modality=2)
    for key, value in env_for(root).items():
        monkeypatch.setenv(key, value)
    return session.shared_project()


def linked(project, name: str, page: str, **params: str) -> AppTest:
    """``page`` opened by a link with ``params``, ``name`` signed in."""
    at = AppTest.from_file(APP, default_timeout=60)
    session.begin(at.session_state, accounts.user(project.store, name))
    at.run()
    at.query_params.update(params)
    return at.switch_page(str(ROOT / page)).run()


def code_blocks(at: AppTest) -> list[str]:
    return [c.value for c in at.code]


def test_label_link_opens_that_item_then_the_queue_goes_on(project):
    at = linked(project, "demo-reader", "pages/label.py", item="6")
    assert_page_ok(at)
    assert "Item #6 · DGS" in at.markdown[0].value
    assert "/label?item=6" in code_blocks(at)  # Copy link
    assert "item" not in at.query_params  # taken: the address shows the page
    at.button(key="label.sh1").click().run()
    at.button(key="label.submit").click().run()
    assert_page_ok(at)
    assert labelling.my_grade(project.store, accounts.user(project.store, "demo-reader"), 6)["sh"] == 1
    assert "Item #6" not in at.markdown[0].value  # the queue goes on
    # a link to an item the reader graded opens their own grade to edit
    again = linked(project, "demo-reader", "pages/label.py", item="6")
    assert "Editing your grade: Item #6" in again.markdown[0].value


def test_label_link_to_nothing_says_so(project):
    at = linked(project, "demo-reader", "pages/label.py", item="999")
    assert_page_ok(at, expected_errors=["There is no item #999."])
    assert "Item #1 · SGS" in at.markdown[0].value  # the queue's first item instead
    at = linked(project, "demo-reader", "pages/label.py", item="abc")
    assert_page_ok(at, expected_errors=["This link names no item"])


def test_adjudicate_link_opens_that_disagreement(project):
    at = linked(project, "demo-expert", "pages/adjudicate.py", item="3")
    assert_page_ok(at)
    assert at.selectbox(key="adj.item").value == 3  # not the first of the list
    assert "/adjudicate?item=3" in code_blocks(at)
    at = linked(project, "demo-expert", "pages/adjudicate.py", item="5")
    assert_page_ok(at)
    assert "Item #5 has no disagreement between experts to settle." in texts(at)


def test_dashboard_link_opens_one_modality_and_cohort(project):
    at = linked(project, "demo-admin", "pages/dashboard.py", modality="spd", cohort="test2")
    assert_page_ok(at)
    assert at.selectbox(key="rascore.dash.modality").value == "SPD"
    assert at.selectbox(key="rascore.dash.cohort").value == "test2"
    assert "/dashboard?modality=SPD&cohort=test2" in code_blocks(at)
    at = linked(project, "demo-admin", "pages/dashboard.py", modality="XRAY")
    assert_page_ok(at, expected_errors=["unknown modality 'XRAY'"])
