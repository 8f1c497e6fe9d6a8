"""Agreement between two gradings: accuracy, 4x4 confusion, weighted kappa, per-grade sens/spec.

Grades are the EOSS grades 0-3. Every function passes ``labels=(0, 1, 2, 3)`` to scikit-learn:
without it a weighted kappa on data lacking a grade would measure distances between the grades
present (0, 2, 3 would be one step apart), not between the grades themselves.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse
from sklearn.exceptions import UndefinedMetricWarning as SklearnUndefinedMetric
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

from rascore.evaluate.clusters import Clusters, cluster_count_chunks
from rascore.evaluate.inputs import N_GRADES, as_grades
from rascore.evaluate.undefined import UndefinedValue, undefined
from rascore.scale import GRADES

LABELS = list(GRADES)
KAPPA_WEIGHTS = ("linear", "quadratic")


def _pair(a: ArrayLike, b: ArrayLike, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Validate two gradings of the same items."""
    first, second = as_grades(a, names[0]), as_grades(b, names[1])
    if first.size != second.size:
        raise ValueError(f"{names[0]} has {first.size} items but {names[1]} has {second.size}")
    return first, second


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of items graded exactly as the reference; NaN with a reason for no items."""
    truth, pred = _pair(y_true, y_pred, ("y_true", "y_pred"))
    if truth.size == 0:
        return undefined("no items: accuracy is undefined")
    return float(accuracy_score(truth, pred))


def confusion(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """4x4 confusion counts, rows the reference grade 0-3, columns the predicted grade 0-3."""
    truth, pred = _pair(y_true, y_pred, ("y_true", "y_pred"))
    if truth.size == 0:
        return np.zeros((N_GRADES, N_GRADES), dtype=np.int64)
    return confusion_matrix(truth, pred, labels=LABELS)


def _kappa_weights(weights: str) -> np.ndarray:
    """Disagreement weight matrix |i-j| or (i-j)^2 over grades 0-3, as scikit-learn uses."""
    if weights not in KAPPA_WEIGHTS:
        raise ValueError(f"weights must be one of {KAPPA_WEIGHTS}, got {weights!r}")
    diff = np.subtract.outer(np.arange(N_GRADES), np.arange(N_GRADES))
    return np.abs(diff).astype(float) if weights == "linear" else (diff**2).astype(float)


def weighted_kappa(a: ArrayLike, b: ArrayLike, weights: str = "linear") -> float:
    """Cohen's weighted kappa of two gradings (scikit-learn), NaN with a reason when undefined.

    Undefined when there are no items or when chance agreement is already perfect (both
    gradings constant and equal), which makes kappa 0/0.
    """
    first, second = _pair(a, b, ("a", "b"))
    _kappa_weights(weights)
    if first.size == 0:
        return undefined("no items: kappa is undefined")
    with warnings.catch_warnings():
        # scikit-learn warns when kappa is 0/0; the NaN below says why instead
        warnings.simplefilter("ignore", SklearnUndefinedMetric)
        value = float(cohen_kappa_score(first, second, labels=LABELS, weights=weights))
    if np.isnan(value):
        return undefined(
            "expected chance agreement is perfect (both gradings constant and equal): kappa is 0/0"
        )
    return value


def kappa_from_confusions(confusions: np.ndarray, weights: str = "quadratic") -> np.ndarray:
    """Weighted kappa of many (4, 4) count matrices at once: shape (..., 4, 4) -> (...).

    kappa = 1 - sum(w * observed) / sum(w * expected), expected from the margins; NaN where
    the denominator is 0. Matches ``cohen_kappa_score`` with sample weights equal to counts.
    """
    w = _kappa_weights(weights)
    obs = np.asarray(confusions, dtype=float)
    total = obs.sum(axis=(-2, -1))
    rows, cols = obs.sum(axis=-1), obs.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = rows[..., :, None] * cols[..., None, :] / total[..., None, None]
        num = (w * obs).sum(axis=(-2, -1))
        den = (w * expected).sum(axis=(-2, -1))
        kappa = 1.0 - num / den
    return np.where(den > 0, kappa, np.nan)


def _cell_matrix(truth: np.ndarray, pred: np.ndarray) -> sparse.csr_matrix:
    """(16, n) sparse one-hot of each item's confusion cell: times an (n, B) count matrix, it
    gives the B resamples' confusions as (16, B) counts (sparse: a dense product is ~30x slower)."""
    n = truth.size
    return sparse.csr_matrix(
        (np.ones(n, dtype=np.int64), (truth * N_GRADES + pred, np.arange(n))), shape=(N_GRADES * N_GRADES, n)
    )


def percentile_interval(values: ArrayLike, alpha: float = 0.05) -> tuple[float, float]:
    """Equal-tailed percentile interval of bootstrap replicates at level 1 - ``alpha``.

    With B replicates sorted, the bounds are the j-th smallest and the j-th largest, j =
    max(1, ceil(B * alpha / 2)). It excludes 0 exactly when ``bootstrap_p(values) < alpha``:
    the interval and the p-value are the same test (see ``bootstrap_p``).
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    if ordered.size == 0:
        return np.nan, np.nan
    j = tail_count(ordered.size, alpha)
    return float(ordered[j - 1]), float(ordered[ordered.size - j])


def _share(count: int, n_replicates: int) -> float:
    """Twice a tail count as a share of the replicates: the one expression that the p-value and
    the interval both use, so that they agree in floating point too."""
    return 2.0 * count / n_replicates


def tail_count(n_replicates: int, alpha: float) -> int:
    """j of a level 1 - alpha percentile interval: the smallest j with 2j/B >= alpha (at least 1,
    at most B/2), so that fewer than j replicates beyond 0 means exactly p < alpha."""
    alpha = min(float(alpha), 1.0)
    j = math.ceil(n_replicates * alpha / 2)
    while j > 0 and _share(j - 1, n_replicates) >= alpha:
        j -= 1
    while _share(j, n_replicates) < alpha:
        j += 1
    return int(min(max(1, j), max(1, n_replicates // 2)))


def bootstrap_p(values: ArrayLike) -> float:
    """Two-sided bootstrap p-value of "the statistic is 0": ``min(1, 2 * min(#<=0, #>=0) / B)``.

    It is the smallest alpha at which ``percentile_interval(values, alpha)`` excludes 0 (so a
    test and its interval never disagree). 0 means that no replicate reached 0: report it as
    below 1/B, not as zero.
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return np.nan
    far = min(int((arr <= 0).sum()), int((arr >= 0).sum()))
    return float(min(1.0, _share(far, arr.size)))


def paired_kappa_bootstrap(
    reference: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    weights: str = "quadratic",
    n_boot: int = 1000,
    seed: int = 0,
    patients: Sequence[object] | None = None,
    keep_resamples: bool = False,
) -> dict:
    """Paired bootstrap of kappa(a, reference) - kappa(b, reference) on the same items.

    Every resample draws once and scores both gradings on what it drew, so the two kappas stay
    paired. Without ``patients`` it draws items (a case bootstrap); with one patient id per item
    it draws patients with replacement and keeps all their items (a patient bootstrap,
    ``rascore.evaluate.clusters``; an item without a patient id is its own cluster), which is
    wider when a patient's grades are correlated. All resamples at once: a resample is a count
    vector, its 4x4 confusion a (sparse) matrix product with the items' one-hot cells.

    Returns both kappas, the difference, its 95% percentile interval (``percentile_interval``),
    the two-sided bootstrap p-value (``bootstrap_p``; the interval excludes 0 exactly when p <
    0.05), ``cluster`` ("patient" or "item"), ``n_clusters`` and the resamples used and left
    out: a resample in which either kappa is undefined is left out and counted
    (``n_boot_excluded``). ``keep_resamples`` adds the used differences as ``resamples`` (for
    an interval at another level).
    """
    ref, first = _pair(reference, a, ("reference", "a"))
    _, second = _pair(reference, b, ("reference", "b"))
    clusters = Clusters.of(None if patients is None else list(patients), ref.size)
    kappa_a = weighted_kappa(ref, first, weights)
    kappa_b = weighted_kappa(ref, second, weights)
    out: dict = {
        "n": int(ref.size),
        "kappa_a": kappa_a,
        "kappa_b": kappa_b,
        "diff": kappa_a - kappa_b,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p": np.nan,
        "cluster": clusters.kind,
        "n_clusters": clusters.n_clusters,
        "n_boot_used": 0,
        "n_boot_excluded": 0,
        "reason": None,
    }
    if keep_resamples:
        out["resamples"] = np.empty(0)
    if ref.size == 0 or n_boot <= 0:
        out["reason"] = "no items" if ref.size == 0 else "n_boot is 0"
        return out
    cells_a, cells_b = _cell_matrix(ref, first), _cell_matrix(ref, second)
    parts = []
    for counts in cluster_count_chunks(clusters, n_boot, seed):
        conf_a = (cells_a @ counts).T.reshape(-1, N_GRADES, N_GRADES)
        conf_b = (cells_b @ counts).T.reshape(-1, N_GRADES, N_GRADES)
        parts.append(kappa_from_confusions(conf_a, weights) - kappa_from_confusions(conf_b, weights))
    diff = np.concatenate(parts)
    valid = diff[~np.isnan(diff)]
    out["n_boot_used"], out["n_boot_excluded"] = int(valid.size), int(n_boot - valid.size)
    if keep_resamples:
        out["resamples"] = valid
    if valid.size == 0:
        out["reason"] = "kappa undefined in every resample: no bootstrap p-value"
        undefined(str(out["reason"]))
        return out
    out["ci_low"], out["ci_high"] = percentile_interval(valid, 0.05)
    out["p"] = bootstrap_p(valid)
    return out


@dataclass(frozen=True)
class KappaReplicates:
    """Several gradings' weighted kappas against one reference, and their bootstrap replicates
    drawn from the very same resamples (so any mean or difference of them is paired)."""

    kappas: list[float]  # one per grading; NaN with its reason where undefined
    replicates: np.ndarray  # (gradings, n_boot); NaN where kappa is undefined in a resample
    cluster: str  # "patient" or "item": what the resamples drew
    n_clusters: int


def kappa_replicates(
    reference: ArrayLike,
    gradings: Sequence[ArrayLike],
    weights: str = "quadratic",
    n_boot: int = 1000,
    seed: int = 0,
    patients: Sequence[object] | None = None,
) -> KappaReplicates:
    """Weighted kappa of each grading against ``reference`` on the same items, with ``n_boot``
    bootstrap replicates of every kappa from one stream of resamples.

    With one patient id per item the resamples draw patients with replacement and keep all
    their items (``rascore.evaluate.clusters``; an item without an id is its own patient);
    without, they draw items. The same ``seed`` draws the same resamples as
    ``paired_kappa_bootstrap``. Read intervals with ``percentile_interval`` and tests with
    ``bootstrap_p`` over the defined replicates.
    """
    ref = as_grades(reference, "reference")
    graded = [_pair(ref, g, ("reference", f"grading {k}"))[1] for k, g in enumerate(gradings)]
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    clusters = Clusters.of(None if patients is None else list(patients), ref.size)
    kappas = [weighted_kappa(ref, g, weights) for g in graded]
    reps = np.full((len(graded), n_boot), np.nan)
    if ref.size and graded and n_boot:
        cells = [_cell_matrix(ref, g) for g in graded]
        done = 0
        for counts in cluster_count_chunks(clusters, n_boot, seed):
            width = counts.shape[1]
            for k, cell in enumerate(cells):
                confusions = (cell @ counts).T.reshape(-1, N_GRADES, N_GRADES)
                reps[k, done : done + width] = kappa_from_confusions(confusions, weights)
            done += width
    return KappaReplicates(kappas, reps, clusters.kind, clusters.n_clusters)


def sensitivity_specificity(y_true: ArrayLike, y_pred: ArrayLike) -> dict[int, dict]:
    """Per grade (one against the rest): sensitivity, specificity and the counts behind them.

    Sensitivity is NaN with a reason when the reference has no item of that grade; specificity
    when every item is of that grade.
    """
    truth, pred = _pair(y_true, y_pred, ("y_true", "y_pred"))
    out: dict[int, dict] = {}
    for grade in GRADES:
        pos, called = truth == grade, pred == grade
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        sens = (
            float((called & pos).sum() / n_pos)
            if n_pos
            else UndefinedValue(f"no reference item of grade {grade}: sensitivity undefined")
        )
        spec = (
            float((~called & ~pos).sum() / n_neg)
            if n_neg
            else UndefinedValue(f"every reference item is grade {grade}: specificity undefined")
        )
        out[grade] = {"sensitivity": sens, "specificity": spec, "n_pos": n_pos, "n_neg": n_neg}
    return out
