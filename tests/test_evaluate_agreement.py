"""Accuracy, confusion, weighted kappa and sens/spec against scikit-learn; the NaN paths."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, recall_score

from rascore.evaluate import (
    UndefinedMetricWarning,
    accuracy,
    confusion,
    kappa_from_confusions,
    paired_kappa_bootstrap,
    sensitivity_specificity,
    weighted_kappa,
)
from rascore.evaluate.agreement import bootstrap_p, percentile_interval


def gradings(n: int, seed: int, p_wrong: float = 0.4):
    """A reference grading and a noisy copy one grade off now and then."""
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 4, n)
    step = rng.choice([-1, 0, 1], size=n, p=[p_wrong / 2, 1 - p_wrong, p_wrong / 2])
    return ref, np.clip(ref + step, 0, 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_and_confusion_equal_sklearn(seed):
    ref, pred = gradings(200, seed)
    assert accuracy(ref, pred) == accuracy_score(ref, pred)
    np.testing.assert_array_equal(confusion(ref, pred), confusion_matrix(ref, pred))
    assert confusion(ref, pred).shape == (4, 4)


def test_confusion_is_4x4_even_when_grades_are_missing():
    cm = confusion([0, 0, 1], [0, 1, 1])
    assert cm.shape == (4, 4) and cm.sum() == 3 and cm[0, 1] == 1


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_kappa_equals_sklearn(weights, seed):
    ref, pred = gradings(300, seed)
    assert weighted_kappa(ref, pred, weights) == pytest.approx(
        cohen_kappa_score(ref, pred, weights=weights), abs=1e-12
    )


def test_weighted_kappa_uses_grade_distances_when_a_grade_is_absent():
    a, b = [0, 0, 2, 3, 3], [0, 2, 2, 3, 0]
    expected = cohen_kappa_score(a, b, weights="linear", labels=[0, 1, 2, 3])
    assert weighted_kappa(a, b) == pytest.approx(expected)
    assert weighted_kappa(a, b) != pytest.approx(cohen_kappa_score(a, b, weights="linear"))


def test_kappa_undefined_when_both_constant_and_equal():
    with pytest.warns(UndefinedMetricWarning, match="0/0"):
        value = weighted_kappa([2, 2, 2], [2, 2, 2], "quadratic")
    assert np.isnan(value) and "constant" in value.reason
    with pytest.warns(UndefinedMetricWarning, match="no items"):
        assert np.isnan(weighted_kappa([], []))
    with pytest.warns(UndefinedMetricWarning, match="no items"):
        assert np.isnan(accuracy([], []))


def test_bad_weights_and_lengths_raise():
    with pytest.raises(ValueError, match="weights"):
        weighted_kappa([0, 1], [0, 1], "cubic")
    with pytest.raises(ValueError, match="items"):
        weighted_kappa([0, 1], [0])


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
def test_kappa_from_confusions_equals_sklearn_with_counts_as_weights(weights):
    ref, pred = gradings(80, 3)
    rng = np.random.default_rng(4)
    many = []
    expected = []
    for _ in range(5):
        w = rng.integers(0, 3, ref.size)
        many.append(confusion_matrix(ref, pred, labels=[0, 1, 2, 3], sample_weight=w))
        expected.append(cohen_kappa_score(ref, pred, weights=weights, sample_weight=w, labels=[0, 1, 2, 3]))
    np.testing.assert_allclose(kappa_from_confusions(np.array(many), weights), expected)
    assert np.isnan(kappa_from_confusions(np.diag([0, 5, 0, 0]), weights))


def test_paired_kappa_bootstrap_identical_gradings_and_clear_winner():
    ref, good = gradings(300, 5, p_wrong=0.1)
    _, poor = gradings(300, 5, p_wrong=0.8)
    same = paired_kappa_bootstrap(ref, good, good, n_boot=300)
    assert same["diff"] == 0 and same["p"] == 1.0
    better = paired_kappa_bootstrap(ref, good, poor, n_boot=500)
    assert better["kappa_a"] == pytest.approx(weighted_kappa(ref, good, "quadratic"))
    assert better["kappa_b"] == pytest.approx(weighted_kappa(ref, poor, "quadratic"))
    assert better["diff"] > 0 and better["p"] < 0.01
    assert better["ci_low"] <= better["diff"] <= better["ci_high"]
    assert better["n_boot_used"] == 500


def clustered_gradings(n_patients: int, per_patient: int, seed: int):
    """A reference and two gradings whose errors are shared by all joints of a patient."""
    rng = np.random.default_rng(seed)
    patients = np.repeat([f"pt-{i}" for i in range(n_patients)], per_patient)
    ref = rng.integers(0, 4, patients.size)

    def by_patient(p_wrong: float) -> np.ndarray:
        wrong = np.repeat(rng.random(n_patients) < p_wrong, per_patient)
        step = np.where(ref == 3, -1, 1)
        return np.where(wrong, ref + step, ref)

    return patients, ref, by_patient(0.2), by_patient(0.5)


def test_patient_bootstrap_is_wider_than_the_item_bootstrap_on_correlated_joints():
    patients, ref, a, b = clustered_gradings(30, 6, seed=4)
    items = paired_kappa_bootstrap(ref, a, b, n_boot=1000, seed=1)
    clustered = paired_kappa_bootstrap(ref, a, b, n_boot=1000, seed=1, patients=patients)
    assert (items["cluster"], items["n_clusters"]) == ("item", 180)
    assert (clustered["cluster"], clustered["n_clusters"]) == ("patient", 30)
    assert clustered["diff"] == items["diff"]  # the point estimate does not depend on the draw
    width = {name: r["ci_high"] - r["ci_low"] for name, r in (("items", items), ("patients", clustered))}
    assert width["patients"] > 1.5 * width["items"]  # design effect of 6 joints sharing an error
    assert clustered["p"] > items["p"]


def test_one_joint_per_patient_is_the_item_bootstrap():
    ref, a = gradings(120, 7, p_wrong=0.3)
    _, b = gradings(120, 8, p_wrong=0.5)
    plain = paired_kappa_bootstrap(ref, a, b, n_boot=400, seed=3, keep_resamples=True)
    alone = paired_kappa_bootstrap(
        ref, a, b, n_boot=400, seed=3, keep_resamples=True, patients=[f"p{i}" for i in range(120)]
    )
    np.testing.assert_array_equal(plain["resamples"], alone["resamples"])
    assert alone["cluster"] == "patient" and alone["n_clusters"] == 120


@pytest.mark.parametrize("seed", range(6))
def test_the_percentile_interval_excludes_zero_exactly_when_p_is_below_alpha(seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(rng.uniform(-0.3, 0.3), 0.15, size=int(rng.integers(50, 400)))
    values[rng.random(values.size) < 0.05] = 0.0  # ties at 0 count on both sides
    p = bootstrap_p(values)
    for alpha in (0.01, 0.025, 0.05, 0.1, 0.2, p, np.nextafter(p, 1)):
        low, high = percentile_interval(values, alpha)
        assert low <= high
        assert (low > 0 or high < 0) == (p < alpha), alpha


def test_sensitivity_specificity_equal_recall_one_vs_rest():
    ref, pred = gradings(400, 6)
    table = sensitivity_specificity(ref, pred)
    for grade in range(4):
        pos, called = ref == grade, pred == grade
        assert table[grade]["sensitivity"] == pytest.approx(recall_score(pos, called))
        assert table[grade]["specificity"] == pytest.approx(recall_score(~pos, ~called))
        assert table[grade]["n_pos"] + table[grade]["n_neg"] == 400


def test_sensitivity_undefined_for_absent_grade():
    table = sensitivity_specificity([0, 0, 1], [0, 1, 1])
    assert np.isnan(table[3]["sensitivity"]) and "grade 3" in table[3]["sensitivity"].reason
    assert table[3]["specificity"] == 1.0
