"""AppTest of study and calibration reading on the Label page and of the Admin page's Studies tab:
tasks in the order served, the aided view only on aided reads, timed reads, the washout, the
calibration gate and feedback, designing a study and a calibration set, and who sees the forms."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from rascore import scale
from rascore.project import Project
from rascore.services import calibration, session, study, study_design
from rascore.store import studies as studies_sql
from tests.apptest import assert_page_ok, texts
from tests.conftest import env_for
from tests.fixtures_labelling import add_predictions
from tests.fixtures_study import build_study_project, grade_for, read_all, user
from views import study_read

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
# SGS items of rounds 1-4 (reference SH 1, 2, 3, 0) and DGS items of rounds 1-4 (the same)
SET_ITEMS = [5, 9, 13, 17, 6, 10, 14, 18]


@pytest.fixture
def project(tmp_path, monkeypatch) -> Project:
    root = tmp_path / "p"
    build_study_project(root)
    for key, value in env_for(root).items():
        monkeypatch.setenv(key, value)
    return session.shared_project()


def page_as(project: Project, name: str, page: str) -> AppTest:
    """One page opened through the app's navigation with ``name`` signed in."""
    at = AppTest.from_file(APP, default_timeout=60)
    session.begin(at.session_state, user(project, name))
    at.run()
    return at.switch_page(str(ROOT / page)).run()


def design(project, name="s", *, items=(5, 9), design="sequential", readers=None, **kw) -> int:
    """A study designed by the admin through the service (the Admin page test uses the form)."""
    readers = readers or {"demo-reader": "junior", "reader-two": "senior"}
    made = study_design.design_study(
        project.store,
        user(project, "demo-admin"),
        name,
        design=design,
        readers=readers,
        items=list(items),
        **kw,
    )
    return made.study_id


def open_study(project, study_id: int) -> None:
    study.open_study(project.store, user(project, "demo-admin"), study_id)


def read_mode(at: AppTest, mode: str) -> AppTest:
    at.selectbox(key="label.mode").select(mode).run()
    assert_page_ok(at)
    return at


def shown(at: AppTest) -> str:
    """The page's texts and its progress bars' texts."""
    return texts(at) + "\n" + "\n".join(p.proto.text for p in at.get("progress"))


def aided_shown(at: AppTest) -> bool:
    return "The model's reading" in texts(at)


def chart(at: AppTest, title: str) -> dict | None:
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        if spec["layout"].get("title", {}).get("text") == title:
            return spec
    return None


# ------------------------------------------------------------------ study reading
def test_reader_is_served_the_study_in_order_with_the_aid_only_on_aided_reads(project, monkeypatch):
    # the overlay needs torch and a checkpoint: its own test below; here it is one line
    monkeypatch.setattr(study_read, "_overlay", lambda *args: (None, "Attribution overlay: none here"))
    store, reader = project.store, user(project, "demo-reader")
    add_predictions(project, "SGS", {5: [0.1, 0.6, 0.2, 0.1], 9: [0.0, 0.1, 0.2, 0.7]})
    sid = design(project)
    open_study(project, sid)
    at = page_as(project, "demo-reader", "pages/label.py")
    assert_page_ok(at)
    assert [b.key for b in at.button if b.key == "label.submit"]  # the queue stays the default
    read_mode(at, f"study:{sid}")
    seen = []
    for number in range(1, 5):
        due = study.next_task(store, reader, sid)  # what the service says is due: the page shows it
        assert f"read {number} of 4" in shown(at)
        assert f"this read: {'aided' if due.arm == 'aided' else 'unaided'}" in shown(at)
        assert aided_shown(at) == (due.arm == "aided")
        probabilities = chart(at, "Probability of each SH grade")
        if due.arm == "aided":
            expected = {5: [0.1, 0.6, 0.2, 0.1], 9: [0.0, 0.1, 0.2, 0.7]}[due.item_id]
            assert probabilities["data"][0]["y"] == expected
            assert f"SGS v1: SH **{max(range(4), key=expected.__getitem__)}**" in [
                m.value for m in at.markdown
            ]
        else:  # the unaided arm shows nothing from the model
            assert probabilities is None and "Attribution overlay" not in texts(at)
        if due.arm == "aided":
            assert "Attribution overlay: none here" in texts(at)
        # blind: no other reader's name, no item id (a crossover must not name a case twice)
        assert "reader-two" not in texts(at) and f"#{due.item_id}" not in texts(at)
        at.button(key="study.sh2").click().run()
        at.button(key="study.submit").click().run()
        assert_page_ok(at)
        last = studies_sql.reads_of(store, sid, reader["id"])[-1]
        assert (last["item_id"], last["arm"], last["sh"], last["session"]) == (due.item_id, due.arm, 2, 1)
        assert last["duration_ms"] > 0
        seen.append((due.item_id, due.arm))
    # sequential: each case unaided, then at once aided; the order the service planned
    assert [arm for _, arm in seen] == ["unaided", "aided"] * 2
    assert seen[0][0] == seen[1][0] and seen[2][0] == seen[3][0] and {seen[0][0], seen[2][0]} == {5, 9}
    assert "4 of 4 reads done" in shown(at) and "Thank you" in texts(at)


def test_the_time_of_a_read_runs_from_when_its_task_was_served(project):
    store, reader = project.store, user(project, "demo-reader")
    sid = design(project, items=[5])
    open_study(project, sid)
    at = read_mode(page_as(project, "demo-reader", "pages/label.py"), f"study:{sid}")
    served = next(iter(at.session_state["study.served"].items()))
    assert served[0] == (sid, 5, "unaided")
    at.button(key="study.sh1").click().run()  # reruns of the same task keep its served time
    assert at.session_state["study.served"][(sid, 5, "unaided")] == served[1]
    at.button(key="study.submit").click().run()
    (read,) = studies_sql.reads_of(store, sid, reader["id"])
    assert read["started_at"] == served[1]
    saved = datetime.fromisoformat(read["saved_at"]) - datetime.fromisoformat(read["started_at"])
    assert read["duration_ms"] > 0 and abs(read["duration_ms"] - saved.total_seconds() * 1000) <= 1
    # a save without a grade is refused with the EOSS message and nothing is stored
    at.button(key="study.submit").click().run()
    assert_page_ok(at, expected_errors=["SH"])
    assert len(studies_sql.reads_of(store, sid, reader["id"])) == 1


def test_the_aided_read_shows_the_frozen_models_overlay(project):
    """A real (tiny, untrained) checkpoint: the overlay is computed for the version frozen at opening."""
    torch = pytest.importorskip("torch")
    from rascore.store import registry
    from rascore.train.preprocess import Preprocessing
    from tests.test_explain import publish_model

    torch.set_num_threads(2)
    prep = Preprocessing(16, 20, False, 1, 1, 3, (0.45, 0.45, 0.45), (0.25, 0.25, 0.25))
    published = publish_model(project, "SGS", "slim_resnet18", 0, prep)
    registry.save_predictions(project.store, published.model_version_id, [(5, 2, [0.1, 0.2, 0.6, 0.1])])
    sid = design(project, items=[5])
    open_study(project, sid)
    publish_model(project, "SGS", "slim_resnet18", 1, prep)  # a newer active version after opening
    at = read_mode(page_as(project, "demo-reader", "pages/label.py"), f"study:{sid}")
    at.button(key="study.sh1").click().run()
    at.button(key="study.submit").click().run()  # the unaided read; the aided one is due now
    assert_page_ok(at)
    assert aided_shown(at) and "SGS v1: SH **2**" in [m.value for m in at.markdown]
    captions = [c for image in at.get("image") for c in image.captions]
    assert any("Occlusion: where the evidence for grade 2 lies" in c for c in captions), captions
    explained = list((Path(project.settings.data_dir) / "explain").iterdir())
    assert [p.name.split("-")[:2] for p in explained] == [["SGS", "v1"]]  # the frozen version, not v2


def test_washout_pending_shows_the_date_session_two_opens(project):
    store = project.store
    sid = design(project, "cross", items=[5, 9], design="crossover", washout_days=14)
    open_study(project, sid)
    reader = user(project, "demo-reader")
    start = datetime.now(UTC)
    read_all(project, reader, sid, start, step_s=0.01)  # session 1 read just now
    at = read_mode(page_as(project, "demo-reader", "pages/label.py"), f"study:{sid}")
    with pytest.raises(study.WashoutPending) as wait:
        study.next_task(store, reader, sid)
    assert f"opens on {wait.value.opens_at.strftime('%Y-%m-%d %H:%M')} UTC" in texts(at)
    assert "2 of 4 reads done" in shown(at)
    assert not [b for b in at.button if b.key == "study.submit"]


# ------------------------------------------------------------------ calibration
def make_set(project, items=SET_ITEMS, **kw) -> int:
    kw = {"target_kappa": 0.8, "window_n": 4, **kw}
    return calibration.create_set(project.store, user(project, "demo-admin"), "calib", items, **kw)


def test_a_study_needing_calibration_sends_the_reader_there_and_feedback_follows_each_read(project):
    project.store.set_reference(1, 1, None, "agreement")  # a round-0 SGS item: the atlas example of SH 1
    set_id = make_set(project)
    sid = design(project, items=[21], calibration_set_id=set_id)
    open_study(project, sid)
    at = read_mode(page_as(project, "demo-reader", "pages/label.py"), f"study:{sid}")
    assert "Pass the calibration set 'calib' first" in texts(at)
    next(b for b in at.button if b.label == "Go to calibration").click().run()
    assert_page_ok(at)
    assert at.selectbox(key="label.mode").value == f"calibration:{set_id}"
    assert "item 1 of 8" in shown(at) and "not passed yet" in texts(at)
    at.button(key="calib.sh3").click().run()  # item 5: reference SH 1
    at.button(key="calib.submit").click().run()
    assert_page_ok(at)
    page = texts(at)
    assert "Not matched: the reference SH grade is 1; you read 3." in page
    assert scale.SH_DEFINITIONS[1] in page and scale.SH_DEFINITIONS[3] in page
    assert "#1: SH 1" in [c for image in at.get("image") for c in image.captions]  # the atlas example
    at.button(key="calib.next").click().run()
    assert "item 2 of 8" in shown(at)
    for sh in (2, 3, 0, 1):  # items 9, 13, 17 and DGS 6 read as the reference: the last 4 agree
        at.button(key=f"calib.sh{sh}").click().run()
        at.button(key="calib.submit").click().run()
        assert_page_ok(at)
        assert "Matched: the reference SH grade is" in texts(at)
        at.button(key="calib.next").click().run()
    assert (
        "Your weighted kappa over the last 4 reads: **1.00** · target 0.80 · 5 of 8 items read · **passed**"
        in [m.value for m in at.markdown]
    )
    assert "You passed this calibration set" in texts(at)
    read_mode(at, f"study:{sid}")
    assert "read 1 of 2" in shown(at)  # the study is open to the reader now


# ------------------------------------------------------------------ admin
def test_admin_designs_and_opens_a_study_and_creates_a_calibration_set(project):
    store = project.store
    at = page_as(project, "demo-admin", "pages/admin.py")
    assert_page_ok(at)
    assert "No study yet" in texts(at)
    at.text_input(key="studies.name").input("pilot")
    at.radio(key="studies.source").set_value("Item ids").run()
    at.text_input(key="studies.items").input("5, 9 12")
    at.multiselect(key="studies.readers").select("junior-1").select("demo-reader").run()
    assert at.selectbox(key="studies.level.junior-1").value == "junior"  # the account's level
    assert at.selectbox(key="studies.level.demo-reader").value is None  # no level on the account
    at.selectbox(key="studies.level.demo-reader").select("senior")
    at.button(key="studies.create").click().run()
    assert_page_ok(at)
    assert "Study pilot designed as a draft: 3 cases" in texts(at)
    (row,) = study.studies(store, user(project, "demo-admin"))
    detail = study.study_detail(store, user(project, "demo-admin"), row["id"])
    assert (detail["name"], detail["design"], detail["status"], detail["cases"]) == (
        "pilot",
        "sequential",
        "draft",
        [5, 9, 12],
    )
    assert {r["name"]: r["experience"] for r in detail["readers"]} == {
        "junior-1": "junior",
        "demo-reader": "senior",
    }
    progress = next(d.value for d in at.dataframe if "experience" in d.value.columns)
    assert progress[["name", "done", "total"]].values.tolist() == [["demo-reader", 0, 6], ["junior-1", 0, 6]]
    at.button(key="studies.open").click().run()
    assert_page_ok(at)
    assert study.study_row(store, row["id"])["status"] == "open"
    assert [b.key for b in at.button if b.key == "studies.close"]

    # cases by cohort and modality: the test1 round's SGS and DGS items; a crossover with a washout
    at.text_input(key="studies.name").input("by cohort")
    at.radio(key="studies.design").set_value("crossover").run()
    at.number_input(key="studies.washout").set_value(21)
    at.radio(key="studies.source").set_value("Cohorts and modalities").run()
    at.multiselect(key="studies.cohorts").select("test1")
    at.multiselect(key="studies.modalities").select("SGS").select("DGS").run()
    assert at.multiselect(key="studies.readers").value == ["junior-1", "demo-reader"]  # kept
    at.button(key="studies.create").click().run()
    assert_page_ok(at)
    second = study.studies(store, user(project, "demo-admin"))[-1]
    detail = study.study_detail(store, user(project, "demo-admin"), second["id"])
    assert (detail["design"], detail["washout_days"], detail["cases"]) == ("crossover", 21, [21, 22])
    assert sorted(r["first_arm"] for r in detail["readers"]) == ["aided", "unaided"]

    at.text_input(key="calib_set.name").input("warm-up")
    at.text_input(key="calib_set.items").input("13 17 18")
    at.number_input(key="calib_set.window").set_value(2)
    at.button(key="calib_set.create").click().run()
    assert_page_ok(at)
    (made,) = calibration.calibration_sets(store, user(project, "demo-admin"))
    assert (made["name"], made["items"], made["window_n"], made["target_kappa"]) == ("warm-up", 3, 2, 0.8)
    # a study case cannot calibrate: one line, nothing created
    at.text_input(key="calib_set.name").input("again")
    at.text_input(key="calib_set.items").input("5, 13")
    at.button(key="calib_set.create").click().run()
    assert_page_ok(at, expected_errors=["Items 5 are study cases"])
    assert len(calibration.calibration_sets(store, user(project, "demo-admin"))) == 1

    reader = user(project, "demo-reader")
    task = study.next_task(store, reader, row["id"])
    sh, pd = grade_for(project, task.item_id, 1)
    study.record_read(store, reader, row["id"], task.item_id, "unaided", sh, pd, started_at=task.served_at)
    for _ in range(2):
        task = calibration.next_calibration_item(store, reader, made["id"])
        calibration.record_calibration(
            store, reader, made["id"], task.item_id, *grade_for(project, task.item_id, 3)
        )
    at.run()
    assert_page_ok(at)
    curve = chart(at, "Weighted kappa over the last 2 reads")
    assert [trace["name"] for trace in curve["data"]] == ["demo-reader"]
    assert curve["data"][0]["x"] == [1, 2]
    progress = next(d.value for d in at.dataframe if "experience" in d.value.columns)
    assert progress[["name", "done"]].values.tolist() == [["demo-reader", 1], ["junior-1", 0]]


def test_a_reader_or_expert_never_sees_the_study_forms(project):
    expert = page_as(project, "demo-expert", "pages/admin.py")
    assert_page_ok(expert)
    assert [t.label for t in expert.tabs] == ["Export"]
    assert not [b for b in expert.button if (b.key or "").startswith(("studies.", "calib_set."))]
    at = AppTest.from_file(str(ROOT / "pages/admin.py"), default_timeout=60)
    session.begin(at.session_state, user(project, "demo-reader"))
    at.run()
    assert_page_ok(at, expected_errors=["Not allowed: demo-reader (reader) may not"])
    assert not at.tabs and not at.text_input
