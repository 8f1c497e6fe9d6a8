"""Reader calibration: feedback after each read, the kappa stop rule, the study gate, and
calibration items kept out of studies, the atlas, the annotations and the reference standard."""

from __future__ import annotations

import math
import sqlite3

import pytest
from sklearn.metrics import cohen_kappa_score

from rascore import scale
from rascore.permissions import PermissionDenied
from rascore.services import calibration, labelling, study, study_design
from rascore.services.calibration import CalibrationError, CalibrationRequired
from rascore.services.study import StudyError
from tests.fixtures_study import T0, build_study_project, user

# SGS and DGS items of rounds 1-4 (reference SH 1, 2, 3, 0): SGS 5, 9, 13, 17; DGS 6, 10, 14, 18
SET_ITEMS = [5, 9, 13, 17, 6, 10, 14, 18]
REFERENCE = [1, 2, 3, 0, 1, 2, 3, 0]


@pytest.fixture
def project(tmp_path):
    project = build_study_project(tmp_path / "p")
    project.store.set_reference(1, 1, None, "agreement")  # a round-0 SGS item: an atlas example of SH 1
    return project


def _make_set(project, name="calib", items=SET_ITEMS, **kw) -> int:
    kw = {"target_kappa": 0.8, "window_n": 4, **kw}
    return calibration.create_set(project.store, user(project, "demo-admin"), name, items, **kw)


def _read(project, reader, set_id, sh, pd=None):
    task = calibration.next_calibration_item(project.store, reader, set_id, now=T0)
    return task, calibration.record_calibration(
        project.store, reader, set_id, task.item_id, sh, pd, started_at=task.served_at
    )


def test_feedback_gives_the_reference_the_match_the_definitions_and_an_atlas_example(project):
    store, reader = project.store, user(project, "demo-reader")
    assert 9 in [e.item_id for e in labelling.atlas(store, reader, "SGS", per_grade=5, item="SH")[2]]
    set_id = _make_set(project)
    # the atlas never shows a calibration item again (it would give its reference away)
    shown = {
        e.item_id
        for entries in labelling.atlas(store, reader, "SGS", per_grade=5, item="SH").values()
        for e in entries
    }
    assert shown and not shown & set(SET_ITEMS)
    task, right = _read(project, reader, set_id, 1)
    assert (task.item_id, task.number, task.total) == (5, 1, 8)
    assert (right.reference, right.read, right.matched, right.differences, right.grade) == (
        1,
        1,
        True,
        (),
        "SH",
    )
    assert [e.item_id for e in right.examples] == [1] and all(e.grade == 1 for e in right.examples)
    _, wrong = _read(project, reader, set_id, 3)  # item 9, reference SH 2
    assert (wrong.item_id, wrong.reference, wrong.read, wrong.matched) == (9, 2, 3, False)
    (diff,) = wrong.differences
    assert (diff.item, diff.reference, diff.read) == ("SH", 2, 3)
    assert (diff.reference_definition, diff.read_definition) == (
        scale.SH_DEFINITIONS[2],
        scale.SH_DEFINITIONS[3],
    )
    assert wrong.examples == ()  # no other SGS training item of SH 2 outside the set: none, not a wrong one
    assert wrong.status.reads == 2 and not wrong.status.passed


def test_doppler_feedback_names_the_disputed_pd_level_even_when_the_combined_grade_matches(project):
    # SPD items of rounds 1-4: (SH, PD) = (1, 1), (2, 1), (3, 1), (0, 0)
    set_id = _make_set(project, "doppler", items=[7, 11, 15, 19], window_n=2)
    reader = user(project, "demo-reader")
    _, feedback = _read(project, reader, set_id, 1, 0)  # combined 1 = the reference's combined 1
    assert feedback.matched and feedback.grade == "EOSS" and (feedback.reference, feedback.read) == (1, 1)
    (diff,) = feedback.differences
    assert (diff.item, diff.reference, diff.read) == ("PD", 1, 0)
    assert diff.reference_definition == scale.PD_DEFINITIONS[1]


def test_kappa_over_the_last_window_stops_calibration_at_the_target(project):
    store, reader, admin = project.store, user(project, "demo-reader"), user(project, "demo-admin")
    set_id = _make_set(project)
    grades = [3, 0, 3, 0, 1, 2]  # two wrong, then right from the third read on
    kappas = []
    for n, sh in enumerate(grades, start=1):
        _, feedback = _read(project, reader, set_id, sh)
        kappas.append(feedback.status.kappa)
        window = slice(max(0, n - 4), n)
        if n >= 2:
            expected = cohen_kappa_score(
                REFERENCE[window], grades[window], labels=[0, 1, 2, 3], weights="quadratic"
            )
            assert feedback.status.kappa == pytest.approx(expected)
        assert feedback.status.passed == (n == 6)  # 0.43 after 4 reads, 0.67 after 5, 1.0 after 6
    assert calibration.next_calibration_item(store, reader, set_id) is None
    with pytest.raises(CalibrationError, match="passed"):
        calibration.record_calibration(store, reader, set_id, 14, 3)
    mine = calibration.calibration_status(store, reader, set_id)
    assert mine.passed and mine.curve is None  # the curve is for admins
    seen = calibration.calibration_status(store, admin, set_id, reader=reader)
    assert [p.read for p in seen.curve] == [1, 2, 3, 4, 5, 6] and seen.curve[-1].kappa == 1.0
    assert [p.matched for p in seen.curve] == [False, False, True, True, True, True]
    assert [p.kappa for p in seen.curve] == kappas
    with pytest.raises(PermissionDenied):
        calibration.calibration_status(store, user(project, "reader-two"), set_id, reader=reader)


def test_an_undefined_kappa_never_passes_and_says_why(project):
    store, reader = project.store, user(project, "demo-reader")
    set_id = _make_set(project, "ones first", items=[5, 21, 9], window_n=2)  # reference SH 1, 1, 2
    _read(project, reader, set_id, 1)
    _, feedback = _read(project, reader, set_id, 1)  # two right reads, both of grade 1
    status = feedback.status
    assert math.isnan(status.kappa) and "chance agreement is perfect" in status.reason and not status.passed
    assert calibration.next_calibration_item(store, reader, set_id).item_id == 9


def test_a_reader_who_reads_every_item_without_reaching_the_target_has_used_the_set_up(project):
    store, reader = project.store, user(project, "reader-two")
    set_id = _make_set(project)
    for ref in REFERENCE:
        _read(project, reader, set_id, 3 - ref)
    status = calibration.calibration_status(store, reader, set_id)
    assert status.reads == 8 and status.used_up and not status.passed and status.kappa < 0
    assert calibration.next_calibration_item(store, reader, set_id) is None
    with pytest.raises(CalibrationRequired, match="ask an admin"):
        calibration.require_passed(store, reader, set_id)


def test_a_study_serves_tasks_only_to_readers_who_passed_its_calibration_set(project):
    store, admin, reader = project.store, user(project, "demo-admin"), user(project, "demo-reader")
    set_id = _make_set(project)
    made = study_design.design_study(
        store,
        admin,
        "gated",
        design="sequential",
        readers={"demo-reader": "junior"},
        items=[7, 8],
        seed=1,
        calibration_set_id=set_id,
    )
    study.open_study(store, admin, made.study_id)
    with pytest.raises(CalibrationRequired, match="Pass the calibration set 'calib' first"):
        study.next_task(store, reader, made.study_id, now=T0)
    for sh in REFERENCE[:4]:
        _read(project, reader, set_id, sh)
    task = study.next_task(store, reader, made.study_id, now=T0)
    assert task is not None and task.arm == "unaided"


def test_calibration_items_never_count_in_a_study_or_as_annotations_or_reference(project):
    store, admin, reader = project.store, user(project, "demo-admin"), user(project, "demo-reader")
    counts = lambda: [store.value(f"SELECT count(*) FROM {t}") for t in ("annotations", "reference_labels")]  # noqa: E731
    before = counts()
    set_id = _make_set(project)
    for sh in (1, 2, 0):
        _read(project, reader, set_id, sh)
    assert counts() == before and store.value("SELECT count(*) FROM calibration_reads") == 3
    with pytest.raises(StudyError, match="calibration items"):
        study_design.design_study(
            store, admin, "s", design="sequential", readers={"demo-reader": "junior"}, items=[5, 7]
        )
    made = study_design.design_study(
        store,
        admin,
        "train",
        design="sequential",
        readers={"demo-reader": "junior"},
        cohorts=["train"],
        modalities=["SGS", "DGS"],
    )
    cases = study.study_detail(store, admin, made.study_id)["cases"]
    assert made.calibration_left_out == 8 and cases and not set(cases) & set(SET_ITEMS)
    # the schema refuses it too, both ways
    with pytest.raises(sqlite3.IntegrityError, match="calibration item cannot be a study case"):
        store.conn.execute(
            "INSERT INTO study_cases (study_id, item_id, position) VALUES (?, 5, 99)", (made.study_id,)
        )
    with pytest.raises(CalibrationError, match="study cases"):
        _make_set(project, "other", items=[cases[0], 9], window_n=2)
    spare = _make_set(project, "spare", items=[7, 11], window_n=2)  # no reads yet
    with pytest.raises(sqlite3.IntegrityError, match="study case cannot be a calibration item"):
        store.conn.execute(
            "INSERT INTO calibration_items (set_id, item_id, position) VALUES (?, ?, 99)", (spare, cases[0])
        )
    with pytest.raises(sqlite3.IntegrityError, match="fixed once it has reads"):
        store.conn.execute(
            "INSERT INTO calibration_items (set_id, item_id, position) VALUES (?, 7, 99)", (set_id,)
        )
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE calibration_reads SET sh = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM calibration_reads")


def test_a_calibration_set_needs_referenced_items_of_several_grades_and_an_admin(project):
    store = project.store
    for kw, message in (
        ({"items": [2, 9]}, "no reference grade"),  # item 2: round 0, no reference
        ({"items": [5, 21]}, "at least two reference grades"),  # both SH 1
        ({"items": [5, 9], "window_n": 3}, "window"),
        ({"items": [5, 9], "target_kappa": 1.5}, "target kappa"),
        ({"items": [5, 9], "grade": "PD"}, "greyscale"),
        ({"items": [5, 5, 9]}, "twice"),
    ):
        with pytest.raises(CalibrationError, match=message):
            _make_set(project, **{"window_n": 2, **kw})
    _make_set(project, "taken", items=[5, 9], window_n=2)
    with pytest.raises(CalibrationError, match="already exists"):
        _make_set(project, "Taken", items=[13, 17], window_n=2)
    with pytest.raises(PermissionDenied):
        calibration.create_set(store, user(project, "demo-expert"), "mine", [13, 17], window_n=2)
    set_id = _make_set(project, "order", items=[13, 17], window_n=2)
    reader = user(project, "demo-reader")
    with pytest.raises(CalibrationError, match="Item 13 is due"):
        calibration.record_calibration(store, reader, set_id, 17, 0)
    with pytest.raises(CalibrationError, match="SH grade"):
        calibration.record_calibration(store, reader, set_id, 13, None)
    with pytest.raises(PermissionDenied):
        calibration.next_calibration_item(store, None, set_id)


def test_the_ordinary_queue_never_serves_a_calibration_item_or_a_study_case(project):
    """A calibration read shows the reference grade, and a study case read outside the study is
    no longer blind: the queue skips both, and counts neither in its scope."""
    store, admin = project.store, user(project, "demo-admin")
    reader = user(project, "junior-1")  # has graded nothing yet

    def served() -> list[int]:
        out, after = [], None
        while (claim := labelling.next_item(store, reader, after=after, now=T0)) is not None:
            if claim.item_id in out:
                break
            out.append(claim.item_id)
            after = claim.position
        return out

    everything = served()
    assert set(SET_ITEMS) <= set(everything)
    _make_set(project)
    made = study_design.design_study(
        store, admin, "s", design="sequential", readers={"junior-1": "junior"}, items=[7, 11]
    )
    left = served()
    assert not set(left) & {*SET_ITEMS, 7, 11}
    assert set(left) == set(everything) - {*SET_ITEMS, 7, 11} and made.study_id
