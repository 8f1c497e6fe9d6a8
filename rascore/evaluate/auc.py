"""Per-grade (one grade against the rest) AUC with percentile bootstrap CIs, ROC points, macro AUC.

He et al. (Rheumatology 2024) report, for each EOSS grade 0-3, the AUC of that grade against the
other three on two test cohorts. The point estimate is scikit-learn's ``roc_auc_score``; the
confidence interval is a percentile bootstrap computed for all resamples at once
(``rascore.evaluate.bootstrap``). With patient ids it resamples patients and keeps all their items
(``rascore.evaluate.clusters``), since one patient's joints are correlated; without, it resamples
items. Resamples holding no case of a grade (or only cases of it) are excluded from that grade's
interval and counted in ``n_boot_excluded``. ``auc_differences`` gives AUC(a) - AUC(b) per grade
and for the macro average with a paired bootstrap CI (both models on the same resamples).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score, roc_curve

from rascore.evaluate.bootstrap import WeightedAUC, count_chunks
from rascore.evaluate.clusters import Clusters, per_cluster_count_chunks
from rascore.evaluate.inputs import as_grades, as_probs
from rascore.evaluate.undefined import UndefinedValue, undefined
from rascore.scale import GRADES

NO_BOOT_REASON = "n_boot is 0: no confidence interval requested"


@dataclass(frozen=True)
class GradeAUC:
    """One grade's AUC against the rest, its percentile bootstrap CI and why any part is NaN.

    ``cluster`` says what the bootstrap resampled ("patient": patients with all their items;
    "item": items) and ``n_clusters`` how many of them there were; ``n_boot_excluded`` counts
    the resamples left out of the interval because they lacked the grade or the other grades.
    """

    auc: float
    ci_low: float
    ci_high: float
    n_pos: int
    n_neg: int
    reason: str | None = None
    n_boot_used: int = 0
    n_boot_excluded: int = 0
    n_clusters: int = 0
    cluster: str = "item"


@dataclass(frozen=True)
class AUCDifference:
    """AUC(a) - AUC(b) on the same cases with its paired percentile bootstrap CI."""

    auc_a: float
    auc_b: float
    diff: float
    ci_low: float
    ci_high: float
    n_boot_used: int
    n_boot_excluded: int
    n_clusters: int
    cluster: str
    reason: str | None = None
    grades: tuple[int, ...] = ()  # the grades a macro difference averages


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


@dataclass
class _Replicates:
    """Point AUCs and bootstrap replicates per (model, grade) from one stream of resamples."""

    clusters: Clusters
    counts: dict[int, tuple[int, int]]  # grade -> (n_pos, n_neg)
    points: dict[tuple[str, int], float]
    reps: dict[tuple[str, int], np.ndarray]


def _replicates(
    grades: np.ndarray,
    probs: Mapping[str, np.ndarray],
    clusters: Clusters,
    n_boot: int,
    seed: int,
    paired: bool,
) -> _Replicates:
    """Every defined (model, grade) AUC and its n_boot replicates.

    Patient clusters (or ``paired``): one stream of per-patient counts read by every AUC
    (``WeightedAUC.gathered``), so all grades and models see the same resamples. Items without
    pairing: the faster exchangeable-row case bootstrap of ``rascore.evaluate.bootstrap``.
    """
    n = grades.size
    counts = {g: (int((grades == g).sum()), int((grades != g).sum())) for g in GRADES}
    points: dict[tuple[str, int], float] = {}
    prepared: list[tuple[tuple[str, int], WeightedAUC]] = []
    for name, p in probs.items():
        for grade in GRADES:
            if _undefined_reason(grade, *counts[grade]) is None:
                positive = grades == grade
                points[(name, grade)] = float(roc_auc_score(positive, p[:, grade]))
                prepared.append(((name, grade), WeightedAUC(p[:, grade], positive)))
    parts: dict[tuple[str, int], list[np.ndarray]] = {key: [] for key, _ in prepared}
    if prepared and n_boot > 0:
        if clusters.kind == "patient" or paired:
            for source in per_cluster_count_chunks(clusters, n_boot, seed):
                for key, weighted in prepared:
                    parts[key].append(weighted.gathered(source, clusters.codes))
        else:
            for chunk in count_chunks(n, n_boot, seed):
                for key, weighted in prepared:
                    parts[key].append(weighted(chunk))
    reps = {key: np.concatenate(v) if v else np.empty(0) for key, v in parts.items()}
    return _Replicates(clusters, counts, points, reps)


def per_grade_auc_models(
    y_true: ArrayLike,
    probs_by_model: Mapping[str, ArrayLike],
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    patients: Sequence[object] | None = None,
) -> dict[str, dict[int, GradeAUC]]:
    """Per-grade AUC with bootstrap CIs for several models scored on the same cases.

    One stream of resample counts (from ``seed``) serves every model and grade, which is what
    makes the dashboard's 4 models x 4 grades x 1000 resamples cheap; see
    ``rascore.evaluate.bootstrap`` for why each interval is still an exact bootstrap. With
    ``patients`` (one id per case; None or empty for a case without one) the bootstrap
    resamples patients and keeps all their items; without, it resamples items.
    """
    _check_ci(ci, n_boot)
    grades = as_grades(y_true)
    n = grades.size
    probs = {name: as_probs(p, n, name=f"probs of {name}") for name, p in probs_by_model.items()}
    clusters = Clusters.of(patients, n_items=n)
    found = _replicates(grades, probs, clusters, n_boot, seed, paired=False)
    alpha = 1.0 - ci
    unit = "patients" if clusters.kind == "patient" else "items"
    results: dict[str, dict[int, GradeAUC]] = {name: {} for name in probs}
    for name in probs:
        for grade in GRADES:
            n_pos, n_neg = found.counts[grade]
            common = dict(n_clusters=clusters.n_clusters, cluster=clusters.kind)
            reason = _undefined_reason(grade, n_pos, n_neg)
            if reason is not None:
                undefined(f"{name}: {reason}")
                results[name][grade] = GradeAUC(np.nan, np.nan, np.nan, n_pos, n_neg, reason, **common)
                continue
            reps = found.reps[(name, grade)]
            valid = reps[~np.isnan(reps)]
            excluded = int(reps.size - valid.size)
            reason = None
            if n_boot == 0:
                low = high = np.nan
                reason = NO_BOOT_REASON
            elif valid.size == 0:
                low = high = np.nan
                reason = (
                    f"all {n_boot} resamples of {unit} lacked grade {grade} or the other "
                    "grades: no confidence interval"
                )
                undefined(f"{name}: {reason}")
            else:
                low, high = np.quantile(valid, [alpha / 2.0, 1.0 - alpha / 2.0])
            results[name][grade] = GradeAUC(
                found.points[(name, grade)],
                float(low),
                float(high),
                n_pos,
                n_neg,
                reason,
                n_boot_used=int(valid.size),
                n_boot_excluded=excluded,
                **common,
            )
    return results


def per_grade_auc(
    y_true: ArrayLike,
    probs: ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    patients: Sequence[object] | None = None,
) -> dict[int, GradeAUC]:
    """One model's AUC of each grade 0-3 against the rest, with percentile bootstrap CIs."""
    return per_grade_auc_models(y_true, {"model": probs}, n_boot=n_boot, seed=seed, ci=ci, patients=patients)[
        "model"
    ]


def _difference(
    reps_a: np.ndarray,
    reps_b: np.ndarray,
    auc_a: float,
    auc_b: float,
    clusters: Clusters,
    n_boot: int,
    ci: float,
    grades: tuple[int, ...] = (),
) -> AUCDifference:
    """The paired difference of two sets of replicates from the same resamples."""
    diff = reps_a - reps_b
    valid = diff[~np.isnan(diff)]
    common = dict(
        n_boot_used=int(valid.size),
        n_boot_excluded=int(diff.size - valid.size),
        n_clusters=clusters.n_clusters,
        cluster=clusters.kind,
        grades=grades,
    )
    if n_boot == 0 or valid.size == 0:
        reason = (
            NO_BOOT_REASON
            if n_boot == 0
            else (
                f"every one of the {n_boot} resamples lacked a grade or the other grades: "
                "no confidence interval"
            )
        )
        if n_boot:
            undefined(reason)
        return AUCDifference(auc_a, auc_b, auc_a - auc_b, np.nan, np.nan, reason=reason, **common)
    alpha = 1.0 - ci
    low, high = np.quantile(valid, [alpha / 2.0, 1.0 - alpha / 2.0])
    return AUCDifference(auc_a, auc_b, auc_a - auc_b, float(low), float(high), **common)


def auc_differences(
    y_true: ArrayLike,
    probs_a: ArrayLike,
    probs_b: ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    patients: Sequence[object] | None = None,
) -> dict[int | str, AUCDifference]:
    """AUC(a) - AUC(b) per grade and for the macro average, with paired bootstrap CIs.

    Both models are scored on the very same resamples (patients with all their items when
    ``patients`` is given, else items), so the interval is that of a paired difference. The
    macro difference averages the grades defined on all cases; a resample lacking one of
    them is excluded (counted in ``n_boot_excluded``). Keys: grades 0-3 and "macro".
    """
    _check_ci(ci, n_boot)
    grades = as_grades(y_true)
    n = grades.size
    pa = as_probs(probs_a, n, "probs_a")
    pb = as_probs(probs_b, n, "probs_b")
    clusters = Clusters.of(patients, n_items=n)
    found = _replicates(grades, {"a": pa, "b": pb}, clusters, n_boot, seed, paired=True)
    out: dict[int | str, AUCDifference] = {}
    defined: list[int] = []
    for grade in GRADES:
        reason = _undefined_reason(grade, *found.counts[grade])
        if reason is not None:
            out[grade] = AUCDifference(
                np.nan, np.nan, np.nan, np.nan, np.nan, 0, 0, clusters.n_clusters, clusters.kind, reason
            )
            continue
        defined.append(grade)
        out[grade] = _difference(
            found.reps[("a", grade)],
            found.reps[("b", grade)],
            found.points[("a", grade)],
            found.points[("b", grade)],
            clusters,
            n_boot,
            ci,
        )
    if not defined:
        reason = "no grade has both positive and negative cases: macro AUC is undefined"
        out["macro"] = AUCDifference(
            np.nan, np.nan, np.nan, np.nan, np.nan, 0, 0, clusters.n_clusters, clusters.kind, reason
        )
        return out
    macro = {
        side: (
            float(np.mean([found.points[(side, g)] for g in defined])),
            np.mean([found.reps[(side, g)] for g in defined], axis=0) if n_boot else np.empty(0),
        )
        for side in ("a", "b")
    }
    out["macro"] = _difference(
        macro["a"][1],
        macro["b"][1],
        macro["a"][0],
        macro["b"][0],
        clusters,
        n_boot,
        ci,
        grades=tuple(defined),
    )
    return out


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
