"""The analysis of a reader study (rascore.services.study_analysis) on a study read through the
study service, its tables as text, who may see it, and the patient GLOESS agreement service."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from rascore.evaluate.delong import delong_covariance
from rascore.evaluate.gloess import patient_agreement, patient_scores
from rascore.evaluate.mrmc import ONE_READER
from rascore.export import rater_rows
from rascore.permissions import PermissionDenied
from rascore.services import study_analysis, study_results, study_rows
from rascore.services.dashboard import clear_cache, gloess
from rascore.services.study import StudyError
from rascore.store import accounts
from tests.fixtures_dashboard import build_results_project
from tests.fixtures_study_analysis import READERS, aid_frame, build_study, study_cases


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    project = build_results_project(tmp_path_factory.mktemp("analysis") / "p")
    closed = build_study(project)
    cases = study_cases(project)
    still_open = build_study(
        project,
        "open study",
        close=False,
        partial="senior-1",
        readers={"junior-1": "junior", "senior-1": "senior"},
        items=cases[:12],  # two negative cases (reference 0): the fewest MRMC accepts
    )
    nobody = build_study(
        project, "barely started", close=False, partial="junior-2", readers={"junior-2": "junior"}
    )
    clear_cache()
    return project, {"closed": closed, "open": still_open, "nobody": nobody}


def _user(project, name):
    return accounts.user(project.store, name)


@pytest.fixture(scope="module")
def analysed(built):
    project, ids = built
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # undefined values are caught inside, not leaked as warnings
        found = study_analysis.analyse(
            project.store, _user(project, "demo-expert"), ids["closed"], aid=aid_frame(project)
        )
    table = study_results.reads_table(project.store, _user(project, "demo-admin"), ids["closed"])
    return found, table


def test_mrmc_difference_is_aided_minus_unaided_overall_and_per_level(analysed):
    found, table = analysed
    assert table["arm"].iloc[0] == "unaided"  # a sequential study: unaided reads come first
    auc = {
        (reader, arm): roc_auc_score(part["truth"].astype(int), part["score"].astype(int))
        for (reader, arm), part in table.groupby(["reader", "arm"])
    }
    means = {arm: np.mean([auc[(r, arm)] for r in READERS]) for arm in ("unaided", "aided")}
    o = found.overall
    assert set(o.readers) == set(READERS) and o.reason is None
    assert o.auc_aided == pytest.approx(means["aided"]) and o.auc_unaided == pytest.approx(means["unaided"])
    assert o.diff == pytest.approx(means["aided"] - means["unaided"]) and o.diff > 0
    assert found.mrmc.rrrc["diff"] == pytest.approx(o.diff) and found.mrmc.arms == ("aided", "unaided")
    assert o.ci_low < o.diff < o.ci_high and 0 < o.p < 1
    assert (found.n_cases, found.n_positive, found.n_negative) == (24, 19, 5)
    junior, intermediate, senior = found.levels
    assert junior.readers == ("junior-1", "junior-2") and junior.reason is None and junior.p == junior.p
    for level, reader in ((intermediate, "demo-reader"), (senior, "senior-1")):
        assert level.readers == (reader,) and level.reason == ONE_READER and np.isnan(level.p)
        assert level.diff == pytest.approx(auc[(reader, "aided")] - auc[(reader, "unaided")])
    arm_auc = found.arm_auc.set_index("arm")
    assert arm_auc.loc["aided", "auc"] == pytest.approx(means["aided"])
    single = found.mrmc.rrrc["single"]["unaided"]
    assert (arm_auc.loc["unaided", "ci_low"], arm_auc.loc["unaided", "ci_high"]) == (
        single["ci_low"],
        single["ci_high"],
    )


def test_the_model_alone_is_scored_on_the_same_cases_and_truth(analysed, built):
    found, table = analysed
    project, _ = built
    ids, y, probs = project.fixture["arrays"][("SPD", "test1", 1)]
    truth = (y >= 1).astype(int)
    assert list(ids) == sorted(table["case"].unique())
    expected = roc_auc_score(truth, probs[:, 1:].sum(axis=1))
    aucs, cov = delong_covariance(truth, probs[:, 1:].sum(axis=1)[None, :])
    se = float(np.sqrt(cov[0, 0]))
    m = found.model
    assert m["auc"] == pytest.approx(expected) and m["reason"] is None and m["n_cases"] == 24
    assert m["ci_low"] == pytest.approx(max(0.0, expected - 1.959964 * se), abs=1e-6)
    assert m["ci_high"] == pytest.approx(min(1.0, expected + 1.959964 * se), abs=1e-6)
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, probs.argmax(axis=1), weights="quadratic"))
    rows = {r["who"]: r for r in study_rows.model_rows(found)}
    assert rows["model alone"]["AUC"] == f"{expected:.3f}" and rows["model alone"]["AUC interval"] == "DeLong"
    assert rows["readers, aided (mean of 4)"]["AUC"] == f"{found.overall.auc_aided:.3f}"


def test_per_grade_auc_uses_cumulative_splits_and_the_first_is_the_mrmc_figure(analysed):
    found, table = analysed
    readers = found.per_grade[found.per_grade["kind"] == "reader"]
    for row in readers.to_dict("records"):
        part = table[(table["reader"] == row["who"]) & (table["arm"] == row["arm"])]
        ref, score = part["reference"].astype(int), part["score"].astype(int)
        for g in (1, 2, 3):
            assert row[f">={g}"] == pytest.approx(roc_auc_score(ref >= g, score)), (row["who"], g)
        k = found.mrmc.readers.index(row["who"])
        assert row[">=1"] == pytest.approx(found.mrmc.reader_auc[found.mrmc.arms.index(row["arm"]), k])
    mean = found.per_grade[(found.per_grade["kind"] == "mean") & (found.per_grade["arm"] == "aided")].iloc[0]
    assert mean[">=2"] == pytest.approx(readers[readers["arm"] == "aided"][">=2"].mean())
    assert mean["n >=2"] == "13/11"
    assert list(found.per_grade["who"]).count("model alone") == 1


def test_kappa_per_reader_and_arm_with_patient_bootstrap_intervals(analysed):
    found, table = analysed
    assert (found.cluster, found.n_clusters) == ("patient", 12)
    cells = found.kappa.cells.set_index(["reader", "arm"])
    for (reader, arm), part in table.groupby(["reader", "arm"]):
        expected = cohen_kappa_score(
            part["reference"].astype(int), part["score"].astype(int), weights="quadratic"
        )
        cell = cells.loc[(reader, arm)]
        assert cell["kappa"] == pytest.approx(expected) and cell["ci_low"] <= expected <= cell["ci_high"]
    diffs = found.kappa.diffs.set_index("reader")
    assert (diffs["diff"] > 0).all()  # aided reads are nearer the reference for every reader
    rows = study_rows.kappa_rows(found)
    assert [r["reader"] for r in rows] == [*READERS, "mean of readers"]
    assert rows[0]["kappa aided"] == f"{cells.loc[('junior-1', 'aided'), 'kappa']:.3f}"
    assert "12 patients behind the 24 cases" in study_rows.resampling_line(found)


def test_per_reader_figures_and_times(analysed):
    found, _ = analysed
    per = found.per_reader.set_index("reader")
    assert list(found.per_reader["reader"]) == ["junior-1", "junior-2", "demo-reader", "senior-1"]
    assert set(per["median s unaided"]) == {30.0} and set(per["median s aided"]) == {12.0}
    assert set(per["reads unaided"]) == {24} and per["status"].isna().all()
    k = found.mrmc.readers.index("senior-1")
    assert per.loc["senior-1", "AUC aided"] == pytest.approx(found.mrmc.reader_auc[0, k])
    assert per.loc["senior-1", "AUC aided - unaided"] == pytest.approx(found.levels[2].diff)
    text = study_rows.reader_rows(found)
    assert text[0]["median s/read unaided"] == "30.0" and text[0]["status"] == "analysed"
    assert "Aided - unaided mean AUC: +" in study_rows.summary_line(found)


def test_the_model_column_is_the_aid_each_case_showed_or_says_why_there_is_none(built):
    project, ids = built
    expert = _user(project, "demo-expert")
    found = study_analysis.analyse(project.store, expert, ids["closed"], n_boot=50)
    given = study_analysis.analyse(project.store, expert, ids["closed"], aid=aid_frame(project), n_boot=50)
    assert found.model["source"] == "SPD v1"  # frozen when the study opened
    assert found.model["auc"] == pytest.approx(given.model["auc"]) and found.model["n_cases"] == found.n_cases
    assert study_rows.model_rows(found)[-1]["who"] == "model alone: SPD v1"
    # graded on SH, the study's combined-EOSS aid does not apply: no model figures, and why
    found = study_analysis.analyse(project.store, expert, ids["closed"], grade="SH", n_boot=50)
    row = study_rows.model_rows(found)[-1]
    assert row["AUC"] == "undefined" and row["reason"] == study_analysis.NO_AID
    assert "model alone" not in set(found.per_grade["who"])
    aid = aid_frame(project)
    with pytest.raises(StudyError, match="list case .* twice"):
        study_analysis.analyse(project.store, expert, ids["closed"], aid=pd.concat([aid, aid.head(1)]))
    with pytest.raises(StudyError, match="between 0 and 1"):
        study_analysis.analyse(project.store, expert, ids["closed"], aid=aid.assign(prob=aid["prob"] + 1))
    part = study_analysis.analyse(project.store, expert, ids["closed"], aid=aid.iloc[4:], n_boot=50)
    assert (
        part.model["n_cases"] == 20
        and "4 of the 24 cases have no model probability" in part.model["notes"][0]
    )


def test_a_reader_still_reading_is_left_out_and_named(built):
    project, ids = built
    admin = _user(project, "demo-admin")
    found = study_analysis.analyse(project.store, admin, ids["open"], n_boot=50)
    assert found.overall.readers == ("junior-1",) and found.overall.reason == ONE_READER
    assert found.notes == ["senior-1 read 5 of 24: left out until every case is read in both arms"]
    per = found.per_reader.set_index("reader")
    assert (
        np.isnan(per.loc["senior-1", "AUC aided"])
        and per.loc["junior-1", "AUC aided"] == per.loc["junior-1", "AUC aided"]
    )
    none = study_analysis.analyse(project.store, admin, ids["nobody"], n_boot=50)
    assert none.overall is None and none.reason.startswith("no reader has read every case")
    assert study_rows.summary_line(none) == none.reason and len(study_rows.reader_rows(none)) == 1


def test_who_may_see_which_study(built):
    project, ids = built
    admin, expert, reader = (_user(project, n) for n in ("demo-admin", "demo-expert", "junior-1"))
    assert [s["id"] for s in study_analysis.analysable_studies(project.store, admin)] == sorted(ids.values())
    assert [s["id"] for s in study_analysis.analysable_studies(project.store, expert)] == [ids["closed"]]
    with pytest.raises(PermissionDenied):
        study_analysis.analysable_studies(project.store, reader)
    with pytest.raises(PermissionDenied, match="once it is closed"):
        study_analysis.analyse(project.store, expert, ids["open"])
    with pytest.raises(PermissionDenied):
        study_analysis.analyse(project.store, reader, ids["closed"])
    with pytest.raises(StudyError, match="no study 999"):
        study_analysis.analyse(project.store, admin, 999)


def test_gloess_agreement_of_readers_and_models_against_the_reference(built):
    project, _ = built
    expert = _user(project, "demo-expert")
    found = gloess.gloess_agreement(project.store, expert)
    raters = {(a.modality, a.rater) for a in found.agreements}
    assert {
        ("SPD", "junior-1"),
        ("DPD", "senior-1"),
        ("SPD", "model:SPD v1"),
        ("DPD", "model:DPD v1"),
    } <= raters
    assert found.excluded_readers == ["expert-a"] and not any(r == "expert-a" for _, r in raters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = patient_agreement(
            patient_scores([r for r in rater_rows(project.store) if r["cohort"] != "train"])
        )
    expected = next(a for a in direct if (a.modality, a.rater) == ("SPD", "junior-1"))
    mine = gloess.bland_altman_points(found, "SPD", "junior-1")
    assert mine.n_patients == expected.n_patients == 24 and mine.icc == pytest.approx(expected.icc)
    assert mine.bland_altman.loa_low == pytest.approx(expected.bland_altman.loa_low)
    rows = gloess.agreement_rows(found)
    assert {r["GLOESS"] for r in rows} == {"static (SPD)", "dynamic (DPD)"}
    joints = gloess.joint_count_rows(found)
    assert joints == [
        {"GLOESS": "static (SPD)", "joints per patient": 2, "patients": 24},
        {"GLOESS": "dynamic (DPD)", "joints per patient": 2, "patients": 24},
    ]
    with_experts = gloess.gloess_agreement(project.store, expert, include_reference_readers=True)
    assert any(a.rater == "expert-a" for a in with_experts.agreements) and not with_experts.excluded_readers
    with pytest.raises(PermissionDenied):
        gloess.gloess_agreement(project.store, _user(project, "junior-1"))
