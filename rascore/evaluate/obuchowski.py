"""Obuchowski's nonparametric variance and covariance of AUCs on clustered data.

Obuchowski NA. Nonparametric analysis of clustered ROC curve data. Biometrics 1997;53:567-578,
with the estimators as iMRMC's ``doAUCcluster`` writes them. A patient (cluster i) contributes
m_i positive and n_i negative items; M and N are the totals, I the number of patients, I10 and
I01 those with a positive and with a negative item. With psi(x, y) = 1, 1/2, 0 as x >, =, < y:

    V10(x_ij) = mean over all negatives y of psi(x_ij, y);  X_i = sum_j V10(x_ij)
    V01(y_ik) = mean over all positives x of psi(x, y_ik);  Y_i = sum_k V01(y_ik)
    S10 = I10 / ((I10 - 1) M) sum_i (X_i - m_i A)(X'_i - m_i A')
    S01 = I01 / ((I01 - 1) N) sum_i (Y_i - n_i A)(Y'_i - n_i A')
    S11 = I / (I - 1) sum_i (X_i - m_i A)(Y'_i - n_i A')
    Cov(A, A') = S10 / M + S01 / N + (S11(A, A') + S11(A', A)) / (M N)

(primes: a second score on the same items). With one item per patient, S11 = 0 and this is
DeLong's covariance exactly (``rascore.evaluate.delong``). The V components are read from
midranks as in DeLong's fast algorithm.

The macro average of the per-grade AUCs (one grade against the rest) is a mean of AUCs whose
positive sets differ. Its variance sums the covariances of the per-grade AUCs, each written as
a sum over patients of that grade's centred component z_i = (X_i - m_i A) / M + (Y_i - n_i A) / N:
between two different grades Cov = I / (I - 1) sum_i z_i z'_i (within one grade the formula above).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm

from rascore.evaluate.clusters import Clusters
from rascore.evaluate.delong import DeLongResult, delong_test, structural_components
from rascore.evaluate.inputs import as_binary, as_grades, as_probs, as_scores
from rascore.evaluate.undefined import undefined
from rascore.scale import GRADES


@dataclass(frozen=True)
class _Parts:
    """One grade's cluster-level components for k score vectors."""

    aucs: np.ndarray  # (k,)
    dx: np.ndarray  # (k, I): X_i - m_i A
    dy: np.ndarray  # (k, I): Y_i - n_i A
    m: int
    n: int
    i10: int
    i01: int
    n_clusters: int


def _parts(positive: np.ndarray, scores: np.ndarray, codes: np.ndarray, n_clusters: int) -> _Parts:
    """Cluster sums of the structural components of k AUCs on the same items."""
    m, n = int(positive.sum()), int((~positive).sum())
    v10, v01 = structural_components(positive, scores)
    aucs = v10.mean(axis=1)
    code_pos, code_neg = codes[positive], codes[~positive]
    m_i = np.bincount(code_pos, minlength=n_clusters).astype(float)
    n_i = np.bincount(code_neg, minlength=n_clusters).astype(float)
    x = np.stack([np.bincount(code_pos, weights=row, minlength=n_clusters) for row in v10])
    y = np.stack([np.bincount(code_neg, weights=row, minlength=n_clusters) for row in v01])
    dx = x - m_i[None, :] * aucs[:, None]
    dy = y - n_i[None, :] * aucs[:, None]
    return _Parts(aucs, dx, dy, m, n, int(np.count_nonzero(m_i)), int(np.count_nonzero(n_i)), n_clusters)


def _check(parts: _Parts) -> str | None:
    """Why the variance is undefined on these items, or None."""
    if parts.m == 0 or parts.n == 0:
        return "no positive case" if parts.m == 0 else "no negative case"
    if parts.i10 < 2 or parts.i01 < 2:
        return (
            f"Obuchowski's variance needs positives in at least 2 patients and negatives in "
            f"at least 2, got {parts.i10} and {parts.i01}"
        )
    return None


def _covariance(parts: _Parts) -> np.ndarray:
    """Obuchowski's (k, k) covariance of the k AUCs of one grade."""
    i, i10, i01, m, n = parts.n_clusters, parts.i10, parts.i01, parts.m, parts.n
    s10 = i10 / ((i10 - 1) * m) * (parts.dx @ parts.dx.T)
    s01 = i01 / ((i01 - 1) * n) * (parts.dy @ parts.dy.T)
    s11 = i / (i - 1) * (parts.dx @ parts.dy.T)
    return s10 / m + s01 / n + (s11 + s11.T) / (m * n)


def obuchowski_covariance(
    y_true_binary: ArrayLike, scores: ArrayLike, patients: Sequence[object] | Clusters | None
) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and Obuchowski's clustered covariance (k, k) of k score vectors (k, n).

    Raises ValueError when the variance is undefined (a class absent, or present in fewer
    than 2 patients).
    """
    positive = as_binary(y_true_binary)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    if s.shape[1] != positive.size:
        raise ValueError(f"scores have {s.shape[1]} cases but y_true has {positive.size}")
    clusters = Clusters.of(patients, positive.size)
    parts = _parts(positive, s, clusters.codes, clusters.n_clusters)
    reason = _check(parts)
    if reason is not None:
        raise ValueError(reason)
    return parts.aucs, _covariance(parts)


def _z_test(
    auc_a: float, auc_b: float, var_a: float, var_b: float, cov_ab: float, what: str
) -> tuple[float, float, str | None]:
    """z and two-sided p of auc_a - auc_b, or NaN with a reason for a zero variance."""
    var_diff = var_a + var_b - 2.0 * cov_ab
    scale = max(var_a + var_b, np.finfo(float).tiny)
    if var_diff <= 1e-12 * scale:
        if np.isclose(auc_a, auc_b, rtol=0.0, atol=1e-12):
            return 0.0, 1.0, None
        reason = f"zero variance of the {what} difference: z is undefined"
        undefined(reason)
        return np.nan, np.nan, reason
    z = (auc_a - auc_b) / float(np.sqrt(var_diff))
    return float(z), float(2.0 * norm.sf(abs(z))), None


def obuchowski_test(
    y_true_binary: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    patients: Sequence[object] | Clusters | None,
) -> DeLongResult:
    """Paired test of AUC(scores_a) = AUC(scores_b) on the same items, clustered by patient.

    Undefined parts are NaN with a reason, as in ``delong_test``.
    """
    positive = as_binary(y_true_binary)
    a = as_scores(scores_a, positive.size, "scores_a")
    b = as_scores(scores_b, positive.size, "scores_b")
    clusters = Clusters.of(patients, positive.size)
    parts = (
        _parts(positive, np.vstack([a, b]), clusters.codes, clusters.n_clusters)
        if positive.any() and (~positive).any()
        else None
    )
    if parts is None:
        reason = "no positive case" if not positive.any() else "no negative case"
        undefined(f"{reason}: AUCs and Obuchowski's test are undefined")
        return DeLongResult(
            np.nan, np.nan, np.nan, np.nan, reason=f"{reason}: AUC undefined", method="obuchowski"
        )
    auc_a, auc_b = float(parts.aucs[0]), float(parts.aucs[1])
    reason = _check(parts)
    if reason is not None:
        undefined(reason)
        return DeLongResult(auc_a, auc_b, np.nan, np.nan, reason=reason, method="obuchowski")
    cov = _covariance(parts)
    common = dict(var_a=float(cov[0, 0]), var_b=float(cov[1, 1]), cov_ab=float(cov[0, 1]))
    z, p, reason = _z_test(auc_a, auc_b, common["var_a"], common["var_b"], common["cov_ab"], "AUC")
    return DeLongResult(auc_a, auc_b, z, p, reason=reason, method="obuchowski", **common)


def paired_auc_test(
    y_true_binary: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    patients: Sequence[object] | Clusters | None = None,
) -> DeLongResult:
    """Obuchowski's clustered test when patient ids are given, else DeLong's (items independent)."""
    positive = as_binary(y_true_binary)
    clusters = Clusters.of(patients, positive.size)
    if clusters.kind == "patient":
        return obuchowski_test(positive, scores_a, scores_b, clusters)
    return delong_test(positive, scores_a, scores_b)


def paired_auc_per_grade(
    y_true: ArrayLike,
    probs_a: ArrayLike,
    probs_b: ArrayLike,
    patients: Sequence[object] | Clusters | None = None,
) -> list[dict]:
    """The paired AUC test per EOSS grade (that grade against the rest) between two models.

    One dict per grade: grade, auc_a, auc_b, z, p, method ("obuchowski" with patient ids,
    "delong" without) and reason (None when defined).
    """
    grades = as_grades(y_true)
    pa = as_probs(probs_a, grades.size, "probs_a")
    pb = as_probs(probs_b, grades.size, "probs_b")
    clusters = Clusters.of(patients, grades.size)
    rows = []
    for grade in GRADES:
        r = paired_auc_test(grades == grade, pa[:, grade], pb[:, grade], clusters)
        rows.append(
            {
                "grade": grade,
                "auc_a": r.auc_a,
                "auc_b": r.auc_b,
                "z": r.z,
                "p": r.p,
                "method": r.method,
                "reason": r.reason,
            }
        )
    return rows


def macro_covariance(
    y_true: ArrayLike, probs: Sequence[ArrayLike], patients: Sequence[object] | Clusters | None
) -> tuple[np.ndarray, np.ndarray, list[int], dict[int, str]]:
    """Macro AUCs (k,) of k models, their clustered covariance (k, k), the grades averaged and
    the grades left out with the reason (a class absent, or in fewer than 2 patients)."""
    grades = as_grades(y_true)
    mats = [as_probs(p, grades.size, f"probs {i}") for i, p in enumerate(probs)]
    clusters = Clusters.of(patients, grades.size)
    i = clusters.n_clusters
    used: list[_Parts] = []
    kept: list[int] = []
    left_out: dict[int, str] = {}
    for grade in GRADES:
        positive = grades == grade
        if not positive.any() or positive.all():
            left_out[grade] = (
                f"no case of grade {grade}" if not positive.any() else f"every case is grade {grade}"
            )
            continue
        parts = _parts(positive, np.vstack([p[:, grade] for p in mats]), clusters.codes, i)
        reason = _check(parts)
        if reason is not None:
            left_out[grade] = reason
            continue
        used.append(parts)
        kept.append(grade)
    k = len(mats)
    if not used:
        return np.full(k, np.nan), np.full((k, k), np.nan), kept, left_out
    g = len(used)
    cov = np.zeros((k, k))
    for a, pa in enumerate(used):
        for b, pb in enumerate(used):
            if a == b:
                cov += _covariance(pa)
            else:
                za = pa.dx / pa.m + pa.dy / pa.n
                zb = pb.dx / pb.m + pb.dy / pb.n
                cov += i / (i - 1) * (za @ zb.T)
    aucs = np.mean([p.aucs for p in used], axis=0)
    return aucs, cov / g**2, kept, left_out


def paired_macro_test(
    y_true: ArrayLike,
    probs_a: ArrayLike,
    probs_b: ArrayLike,
    patients: Sequence[object] | Clusters | None = None,
) -> dict:
    """Paired test of macro AUC(a) = macro AUC(b): z, p, the grades averaged and left out.

    The variance is Obuchowski's with patient ids and, without, the same estimator with each
    item its own cluster (which is DeLong's within each grade).
    """
    grades = as_grades(y_true)
    clusters = Clusters.of(patients, grades.size)
    method = "obuchowski" if clusters.kind == "patient" else "delong"
    aucs, cov, kept, left_out = macro_covariance(grades, [probs_a, probs_b], clusters)
    out = {
        "grade": "macro",
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "z": np.nan,
        "p": np.nan,
        "method": method,
        "grades": kept,
        "left_out": {str(g): r for g, r in left_out.items()},
        "reason": None,
    }
    if not kept:
        out["reason"] = "no grade has both classes in at least 2 patients: macro AUC test undefined"
        undefined(out["reason"])
        return out
    out["z"], out["p"], out["reason"] = _z_test(
        out["auc_a"], out["auc_b"], float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1]), "macro AUC"
    )
    return out


def paired_auc_tests(
    y_true: ArrayLike,
    probs_a: ArrayLike,
    probs_b: ArrayLike,
    patients: Sequence[object] | Clusters | None = None,
) -> list[dict]:
    """The paired AUC test per EOSS grade (``paired_auc_per_grade``) and, last, for the macro
    average (``paired_macro_test``) between two models on the same items."""
    return [
        *paired_auc_per_grade(y_true, probs_a, probs_b, patients),
        paired_macro_test(y_true, probs_a, probs_b, patients),
    ]
