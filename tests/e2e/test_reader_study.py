"""In a real browser against a real server: a 2-reader sequential reading study end to end.

An admin sets up a calibration set and a sequential study that requires it. Each reader signs in,
grades the calibration set from the keyboard until the page says they passed, then reads every
case unaided and, straight after, aided. Each read is in the store the moment it is saved. The
admin closes the study, and the Reader study page shows the aided - unaided analysis.
"""

from __future__ import annotations

import pytest

from rascore import auth
from rascore.services import calibration, study, study_design
from rascore.store import Store
from rascore.store import accounts as account_sql
from tests.e2e.harness import choose, open_page, settle, sign_in, wait_until

pytestmark = pytest.mark.e2e

PASSWORD = "study-reader-password-1"
READERS = {"study-reader-junior": "junior", "study-reader-senior": "senior"}
CALIBRATION = "Browser calibration"
STUDY = "Browser study"


def _pick(store: Store) -> tuple[list[int], list[int], dict[int, dict]]:
    """Greyscale items (SH only) with a reference, in no other study or calibration set: 4 for
    calibration, SH 0 and SH >= 1 alternating (so any 3 in a row hold two grades), and 4 study
    cases, two with SH 0 and two with SH >= 1 (both truth classes)."""
    taken = {
        int(r["item_id"])
        for r in store.rows("SELECT item_id FROM study_cases UNION SELECT item_id FROM calibration_items")
    }
    refs = {
        int(r["item_id"]): r
        for modality in ("SGS", "DGS")
        for r in store.references(modality)
        if int(r["item_id"]) not in taken
    }
    negatives = [i for i in sorted(refs) if refs[i]["sh"] == 0]
    positives = [i for i in sorted(refs) if refs[i]["sh"] >= 1]
    assert len(negatives) >= 4 and len(positives) >= 4, "the e2e demo has too few greyscale references"
    calib = [negatives[0], positives[0], negatives[1], positives[1]]
    return calib, negatives[2:4] + positives[2:4], refs


def _setup(root) -> tuple[int, list[int], dict[int, dict]]:
    store = Store(root / "rascore.db")
    try:
        admin = account_sql.user(store, "demo-admin")
        for name, level in READERS.items():
            if account_sql.user(store, name) is None:
                auth.add_user(store, name, "reader", level, PASSWORD, rounds=4)
        calib, cases, refs = _pick(store)
        set_id = calibration.create_set(
            store, admin, CALIBRATION, calib, grade="SH", target_kappa=0.6, window_n=3
        )
        designed = study_design.design_study(
            store,
            admin,
            STUDY,
            design="sequential",
            readers=READERS,
            items=cases,
            grade="SH",
            seed=11,
            calibration_set_id=set_id,
        )
        study.open_study(store, admin, designed.study_id)
        return designed.study_id, calib, refs
    finally:
        store.close()


def _reads(root, study_id: int, user_id: int) -> list[dict]:
    store = Store(root / "rascore.db", migrate=False)
    try:
        return store.rows(
            "SELECT item_id, arm, sh, duration_ms FROM study_reads WHERE study_id = ? AND user_id = ? ORDER BY id",
            (study_id, user_id),
        )
    finally:
        store.close()


def _due(root, reader: dict, study_id: int):
    store = Store(root / "rascore.db", migrate=False)
    try:
        return study.next_task(store, reader, study_id)
    finally:
        store.close()


def _calibrate(page, calib: list[int], refs: dict[int, dict]) -> int:
    """Grade the calibration items as the reference does until the page says passed; how many."""
    choose(page, "Read", f"Calibration: {CALIBRATION}")
    passed = page.get_by_text("You passed this calibration set")
    for k, item_id in enumerate(calib, start=1):
        page.get_by_text(f"item {k} of {len(calib)}").or_(passed).first.wait_for(timeout=30_000)
        if passed.count():
            return k - 1
        # the keys act once the item's buttons are on the page and its run has ended
        page.get_by_role("button", name="Save and see the reference").wait_for(timeout=30_000)
        settle(page)
        page.keyboard.press(str(refs[item_id]["sh"]))
        page.keyboard.press("Enter")  # save: the feedback follows
        page.get_by_text("Matched: the reference SH grade is").wait_for(timeout=30_000)
        page.get_by_role("button", name="Next").wait_for(timeout=30_000)
        settle(page)
        page.keyboard.press("Enter")  # Next
        settle(page)
    passed.wait_for(timeout=30_000)
    return len(calib)


def _read_study(page, root, reader: dict, study_id: int, refs: dict[int, dict], miss: int) -> list[tuple]:
    """Read every task as served: the unaided read of the positive case ``miss`` says SH 0, every
    other read gives the reference grade."""
    choose(page, "Read", f"Study: {STUDY}")
    done = []
    while (task := _due(root, reader, study_id)) is not None:
        page.get_by_text(f"read {task.number} of {task.total}").first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Save and next").wait_for(timeout=30_000)
        settle(page)
        aided = task.arm == "aided"
        # the model's panel is on aided reads only (no model here: it says so), never on unaided
        assert page.get_by_text("The model's reading", exact=True).count() == int(aided)
        truth = int(refs[task.item_id]["sh"])
        sh = 0 if (not aided and task.item_id == miss) else truth
        page.keyboard.press(str(sh))
        page.keyboard.press("Enter")
        wait_until(
            lambda n=len(done): len(_reads(root, study_id, reader["id"])) > n, 30, "the read in the store"
        )
        done.append((task.item_id, task.arm, sh))
        settle(page)
    page.get_by_text("You have read every case of this study").wait_for(timeout=30_000)
    return done


def test_two_readers_calibrate_then_read_unaided_and_aided_and_the_analysis_shows(
    server, e2e_project, browser
):
    root, passwords = e2e_project
    study_id, calib, refs = _setup(root)
    store = Store(root / "rascore.db", migrate=False)
    try:
        readers = {name: account_sql.user(store, name) for name in READERS}
        cases = [
            int(r["item_id"])
            for r in store.rows("SELECT item_id FROM study_cases WHERE study_id = ?", (study_id,))
        ]
    finally:
        store.close()
    positives = [i for i in cases if refs[i]["sh"] >= 1]
    for k, (name, reader) in enumerate(readers.items()):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        try:
            sign_in(page, server.url, name, PASSWORD)
            open_page(page, "Label")
            # before calibration the study is closed to the reader, with the way to calibration
            choose(page, "Read", f"Study: {STUDY}")
            page.get_by_role("button", name="Go to calibration").wait_for(timeout=30_000)
            # the window is 3 reads and the grades alternate: the third read passes
            assert _calibrate(page, calib, refs) == 3
            done = _read_study(page, root, reader, study_id, refs, miss=positives[k])
        finally:
            context.close()
        stored = _reads(root, study_id, reader["id"])
        assert [(r["item_id"], r["arm"], r["sh"]) for r in stored] == done
        assert len(stored) == 2 * len(cases)
        assert all(r["duration_ms"] > 0 for r in stored)
        # sequential: each case's aided read comes straight after its unaided read
        assert [r["arm"] for r in stored] == ["unaided", "aided"] * len(cases)
        assert [r["item_id"] for r in stored[::2]] == [r["item_id"] for r in stored[1::2]]

    store = Store(root / "rascore.db", migrate=False)
    try:
        study.close_study(store, account_sql.user(store, "demo-admin"), study_id)
    finally:
        store.close()

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        sign_in(page, server.url, "demo-admin", passwords["demo-admin"])
        open_page(page, "Reader study", timeout=60_000)
        choose(page, "Study", STUDY, area="stMain", timeout=60_000)
        page.get_by_text("Aided against unaided reading").wait_for(timeout=60_000)
        summary = page.get_by_text("Aided - unaided mean AUC").first.inner_text()
        # aided reads were all right, each reader missed one positive unaided: aided is better
        assert summary.startswith("Aided - unaided mean AUC: +"), summary
        assert "2 readers, 4 cases (2 positive, 2 negative" in summary, summary
    finally:
        context.close()
