"""Adjudication: expert disagreements, setting the reference, pairwise kappa."""

from __future__ import annotations

import numpy as np
import pytest

from rascore.services import adjudication
from rascore.services.adjudication import AdjudicationError
from rascore.evaluate import weighted_kappa
from rascore.store import accounts
from tests.fixtures_labelling import build_project


@pytest.fixture
def project(tmp_path):
    return build_project(tmp_path / "p", per_modality=4)


def test_disagreements_list_the_items_experts_graded_differently(project):
    store = project.store
    expert = accounts.user(store, "demo-expert")
    rows = adjudication.disagreements(store, expert)
    assert [r["item_id"] for r in rows] == [1, 2, 3, 4]  # the first round, where expert-b differs
    assert rows[0]["differs_on"] == "SH, EOSS" and rows[2]["differs_on"].startswith("SH, PD")
    assert [r["item_id"] for r in adjudication.disagreements(store, expert, modality="SPD")] == [3]
    assert adjudication.disagreements(store, expert, cohort="test1") == []
    grades = adjudication.grades(store, expert, 3)
    assert {g["reader"] for g in grades} == {"expert-a", "expert-b"}
    assert {g["sh"] for g in grades} == {0, 1}


def test_set_reference_resolves_and_is_audited(project):
    store = project.store
    expert = accounts.user(store, "demo-expert")
    ref_id = adjudication.set_reference(store, expert, 3, 1, 1, note="agreed at the meeting")
    reference = adjudication.current_reference(store, expert, 3)
    assert reference["id"] == ref_id and reference["method"] == "adjudication"
    assert (reference["sh"], reference["pd"], reference["combined"]) == (1, 1, 1)
    assert reference["decided_by_name"] == "demo-expert"
    open_ids = [r["item_id"] for r in adjudication.disagreements(store, expert)]
    assert 3 not in open_ids and open_ids == [1, 2, 4]
    all_ids = [r["item_id"] for r in adjudication.disagreements(store, expert, include_resolved=True)]
    assert 3 in all_ids
    audit = store.audit_rows()[0]
    assert audit["action"] == "reference.adjudicate" and audit["user"] == "demo-expert"
    assert "agreed at the meeting" in audit["detail_json"]
    # a later expert grade reopens the item
    store.add_annotation(3, accounts.user(store, "expert-a")["id"], 2, 0)
    assert 3 in [r["item_id"] for r in adjudication.disagreements(store, expert)]


def test_invalid_reference_refused(project):
    store = project.store
    expert = accounts.user(store, "demo-expert")
    with pytest.raises(AdjudicationError, match="SH 0 with PD 3"):
        adjudication.set_reference(store, expert, 3, 0, 3)
    with pytest.raises(AdjudicationError, match="PD grade"):
        adjudication.set_reference(store, expert, 3, 1, None)
    with pytest.raises(AdjudicationError, match="no item"):
        adjudication.set_reference(store, expert, 999, 1, None)


def test_pairwise_kappa_matches_weighted_kappa_on_shared_items(project):
    store = project.store
    expert = accounts.user(store, "demo-expert")
    reader = accounts.user(store, "demo-reader")
    for item in store.items():
        if item["id"] % 2 == 0:
            doppler = item["modality"] in ("SPD", "DPD")
            store.add_annotation(item["id"], reader["id"], 1, 0 if doppler else None)
    result = adjudication.pairwise_agreement(store, expert, min_shared=3)
    assert result.readers == ["demo-reader", "expert-a", "expert-b"]
    a, b = result.readers.index("expert-a"), result.readers.index("expert-b")
    assert result.shared[a, b] == 16 and result.shared[0, a] == 8
    grades = {
        (g["reader"], i["id"]): g
        for i in store.items()
        for g in adjudication.grades(store, expert, i["id"], experts_only=False)
    }
    target = {}
    for (name, item_id), g in grades.items():
        doppler = store.item(item_id)["modality"] in ("SPD", "DPD")
        target[(name, item_id)] = g["combined"] if doppler else g["sh"]
    ids = sorted({i for (_, i) in target})
    expected = weighted_kappa([target[("expert-a", i)] for i in ids], [target[("expert-b", i)] for i in ids])
    assert result.kappa[a, b] == pytest.approx(expected)
    assert np.allclose(result.kappa, result.kappa.T, equal_nan=True)
    pairs = result.pairs()
    assert len(pairs) == 3 and all(p["shared_items"] >= 8 for p in pairs)
    # a new grade invalidates the cached result
    store.add_annotation(1, reader["id"], 3, None)
    again = adjudication.pairwise_agreement(store, expert, min_shared=3)
    assert again.shared[0, a] == 9


def test_too_few_shared_items_give_nan(project):
    store = project.store
    expert = accounts.user(store, "demo-expert")
    store.add_annotation(1, accounts.user(store, "demo-reader")["id"], 1, None)
    result = adjudication.pairwise_agreement(store, expert, min_shared=5)
    i = result.readers.index("demo-reader")
    assert np.isnan(result.kappa[i, 1]) and result.shared[i, 1] == 1
