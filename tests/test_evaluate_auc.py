"""Per-grade AUC: point estimates equal scikit-learn, bootstrap replicates equal weighted AUCs,
CIs behave, undefined grades give NaN with a reason."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from rascore.evaluate import (
    UndefinedMetricWarning,
    macro_auc,
    macro_from,
    per_grade_auc,
    per_grade_auc_models,
    roc_points,
)
from rascore.evaluate.bootstrap import WeightedAUC, count_chunks, multinomial_counts


def cohort(n: int, seed: int = 0, signal: float = 1.0, grades: tuple[int, ...] = (0, 1, 2, 3)):
    """Random reference grades and softmax scores that carry some signal."""
    rng = np.random.default_rng(seed)
    y = rng.choice(grades, size=n)
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), y] += signal
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def test_point_estimates_equal_sklearn_one_vs_rest():
    y, p = cohort(500, seed=1)
    result = per_grade_auc(y, p, n_boot=50)
    assert sorted(result) == [0, 1, 2, 3]
    for grade, r in result.items():
        assert r.auc == roc_auc_score(y == grade, p[:, grade])
        assert (r.n_pos, r.n_neg) == (int((y == grade).sum()), int((y != grade).sum()))
        assert r.reason is None and r.n_boot_used == 50 and r.n_boot_excluded == 0


@pytest.mark.parametrize("n, ties", [(9, False), (120, True), (801, False), (2, False)])
def test_each_bootstrap_replicate_is_the_weighted_auc_of_its_resample(n, ties):
    rng = np.random.default_rng(n)
    positive = rng.random(n) < 0.3
    positive[:2] = [True, False]
    scores = np.round(rng.random(n), 1) if ties else rng.random(n)
    weighted = WeightedAUC(scores, positive)
    counts = multinomial_counts(rng, n, 30)
    assert np.all(counts.sum(axis=0) == n)
    aucs = weighted(counts)
    for r in range(30):
        weights = np.zeros(n)
        weights[weighted.case_of_row] = counts[:, r]
        kept = positive[weights > 0]
        if kept.any() and (~kept).any():
            assert aucs[r] == pytest.approx(roc_auc_score(positive, scores, sample_weight=weights), abs=1e-9)
        else:
            assert np.isnan(aucs[r])
    # unit weights give the plain AUC
    assert weighted(np.ones((n, 1)))[0] == pytest.approx(roc_auc_score(positive, scores))


def test_bootstrap_ci_matches_a_naive_case_bootstrap():
    """Laying counts over sorted order (exchangeability) gives a case bootstrap's distribution."""
    y, p = cohort(200, seed=4)
    ours = per_grade_auc(y, p, n_boot=2000, seed=5)[2]
    rng = np.random.default_rng(6)
    naive = []
    for _ in range(600):
        idx = rng.integers(0, y.size, y.size)
        naive.append(roc_auc_score(y[idx] == 2, p[idx, 2]))
    low, high = np.quantile(naive, [0.025, 0.975])
    assert ours.ci_low == pytest.approx(low, abs=0.025)
    assert ours.ci_high == pytest.approx(high, abs=0.025)


def test_ci_contains_point_estimate_and_narrows_with_n():
    widths = []
    for n in (100, 400, 1600):
        y, p = cohort(n, seed=n)
        result = per_grade_auc(y, p, n_boot=400, seed=1)
        for r in result.values():
            assert r.ci_low <= r.auc <= r.ci_high
        widths.append(np.mean([r.ci_high - r.ci_low for r in result.values()]))
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(4.0, rel=0.35)  # ~ 1/sqrt(n)


def test_same_seed_same_ci_and_ci_level_matters():
    y, p = cohort(300, seed=2)
    first = per_grade_auc(y, p, n_boot=300, seed=9)
    assert per_grade_auc(y, p, n_boot=300, seed=9) == first
    narrow = per_grade_auc(y, p, n_boot=300, seed=9, ci=0.5)
    for grade in first:
        wide, tight = first[grade], narrow[grade]
        assert wide.ci_low < tight.ci_low < tight.ci_high < wide.ci_high


def test_several_models_share_the_resample_stream():
    y, p = cohort(250, seed=3)
    _, q = cohort(250, seed=4)
    both = per_grade_auc_models(y, {"SGS": p, "DPD": q}, n_boot=200, seed=7)
    assert both["SGS"] == per_grade_auc(y, p, n_boot=200, seed=7)
    assert list(both) == ["SGS", "DPD"]
    assert both["DPD"][1].auc == roc_auc_score(y == 1, q[:, 1])


def test_chunking_does_not_change_the_counts():
    whole = np.hstack(list(count_chunks(50, 37, seed=1, chunk_cols=37)))
    assert whole.shape == (50, 37)
    assert np.all(whole.sum(axis=0) == 50)


def test_grade_without_cases_is_nan_with_reason():
    y, p = cohort(200, seed=1, grades=(0, 1, 2))
    with pytest.warns(UndefinedMetricWarning, match="no case of grade 3"):
        result = per_grade_auc(y, p, n_boot=100)
    r3 = result[3]
    assert np.isnan(r3.auc) and np.isnan(r3.ci_low) and np.isnan(r3.ci_high)
    assert "grade 3" in r3.reason and r3.n_pos == 0 and r3.n_neg == 200
    assert result[0].reason is None and not np.isnan(result[0].auc)


def test_every_case_one_grade_is_nan_with_reason():
    y = np.full(20, 2)
    p = np.full((20, 4), 0.25)
    with pytest.warns(UndefinedMetricWarning):
        result = per_grade_auc(y, p, n_boot=10)
    assert "every case is grade 2" in result[2].reason
    assert all(np.isnan(r.auc) for r in result.values())


def test_resamples_without_a_grade_are_excluded_and_counted():
    y = np.array([0, 0, 0, 0, 0, 0, 1, 2, 3, 3])
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=10)
    result = per_grade_auc(y, p, n_boot=500, seed=0)
    r1 = result[1]  # one case of grade 1: P(not drawn) = 0.9**10 ~ 0.35
    assert 100 < r1.n_boot_excluded < 250
    assert r1.n_boot_used + r1.n_boot_excluded == 500
    assert r1.reason is None and not np.isnan(r1.ci_low)
    assert result[0].n_boot_excluded < r1.n_boot_excluded


def test_no_bootstrap_gives_point_only():
    y, p = cohort(60, seed=1)
    result = per_grade_auc(y, p, n_boot=0)
    assert all(np.isnan(r.ci_low) and "n_boot is 0" in r.reason for r in result.values())
    assert all(not np.isnan(r.auc) for r in result.values())


def test_bad_inputs_raise_value_error():
    y, p = cohort(10)
    with pytest.raises(ValueError, match="0-3"):
        per_grade_auc(np.append(y[:-1], 4), p)
    with pytest.raises(ValueError, match="shape"):
        per_grade_auc(y, p[:, :3])
    with pytest.raises(ValueError, match="rows"):
        per_grade_auc(y[:-1], p)
    bad = p.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        per_grade_auc(y, bad)
    with pytest.raises(ValueError, match="ci"):
        per_grade_auc(y, p, ci=1.5)


def test_roc_points_equal_sklearn_and_empty_when_undefined():
    y, p = cohort(100, seed=8, grades=(0, 1, 2))
    points = roc_points(y, p, 1)
    fpr, tpr, thr = roc_curve(y == 1, p[:, 1])
    np.testing.assert_array_equal(points.fpr, fpr)
    np.testing.assert_array_equal(points.tpr, tpr)
    np.testing.assert_array_equal(points.thresholds, thr)
    assert points.reason is None
    with pytest.warns(UndefinedMetricWarning):
        missing = roc_points(y, p, 3)
    assert missing.fpr.size == 0 and "grade 3" in missing.reason


def test_macro_auc_equals_sklearn_ovr_macro():
    y, p = cohort(300, seed=5)
    expected = roc_auc_score(y, p, multi_class="ovr", average="macro", labels=[0, 1, 2, 3])
    assert macro_auc(y, p) == pytest.approx(expected, abs=1e-12)
    assert macro_from(per_grade_auc(y, p, n_boot=0)) == pytest.approx(expected, abs=1e-12)


def test_macro_auc_skips_absent_grade_with_warning():
    y, p = cohort(300, seed=5, grades=(0, 1, 3))
    with pytest.warns(UndefinedMetricWarning, match="averages the others"):
        value = macro_auc(y, p)
    expected = np.mean([roc_auc_score(y == g, p[:, g]) for g in (0, 1, 3)])
    assert value == pytest.approx(expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        nothing = macro_auc(np.zeros(5, int), np.full((5, 4), 0.25))
    assert np.isnan(nothing) and "undefined" in nothing.reason


def test_large_weights_take_the_float_path_exactly():
    rng = np.random.default_rng(11)
    positive = rng.random(40) < 0.5
    positive[:2] = [True, False]
    scores = np.round(rng.random(40), 1)
    weighted = WeightedAUC(scores, positive)
    counts = rng.integers(0, 20_000, (40, 3))  # totals far above the int32-exact limit
    aucs = weighted(counts)
    for r in range(3):
        weights = np.zeros(40)
        weights[weighted.case_of_row] = counts[:, r]
        assert aucs[r] == pytest.approx(roc_auc_score(positive, scores, sample_weight=weights))
    with pytest.raises(ValueError, match="whole numbers"):
        weighted(np.full((40, 1), 0.5))
    with pytest.raises(ValueError, match="shape"):
        weighted(np.ones((39, 1)))
