"""Patient-clustered per-grade AUC intervals and paired AUC differences on shared resamples."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from rascore.evaluate.auc import auc_differences, per_grade_auc, per_grade_auc_models
from rascore.evaluate.clusters import Clusters, cluster_count_chunks


def _cohort(seed: int, n_patients: int = 40, per: int = 3):
    """Grades and probabilities with a shared patient effect, and the patient ids."""
    rng = np.random.default_rng(seed)
    patients = [f"P{i // per}" for i in range(n_patients * per)]
    level = np.repeat(rng.normal(0, 1, n_patients), per)
    y = np.clip(np.round(1.5 + level + rng.normal(0, 0.6, level.size)), 0, 3).astype(int)
    logits = rng.normal(0, 1, (y.size, 4)) + np.repeat(rng.normal(0, 1.5, (n_patients, 4)), per, 0)
    logits[np.arange(y.size), y] += 1.0
    return y, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), patients


def _weighted_reps(y, scores, grade, patients, n_boot, seed):
    """The patient bootstrap written naively: sklearn AUC with each item weighted by how often
    its patient was drawn, on the very resamples of ``cluster_count_chunks``."""
    clusters = Clusters.of(patients)
    reps = []
    for counts in cluster_count_chunks(clusters, n_boot, seed):
        for col in counts.T:
            keep = col > 0
            positive = (y == grade)[keep]
            reps.append(
                roc_auc_score(positive, scores[keep], sample_weight=col[keep])
                if 0 < positive.sum() < positive.size
                else np.nan
            )
    return np.array(reps)


def test_interval_is_the_patient_bootstrap():
    """The CI is the percentile interval of the AUCs of patient resamples (all of a drawn
    patient's items, counted as often as the patient was drawn), from the same seed."""
    y, p, patients = _cohort(1)
    result = per_grade_auc(y, p, n_boot=60, seed=4, patients=patients)
    for grade, r in result.items():
        reps = _weighted_reps(y, p[:, grade], grade, patients, 60, 4)
        valid = reps[~np.isnan(reps)]
        low, high = np.quantile(valid, [0.025, 0.975])
        assert r.ci_low == pytest.approx(low, abs=1e-12)
        assert r.ci_high == pytest.approx(high, abs=1e-12)
        assert r.cluster == "patient" and r.n_clusters == 40
        assert r.n_boot_excluded == int(np.isnan(reps).sum())
        assert r.n_boot_used + r.n_boot_excluded == 60
        assert r.auc == roc_auc_score(y == grade, p[:, grade])


def test_without_patients_items_are_resampled():
    """No patient ids: the item bootstrap as before, reported as clusters of one item."""
    y, p, _ = _cohort(2)
    r = per_grade_auc(y, p, n_boot=50, seed=0)[1]
    assert r.cluster == "item" and r.n_clusters == y.size


def test_excluded_resamples_are_counted():
    """A grade held by one patient only: many patient resamples lack it; each is counted."""
    y, p, patients = _cohort(3)
    y = np.where(y == 3, 2, y)
    y[:3] = 3  # the first patient's three items
    r = per_grade_auc(y, p, n_boot=200, seed=1, patients=patients)[3]
    assert r.n_boot_excluded > 50  # (39/40)^40, about 36% of resamples miss that patient
    assert r.n_boot_used + r.n_boot_excluded == 200


def test_clustered_intervals_are_wider_on_clustered_data():
    """Correlated items of a patient: the patient interval is wider than the item interval."""
    y, p, patients = _cohort(4, n_patients=60, per=5)
    clustered = per_grade_auc(y, p, n_boot=400, seed=0, patients=patients)
    items = per_grade_auc(y, p, n_boot=400, seed=0)
    wider = [
        clustered[g].ci_high - clustered[g].ci_low > items[g].ci_high - items[g].ci_low for g in range(4)
    ]
    assert sum(wider) >= 3


def test_models_share_the_patient_resamples():
    """Several models: each one's interval is the one it gets alone (same resamples)."""
    y, p, patients = _cohort(5)
    q = np.roll(p, 1, axis=1)
    both = per_grade_auc_models(y, {"a": p, "b": q}, n_boot=100, seed=2, patients=patients)
    assert both["b"] == per_grade_auc(y, q, n_boot=100, seed=2, patients=patients)


def test_paired_difference_uses_the_same_resamples():
    """The difference's CI is the percentile interval of rep_a - rep_b on shared patient
    resamples; a model against itself differs by exactly 0 in every resample."""
    y, p, patients = _cohort(6)
    q = 0.5 * p + 0.5 * np.roll(p, 1, axis=0)
    diffs = auc_differences(y, p, q, n_boot=50, seed=3, patients=patients)
    grade = 1
    reps = _weighted_reps(y, p[:, grade], grade, patients, 50, 3) - _weighted_reps(
        y, q[:, grade], grade, patients, 50, 3
    )
    low, high = np.quantile(reps[~np.isnan(reps)], [0.025, 0.975])
    assert diffs[grade].ci_low == pytest.approx(low, abs=1e-12)
    assert diffs[grade].ci_high == pytest.approx(high, abs=1e-12)
    assert diffs[grade].cluster == "patient"
    same = auc_differences(y, p, p, n_boot=50, seed=0, patients=patients)
    assert same["macro"].ci_low == 0.0 and same["macro"].ci_high == 0.0
    assert same["macro"].grades == (0, 1, 2, 3)
    unpaired_width = (
        per_grade_auc(y, p, n_boot=50, seed=3, patients=patients)[grade].ci_high
        - per_grade_auc(y, p, n_boot=50, seed=3, patients=patients)[grade].ci_low
    )
    assert diffs[grade].ci_high - diffs[grade].ci_low < 2 * unpaired_width
