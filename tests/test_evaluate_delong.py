"""DeLong's test: R pROC's published aSAH results, sklearn AUCs, bootstrap variance, NaN paths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from rascore.evaluate import (
    UndefinedMetricWarning,
    delong_covariance,
    delong_per_grade,
    delong_test,
)

# pROC's aSAH data set (Turck et al., Intensive Care Med 2010;36:107-115; shipped with the R package
# pROC, GPL-3): 113 patients after aneurysmal subarachnoid haemorrhage, outcome Poor (1, 41 cases)
# or Good (0, 72 controls); s100b and ndka are serum markers, wfns the 1-5 WFNS grade (many ties).
ASAH_POOR = [
    0,
    0,
    0,
    0,
    1,
    1,
    0,
    1,
    0,
    0,
    1,
    0,
    1,
    1,
    0,
    0,
    1,
    0,
    1,
    1,
    1,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    1,
    1,
    0,
    1,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    1,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    1,
    0,
    1,
    0,
    0,
    1,
    1,
    1,
    0,
    1,
    1,
    0,
    1,
    1,
    1,
    1,
    0,
    0,
    0,
    1,
    1,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    1,
    1,
    1,
    1,
    1,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
]
ASAH_S100B = [
    0.13,
    0.14,
    0.10,
    0.04,
    0.13,
    0.10,
    0.47,
    0.16,
    0.18,
    0.10,
    0.12,
    0.10,
    0.44,
    0.71,
    0.04,
    0.08,
    0.49,
    0.04,
    0.07,
    0.33,
    0.09,
    0.09,
    0.07,
    0.11,
    0.07,
    0.17,
    0.07,
    0.11,
    0.13,
    0.19,
    0.05,
    0.16,
    0.41,
    0.14,
    0.34,
    0.35,
    0.48,
    0.09,
    0.96,
    0.25,
    0.50,
    0.46,
    0.16,
    0.07,
    0.43,
    0.45,
    0.11,
    0.08,
    0.09,
    0.86,
    0.52,
    0.08,
    0.06,
    0.13,
    2.07,
    0.10,
    0.14,
    0.15,
    0.07,
    0.06,
    0.77,
    0.05,
    0.09,
    0.30,
    0.03,
    0.09,
    0.04,
    0.23,
    0.70,
    0.09,
    0.27,
    0.71,
    0.08,
    0.26,
    0.08,
    0.16,
    0.09,
    0.13,
    0.10,
    0.08,
    0.11,
    0.33,
    0.11,
    0.28,
    0.07,
    0.10,
    0.32,
    0.22,
    0.07,
    0.05,
    0.24,
    0.38,
    0.10,
    0.15,
    0.08,
    0.14,
    0.10,
    0.07,
    0.04,
    0.19,
    0.56,
    0.14,
    0.58,
    0.32,
    0.82,
    0.74,
    0.15,
    0.47,
    0.17,
    0.44,
    0.15,
    0.50,
    0.48,
]
ASAH_WFNS = [
    1,
    1,
    1,
    1,
    3,
    2,
    5,
    4,
    1,
    2,
    5,
    2,
    5,
    5,
    1,
    2,
    5,
    2,
    2,
    5,
    2,
    1,
    1,
    1,
    1,
    2,
    1,
    2,
    1,
    1,
    3,
    4,
    2,
    1,
    4,
    5,
    4,
    1,
    4,
    2,
    5,
    5,
    1,
    1,
    2,
    4,
    1,
    1,
    2,
    5,
    5,
    2,
    1,
    2,
    5,
    1,
    2,
    2,
    2,
    1,
    5,
    1,
    1,
    2,
    5,
    2,
    1,
    4,
    5,
    2,
    4,
    4,
    1,
    4,
    1,
    2,
    1,
    4,
    2,
    1,
    2,
    3,
    2,
    4,
    2,
    1,
    4,
    5,
    1,
    1,
    5,
    4,
    2,
    2,
    1,
    1,
    1,
    3,
    1,
    2,
    5,
    2,
    2,
    5,
    5,
    5,
    2,
    4,
    4,
    5,
    1,
    1,
    1,
]
ASAH_NDKA = [
    3.01,
    8.54,
    8.09,
    10.42,
    17.40,
    12.75,
    6.00,
    13.20,
    15.54,
    6.01,
    15.96,
    17.86,
    5.18,
    8.90,
    13.41,
    20.75,
    11.60,
    16.11,
    32.37,
    54.82,
    32.41,
    49.94,
    40.34,
    9.47,
    6.29,
    12.53,
    6.54,
    6.30,
    80.30,
    12.80,
    9.80,
    9.81,
    9.85,
    18.21,
    5.03,
    14.04,
    21.93,
    8.02,
    7.42,
    8.38,
    6.59,
    9.63,
    13.12,
    7.96,
    14.34,
    41.43,
    7.63,
    7.06,
    12.59,
    13.56,
    3.87,
    9.44,
    7.66,
    12.98,
    419.19,
    27.19,
    22.27,
    9.95,
    21.22,
    11.73,
    10.40,
    58.83,
    6.39,
    11.09,
    12.22,
    13.67,
    17.21,
    22.63,
    12.90,
    9.70,
    21.57,
    8.23,
    72.57,
    15.54,
    10.51,
    10.60,
    14.57,
    5.19,
    9.63,
    4.61,
    21.48,
    17.30,
    12.71,
    9.44,
    11.07,
    19.46,
    10.83,
    5.37,
    11.97,
    7.75,
    9.83,
    10.55,
    28.49,
    8.53,
    12.57,
    12.90,
    46.83,
    11.68,
    12.67,
    9.01,
    9.57,
    34.06,
    11.72,
    14.26,
    47.61,
    11.67,
    24.58,
    10.33,
    13.87,
    15.89,
    22.43,
    6.79,
    13.45,
]


@pytest.mark.parametrize(
    "first, second, z, p, diff_low, diff_high",
    [
        (ASAH_WFNS, ASAH_S100B, 2.20898359144091, 0.0271757822291882, 0.0104061769564846, 0.174214419249478),
        (ASAH_WFNS, ASAH_NDKA, 2.79777591868904, 0.00514557970691098, 0.0634011709339876, 0.3600405634833566),
        (
            ASAH_NDKA,
            ASAH_S100B,
            -1.39077002573558,
            0.164295175223054,
            -0.2876917446341914,
            0.0488706064228094,
        ),
    ],
)
def test_reproduces_r_proc_roc_test_on_asah(first, second, z, p, diff_low, diff_high):
    """R pROC ``roc.test`` (DeLong, paired) on pROC's aSAH data, expected values as published in
    pROC's own test suite, tests/testthat/test-roc.test.R ("roc.test statistic and p are as
    expected with defaults", https://github.com/xrobin/pROC). Its documented example
    ``roc.test(roc(aSAH$outcome, aSAH$s100b), roc(aSAH$outcome, aSAH$wfns))`` prints
    Z = -2.209, p-value = 0.02718, AUCs 0.7314 and 0.8237 (pROC's roc.test manual page).
    """
    result = delong_test(ASAH_POOR, first, second)
    assert result.z == pytest.approx(z, rel=1e-9)
    assert result.p == pytest.approx(p, rel=1e-9)
    half = 1.959963984540054 * np.sqrt(result.var_a + result.var_b - 2 * result.cov_ab)
    diff = result.auc_a - result.auc_b
    assert diff - half == pytest.approx(diff_low, rel=1e-9)
    assert diff + half == pytest.approx(diff_high, rel=1e-9)


def test_asah_aucs_are_proc_printed_values():
    """pROC prints AUC 0.7314 (s100b), 0.8237 (wfns), 0.612 (ndka): 72 controls < 41 cases."""
    assert (len(ASAH_POOR), sum(ASAH_POOR)) == (113, 41)
    auc_s100b, auc_wfns, _, _ = delong_test(ASAH_POOR, ASAH_S100B, ASAH_WFNS)
    assert round(auc_s100b, 4) == 0.7314 and round(auc_wfns, 4) == 0.8237
    assert round(delong_test(ASAH_POOR, ASAH_NDKA, ASAH_WFNS).auc_a, 3) == 0.612
    # the documented example, the other way round: Z = -2.209, p = 0.02718
    documented = delong_test(ASAH_POOR, ASAH_S100B, ASAH_WFNS)
    assert round(documented.z, 3) == -2.209 and round(documented.p, 5) == 0.02718


def test_aucs_equal_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.4
    scores = np.round(np.vstack([y + rng.normal(0, 1, 300), rng.normal(0, 1, 300)]), 1)
    aucs, cov = delong_covariance(y, scores)
    for k in range(2):
        assert aucs[k] == pytest.approx(roc_auc_score(y, scores[k]), abs=1e-12)
    assert cov.shape == (2, 2) and np.allclose(cov, cov.T) and np.all(np.diag(cov) > 0)


def test_variance_agrees_with_a_large_paired_bootstrap():
    rng = np.random.default_rng(3)
    n = 500
    y = rng.random(n) < 0.35
    a = y + rng.normal(0, 1, n)
    b = 0.6 * a + 0.8 * y + rng.normal(0, 1.2, n)
    result = delong_test(y, a, b)
    idx = rng.integers(0, n, (3000, n))
    positive = y[idx]
    m = positive.sum(axis=1)

    def boot_aucs(scores):
        ranks = rankdata(scores[idx], axis=1)
        return ((ranks * positive).sum(axis=1) - m * (m + 1) / 2) / (m * (n - m))

    boot_a, boot_b = boot_aucs(a), boot_aucs(b)
    assert result.var_a == pytest.approx(boot_a.var(ddof=1), rel=0.15)
    assert result.var_b == pytest.approx(boot_b.var(ddof=1), rel=0.15)
    var_diff = result.var_a + result.var_b - 2 * result.cov_ab
    assert var_diff == pytest.approx((boot_a - boot_b).var(ddof=1), rel=0.15)


def test_identical_rankings_give_z_zero_p_one():
    rng = np.random.default_rng(1)
    y = rng.random(50) < 0.5
    a = rng.normal(size=50)
    auc_a, auc_b, z, p = delong_test(y, a, np.exp(a))
    assert auc_a == auc_b and z == 0.0 and p == 1.0


def test_undefined_cases_are_nan_with_reason():
    with pytest.warns(UndefinedMetricWarning, match="no positive case"):
        result = delong_test([0, 0, 0], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])
    assert np.isnan(result.auc_a) and np.isnan(result.z) and "no positive" in result.reason
    with pytest.warns(UndefinedMetricWarning, match="at least 2 positive"):
        result = delong_test([1, 0, 0, 0], [0.9, 0.2, 0.3, 0.1], [0.1, 0.2, 0.3, 0.4])
    assert result.auc_a == 1.0 and result.auc_b == 0.0 and np.isnan(result.p)
    with pytest.raises(ValueError, match="binary"):
        delong_test([0, 1, 2], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3])


def test_per_grade_rows_and_missing_grade():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 200)  # no grade 3
    pa, pb = rng.dirichlet(np.ones(4), 200), rng.dirichlet(np.ones(4), 200)
    pa[np.arange(200), y] += 1.0
    with pytest.warns(UndefinedMetricWarning):
        rows = delong_per_grade(y, pa, pb)
    assert [r["grade"] for r in rows] == [0, 1, 2, 3]
    for r in rows[:3]:
        g = r["grade"]
        expected = delong_test(y == g, pa[:, g], pb[:, g])
        assert (r["auc_a"], r["auc_b"], r["z"], r["p"]) == tuple(expected)
        assert r["reason"] is None and r["z"] > 2
    assert np.isnan(rows[3]["z"]) and rows[3]["reason"]
