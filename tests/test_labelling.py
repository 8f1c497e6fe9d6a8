"""The labelling library: queue order and leases, grading rules, history, blinding, atlas."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import timedelta

import pytest

from rascore.media import MediaStore, preview
from rascore.services import labelling
from rascore.services.labelling import LabelError
from rascore.permissions import PermissionDenied
from rascore.store import accounts
from rascore.store import labelling as sql
from rascore.store.labelling import now_utc
from tests.fixtures_labelling import add_predictions, build_project


@pytest.fixture
def project(tmp_path):
    return build_project(tmp_path / "p")


def _user(project, name):
    return accounts.user(project.store, name)


def test_queue_serves_ungraded_items_in_stable_order_and_skips_graded(project):
    store = project.store
    reader = _user(project, "demo-reader")
    first = labelling.next_item(store, reader)
    assert first.item_id == 1
    again = labelling.next_item(store, reader)  # no position: the start of the order again
    assert again.item_id == 1
    labelling.submit(store, reader, 1, 2, None, seconds=3.5)
    second = labelling.next_item(store, reader, after=first.position)
    assert second.item_id == 2
    # a fresh start (no position) skips what this reader has graded
    assert labelling.next_item(store, reader).item_id == 2
    # the other reader still gets item 1: every reader grades every item by default
    assert labelling.next_item(store, _user(project, "reader-two")).item_id == 1


def test_queue_filters_by_modality_and_cohort_and_ends(project):
    store = project.store
    reader = _user(project, "demo-reader")
    seen = []
    claim = labelling.next_item(store, reader, modality="SPD", cohort="train")
    while claim is not None:
        seen.append(claim.item_id)
        labelling.submit(store, reader, claim.item_id, 1, 1)
        claim = labelling.next_item(store, reader, modality="SPD", cohort="train", after=claim.position)
    items = {i["id"]: i for i in store.items()}
    assert seen and all(items[i]["modality"] == "SPD" and items[i]["cohort"] == "train" for i in seen)
    assert len(seen) == len(store.items("SPD", "train"))
    assert labelling.progress(store, reader, "SPD", "train") == (len(seen), len(seen))


def test_exclusive_assignment_two_readers_never_get_the_same_item(tmp_path):
    project = build_project(tmp_path / "x", per_modality=1, expert_grades=False)
    store = project.store
    labelling.set_max_readers(store, accounts.user(store, "demo-admin"), 1)
    a, b = accounts.user(store, "demo-reader"), accounts.user(store, "reader-two")
    claim_a = labelling.next_item(store, a)
    claim_b = labelling.next_item(store, b)
    assert claim_a.item_id != claim_b.item_id
    held = {(r["item_id"], r["reader"]) for r in sql.reservations(store)}
    assert held == {(claim_a.item_id, "demo-reader"), (claim_b.item_id, "reader-two")}
    # once graded by one reader, an item is done for everyone: B works through the rest
    labelling.submit(store, a, claim_a.item_id, 1, 1 if _doppler(store, claim_a.item_id) else None)
    served, claim = [], claim_b
    while claim is not None:
        served.append(claim.item_id)
        labelling.submit(store, b, claim.item_id, 1, 1 if _doppler(store, claim.item_id) else None)
        claim = labelling.next_item(store, b, after=claim.position)
    assert sorted(served) == sorted(set(i["id"] for i in store.items()) - {claim_a.item_id})
    assert labelling.next_item(store, a) is None  # and A finds nothing left either


def _doppler(store, item_id):
    return store.item(item_id)["modality"] in ("SPD", "DPD")


def test_concurrent_claims_never_share_a_reserved_item(tmp_path):
    project = build_project(tmp_path / "c", per_modality=2)
    store = project.store
    labelling.set_max_readers(store, accounts.user(store, "demo-admin"), 3)  # experts hold 2 of 3 places
    names = [f"worker-{k}" for k in range(6)]
    for name in names:
        accounts.add_user(store, name, "reader")
    results: dict[str, int | None] = {}
    barrier = threading.Barrier(len(names))

    def claim(name: str) -> None:
        user = accounts.user(project.store, name)
        barrier.wait()
        got = labelling.next_item(project.store, user)
        results[name] = got.item_id if got else None
        project.store.close()

    threads = [threading.Thread(target=claim, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [v for v in results.values() if v is not None]
    assert len(claimed) == len(set(claimed)) == len(names)  # 8 items, 6 readers: all distinct


def test_expired_reservation_is_reused(project):
    store = project.store
    labelling.set_max_readers(store, _user(project, "demo-admin"), 3)
    a, b = _user(project, "demo-reader"), _user(project, "reader-two")
    then = now_utc() - timedelta(minutes=10)
    old = labelling.next_item(store, a, lease_s=60, now=then)  # lease ended 9 minutes ago
    fresh = labelling.next_item(store, b)
    assert fresh.item_id == old.item_id
    # a live lease is respected
    live = labelling.next_item(store, a, after=old.position)
    assert labelling.next_item(store, b, after=fresh.position).item_id != live.item_id


def test_resume_serves_the_held_item_after_a_reload(project):
    store = project.store
    reader = _user(project, "demo-reader")
    first = labelling.next_item(store, reader)
    second = labelling.next_item(store, reader, after=first.position)
    assert labelling.next_item(store, reader, resume=True).item_id == second.item_id


def test_queue_orders_by_model_uncertainty_when_predictions_exist(project):
    store = project.store
    reader = _user(project, "demo-reader")
    sgs = [i["id"] for i in store.items("SGS")]
    confident, unsure = [0.9, 0.05, 0.03, 0.02], [0.3, 0.3, 0.2, 0.2]
    add_predictions(project, "SGS", {sgs[0]: confident, sgs[1]: unsure})
    claim = labelling.next_item(store, reader)
    assert claim.item_id == sgs[1] and claim.position.phase == 0
    claim = labelling.next_item(store, reader, after=claim.position)
    assert claim.item_id == sgs[0]
    claim = labelling.next_item(store, reader, after=claim.position)
    assert claim.position.phase == 1 and claim.item_id not in sgs[:2]
    plan = " ".join(
        r[3]
        for r in store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT item_id FROM predictions WHERE model_version_id = 1 ORDER BY "
            + sql.CONFIDENCE_SQL
            + ", item_id"
        )
    )
    assert "predictions_confidence" in plan


def test_grades_are_validated_with_clear_messages(project):
    store = project.store
    reader = _user(project, "demo-reader")
    spd = store.items("SPD")[0]["id"]
    sgs = store.items("SGS")[0]["id"]
    with pytest.raises(LabelError, match="PD grade as well"):
        labelling.submit(store, reader, spd, 2, None)
    with pytest.raises(LabelError, match="SH 0 with PD 2 is not a valid EOSS combination"):
        labelling.submit(store, reader, spd, 0, 2)
    with pytest.raises(LabelError, match="greyscale"):
        labelling.submit(store, reader, sgs, 1, 1)
    with pytest.raises(LabelError, match="why"):
        labelling.submit(store, reader, sgs, None, None, not_assessable=True, reason="  ")
    assert labelling.my_grade(store, reader, spd) is None
    annotation = labelling.submit(store, reader, spd, 1, 2, seconds=4.25)
    row = store.conn.execute("SELECT * FROM annotations WHERE id = ?", (annotation,)).fetchone()
    assert (row["sh"], row["pd"], row["combined"], row["seconds"]) == (1, 2, 2, 4.25)
    assert labelling.preview("SPD", 1, 3) == (3, None)
    assert labelling.preview("SPD", 0, 1)[0] is None


def test_reader_and_adjudicator_hear_the_one_grade_rule(project):
    """Labelling, adjudication and the page's preview refuse a bad pair with the rule's own words."""
    from rascore import scale
    from rascore.services import adjudication
    from tests.test_store import BAD_PAIRS

    store = project.store
    reader, expert = _user(project, "demo-reader"), _user(project, "demo-expert")
    for modality, sh, pd in BAD_PAIRS:
        item = store.items(modality)[0]["id"]
        with pytest.raises(scale.InvalidGrade) as rule:
            scale.check_pair(modality, sh, pd)
        with pytest.raises(LabelError) as graded:
            labelling.submit(store, reader, item, sh, pd)
        with pytest.raises(adjudication.AdjudicationError) as adjudicated:
            adjudication.set_reference(store, expert, item, sh, pd)
        assert str(graded.value) == str(adjudicated.value) == str(rule.value)
        assert labelling.preview(modality, sh, pd) == (None, str(rule.value))
    assert labelling.my_grade(store, reader, item) is None


def test_edit_adds_a_history_row_and_is_audited(project):
    store = project.store
    reader = _user(project, "demo-reader")
    item = store.items("SGS")[0]["id"]
    first = labelling.submit(store, reader, item, 1, None, seconds=2.0)
    second = labelling.submit(store, reader, item, 3, None, seconds=1.0)
    history = labelling.my_history(store, reader, item)
    assert [h["sh"] for h in history] == [1, 3]
    assert history[1]["supersedes"] == first and history[1]["id"] == second
    assert labelling.my_grade(store, reader, item)["sh"] == 3
    actions = [r["action"] for r in store.audit_rows()]
    assert actions[:2] == ["annotation.edit", "annotation.add"]
    assert labelling.recent_items(store, reader) == [item]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.conn.execute("UPDATE annotations SET sh = 0 WHERE id = ?", (first,))


def test_not_assessable_with_reason(project):
    store = project.store
    reader = _user(project, "demo-reader")
    item = store.items("DPD")[0]["id"]
    labelling.submit(
        store, reader, item, None, None, not_assessable=True, reason="image quality too poor", seconds=1
    )
    grade = labelling.my_grade(store, reader, item)
    assert grade["not_assessable"] == 1 and grade["reason"] == "image quality too poor"
    assert grade["sh"] is None


def test_readers_are_blind_unless_preannotation_is_on(project):
    store = project.store
    reader = _user(project, "demo-reader")
    admin = _user(project, "demo-admin")
    item = store.items("SGS")[0]["id"]
    add_predictions(project, "SGS", {item: [0.1, 0.2, 0.6, 0.1]})
    assert labelling.suggestion(store, reader, item) is None
    with pytest.raises(PermissionDenied):
        labelling.set_preannotation(store, reader, True)
    labelling.set_preannotation(store, admin, True)
    hint = labelling.suggestion(store, reader, item)
    assert hint["grade"] == 2 and hint["model"] == "SGS v1"
    # what a reader can fetch about an item carries no other reader's grade
    view = labelling.item_view(store, reader, item)
    assert "expert" not in json.dumps(view.__dict__, default=str)
    assert labelling.my_grade(store, reader, item) is None  # experts graded it; not shown


def test_atlas_serves_reference_examples_of_each_grade(project):
    store = project.store
    reader = _user(project, "demo-reader")
    examples = labelling.atlas(store, reader, "SGS", per_grade=2)
    assert set(examples) == {0, 1, 2, 3}
    refs = {r["item_id"]: r for r in store.references("SGS", "train")}
    for grade, entries in examples.items():
        for entry in entries:
            assert refs[entry.item_id]["sh"] == grade
    assert sum(len(v) for v in examples.values()) >= 2
    with pytest.raises(LabelError):
        labelling.atlas(store, reader, "SGS", item="PD")


def test_atlas_never_shows_the_item_being_graded(project):
    """A reader grading a training item must not find its reference grade among the examples."""
    store = project.store
    reader = _user(project, "demo-reader")
    shown = [
        e.item_id for entries in labelling.atlas(store, reader, "SGS", per_grade=2).values() for e in entries
    ]
    graded = shown[0]
    again = labelling.atlas(store, reader, "SGS", per_grade=2, exclude=graded)
    ids = [e.item_id for entries in again.values() for e in entries]
    assert graded not in ids
    assert len(ids) == len(shown) or len(ids) == len(shown) - 1  # another example of that grade, if any


def test_keep_alive_renews_only_when_half_the_lease_is_gone(project):
    store = project.store
    reader = _user(project, "demo-reader")
    start = now_utc()
    claim = labelling.next_item(store, reader, lease_s=100, now=start)
    same = labelling.keep_alive(store, reader, claim, lease_s=100, now=start + timedelta(seconds=10))
    assert same is claim
    later = labelling.keep_alive(store, reader, claim, lease_s=100, now=start + timedelta(seconds=70))
    assert later.expires_at > claim.expires_at


def test_warm_next_prepares_the_following_item(project, monkeypatch):
    store = project.store
    reader = _user(project, "demo-reader")
    claim = labelling.next_item(store, reader)
    ahead = labelling.following(store, reader, claim)
    thread = labelling.warm_next(project, reader, claim)
    thread.join(timeout=30)
    following = labelling.next_item(store, reader, after=claim.position)
    assert ahead is not None and ahead.item_id == following.item_id
    view = labelling.item_view(store, reader, following.item_id)
    assert view.frames > 1  # item 2 is a clip: its animation was encoded ahead of time
    decoded = []
    monkeypatch.setattr(MediaStore, "load_cache", lambda self, sha: decoded.append(sha))
    before = preview.cache_info()["images"]
    gif = preview.clip_gif(project.media, view.sha256, view.fps)
    after = preview.cache_info()["images"]
    assert gif[:6] == b"GIF89a" and decoded == []  # served as warmed, nothing decoded again
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)


def test_warm_next_does_nothing_for_a_deactivated_reader(project):
    reader = _user(project, "demo-reader")
    claim = labelling.next_item(project.store, reader)
    assert labelling.warm_next(project, {**reader, "active": 0}, claim) is None
