"""The reading-study figures of rascore.evaluate.study on hand-made tables: aided - unaided MRMC
whatever order the reads come in, levels, cumulative per-grade AUC, kappa with paired patient
bootstrap intervals, and the single AUC's DeLong interval against R pROC's published output."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from rascore.evaluate.agreement import kappa_replicates, paired_kappa_bootstrap
from rascore.evaluate.delong import delong_auc_ci
from rascore.evaluate.mrmc import ONE_READER, mrmc_analysis
from rascore.evaluate.study import arm_difference, by_level, cumulative_auc, kappa_figures, single_kappa
from rascore.evaluate.undefined import UndefinedMetricWarning
from tests.test_evaluate_delong import ASAH_NDKA, ASAH_POOR, ASAH_S100B

READERS = ("r1", "r2", "r3")


def _reads(seed: int = 0, n_cases: int = 30) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A long table, unaided rows first, aided grades nearer the reference; the reference grades
    and the (2 arms: aided, unaided; readers; cases) grades."""
    rng = np.random.default_rng(seed)
    reference = np.arange(n_cases) % 4
    grades = np.empty((2, len(READERS), n_cases), dtype=int)
    for j in range(len(READERS)):
        grades[0, j] = np.clip(reference + rng.choice([-1, 0, 0, 0, 0, 1], n_cases), 0, 3)
        grades[1, j] = np.clip(reference + rng.choice([-2, -1, 0, 1, 2], n_cases), 0, 3)
    rows = [
        {"reader": reader, "case": c, "truth": int(reference[c] >= 1), "arm": arm, "score": grades[i, j, c]}
        for i, arm in ((1, "unaided"), (0, "aided"))
        for j, reader in enumerate(READERS)
        for c in range(n_cases)
    ]
    return pd.DataFrame(rows), reference, grades


def test_the_difference_is_aided_minus_unaided_when_unaided_reads_come_first():
    table, reference, grades = _reads()
    assert table["arm"].iloc[0] == "unaided"
    diff, result = arm_difference(table)
    assert result.arms == ("aided", "unaided")
    aucs = {
        arm: np.mean([roc_auc_score(reference >= 1, grades[i, j]) for j in range(len(READERS))])
        for i, arm in enumerate(("aided", "unaided"))
    }
    assert diff.auc_aided == pytest.approx(aucs["aided"]) and diff.auc_unaided == pytest.approx(
        aucs["unaided"]
    )
    assert diff.diff == pytest.approx(aucs["aided"] - aucs["unaided"]) and diff.diff > 0
    # as given (unaided first) mrmc reports unaided - aided: the same test with the sign flipped
    as_given = mrmc_analysis(table).rrrc
    assert as_given["diff"] == pytest.approx(-diff.diff)
    assert (diff.ci_low, diff.ci_high) == pytest.approx((-as_given["ci_high"], -as_given["ci_low"]))
    assert diff.p == pytest.approx(as_given["p"]) and diff.ddf == pytest.approx(as_given["ddf"])
    assert diff.ci_low < diff.diff < diff.ci_high and diff.reason is None


def test_levels_one_reader_gives_the_difference_only_and_a_refused_table_says_why():
    table, reference, grades = _reads(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        rows = by_level(
            table, {"r1": "junior", "r2": "junior", "r3": "senior"}, ("junior", "intermediate", "senior")
        )
    junior, intermediate, senior = rows
    assert junior.readers == ("r1", "r2") and junior.reason is None and not np.isnan(junior.p)
    assert np.isnan(intermediate.diff) and intermediate.reason == "no intermediate reader in the analysis"
    expected = roc_auc_score(reference >= 1, grades[0, 2]) - roc_auc_score(reference >= 1, grades[1, 2])
    assert senior.diff == pytest.approx(expected)
    assert np.isnan(senior.ci_low) and np.isnan(senior.p) and senior.reason == ONE_READER
    one_negative = table[(table["case"] % 4 != 0) | (table["case"] == 0)]  # only case 0 is negative
    with pytest.warns(UndefinedMetricWarning):
        refused, result = arm_difference(one_negative)
    assert result is None and np.isnan(refused.diff)
    assert refused.reason.startswith("the MRMC analysis refused the reads: only one case (0) has truth 0")


def test_cumulative_auc_takes_grade_g_or_more_against_less_with_the_grade_as_rating():
    reference = np.array([0, 0, 1, 1, 2, 2, 2, 0, 1, 2])  # no grade 3
    ratings = np.array([[0, 1, 1, 2, 2, 3, 1, 0, 1, 2], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]])
    with pytest.warns(UndefinedMetricWarning, match="no case graded 3 or higher"):
        found = cumulative_auc(reference, ratings)
    for g in (1, 2):
        expected = [roc_auc_score(reference >= g, row) for row in ratings]
        assert found[g].auc == pytest.approx(expected)
        assert (found[g].n_pos, found[g].n_neg) == (int((reference >= g).sum()), int((reference < g).sum()))
    assert found[1].auc[1] == 0.5  # a constant rating: every pair tied
    assert np.isnan(found[3].auc).all() and found[3].n_pos == 0 and "undefined" in found[3].reason


def test_kappa_figures_are_paired_on_one_stream_of_patient_resamples():
    _, reference, grades = _reads(seed=2, n_cases=40)
    patients = [f"p{c // 4}" for c in range(40)]  # 10 patients, 4 joints each
    found = kappa_figures(reference, grades, ("aided", "unaided"), READERS, patients, n_boot=400, seed=5)
    assert (found.cluster, found.n_clusters, found.n_boot) == ("patient", 10, 400)
    cells = found.cells.set_index(["reader", "arm"])
    for i, arm in enumerate(("aided", "unaided")):
        for j, reader in enumerate(READERS):
            cell = cells.loc[(reader, arm)]
            assert cell["kappa"] == pytest.approx(
                cohen_kappa_score(reference, grades[i, j], weights="quadratic")
            )
            assert cell["ci_low"] <= cell["kappa"] <= cell["ci_high"] and cell["n_boot_used"] == 400
    diffs = found.diffs.set_index("reader")
    for j, reader in enumerate(READERS):  # the same resamples as the paired kappa bootstrap
        paired = paired_kappa_bootstrap(
            reference, grades[0, j], grades[1, j], n_boot=400, seed=5, patients=patients
        )
        row = diffs.loc[reader]
        assert row["diff"] == pytest.approx(paired["diff"])
        assert (row["ci_low"], row["ci_high"], row["p"]) == pytest.approx(
            (paired["ci_low"], paired["ci_high"], paired["p"])
        )
    means = found.arms.set_index("arm")["kappa"]
    assert (
        diffs.loc["mean", "diff"] == pytest.approx(means["aided"] - means["unaided"])
        and means["aided"] > means["unaided"]
    )
    assert diffs.loc["mean", "ci_low"] <= diffs.loc["mean", "diff"] <= diffs.loc["mean", "ci_high"]
    # without patient ids the resamples draw cases
    by_item = kappa_figures(reference, grades, ("aided", "unaided"), READERS, None, n_boot=400, seed=5)
    assert (by_item.cluster, by_item.n_clusters) == ("item", 40)


def test_an_undefined_kappa_carries_its_reason_into_every_figure_that_needs_it():
    reference = np.zeros(6, dtype=int)
    grades = np.zeros((2, 2, 6), dtype=int)
    grades[1, 1, :3] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        found = kappa_figures(reference, grades, ("aided", "unaided"), ("a", "b"), None, n_boot=50)
        single = single_kappa(reference, grades[0, 0], n_boot=50)
    cell = found.cells.set_index(["reader", "arm"]).loc[("a", "aided")]
    assert np.isnan(cell["kappa"]) and "chance agreement is perfect" in cell["reason"]
    assert np.isnan(found.arms.set_index("arm").loc["aided", "kappa"])
    assert found.arms.set_index("arm").loc["aided", "reason"] == "the kappa of a is undefined"
    assert "kappa of a is undefined" in found.diffs.set_index("reader").loc["a", "reason"]
    assert np.isnan(single["kappa"]) and "chance agreement" in single["reason"]


def test_kappa_replicates_of_one_grading_match_a_direct_resample():
    reference = np.array([0, 1, 2, 3, 1, 2, 0, 3])
    grades = np.array([0, 1, 1, 3, 2, 2, 0, 2])
    found = kappa_replicates(reference, [grades], n_boot=3, seed=9, patients=list("aabbccdd"))
    from rascore.evaluate.clusters import Clusters, cluster_counts

    counts = cluster_counts(np.random.default_rng(9), Clusters.of(list("aabbccdd")), 3)
    for b in range(3):
        expected = cohen_kappa_score(reference, grades, weights="quadratic", sample_weight=counts[:, b])
        assert found.replicates[0, b] == pytest.approx(expected)


def test_delong_interval_reproduces_r_proc_ci_auc_on_asah():
    """pROC's ``ci.auc`` (DeLong) on its aSAH data, as printed: s100b AUC 0.7314, 95% CI
    0.6301-0.8326; ndka 0.612, 0.5012-0.7227 (pROC's roc/ci.auc output)."""
    for scores, auc, low, high in ((ASAH_S100B, 0.7314, 0.6301, 0.8326), (ASAH_NDKA, 0.612, 0.5012, 0.7227)):
        found = delong_auc_ci(ASAH_POOR, scores)
        assert round(found.auc, 4) == auc and (round(found.ci_low, 4), round(found.ci_high, 4)) == (low, high)
        assert (found.n_pos, found.n_neg) == (41, 72) and found.reason is None


def test_delong_interval_is_clipped_and_undefined_with_a_reason():
    near_perfect = delong_auc_ci([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.6, 0.5, 0.8, 0.9])
    assert near_perfect.ci_high == 1.0 and near_perfect.ci_low < near_perfect.auc < 1.0
    with pytest.warns(UndefinedMetricWarning):
        one = delong_auc_ci([0, 0, 1], [0.1, 0.3, 0.2])
    assert one.auc == 0.5 and np.isnan(one.ci_low) and "at least 2 positive" in one.reason
    with pytest.warns(UndefinedMetricWarning):
        none = delong_auc_ci([0, 0, 0], [0.1, 0.3, 0.2])
    assert np.isnan(none.auc) and none.reason == "no positive case: the AUC is undefined"
