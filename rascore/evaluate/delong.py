"""DeLong's test for two correlated (paired) AUCs, written out with the fast midrank algorithm.

DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated
receiver operating characteristic curves: a nonparametric approach. Biometrics 1988;44:837-845.
Computed with the midrank algorithm of Sun X, Xu W, IEEE Signal Processing Letters
2014;21(11):1389-1393: with m positives and n negatives, each AUC is a Mann-Whitney statistic
and its structural components are read from midranks (ties count one half):

    V10_i = (rank of positive i among all - rank among positives) / n   (one per positive)
    V01_j = 1 - (rank of negative j among all - rank among negatives) / m   (one per negative)
    AUC = mean(V10),  Cov(AUC) = S10 / m + S01 / n,

S10 and S01 the sample covariance matrices (ddof 1) of the components across models. The test
statistic is z = (AUC_a - AUC_b) / sqrt(Var_a + Var_b - 2 Cov_ab), two-sided normal p-value.
Checked against R pROC's ``roc.test`` on pROC's ``aSAH`` data (tests/test_evaluate_delong.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm, rankdata
from sklearn.metrics import roc_auc_score

from rascore.evaluate.inputs import as_binary, as_grades, as_probs, as_scores
from rascore.evaluate.undefined import undefined
from rascore.scale import GRADES


def structural_components(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values of k score vectors (k, n) on the same cases, from midranks.

    ``positive`` is a bool mask of the n cases (at least one of each class). Returns V10 (k, m):
    each positive's share of negatives scored below it (ties 1/2), and V01 (k, n_neg): each
    negative's share of positives scored above it. ``V10.mean(axis=1)`` is the AUC.
    """
    m, n = int(positive.sum()), int((~positive).sum())
    pos, neg = scores[:, positive], scores[:, ~positive]
    rank_all = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    v10 = (rank_all[:, :m] - rankdata(pos, axis=1)) / n
    v01 = 1.0 - (rank_all[:, m:] - rankdata(neg, axis=1)) / m
    return v10, v01


def delong_covariance(y_true_binary: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and DeLong covariance matrix (k, k) of k score vectors on the same cases.

    ``scores`` has shape (k, n). Needs at least 2 positive and 2 negative cases (else
    ValueError: the sample covariances of the components need two of each).
    """
    positive = as_binary(y_true_binary)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    if s.shape[1] != positive.size:
        raise ValueError(f"scores have {s.shape[1]} cases but y_true has {positive.size}")
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 positive and 2 negative cases, got {m} and {n}")
    v10, v01 = structural_components(positive, s)
    aucs = v10.mean(axis=1)
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


@dataclass(frozen=True)
class DeLongResult:
    """Two paired AUCs and DeLong's z and two-sided p; unpacks as (auc_a, auc_b, z, p)."""

    auc_a: float
    auc_b: float
    z: float
    p: float
    var_a: float = np.nan
    var_b: float = np.nan
    cov_ab: float = np.nan
    reason: str | None = None
    method: str = "delong"  # "obuchowski" for the patient-clustered variance

    def __iter__(self) -> Iterator[float]:
        """Unpack as ``auc_a, auc_b, z, p``."""
        return iter((self.auc_a, self.auc_b, self.z, self.p))


def delong_test(y_true_binary: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike) -> DeLongResult:
    """DeLong's test of AUC(scores_a) = AUC(scores_b) on the same cases (paired).

    Undefined parts are NaN with a reason: no positive or no negative case (AUCs and test),
    fewer than 2 of either class (test only), or a zero variance of the difference between
    different AUCs. Two score vectors with identical structural components (e.g. one a
    monotone transform of the other) give z = 0, p = 1, as R pROC does.
    """
    positive = as_binary(y_true_binary)
    a = as_scores(scores_a, positive.size, "scores_a")
    b = as_scores(scores_b, positive.size, "scores_b")
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        reason = "no positive case" if m == 0 else "no negative case"
        undefined(f"{reason}: AUCs and DeLong's test are undefined")
        return DeLongResult(np.nan, np.nan, np.nan, np.nan, reason=f"{reason}: AUC undefined")
    if m < 2 or n < 2:
        reason = f"DeLong's variance needs at least 2 positive and 2 negative cases, got {m} and {n}"
        undefined(reason)
        return DeLongResult(
            float(roc_auc_score(positive, a)),
            float(roc_auc_score(positive, b)),
            np.nan,
            np.nan,
            reason=reason,
        )
    aucs, cov = delong_covariance(positive, np.vstack([a, b]))
    var_diff = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]
    auc_a, auc_b = float(aucs[0]), float(aucs[1])
    common = dict(var_a=float(cov[0, 0]), var_b=float(cov[1, 1]), cov_ab=float(cov[0, 1]))
    scale = max(cov[0, 0] + cov[1, 1], np.finfo(float).tiny)
    if var_diff <= 1e-12 * scale:
        if np.isclose(auc_a, auc_b, rtol=0.0, atol=1e-12):
            return DeLongResult(auc_a, auc_b, 0.0, 1.0, **common)
        reason = "zero variance of the AUC difference: DeLong's z is undefined"
        undefined(reason)
        return DeLongResult(auc_a, auc_b, np.nan, np.nan, reason=reason, **common)
    z = (auc_a - auc_b) / float(np.sqrt(var_diff))
    return DeLongResult(auc_a, auc_b, float(z), float(2.0 * norm.sf(abs(z))), **common)


@dataclass(frozen=True)
class AUCInterval:
    """One empirical AUC with DeLong's variance and its normal interval, or NaN and why."""

    auc: float
    ci_low: float
    ci_high: float
    stderr: float
    n_pos: int
    n_neg: int
    reason: str | None = None


def delong_auc_ci(y_true_binary: ArrayLike, scores: ArrayLike, level: float = 0.95) -> AUCInterval:
    """Empirical AUC (ties count one half) with DeLong's variance and the normal ``level``
    interval, clipped to [0, 1] as R pROC's ``ci.auc`` does (method "delong").

    No positive or no negative case: everything NaN with the reason; fewer than 2 of either:
    the AUC with the interval NaN and the reason.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    positive = as_binary(y_true_binary)
    s = as_scores(scores, positive.size)
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        reason = f"no {'positive' if m == 0 else 'negative'} case: the AUC is undefined"
        nan = undefined(reason)
        return AUCInterval(nan, nan, nan, nan, m, n, reason)
    if m < 2 or n < 2:
        reason = f"DeLong's variance needs at least 2 positive and 2 negative cases, got {m} and {n}"
        nan = undefined(reason)
        return AUCInterval(float(roc_auc_score(positive, s)), nan, nan, nan, m, n, reason)
    aucs, cov = delong_covariance(positive, s[None, :])
    auc, se = float(aucs[0]), float(np.sqrt(max(cov[0, 0], 0.0)))
    q = float(norm.ppf(0.5 + level / 2.0))
    return AUCInterval(auc, max(0.0, auc - q * se), min(1.0, auc + q * se), se, m, n)


def delong_per_grade(y_true: ArrayLike, probs_a: ArrayLike, probs_b: ArrayLike) -> list[dict]:
    """DeLong's test per EOSS grade (that grade against the rest) between two models' probabilities.

    Returns one dict per grade: grade, auc_a, auc_b, z, p and reason (None when defined).
    """
    grades = as_grades(y_true)
    pa = as_probs(probs_a, grades.size, "probs_a")
    pb = as_probs(probs_b, grades.size, "probs_b")
    rows = []
    for grade in GRADES:
        result = delong_test(grades == grade, pa[:, grade], pb[:, grade])
        rows.append(
            {
                "grade": grade,
                "auc_a": result.auc_a,
                "auc_b": result.auc_b,
                "z": result.z,
                "p": result.p,
                "reason": result.reason,
            }
        )
    return rows
