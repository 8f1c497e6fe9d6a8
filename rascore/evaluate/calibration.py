"""Calibration of per-grade probabilities: reliability curve, expected calibration error, Brier.

Top-label calibration (Guo et al., ICML 2017): a case's confidence is its highest grade
probability and it is right when that grade is the reference grade. Cases fall into
``n_bins`` equal-width bins of confidence, bin m holding confidences in ((m-1)/M, m/M] (the first
bin also holds 0). ECE is the count-weighted mean gap |accuracy - confidence| over the bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from rascore.evaluate.inputs import N_GRADES, as_grades, as_probs
from rascore.evaluate.undefined import undefined


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per confidence bin: edges, mean confidence, accuracy and case count (NaN where empty)."""

    bin_lower: np.ndarray
    bin_upper: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def reliability_curve(y_true: ArrayLike, probs: ArrayLike, n_bins: int = 10) -> ReliabilityCurve:
    """Mean top-label confidence against accuracy in equal-width bins, with counts per bin."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    grades = as_grades(y_true)
    p = as_probs(probs, grades.size)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == grades).astype(float)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=conf, minlength=n_bins) / count
        mean_acc = np.bincount(which, weights=correct, minlength=n_bins) / count
    return ReliabilityCurve(edges[:-1], edges[1:], mean_conf, mean_acc, count)


def expected_calibration_error(y_true: ArrayLike, probs: ArrayLike, n_bins: int = 10) -> float:
    """Top-label ECE: sum over bins of (bin share of cases) x |accuracy - mean confidence|."""
    curve = reliability_curve(y_true, probs, n_bins)
    total = int(curve.count.sum())
    if total == 0:
        return undefined("no cases: expected calibration error is undefined")
    used = curve.count > 0
    gaps = np.abs(curve.accuracy[used] - curve.confidence[used])
    return float((curve.count[used] / total * gaps).sum())


def brier_score(y_true: ArrayLike, probs: ArrayLike) -> float:
    """Multi-class Brier score: mean over cases of sum over grades of (p - 1[grade])^2 (0 to 2)."""
    grades = as_grades(y_true)
    p = as_probs(probs, grades.size)
    if grades.size == 0:
        return undefined("no cases: Brier score is undefined")
    onehot = np.eye(N_GRADES)[grades]
    return float(((p - onehot) ** 2).sum(axis=1).mean())
