"""AppTest of the Reader study page's study and GLOESS sections: a closed study's analysis with
the service's numbers, the message when there is no study to show, and the GLOESS tables."""

from __future__ import annotations

import warnings

import pytest

from rascore.services import session, study_analysis, study_rows
from rascore.services.dashboard import clear_cache, gloess
from rascore.store import accounts
from tests.apptest import assert_page_ok, texts
from tests.conftest import env_for
from tests.fixtures_dashboard import build_results_project
from tests.fixtures_study_analysis import build_study
from tests.test_pages_results import frame_with, page_as

from views import study_analysis as study_view


def _open_project(root, monkeypatch):
    for key, value in env_for(root).items():
        monkeypatch.setenv(key, value)
    clear_cache()
    return session.shared_project()


@pytest.fixture
def with_study(tmp_path, monkeypatch):
    root = tmp_path / "p"
    built = build_results_project(root)
    study_id = build_study(built)
    project = _open_project(root, monkeypatch)
    yield project, study_id
    clear_cache()


def test_the_study_section_shows_the_analysis_of_a_closed_study(with_study):
    project, study_id = with_study
    expert = accounts.user(project.store, "demo-expert")
    at = page_as(project, "demo-expert", "pages/readers.py")
    assert_page_ok(at)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = study_analysis.analyse(project.store, expert, study_id)
    assert at.selectbox(key="rascore.readers.study").value == study_id
    assert study_rows.summary_line(found) in texts(at)
    levels = frame_with(at, "readers", "aided - unaided", "95% CI (RRRC)")
    assert list(levels["readers"]) == ["all readers", "junior", "intermediate", "senior"]
    overall = levels.iloc[0]
    assert overall["aided - unaided"] == f"{found.overall.diff:+.3f}" and overall[
        "aided - unaided"
    ].startswith("+")
    assert overall["95% CI (RRRC)"] == f"{found.overall.ci_low:.3f} to {found.overall.ci_high:.3f}"
    assert levels.iloc[3]["95% CI (RRRC)"] == "undefined" and "one reader" in levels.iloc[3]["reason"]
    model = frame_with(at, "who", "AUC", "AUC interval")
    assert model.iloc[-1]["who"] == "model alone: SPD v1"  # the aid frozen when the study opened
    assert model.iloc[-1]["AUC"] == f"{found.model['auc']:.3f}"
    assert model.iloc[1]["AUC"] == f"{found.overall.auc_aided:.3f}"
    grades = frame_with(at, "who", "AUC >= 1", "AUC >= 3")
    assert len(grades) == 11  # 4 readers and their mean, in each arm, and the model alone
    kappa = frame_with(at, "reader", "kappa unaided", "difference 95% CI")
    assert list(kappa["reader"])[-1] == "mean of readers"
    assert kappa.iloc[-1]["aided - unaided"] == f"{found.kappa.diffs.iloc[-1]['diff']:+.3f}"
    readers = frame_with(at, "reader", "median s/read unaided", "status")
    assert set(readers["median s/read aided"]) == {"12.0"}
    assert "12 patients behind the 24 cases" in texts(at)
    assert len(at.get("plotly_chart")) >= 4  # scatter, strip plot, Bland-Altman, joints
    # the GLOESS tab: the service's ICC of a reader, and the joints per patient
    found_gloess = gloess.gloess_agreement(project.store, expert)
    icc = frame_with(at, "GLOESS", "rater", "ICC(2,1) (95% CI)")
    row = icc[(icc["rater"] == "junior-1") & (icc["GLOESS"] == "static (SPD)")].iloc[0]
    expected = next(r for r in gloess.agreement_rows(found_gloess) if r["rater"] == "junior-1")
    assert row["ICC(2,1) (95% CI)"] == expected["ICC(2,1) (95% CI)"] and row["patients"] == 24
    assert list(frame_with(at, "joints per patient", "patients")["patients"]) == [24, 24]


def test_without_a_study_the_page_says_where_to_design_one(tmp_path, monkeypatch):
    root = tmp_path / "p"
    built = build_results_project(root)
    project = _open_project(root, monkeypatch)
    at = page_as(project, "demo-admin", "pages/readers.py")
    assert_page_ok(at)
    assert study_view.NO_STUDY_ADMIN in texts(at)
    build_study(built, close=False, readers={"junior-1": "junior"}, partial="junior-1")  # open
    expert = page_as(project, "demo-expert", "pages/readers.py")
    assert_page_ok(expert)
    assert study_view.NO_STUDY_VIEWER in texts(expert)  # an open study stays hidden from experts
    admin = page_as(project, "demo-admin", "pages/readers.py")  # an admin sees it, and how far it got
    assert_page_ok(admin)
    assert "no reader has read every case in both arms yet: nothing to analyse" in texts(admin)
    progress = frame_with(admin, "reader", "reads unaided", "status")
    assert list(progress["status"]) == ["read 5 of 48: left out until every case is read in both arms"]
