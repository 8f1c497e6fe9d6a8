"""rascore.services.dashboard: the right numbers for a known store, the incremental cache, honest undefined
values, cross-modality comparisons only on the same cases, the reader study, and permissions."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from rascore.services import dashboard
from rascore.services.dashboard import crossmodality
from rascore.evaluate import (
    expected_calibration_error,
    per_grade_auc,
    reader_study,
    weighted_kappa,
)
from rascore.evaluate.obuchowski import paired_auc_per_grade, paired_macro_test
from rascore.permissions import PermissionDenied
from rascore.store import accounts
from rascore.store import registry
from rascore.store import results as store_results
from tests.fixtures_dashboard import build_results_project, noisy_probs


@pytest.fixture
def results(tmp_path):
    dashboard.clear_cache()
    project = build_results_project(tmp_path / "p")
    yield project
    dashboard.clear_cache()


def admin(project):
    return accounts.user(project.store, "demo-admin")


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_overview_numbers_equal_rascore_evaluate_on_the_same_arrays(results):
    result = dashboard.overview(results.store, admin(results))
    assert {(s.modality, s.cohort) for s in result.sections} == {
        (m, c) for m in ("SGS", "DGS", "SPD", "DPD") for c in ("test1", "test2")
    }
    assert result.missing == []
    for sec in result.sections:
        ids, y, probs = results.fixture["arrays"][(sec.modality, sec.cohort, 1)]
        (m,) = sec.models
        assert m.model.label == f"{sec.modality} v1" and m.model.active
        np.testing.assert_array_equal(m.item_ids, ids)
        np.testing.assert_array_equal(m.y, y)
        np.testing.assert_allclose(m.probs, probs)
        patients = store_results.patients(results.store, ids.tolist())
        assert all(patients)  # the fixture's items have patients: intervals resample them
        expected = quiet(per_grade_auc, y, probs, n_boot=1000, seed=0, patients=patients)
        for grade, r in expected.items():
            got = m.auc[grade]
            np.testing.assert_equal([got.auc, got.ci_low, got.ci_high], [r.auc, r.ci_low, r.ci_high])
            assert got.cluster == "patient" and got.n_boot_excluded == r.n_boot_excluded
        n_patients = len(set(patients))
        assert sec.resampled == f"Intervals resample patients: {n_patients} patients, {y.size} items"
        assert m.kappa_quadratic == pytest.approx(weighted_kappa(y, probs.argmax(1), "quadratic"))
        assert m.ece == pytest.approx(expected_calibration_error(y, probs))
        assert m.confusion.sum() == y.size and m.n_missing == 0


def test_tables_show_undefined_with_the_reason_never_a_number(results):
    result = dashboard.overview(results.store, admin(results))
    rows = dashboard.auc_rows(result.sections)
    grade3_test2 = [r for r in rows if r["cohort"] == "test2" and r["grade"] == 3]
    assert len(grade3_test2) == 4
    for r in grade3_test2:
        assert r["AUC"] is None and r["AUC (95% CI)"] == "undefined"
        assert "no case of grade 3" in r["reason"]
    defined = [r for r in rows if r["cohort"] == "test1"]
    assert all(r["AUC"] is not None and "(" in r["AUC (95% CI)"] for r in defined)
    table = dashboard.auc_table_rows(result.sections)
    sgs2 = next(r for r in table if r["model"] == "SGS v1" and r["cohort"] == "test2")
    assert sgs2["grade 3"] == "undefined" and "grade 3: no case of grade 3" in sgs2["reason"]


def test_cache_recomputes_only_the_sections_that_changed(results):
    store, user = results.store, admin(results)
    first = dashboard.overview(store, user)
    assert dashboard.cache_stats()["section_computed"] == 8
    assert dashboard.overview(store, user) is first  # nothing changed: the same object
    assert dashboard.cache_stats()["overview_unchanged"] == 1

    # a new reference label on one SGS test1 item: only that section is recomputed
    item = int(results.fixture["arrays"][("SGS", "test1", 1)][0][0])
    store.set_reference(item, 3, None, "adjudication")
    second = dashboard.overview(store, user)
    stats = dashboard.cache_stats()
    assert stats["section_computed"] == 9 and stats["section_reused"] == 7
    changed = next(s for s in second.sections if (s.modality, s.cohort) == ("SGS", "test1"))
    assert changed.models[0].y[0] == 3
    kept = next(s for s in second.sections if (s.modality, s.cohort) == ("DGS", "test1"))
    assert kept is next(s for s in first.sections if (s.modality, s.cohort) == ("DGS", "test1"))

    # predictions re-stored for the same items (an upsert: same ids and count): SPD test2 only
    ids, y, _ = results.fixture["arrays"][("SPD", "test2", 1)]
    spd = registry.active_version(store, "SPD")["id"]
    time.sleep(0.002)
    new = noisy_probs(np.random.default_rng(9), y, 2.0)
    registry.save_predictions(store, spd, [(int(i), int(p.argmax()), p.tolist()) for i, p in zip(ids, new)])
    third = dashboard.overview(store, user)
    stats = dashboard.cache_stats()
    assert stats["section_computed"] == 10 and stats["section_reused"] == 14
    sec = next(s for s in third.sections if (s.modality, s.cohort) == ("SPD", "test2"))
    np.testing.assert_allclose(sec.models[0].probs, new)

    # promoting another SGS version: both SGS sections change, nothing else
    registry.promote_version(store, "SGS", 2)
    fourth = dashboard.overview(store, user)
    stats = dashboard.cache_stats()
    assert stats["section_computed"] == 12 and stats["section_reused"] == 20
    assert {s.models[0].model.label for s in fourth.sections if s.modality == "SGS"} == {"SGS v2"}
    sgs_test2 = next(s for s in fourth.sections if (s.modality, s.cohort) == ("SGS", "test2"))
    assert sgs_test2.empty and sgs_test2.models[0].n_missing == 24  # v2 has no test2 predictions


def test_section_compares_chosen_versions_with_delong_on_shared_items(results):
    store, user = results.store, admin(results)
    choices = dashboard.version_choices(store, user, "SGS")
    assert [(m.label, m.active) for m in choices] == [("SGS v2", False), ("SGS v1", True)]
    sec = dashboard.section(store, user, "SGS", "test1", [c.id for c in reversed(choices)])
    assert [m.model.label for m in sec.models] == ["SGS v1", "SGS v2"]
    _, y, p1 = results.fixture["arrays"][("SGS", "test1", 1)]
    _, _, p2 = results.fixture["arrays"][("SGS", "test1", 2)]
    ids = results.fixture["arrays"][("SGS", "test1", 1)][0]
    patients = store_results.patients(store, ids.tolist())
    expected = quiet(paired_auc_per_grade, y, p1, p2, patients)
    assert len(sec.delong) == 5  # four grades and the macro average
    for got, want in zip(sec.delong, expected):
        assert (got["a"], got["b"], got["n"], got["grade"]) == ("SGS v1", "SGS v2", 24, want["grade"])
        assert got["method"] == "obuchowski" and got["n_clusters"] == len(set(patients))
        assert got["p"] == pytest.approx(want["p"]) and got["z"] == pytest.approx(want["z"])
    macro = quiet(paired_macro_test, y, p1, p2, patients)
    assert sec.delong[4]["grade"] == "macro" and sec.delong[4]["p"] == pytest.approx(macro["p"])
    shown = dashboard.delong_rows(sec.delong)
    assert shown[0]["test"] == "obuchowski" and shown[0]["patients"] == len(set(patients))
    # the default is the active version only; the detail view is cached like the overview
    assert [m.model.label for m in dashboard.section(store, user, "SGS", "test1").models] == ["SGS v1"]
    assert dashboard.section(store, user, "SGS", "test1") is dashboard.section(store, user, "SGS", "test1")


def test_between_modalities_every_matched_joint_against_the_joint_combined_eoss(results):
    result = dashboard.overview(results.store, admin(results))
    pairs = {(r["cohort"], r["a"], r["b"]) for r in result.cross}
    assert ("test1", "SGS v1", "SPD v1") in pairs and ("test2", "DGS v1", "DPD v1") in pairs
    assert len(pairs) == 12  # 6 pairs of modalities x 2 cohorts
    assert {r["reference"] for r in result.cross} == {"combined EOSS of the joint"}
    n = {(r["cohort"], r["a"], r["b"]): r["n"] for r in result.cross}
    # case 0 of test1 (SH 1, combined EOSS 3) is kept: every matched joint counts
    assert set(n.values()) == {24}
    assert {r["patients"] for r in result.cross} == {12}  # two joints a patient
    assert any(
        "SGS v1 vs SPD v1 on test1: all 24 matched joints compared against the combined "
        "EOSS of the joint; on 1 of them a greyscale item's own SH reference differs" in note
        for note in result.cross_notes
    )
    assert not any("left out" in note for note in result.cross_notes)
    # the greyscale model's SH probabilities predict the joint's combined EOSS: for SGS against
    # SPD and DGS alike the reference is the Doppler items' combined grade (3 on case 0, not SH 0)
    arrays = results.fixture["arrays"]
    _, combined, p_spd = arrays[("SPD", "test1", 1)]
    sgs_ids, sh, p_sgs = arrays[("SGS", "test1", 1)]
    patients = store_results.patients(results.store, sgs_ids)
    _, _, p_dgs = arrays[("DGS", "test1", 1)]
    assert combined[0] == 3 and sh[0] == 0 and (combined[1:] == sh[1:]).all()
    for b, p_b in (("SPD v1", p_spd), ("DGS v1", p_dgs)):
        expected = quiet(paired_auc_per_grade, combined, p_sgs, p_b, patients)
        got = [r for r in result.cross if (r["cohort"], r["a"], r["b"]) == ("test1", "SGS v1", b)]
        assert [g["grade"] for g in got] == [0, 1, 2, 3]
        assert [g["p"] for g in got] == pytest.approx([e["p"] for e in expected])
        assert [g["auc_a"] for g in got] == pytest.approx([e["auc_a"] for e in expected])
        assert {g["method"] for g in got} == {"obuchowski"}  # two joints a patient: clustered
    got = [r for r in result.cross if (r["cohort"], r["a"], r["b"]) == ("test2", "SGS v1", "DGS v1")]
    assert np.isnan(got[3]["p"]) and got[3]["reason"]  # no grade 3 in test2
    table = dashboard.cross_rows(result.cross)
    assert table[0]["reference"] == "combined EOSS of the joint" and table[0]["joints"] == 24
    assert table[0]["patients"] == 12 and table[0]["method"] == "obuchowski"


def test_joint_reference_takes_the_higher_doppler_grade_and_counts_what_it_lacks(results):
    store = results.store
    spd = sorted(results.fixture["truth"]["SPD"]["test2"])
    dpd = sorted(results.fixture["truth"]["DPD"]["test2"])
    store.set_reference(spd[1], 2, 3, "adjudication")  # the still of case 1 now shows EOSS 3
    ref = crossmodality.joint_reference(store, "test2")
    key = ("pt-test2-0", "MCP3", "R")
    assert ref.combined[key] == 3 and ref.sh[key] == 2 and ref.split == frozenset({key})
    assert ref.doppler_item[spd[1]] == 3 and ref.doppler_item[dpd[1]] == 1
    result = dashboard.overview(store, admin(results))
    assert any(
        "SGS v1 vs DGS v1 on test2: on 1 joints the Doppler items' references differ" in note
        for note in result.cross_notes
    )
    # a joint with no Doppler reference is left out of a greyscale pair, and counted
    sections = [s for s in result.sections if s.cohort == "test2" and s.modality in ("SGS", "DGS")]
    keys = {s.modality: crossmodality.case_keys(store, s.modality, "test2") for s in sections}
    lacking = dashboard.JointReference(
        {k: v for k, v in ref.combined.items() if k != key}, ref.sh, {}, frozenset()
    )
    rows, notes = crossmodality.compare_modalities(store, *sections, keys["SGS"], keys["DGS"], lacking)
    assert {r["n"] for r in rows} == {23}
    assert any("1 of 24 matched joints left out" in note for note in notes)
    # ... unless its SH settles the combined EOSS (SH 0: no PD can count): case 0, SH 0
    zero = ("pt-test2-0", "MCP2", "R")
    assert ref.sh[zero] == 0
    settled = dashboard.JointReference(
        {k: v for k, v in ref.combined.items() if k != zero}, ref.sh, {}, frozenset()
    )
    rows, notes = crossmodality.compare_modalities(store, *sections, keys["SGS"], keys["DGS"], settled)
    assert {r["n"] for r in rows} == {24} and {r["reference"] for r in rows} == {dashboard.CROSS_REFERENCE}
    assert any(
        "on 1 joints without a Doppler item the combined EOSS is the SH reference" in note for note in notes
    )
    # no Doppler reference at all: the joint's SH, and the rows say so
    sh_only = dashboard.JointReference({}, ref.sh, {}, frozenset())
    rows, _ = crossmodality.compare_modalities(store, *sections, keys["SGS"], keys["DGS"], sh_only)
    assert {r["reference"] for r in rows} == {dashboard.CROSS_REFERENCE_SH} and rows[0]["n"] == 24


def test_case_matching_prefers_the_same_file_and_skips_ambiguous_keys():
    a = {
        1: ("f1", ("p", "MCP2", "R")),
        2: ("f2", ("p", "MCP3", "R")),
        3: ("f3", ("q", "MCP2", "L")),
        4: ("f4", ("q", "MCP2", "L")),
        5: ("f5", None),
    }
    b = {
        10: ("f9", ("p", "MCP2", "R")),
        11: ("f2", ("x", "MCP3", "R")),
        12: ("f8", ("q", "MCP2", "L")),
        13: ("f5", ("z", "MCP3", "R")),
    }
    assert crossmodality.match_cases(a, b) == [(1, 10), (2, 11), (5, 13)]


def test_baseline_rows_from_stored_figures(results):
    result = dashboard.overview(results.store, admin(results))
    rows = dashboard.baseline_rows(result.sections)
    assert rows == [
        {
            "scored": "SPD v1",
            "beside": "SPD v1",
            "cohort": "test1",
            "reference": "PD",
            "AUC 0": "0.810",
            "AUC 1": "undefined (n_pos 0)",
            "AUC 2": "0.740",
            "AUC 3": "0.950",
            "macro AUC": "0.833",
            "accuracy": "0.600",
        },
        {
            "scored": "PD-only colour rule",
            "beside": "SPD v1",
            "cohort": "test1",
            "reference": "PD",
            "AUC 0": "0.710",
            "AUC 1": "undefined (n_pos 0)",
            "AUC 2": "0.640",
            "AUC 3": "0.900",
            "macro AUC": "0.750",
            "accuracy": "0.500",
        },
    ]


def test_published_figures_are_labelled_as_published():
    rows = dashboard.published_rows()
    assert [(r["grade"], r["best model (published)"], r["AUC (published)"]) for r in rows] == [
        (0, "DPD", 0.87),
        (1, "SGS", 0.95),
        (2, "DGS", 0.74),
        (3, "SPD", 0.95),
    ]
    assert all("published" in key for r in rows for key in r if "AUC" in key)
    spd = dashboard.published_spd_sgs_rows()
    assert spd[0] == {
        "cohort": "test1",
        "grade": 0,
        "SPD AUC (published)": 0.82,
        "SGS AUC (published)": 0.66,
        "source": "He et al. 2024",
    }


def test_reader_study_matches_rascore_evaluate_and_leaves_out_the_reference_experts(results):
    store, user = results.store, admin(results)
    out = dashboard.reader_results(store, user, "SGS", n_boot=200)
    assert set(out.study["raters"]) == {"junior-1", "junior-2", "senior-1"}
    assert out.excluded_readers == ["expert-a"]
    assert list(out.models) == ["SGS v1"] and out.n_reference == 48
    # the same study from the store's rows, through rascore.evaluate directly
    truth = {**results.fixture["truth"]["SGS"]["test1"], **results.fixture["truth"]["SGS"]["test2"]}
    reads: dict[str, dict[int, int]] = {}
    for row in store.latest_annotations():
        if row["item_id"] in truth and row["role"] == "reader":
            reads.setdefault(row["reader"], {})[row["item_id"]] = row["sh"]
    preds = {}
    for cohort in ("test1", "test2"):
        ids, _, probs = results.fixture["arrays"][("SGS", cohort, 1)]
        preds.update({int(i): int(p.argmax()) for i, p in zip(ids, probs)})
    levels = {"junior-1": "junior", "junior-2": "junior", "senior-1": "senior"}
    patients = {i: store.item(i)["patient"] for i in truth}
    expected = quiet(reader_study, truth, reads, levels, {"SGS v1": preds}, n_boot=200, patients=patients)
    for name in levels:
        assert out.study["raters"][name]["kappa_quadratic"] == pytest.approx(
            expected["raters"][name]["kappa_quadratic"]
        )
        assert out.study["raters"][name]["icc"] == pytest.approx(expected["raters"][name]["icc"])
    assert out.study["models"]["SGS v1"]["beats"] == expected["models"]["SGS v1"]["beats"]
    for reader, c in out.study["models"]["SGS v1"]["vs_readers"].items():
        want = expected["models"]["SGS v1"]["vs_readers"][reader]
        assert (c["cluster"], c["n_clusters"]) == ("patient", 24)  # 48 images of 24 patients
        assert (c["p"], c["p_holm"], c["verdict"]) == (want["p"], want["p_holm"], want["verdict"])
    assert dashboard.resampling_line(out) == (
        "Comparisons resample patients: 24 patients behind the 48 reference items, 200 resamples."
    )
    rows = dashboard.reader_rows(out)
    assert [r["who"] for r in rows] == ["junior-1", "junior-2", "senior-1", "SGS v1"]
    assert rows[-1]["kind"] == "model"
    assert [r["level"] for r in dashboard.level_rows(out)] == ["junior", "senior"]
    versus = dashboard.versus_rows(out)
    assert {r["reader"] for r in versus} == set(levels) and all(r["shared items"] == 48 for r in versus)
    for row in versus:
        c = out.study["models"]["SGS v1"]["vs_readers"][row["reader"]]
        assert row["patients"] == 24 and row["verdict"] == c["verdict"]
        assert row["interval (Holm level)"] == (
            f"{c['ci_low_holm']:.3f} to {c['ci_high_holm']:.3f} ({100 * c['level']:.1f}%)"
        )
    lines = dashboard.verdict_lines(out)
    assert len(lines) == 1 and lines[0].startswith("SGS v1 beats ")
    # with the experts included they appear, with a perfect agreement on their own reference
    with_experts = dashboard.reader_results(store, user, "SGS", include_reference_readers=True, n_boot=200)
    assert with_experts.study["raters"]["expert-a"]["accuracy"] == 1.0


def test_reader_study_all_modalities_is_cached_until_a_grade_changes(results):
    store, user = results.store, admin(results)
    first = dashboard.reader_results(store, user, None, n_boot=100)
    assert set(first.models) == {"SGS v1", "DGS v1", "SPD v1", "DPD v1"}
    assert all(first.study["models"][m]["n"] == 48 for m in first.models)  # its own items only
    assert dashboard.reader_results(store, user, None, n_boot=100) is first
    item = int(results.fixture["arrays"][("SGS", "test1", 1)][0][0])
    store.add_annotation(item, accounts.user(store, "junior-1")["id"], 3)
    second = dashboard.reader_results(store, user, None, n_boot=100)
    assert second is not first and dashboard.cache_stats()["reader_study_computed"] == 2


def test_sensitivity_specificity_rows_undefined_where_no_case(results):
    out = dashboard.reader_results(results.store, admin(results), "DGS", cohorts=("test2",), n_boot=50)
    rows = dashboard.sens_spec_rows(out)
    assert rows and all(r["sens 3"] == "undefined" for r in rows)  # test2 has no grade 3
    assert all(r["spec 3"] != "undefined" for r in rows)


def test_a_reader_is_refused_by_the_library(results):
    reader = accounts.user(results.store, "demo-reader")
    for call in (
        lambda: dashboard.overview(results.store, reader),
        lambda: dashboard.section(results.store, reader, "SGS", "test1"),
        lambda: dashboard.version_choices(results.store, reader, "SGS"),
        lambda: dashboard.reader_results(results.store, reader),
    ):
        with pytest.raises(PermissionDenied, match="demo-reader \\(reader\\) may not see results"):
            call()


def test_summary_shows_the_stored_ece_before_the_prior_correction_and_crop_fallbacks(results):
    result = dashboard.overview(results.store, admin(results))
    rows = {(r["model"], r["cohort"]): r for r in dashboard.summary_rows(result.sections)}
    spd = rows[("SPD v1", "test1")]
    assert spd["ECE before prior correction"] == "0.250" and spd["crop fell back"] == 4
    # a version whose card stored no calibration says so rather than inventing a figure
    assert rows[("SGS v1", "test1")]["ECE before prior correction"] == "undefined"


def test_test3_is_reported_where_the_project_holds_it(tmp_path):
    from rascore.services.dashboard.sections import reported_cohorts
    from rascore.store import Store

    store = Store(tmp_path / "x.db")
    assert reported_cohorts(store) == ("test1", "test2")
    store.add_media("c" * 64, format="png", kind="image", nbytes=10, frames=1, height=4, width=4, fps=None)
    store.add_item(media_sha256="c" * 64, modality="SGS", cohort="test3", frames=1, fps=None)
    assert reported_cohorts(store) == ("test1", "test2", "test3")
