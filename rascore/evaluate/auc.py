"""Per-grade (one grade against the rest) AUC with percentile bootstrap CIs, ROC points, macro AUC.

He et al. (Rheumatology 2024) report, for each EOSS grade 0-3, the AUC of that grade against the
other three on two test cohorts. The point estimate is scikit-learn's ``roc_auc_score``; the
confidence interval is a percentile case bootstrap computed for all resamples at once
(``rascore.evaluate.bootstrap``). Resamples holding no case of a grade (or only cases of it) are
excluded from that grade's interval and counted in ``n_boot_excluded``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score, roc_curve

from rascore.evaluate.bootstrap import WeightedAUC, count_chunks
from rascore.evaluate.inputs import as_grades, as_probs
from rascore.evaluate.undefined import UndefinedValue, undefined
from rascore.scale import GRADES

NO_BOOT_REASON = "n_boot is 0: no confidence interval requested"


@dataclass(frozen=True)
class GradeAUC:
    """One grade's AUC against the rest, its percentile bootstrap CI and why any part is NaN."""

    auc: float
    ci_low: float
    ci_high: float
    n_pos: int
    n_neg: int
    reason: str | None = None
    n_boot_used: int = 0
    n_boot_excluded: int = 0


def _undefined_reason(grade: int, n_pos: int, n_neg: int) -> str | None:
    """Why grade ``grade`` has no AUC on these cases, or None when it has one."""
    if n_pos == 0:
        return f"no case of grade {grade}: AUC of grade {grade} vs rest is undefined"
    if n_neg == 0:
        return f"every case is grade {grade}: AUC of grade {grade} vs rest is undefined"
    return None


def _check_ci(ci: float, n_boot: int) -> None:
    """Reject a confidence level outside (0, 1) and a negative number of resamples."""
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be between 0 and 1, got {ci}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")


def per_grade_auc_models(
    y_true: ArrayLike,
    probs_by_model: Mapping[str, ArrayLike],
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, dict[int, GradeAUC]]:
    """Per-grade AUC with bootstrap CIs for several models scored on the same cases.

    One stream of resample counts (from ``seed``) serves every model and grade, which is what
    makes the dashboard's 4 models x 4 grades x 1000 resamples cheap; see
    ``rascore.evaluate.bootstrap`` for why each interval is still an exact case bootstrap.
    """
    _check_ci(ci, n_boot)
    grades = as_grades(y_true)
    n = grades.size
    probs = {name: as_probs(p, n, name=f"probs of {name}") for name, p in probs_by_model.items()}
    results: dict[str, dict[int, GradeAUC]] = {name: {} for name in probs}
    prepared: list[tuple[str, int, float, WeightedAUC]] = []
    for name, p in probs.items():
        for grade in GRADES:
            positive = grades == grade
            n_pos = int(positive.sum())
            n_neg = n - n_pos
            reason = _undefined_reason(grade, n_pos, n_neg)
            if reason is not None:
                undefined(f"{name}: {reason}")
                results[name][grade] = GradeAUC(np.nan, np.nan, np.nan, n_pos, n_neg, reason)
                continue
            point = float(roc_auc_score(positive, p[:, grade]))
            prepared.append((name, grade, point, WeightedAUC(p[:, grade], positive)))

    replicates: list[list[np.ndarray]] = [[] for _ in prepared]
    if prepared and n_boot > 0:
        for counts in count_chunks(n, n_boot, seed):
            for store, (_, _, _, weighted) in zip(replicates, prepared):
                store.append(weighted(counts))

    alpha = 1.0 - ci
    for store, (name, grade, point, weighted) in zip(replicates, prepared):
        reps = np.concatenate(store) if store else np.empty(0)
        valid = reps[~np.isnan(reps)]
        excluded = int(reps.size - valid.size)
        reason = None
        if n_boot == 0:
            low = high = np.nan
            reason = NO_BOOT_REASON
        elif valid.size == 0:
            low = high = np.nan
            reason = (f"all {n_boot} resamples lacked grade {grade} or the other grades: "
                      "no confidence interval")
            undefined(f"{name}: {reason}")
        else:
            low, high = np.quantile(valid, [alpha / 2.0, 1.0 - alpha / 2.0])
        results[name][grade] = GradeAUC(
            point, float(low), float(high), weighted.n_pos, weighted.n_neg, reason,
            n_boot_used=int(valid.size), n_boot_excluded=excluded,
        )
    return {name: dict(sorted(per.items())) for name, per in results.items()}


def per_grade_auc(
    y_true: ArrayLike, probs: ArrayLike, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> dict[int, GradeAUC]:
    """One model's AUC of each grade 0-3 against the rest, with percentile bootstrap CIs."""
    return per_grade_auc_models(y_true, {"model": probs}, n_boot=n_boot, seed=seed, ci=ci)["model"]


@dataclass(frozen=True)
class ROCPoints:
    """Points of one grade's ROC curve (scikit-learn ``roc_curve``) or why there are none."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    reason: str | None = None


def roc_points(y_true: ArrayLike, probs: ArrayLike, grade: int) -> ROCPoints:
    """ROC curve of ``grade`` against the rest, for plotting."""
    grades = as_grades(y_true)
    p = as_probs(probs, grades.size)
    if grade not in GRADES:
        raise ValueError(f"grade must be 0-3, got {grade}")
    positive = grades == grade
    reason = _undefined_reason(grade, int(positive.sum()), int((~positive).sum()))
    if reason is not None:
        undefined(reason)
        empty = np.empty(0)
        return ROCPoints(empty, empty, empty, reason)
    fpr, tpr, thresholds = roc_curve(positive, p[:, grade])
    return ROCPoints(fpr, tpr, thresholds)


def macro_auc(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Unweighted mean of the per-grade one-vs-rest AUCs over the grades present.

    With every grade present this equals ``roc_auc_score(..., multi_class="ovr",
    average="macro")``. A grade absent from ``y_true`` (or making up all of it) is left out of
    the mean with a warning; with no grade defined the result is NaN with a reason.
    """
    grades = as_grades(y_true)
    p = as_probs(probs, grades.size)
    aucs, missing = [], []
    for grade in GRADES:
        positive = grades == grade
        if _undefined_reason(grade, int(positive.sum()), int((~positive).sum())) is None:
            aucs.append(roc_auc_score(positive, p[:, grade]))
        else:
            missing.append(grade)
    if not aucs:
        return undefined("no grade has both positive and negative cases: macro AUC is undefined")
    if missing:
        undefined(f"grades {missing} have no AUC on these cases; macro AUC averages the others")
    return float(np.mean(aucs))


def macro_from(per_grade: Mapping[int, GradeAUC]) -> float:
    """Macro AUC from already computed per-grade results (mean of the defined AUCs)."""
    aucs = [r.auc for r in per_grade.values() if not np.isnan(r.auc)]
    if not aucs:
        return UndefinedValue("no grade has both positive and negative cases")
    return float(np.mean(aucs))
