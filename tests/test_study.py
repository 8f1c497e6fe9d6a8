"""Reader studies: design, sequential and crossover task order, washout, seeded orders and arms,
append-only reads, blindness, the model's aid, the long table, and who may do what."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections import Counter
from datetime import timedelta

import pytest

from rascore.permissions import PermissionDenied
from rascore.services import labelling, study, study_design, study_results
from rascore.services.study import StudyError, WashoutPending
from rascore.store import accounts, registry
from tests.fixtures_labelling import add_predictions
from tests.fixtures_study import T0, build_study_project, grade_for, read_all, user

CASES = list(range(5, 13))  # rounds 1 and 2 of every modality: all with a reference grade


@pytest.fixture
def project(tmp_path):
    return build_study_project(tmp_path / "p")


def _design(project, name="s", *, design="sequential", readers=None, items=CASES, **kw) -> int:
    admin = user(project, "demo-admin")
    readers = readers or {"demo-reader": "junior", "reader-two": "senior"}
    made = study_design.design_study(
        project.store, admin, name, design=design, readers=readers, items=items, seed=kw.pop("seed", 7), **kw
    )
    return made.study_id


def _open(project, study_id):
    return study.open_study(project.store, user(project, "demo-admin"), study_id)


def _save(project, reader, study_id, task, seconds=10.0, sh=1):
    sh, pd = grade_for(project, task.item_id, sh)
    now = study._moment(task.served_at, "t") + timedelta(seconds=seconds)
    return study.record_read(
        project.store, reader, study_id, task.item_id, task.arm, sh, pd, started_at=task.served_at, now=now
    )


def test_sequential_serves_the_aided_read_of_a_case_right_after_its_unaided_read(project):
    sid = _design(project)
    _open(project, sid)
    store, reader = project.store, user(project, "demo-reader")
    first = study.next_task(store, reader, sid, now=T0)
    assert (first.arm, first.session, first.number, first.total) == ("unaided", 1, 1, 2 * len(CASES))
    other = next(i for i in CASES if i != first.item_id)
    with pytest.raises(StudyError, match="not the one due"):  # aided before unaided
        study.record_read(
            store, reader, sid, first.item_id, "aided", *grade_for(project, first.item_id), started_at=T0
        )
    with pytest.raises(StudyError, match="not the one due"):  # skipping the case
        study.record_read(store, reader, sid, other, "unaided", *grade_for(project, other), started_at=T0)
    _save(project, reader, sid, first, seconds=12.5)
    second = study.next_task(store, reader, sid, now=T0 + timedelta(seconds=13))
    assert (second.item_id, second.arm, second.number) == (first.item_id, "aided", 2)
    _save(project, reader, sid, second)
    third = study.next_task(store, reader, sid, now=T0 + timedelta(seconds=30))
    assert third.item_id != first.item_id and third.arm == "unaided"
    read_all(project, reader, sid, T0 + timedelta(minutes=1))
    assert study.next_task(store, reader, sid, now=T0 + timedelta(hours=1)) is None
    reads = store.rows("SELECT * FROM study_reads WHERE user_id = ? ORDER BY id", (reader["id"],))
    assert len(reads) == 2 * len(CASES) and {r["session"] for r in reads} == {1}
    for unaided, aided in zip(reads[::2], reads[1::2]):  # each case: unaided, then aided at once
        assert (unaided["item_id"], unaided["arm"], aided["arm"]) == (aided["item_id"], "unaided", "aided")
    assert reads[0]["duration_ms"] == 12500
    assert study.progress(store, reader, sid) == {"done": 16, "total": 16, "session_2_opens_at": None}


def test_a_read_needs_valid_grades_and_a_start_time_no_later_than_the_save(project):
    sid = _design(project, items=[7])  # one SPD case
    _open(project, sid)
    store, reader = project.store, user(project, "demo-reader")
    task = study.next_task(store, reader, sid, now=T0)
    for sh, pd, message in ((1, None, "needs a PD grade"), (0, 2, "not a valid EOSS"), (4, 0, "0-3")):
        with pytest.raises(StudyError, match=message):
            study.record_read(store, reader, sid, 7, "unaided", sh, pd, started_at=task.served_at, now=T0)
    with pytest.raises(StudyError, match="after it is saved"):
        study.record_read(
            store, reader, sid, 7, "unaided", 1, 1, started_at=T0 + timedelta(seconds=5), now=T0
        )
    assert store.value("SELECT count(*) FROM study_reads") == 0


def test_case_orders_are_random_per_reader_and_session_and_reproducible(project):
    ids = list(range(100, 110))
    one = study.case_order(ids, 7, 3, 1)
    assert sorted(one) == ids and one == study.case_order(ids, 7, 3, 1)
    assert one != study.case_order(ids, 7, 4, 1)  # another reader
    assert one != study.case_order(ids, 7, 3, 2)  # another session
    assert one != study.case_order(ids, 8, 3, 1)  # another study seed
    firsts = Counter(study.case_order(ids, 7, reader, 1)[0] for reader in range(1, 301))
    assert set(firsts) == set(ids)  # every case comes first for some reader: not a fixed rotation
    # what a reader is served follows that order
    sid = _design(project)
    _open(project, sid)
    reader = user(project, "reader-two")
    served = read_all(project, reader, sid, T0)
    assert [t.item_id for t in served[::2]] == study.case_order(CASES, 7, reader["id"], 1)


def test_first_arms_are_balanced_overall_and_by_experience_and_seeded():
    readers = [(1, "junior"), (2, "junior"), (3, "intermediate"), (4, "intermediate"), (5, "intermediate")]
    readers += [(6, "senior"), (7, "senior")]
    started_aided = Counter()
    for seed in range(60):
        arms = study.first_arms(readers, seed)
        assert arms == study.first_arms(readers, seed)
        counts = Counter(arms.values())
        assert abs(counts["aided"] - counts["unaided"]) <= 1
        for level in ("junior", "intermediate", "senior"):
            level_arms = Counter(arms[u] for u, e in readers if e == level)
            assert abs(level_arms["aided"] - level_arms["unaided"]) <= 1, (seed, level)
        started_aided.update(u for u, arm in arms.items() if arm == "aided")
    assert all(0 < started_aided[u] < 60 for u, _ in readers)  # randomised, not fixed per reader


def test_crossover_design_stores_balanced_first_arms(project):
    readers = {"junior-1": None, "junior-2": None, "senior-1": None, "senior-2": None, "mid-1": None}
    sid = _design(project, design="crossover", readers=readers, washout_days=14)
    detail = study.study_detail(project.store, user(project, "demo-admin"), sid)
    levels = {r["name"]: r["experience"] for r in detail["readers"]}
    assert levels["mid-1"] == "intermediate"  # taken from the account's level
    arms = Counter(r["first_arm"] for r in detail["readers"])
    assert sorted(arms.values()) == [2, 3]
    for level in ("junior", "senior"):
        assert {r["first_arm"] for r in detail["readers"] if r["experience"] == level} == {"aided", "unaided"}


def test_crossover_session_two_waits_for_the_washout_after_the_last_session_one_read(project):
    sid = _design(project, design="crossover", readers={"junior-1": None, "senior-1": None}, washout_days=14)
    _open(project, sid)
    store, reader = project.store, user(project, "junior-1")
    first_arm = accounts_first_arm(project, sid, reader["id"])
    session1 = read_all(project, reader, sid, T0, step_s=3600)  # one read an hour
    assert len(session1) == len(CASES) and {(t.arm, t.session) for t in session1} == {(first_arm, 1)}
    last = T0 + timedelta(hours=len(CASES))
    opens = last + timedelta(days=14)
    with pytest.raises(WashoutPending, match=opens.strftime("%Y-%m-%d %H:%M")) as wait:
        study.next_task(store, reader, sid, now=T0 + timedelta(days=14, hours=1))  # 14 days after the first
    assert wait.value.opens_at == opens
    assert study.progress(store, reader, sid, now=last)["session_2_opens_at"].startswith(
        opens.date().isoformat()
    )
    with pytest.raises(WashoutPending):
        study.record_read(
            store, reader, sid, CASES[0], "aided", 1, None, started_at=last, now=opens - timedelta(seconds=1)
        )
    task = study.next_task(store, reader, sid, now=opens)
    assert task.session == 2 and task.arm != first_arm
    session2 = read_all(project, reader, sid, opens)
    assert {(t.arm, t.session) for t in session2} == {(task.arm, 2)}
    assert [t.item_id for t in session2] == study.case_order(CASES, 7, reader["id"], 2)
    assert [t.item_id for t in session2] != [t.item_id for t in session1]  # a fresh order
    assert study.next_task(store, reader, sid, now=opens + timedelta(days=1)) is None


def accounts_first_arm(project, study_id, user_id):
    return project.store.value(
        "SELECT first_arm FROM study_readers WHERE study_id = ? AND user_id = ?", (study_id, user_id)
    )


def test_reads_are_append_only_and_a_study_is_fixed_once_open(project):
    store = project.store
    sid = _design(project)
    reader = user(project, "demo-reader")
    with pytest.raises(StudyError, match="is draft"):
        study.next_task(store, reader, sid, now=T0)
    with pytest.raises(sqlite3.IntegrityError, match="only while it is open"):
        store.conn.execute(
            "INSERT INTO study_reads (study_id, user_id, item_id, arm, session, sh, combined, started_at,"
            " saved_at, duration_ms) VALUES (?,?,5,'unaided',1,1,1,'t','t',0)",
            (sid, reader["id"]),
        )
    _open(project, sid)
    task = study.next_task(store, reader, sid, now=T0)
    _save(project, reader, sid, task)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE study_reads SET sh = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM study_reads")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):  # the same case and arm twice
        store.conn.execute(
            "INSERT INTO study_reads (study_id, user_id, item_id, arm, session, sh, pd, combined, started_at,"
            " saved_at, duration_ms) SELECT study_id, user_id, item_id, arm, session, sh, pd, combined,"
            " started_at, saved_at, duration_ms FROM study_reads"
        )
    for sql in (
        "INSERT INTO study_cases (study_id, item_id, position) VALUES (?, 1, 99)",
        "DELETE FROM study_readers WHERE study_id = ?",
        "UPDATE studies SET seed = 8 WHERE id = ?",
        "UPDATE studies SET status = 'draft' WHERE id = ?",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="fixed once"):
            store.conn.execute(sql, (sid,))
    study.close_study(store, user(project, "demo-admin"), sid)
    with pytest.raises(StudyError, match="is closed"):
        study.next_task(store, reader, sid, now=T0)
    assert store.value("SELECT count(*) FROM study_reads") == 1
    assert store.value("SELECT count(*) FROM annotations") == 0  # a study read is not an annotation


def test_nothing_a_reader_is_served_holds_another_readers_grade(project):
    add_predictions(project, "SGS", {i: [0.1, 0.6, 0.2, 0.1] for i in (5, 9)})
    sid = _design(project, items=[5, 9, 6])
    _open(project, sid)
    store, me, other = project.store, user(project, "demo-reader"), user(project, "reader-two")
    task = study.next_task(store, me, sid, now=T0)
    with pytest.raises(StudyError, match="only with the aided read"):  # not during the unaided read
        study.model_aid(store, me, sid, task.item_id, now=T0)
    _save(project, me, sid, task)
    now = T0 + timedelta(minutes=1)
    aided = study.next_task(store, me, sid, now=now)
    before = (
        aided,
        study.model_aid(store, me, sid, aided.item_id, now=now),
        study.progress(store, me, sid, now=now),
    )
    # the other reader reads everything with other grades, and grades the same items in the queue
    read_all(project, other, sid, T0)
    for item_id in (5, 9, 6):
        labelling.submit(store, other, item_id, 3, None)
    after = (
        study.next_task(store, me, sid, now=now),
        study.model_aid(store, me, sid, aided.item_id, now=now),
        study.progress(store, me, sid, now=now),
    )
    assert after == before
    served_fields = {f.name for f in dataclasses.fields(study.Task)} | {
        f.name for f in dataclasses.fields(study.Aid)
    }
    assert not served_fields & {"sh", "pd", "combined", "reader", "user_id", "reads"}
    with pytest.raises(PermissionDenied):
        study_results.reads_table(store, me, sid)


def test_the_aid_shows_the_model_frozen_at_opening_or_says_why_there_is_none(project):
    store, reader = project.store, user(project, "demo-reader")
    first = add_predictions(project, "SGS", {5: [0.1, 0.7, 0.1, 0.1]})
    sids = {
        item: _design(project, f"one-{item}", items=[item]) for item in (5, 9, 7)
    }  # 9: no prediction; 7: SPD
    opened = [_open(project, sid) for sid in sids.values()]
    assert [(o.models, o.source, o.aids, o.without_aid) for o in opened] == [
        ({"SGS": first}, "model", 1, 0),
        ({"SGS": first}, "model", 0, 1),
        ({}, "model", 0, 1),
    ]
    add_predictions(project, "SGS", {5: [0.0, 0.0, 0.1, 0.9]})  # a newer active model after opening
    # and the frozen version's own prediction is replaced after opening (a re-run of predict)
    registry.save_predictions(store, first, [(5, 3, [0.0, 0.0, 0.2, 0.8]), (9, 2, [0.1, 0.1, 0.7, 0.1])])
    aids = {}
    for item, sid in sids.items():
        task = study.next_task(store, reader, sid, now=T0)
        _save(project, reader, sid, task)
        aids[item] = study.model_aid(store, reader, sid, item, now=T0 + timedelta(minutes=1))
    assert (aids[5].grade, aids[5].probabilities, aids[5].model, aids[5].reason, aids[5].source) == (
        1,
        (0.1, 0.7, 0.1, 0.1),
        "SGS v1",
        None,
        "model",
    )
    assert aids[9].grade is None
    assert aids[9].reason == "SGS v1 had no stored prediction for this case when the study opened"
    assert aids[7].grade is None and "no SPD model was active when the study opened" == aids[7].reason
    assert aids[7].target == "EOSS" and aids[5].target == "SH"
    detail = store.value("SELECT detail_json FROM audit_log WHERE action = 'study.open' ORDER BY id LIMIT 1")
    assert '"aids": 1' in detail and '"without_aid": 0' in detail


def test_the_aid_snapshot_is_fixed_once_the_study_opens(project):
    store = project.store
    version = add_predictions(project, "SGS", {5: [0.1, 0.7, 0.1, 0.1], 9: [0.6, 0.3, 0.1, 0.0]})
    sid = _design(project, items=[5, 9, 6])  # 6: DGS, no model
    draft = _design(project, "draft", items=[5])
    opened = _open(project, sid)
    assert (opened.aids, opened.without_aid) == (2, 1)
    rows = store.rows("SELECT item_id, source, model_version_id, grade FROM study_aids ORDER BY item_id")
    assert rows == [
        {"item_id": 5, "source": "model", "model_version_id": version, "grade": 1},
        {"item_id": 9, "source": "model", "model_version_id": version, "grade": 0},
    ]
    for statement in (
        "UPDATE study_aids SET grade = 3",
        "DELETE FROM study_aids",
        f"INSERT INTO study_aids (study_id, item_id, source, grade, probs_json, created_at)"
        f" VALUES ({sid}, 6, 'simulated', 1, '[0.1,0.7,0.1,0.1]', 't')",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="fixed once"):
            store.conn.execute(statement)
    for statement, message in (  # what the schema refuses even on a draft
        (
            f"INSERT INTO study_aids VALUES ({draft}, 9, 'model', {version}, 1, '[0.1,0.7,0.1,0.1]', 't')",
            "FOREIGN KEY",
        ),
        (f"INSERT INTO study_aids VALUES ({draft}, 5, 'model', NULL, 1, '[0.1,0.7,0.1,0.1]', 't')", "CHECK"),
        (f"INSERT INTO study_aids VALUES ({draft}, 5, 'simulated', NULL, 1, '[0.5,0.5]', 't')", "CHECK"),
    ):
        with pytest.raises(sqlite3.IntegrityError, match=message):
            store.conn.execute(statement)


def test_a_simulated_aid_is_snapshotted_and_labelled_as_such(project):
    store, reader = project.store, user(project, "demo-reader")
    add_predictions(project, "SPD", {7: [0.1, 0.7, 0.1, 0.1]})  # a model exists but is not shown
    sid = _design(project, items=[7, 11])
    with pytest.raises(StudyError, match="not a grade 0-3 and 4 probabilities"):
        study.open_study(store, user(project, "demo-admin"), sid, simulated_aids={7: (2, [0.5, 0.5])})
    with pytest.raises(StudyError, match="not cases of this study"):
        study.open_study(store, user(project, "demo-admin"), sid, simulated_aids={5: (2, [0, 0, 1, 0])})
    opened = study.open_study(
        store, user(project, "demo-admin"), sid, simulated_aids={7: (2, [0.05, 0.15, 0.6, 0.2])}
    )
    assert (opened.source, opened.aids, opened.without_aid) == ("simulated", 1, 1)
    shown = {}
    now = T0
    while (task := study.next_task(store, reader, sid, now=now)) is not None:
        if task.arm == "aided":
            shown[task.item_id] = study.model_aid(store, reader, sid, task.item_id, now=now)
        _save(project, reader, sid, task)
        now = study._moment(task.served_at, "t") + timedelta(seconds=11)
    assert (shown[7].grade, shown[7].source, shown[7].model) == (2, "simulated", study.SIMULATED)
    assert shown[11].grade is None and shown[11].reason == "the simulated aid has no suggestion for this case"


def test_the_aid_table_gives_the_suggestion_and_its_probability_of_a_positive_grade(project):
    store, admin, expert = project.store, user(project, "demo-admin"), user(project, "demo-expert")
    add_predictions(project, "SGS", {5: [0.1, 0.6, 0.2, 0.1]})
    add_predictions(project, "SPD", {7: [0.5, 0.3, 0.15, 0.05]})
    sid = _design(project, items=[5, 7, 6])  # 6: DGS, no model
    _open(project, sid)
    with pytest.raises(PermissionDenied, match="once it is closed"):
        study_results.aid_table(store, expert, sid)
    table = study_results.aid_table(store, admin, sid)
    assert list(table.columns) == ["case", "grade", "prob"] and table["case"].tolist() == [5, 7]
    assert table["grade"].tolist() == [1, 0] and table["prob"].tolist() == pytest.approx([0.9, 0.5])
    assert table.attrs == {
        "source": "model",
        "models": ["SGS v1", "SPD v1"],
        "grade": "EOSS",
        "threshold": 1,
        "cases_without_aid": 1,
        "reason": None,
    }
    assert study_results.aid_table(store, admin, sid, threshold=3)["prob"].tolist() == pytest.approx(
        [0.1, 0.05]
    )
    with pytest.raises(StudyError, match="threshold is 1-3"):
        study_results.aid_table(store, admin, sid, threshold=0)
    study.close_study(store, admin, sid)
    assert len(study_results.aid_table(store, expert, sid)) == 2
    with pytest.raises(PermissionDenied):
        study_results.aid_table(store, user(project, "demo-reader"), sid)
    # an SH study of Doppler cases: the combined-EOSS suggestion says nothing about SH
    sh_study = _design(project, "sh", items=[7], grade="SH")
    _open(project, sh_study)
    sh = study_results.aid_table(store, admin, sh_study)
    assert sh["grade"].tolist() == [0] and sh["prob"].isna().all() and "EOSS grade" in sh.attrs["reason"]


def test_opening_and_closing_may_be_dated(project):
    store, admin = project.store, user(project, "demo-admin")
    made = study_design.design_study(
        store, admin, "dated", design="sequential", readers={"demo-reader": "junior"}, items=CASES, now=T0
    )
    study.open_study(store, admin, made.study_id, now=T0 + timedelta(hours=1))
    study.close_study(store, admin, made.study_id, now=T0 + timedelta(days=1))
    row = store.one("SELECT created_at, opened_at, closed_at FROM studies WHERE id = ?", (made.study_id,))
    assert row == {
        "created_at": "2025-03-01T09:00:00.000+00:00",
        "opened_at": "2025-03-01T10:00:00.000+00:00",
        "closed_at": "2025-03-02T09:00:00.000+00:00",
    }


def test_the_long_table_thresholds_the_reference_and_is_shown_blind(project):
    store, admin, expert = project.store, user(project, "demo-admin"), user(project, "demo-expert")
    items = [1, *CASES]  # item 1 has no reference grade
    sid = _design(project, items=items)
    _open(project, sid)
    for name in ("demo-reader", "reader-two"):
        read_all(project, user(project, name), sid, T0, step_s=20)
    with pytest.raises(PermissionDenied, match="once it is closed"):
        study_results.reads_table(store, expert, sid)
    table = study_results.reads_table(store, admin, sid)
    assert len(table) == 2 * 2 * len(items) and list(table.columns) == list(study_results.COLUMNS)
    assert table.attrs == {"grade": "EOSS", "positive_from": 1, "cases_without_reference": 1}
    for row in table.itertuples():
        ref = store.reference(row.case)
        if ref is None:
            assert row.truth is study_results.pd.NA and row.reference is study_results.pd.NA
        else:
            assert row.reference == ref["combined"] and row.truth == int(ref["combined"] >= 1)
        assert row.score == row.combined and row.duration_ms == 20000
    sh2 = study_results.reads_table(store, admin, sid, grade="SH", positive_from=2)
    referenced = sh2.dropna(subset=["reference"])
    assert (referenced["truth"] == (referenced["reference"] >= 2).astype(int)).all()
    assert set(referenced["truth"]) == {0, 1} and (sh2["score"] == sh2["sh"]).all()
    times = study_results.read_times(table)
    assert set(times["reads"]) == {len(items)} and set(times["median_s"]) == {20.0}
    study.close_study(store, admin, sid)
    assert len(study_results.reads_table(store, expert, sid)) == len(table)
    with pytest.raises(PermissionDenied):
        study_results.reads_table(store, user(project, "demo-reader"), sid)


def test_designing_refuses_what_cannot_be_run(project):
    store, admin = project.store, user(project, "demo-admin")
    readers = {"demo-reader": "junior"}

    def design(**kw):
        kw = {"design": "sequential", "readers": readers, "items": CASES, **kw}
        return study_design.design_study(store, admin, kw.pop("name", "x"), **kw)

    for kw, message in (
        ({"grade": "PD"}, "power Doppler items only"),
        ({"washout_days": 3}, "only a crossover"),
        ({"design": "crossover"}, "at least 2 readers"),
        ({"readers": {"nobody": "junior"}}, "no account"),
        ({"readers": {"demo-reader": None}}, "experience level"),
        ({"items": [5, 5]}, "twice"),
        ({"items": [999]}, "no item 999"),
        ({"items": None}, "Choose the cases"),
        ({"name": " "}, "name"),
        ({"calibration_set_id": 42}, "no calibration set 42"),
    ):
        with pytest.raises(StudyError, match=message):
            design(**kw)
    design(name="taken")
    with pytest.raises(StudyError, match="already exists"):
        design(name="TAKEN")
    by_cohort = study_design.design_study(
        store,
        admin,
        "test cohort",
        design="sequential",
        readers=readers,
        cohorts=["test1"],
        modalities=["SGS", "DGS"],
    )
    assert by_cohort.cases == 2 and by_cohort.calibration_left_out == 0
    assert store.value("SELECT count(*) FROM studies") == 2


def test_who_may_design_open_close_and_read(project):
    store = project.store
    sid = _design(project)
    reader, expert = user(project, "demo-reader"), user(project, "demo-expert")
    calls = (
        lambda actor: study_design.design_study(
            store, actor, "n", design="sequential", readers={"demo-reader": "junior"}, items=CASES
        ),
        lambda actor: study.open_study(store, actor, sid),
        lambda actor: study.close_study(store, actor, sid),
        lambda actor: study.studies(store, actor),
        lambda actor: study.study_detail(store, actor, sid),
    )
    for actor in (reader, expert, None, dict(user(project, "demo-admin"), active=0)):
        for call in calls:
            with pytest.raises(PermissionDenied):
                call(actor)
    _open(project, sid)
    with pytest.raises(StudyError, match="not a reader"):
        study.next_task(store, expert, sid, now=T0)
    assert [s["id"] for s in study.my_studies(store, reader)] == [sid] and study.my_studies(
        store, expert
    ) == []
    accounts.set_active(store, reader["id"], False)
    with pytest.raises(PermissionDenied):
        study.next_task(store, accounts.user(store, "demo-reader"), sid, now=T0)
    with pytest.raises(PermissionDenied):
        study.next_task(store, None, sid, now=T0)
    assert store.value("SELECT count(*) FROM audit_log WHERE action IN ('study.design','study.open')") == 2


def test_migration_006_snapshots_the_aids_of_studies_opened_before_it(project):
    from rascore.store import Store

    store = project.store
    version = add_predictions(project, "SGS", {5: [0.1, 0.7, 0.1, 0.1]})
    opened = _design(project, "opened", items=[5, 9])
    _design(project, "draft", items=[5])
    _open(project, opened)
    # the database as migration 005 left it: no study_aids, and 006 not yet applied
    with store.transaction() as conn:
        conn.execute("DROP TABLE study_aids")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = '006_study_aids'")
    path = project.settings.db_path
    store.close()
    again = Store(path)
    rows = again.rows("SELECT study_id, item_id, source, model_version_id, grade FROM study_aids")
    # the open study's case with a prediction; neither its case without one nor the draft's case
    assert rows == [
        {"study_id": opened, "item_id": 5, "source": "model", "model_version_id": version, "grade": 1}
    ]
    with pytest.raises(sqlite3.IntegrityError, match="fixed once"):
        again.conn.execute("DELETE FROM study_aids")
    again.close()
