"""AppTest of the Train, Dashboard and Reader-study pages: each page's main path, the numbers the
dashboard shows against rascore.evaluate, a real (tiny) retraining queued from the Train page and
run by the worker, and the refusals a reader meets."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from rascore.services import dashboard, session
from rascore.evaluate import per_grade_auc
from rascore.store import accounts
from rascore.store import jobs as job_sql
from rascore.store.settings import get_setting
from rascore.store import registry
from rascore.store import results as store_results
from tests.apptest import assert_page_ok, texts
from tests.conftest import env_for
from tests.fixtures_dashboard import build_results_project

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGES = ("pages/train.py", "pages/dashboard.py", "pages/readers.py")


@pytest.fixture
def results(tmp_path, monkeypatch):
    root = tmp_path / "p"
    built = build_results_project(root)
    for key, value in env_for(root).items():
        monkeypatch.setenv(key, value)
    dashboard.clear_cache()
    project = session.shared_project()
    project.fixture = built.fixture  # type: ignore[attr-defined]
    yield project
    dashboard.clear_cache()


def page_as(project, name: str, page: str) -> AppTest:
    """One page opened through the app's navigation with ``name`` signed in."""
    at = AppTest.from_file(APP, default_timeout=120)
    session.begin(at.session_state, accounts.user(project.store, name))
    at.run()
    return at.switch_page(str(ROOT / page)).run()


def frame_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first dataframe on the page holding all these columns."""
    for element in at.dataframe:
        if set(columns) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no table with columns {columns}")


# ------------------------------------------------------------------ permissions
def test_a_reader_cannot_open_the_results_pages(results):
    at = AppTest.from_file(APP, default_timeout=60)
    session.begin(at.session_state, accounts.user(results.store, "demo-reader"))
    at.run()
    for page in PAGES:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(str(ROOT / page))
    for page, what in zip(PAGES, ("start training", "see results dashboards", "see results dashboards")):
        direct = AppTest.from_file(str(ROOT / page), default_timeout=60)
        session.begin(direct.session_state, accounts.user(results.store, "demo-reader"))
        direct.run()
        assert_page_ok(direct, expected_errors=[f"Not allowed: demo-reader (reader) may not {what}."])
        assert direct.error[0].value == f"Not allowed: demo-reader (reader) may not {what}."
        assert not direct.dataframe


# ------------------------------------------------------------------ dashboard
def test_dashboard_shows_the_numbers_of_rascore_evaluate(results):
    project = shared = results
    at = page_as(shared, "demo-expert", "pages/dashboard.py")
    assert_page_ok(at)
    table = frame_with(at, "model", "cohort", "grade 0", "grade 3", "reason")
    assert len(table) == 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for (code, cohort, version), (ids, y, probs) in project.fixture["arrays"].items():
            if version != 1:
                continue
            row = table[(table.model == f"{code} v1") & (table.cohort == cohort)].iloc[0]
            patients = store_results.patients(project.store, ids.tolist())  # patient intervals
            for grade, r in per_grade_auc(y, probs, n_boot=1000, seed=0, patients=patients).items():
                expected = (
                    "undefined"
                    if r.reason and r.n_pos == 0
                    else f"{r.auc:.3f} ({r.ci_low:.3f}-{r.ci_high:.3f})"
                )
                assert row[f"grade {grade}"] == expected, (code, cohort, grade)
            if cohort == "test2":
                assert "grade 3: no case of grade 3" in row["reason"]
    assert re.search(r"SGS test1: Intervals resample patients: \d+ patients, \d+ items", texts(at))
    summary = frame_with(at, "macro AUC", "kappa quadratic", "ECE")
    assert list(summary.model) == [
        "SGS v1",
        "SGS v1",
        "DGS v1",
        "DGS v1",
        "SPD v1",
        "SPD v1",
        "DPD v1",
        "DPD v1",
    ]
    baseline = frame_with(at, "beside", "AUC 0")
    assert baseline.iloc[0]["AUC 1"] == "undefined (n_pos 0)"
    cross = frame_with(at, "A", "B", "reference", "joints", "patients", "p")
    assert {"SGS v1", "DGS v1"} <= set(cross.A)
    assert set(cross.reference) == {"combined EOSS of the joint"} and set(cross.joints) == {24}
    assert "on 1 of them a greyscale item's own SH reference differs from it (kept)" in texts(at)
    published = frame_with(at, "best model (published)", "AUC (published)")
    assert list(published["AUC (published)"]) == [0.87, 0.95, 0.74, 0.95]
    assert len(at.get("plotly_chart")) >= 5  # forest, ROC, confusion, calibration, detail forest

    # the detail tab: add the inactive version, DeLong between the two appears
    chooser = at.multiselect(key="rascore.dash.versions.SGS")
    v2 = registry.get_version(shared.store, "SGS", 2)["id"]
    chooser.select(v2).run()
    assert_page_ok(at)
    delong = next(e.value for e in at.dataframe if "B" in e.value.columns and "SGS v2" in set(e.value.B))
    assert "cohort" not in delong.columns  # the versions table, not the modalities one
    pairs = delong[(delong.A == "SGS v1") & (delong.B == "SGS v2")]
    assert list(pairs.grade) == ["0", "1", "2", "3", "macro"] and set(pairs.cases) == {24}
    assert set(pairs.test) == {"obuchowski"}  # the fixture's items have patient ids


def test_dashboard_without_models_says_what_to_do(tmp_path, monkeypatch):
    from tests.fixtures_labelling import build_project

    root = tmp_path / "empty"
    build_project(root, per_modality=2)
    for key, value in env_for(root).items():
        monkeypatch.setenv(key, value)
    dashboard.clear_cache()
    project = session.shared_project()
    at = page_as(project, "demo-admin", "pages/dashboard.py")
    assert_page_ok(at)
    assert "No model is active yet" in texts(at)
    readers = page_as(project, "demo-admin", "pages/readers.py")
    assert_page_ok(readers)
    assert not readers.dataframe
    assert (
        "No reader has graded these 4 test items yet (expert-a, expert-b left out: their "
        "grades make the reference), and no model is active" in texts(readers)
    )


# ------------------------------------------------------------------ reader study
def test_reader_study_page_places_the_models_among_the_readers(results):
    at = page_as(results, "demo-admin", "pages/readers.py")
    assert_page_ok(at)
    table = frame_with(at, "who", "kind", "level", "kappa quadratic")
    assert list(table.who) == ["junior-1", "junior-2", "senior-1", "SGS v1", "DGS v1", "SPD v1", "DPD v1"]
    assert "expert-a" in texts(at) and "left out" in texts(at)  # named as left out, not scored
    study = dashboard.reader_results(results.store, accounts.user(results.store, "demo-admin"))
    for name in ("junior-1", "SGS v1"):
        shown = table[table.who == name].iloc[0]["kappa quadratic"]
        entry = study.study["raters"].get(name) or study.study["models"][name]
        assert shown == f"{entry['kappa_quadratic']:.3f}"
    beats = [m.value for m in at.markdown if " beats " in m.value]
    assert len(beats) == 4 and all("of 3 readers" in b for b in beats)
    versus = frame_with(at, "model", "reader", "interval (Holm level)", "p (Holm)", "verdict")
    assert versus.shape[0] == 12
    assert set(versus.verdict) <= {"model better", "reader better", "no difference shown"}
    assert (
        "Comparisons resample patients: 24 patients behind the 192 reference items, 1000 resamples."
        in texts(at)
    )
    assert frame_with(at, "who", "sens 0", "spec 3").shape[0] == 7
    assert at.get("plotly_chart")
    # experts included: expert-a is now a row of the table
    at.toggle(key="rascore.readers.experts").set_value(True).run()
    assert "expert-a" in list(frame_with(at, "who", "kind").who)


# ------------------------------------------------------------------ train
def test_train_page_versions_promote_rollback_and_policy(results):
    at = page_as(results, "demo-admin", "pages/train.py")
    assert_page_ok(at)
    assert "No SGS training job yet" in texts(at)
    labels = frame_with(at, "grade 0", "grade 3", "total")
    assert list(labels["total"]) == [24, 24, 24, 0]  # train, test1, test2; no test3 items
    history = frame_with(at, "version", "active", "val macro AUC")
    assert list(history.version) == [2, 1] and list(history.active) == [False, True]
    at.button(key="rascore.train.promote").click().run()
    assert "SGS: v2 is now the active model (was v1)." in texts(at)
    assert registry.active_version(results.store, "SGS")["version"] == 2
    at.button(key="rascore.train.rollback").click().run()
    assert "SGS: v1 is now the active model (was v2)." in texts(at)
    at.button(key="rascore.train.rollback").click().run()
    assert "SGS v1 is the oldest version" in at.error[0].value
    at.radio(key="rascore.train.policy").set_value("always").run()
    at.button(key="rascore.train.save_policy").click().run()
    assert "Promotion policy set to always." in texts(at)
    assert get_setting(results.store, "promotion_policy") == "always"
    expert = page_as(results, "demo-expert", "pages/train.py")
    assert not expert.radio and "An admin sets the policy." in texts(expert)


def test_train_page_queues_a_job_that_a_worker_runs(tmp_path, monkeypatch):
    """A real, tiny retraining: queued from the page, run by the worker, followed by the page."""
    from rascore import auth
    from rascore.jobs import Worker
    from rascore.project import Project
    from tests.fixtures_dashboard import settings_for
    from tests.test_train import build_tiny

    root = tmp_path / "train"
    built = Project(settings_for(root))
    build_tiny(built, "SGS", {"train": 6, "test1": 2, "test2": 2})  # small drawn joints, every grade
    auth.add_user(built.store, "demo-expert", "expert", None, "expert-password-1", rounds=4)
    for key, value in env_for(root).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RASCORE_DEVICE", "cpu")
    project = session.shared_project()
    at = page_as(project, "demo-expert", "pages/train.py")
    assert "No SGS training job yet" in texts(at)
    at.selectbox(key="rascore.train.preset").select("fast")
    assert at.number_input(key="rascore.train.epochs").value is None  # blank: the preset's epochs
    assert "also learns from" not in texts(at)  # no DGS item to pool here
    at.number_input(key="rascore.train.epochs").set_value(1)
    next(b for b in at.button if b.label == "Queue SGS retraining").click().run()
    assert_page_ok(at)
    (job,) = job_sql.listing(project.store)
    assert (job["status"], job["modality"], job["params"]) == (
        "queued",
        "SGS",
        {"preset": "fast", "epochs": 1, "head": "softmax"},
    )
    assert f"Queued job #{job['id']}" in texts(at)
    assert f"Job #{job['id']} (SGS) is queued, waiting for a worker." in texts(at)

    finished = Worker(project, heartbeat_s=0.5).run_once()
    assert finished["status"] == "succeeded", finished["error"]
    at.run()
    assert_page_ok(at)
    assert f"Job #{job['id']} (SGS) succeeded: v1, now the active model." in texts(at)
    history = frame_with(at, "version", "active", "val macro AUC")
    assert list(history.version) == [1] and list(history.active) == [True]
    active = frame_with(at, "split", "AUC 0", "macro AUC")
    assert "validation" in list(active.split)
    # the job row keeps what the page shows: the log and the version it made
    row = job_sql.get(project.store, job["id"])
    assert row["model_version_id"] == registry.active_version(project.store, "SGS")["id"]
    assert "succeeded" in row["log_tail"]
