"""Obuchowski's clustered AUC test: DeLong when every patient has one item, an independent
transcription of the formulas, the patient bootstrap, and coverage on clustered data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rascore.evaluate.delong import delong_covariance, delong_per_grade, delong_test
from rascore.evaluate.obuchowski import (
    macro_covariance,
    obuchowski_covariance,
    obuchowski_test,
    paired_auc_per_grade,
    paired_auc_tests,
    paired_macro_test,
)
from rascore.evaluate.undefined import UndefinedMetricWarning
from tests.test_evaluate_delong import ASAH_NDKA, ASAH_POOR, ASAH_S100B, ASAH_WFNS


def _psi(x: float, y: float) -> float:
    """Obuchowski's kernel: 1 when the positive scores higher, 1/2 on a tie, else 0."""
    return 1.0 if x > y else 0.5 if x == y else 0.0


def _literal_covariance(positive, a, b, patients) -> tuple[float, float, float, float, float]:
    """Obuchowski 1997 (Biometrics 53:567), section 2, written out term by term with loops over
    patients and pairs of items, as iMRMC's doAUCcluster describes the estimators: an
    implementation independent of the module's midrank vectorisation. Returns
    (AUC a, AUC b, var a, var b, cov ab)."""
    ids = list(dict.fromkeys(patients))
    pos = [i for i in range(len(a)) if positive[i]]
    neg = [i for i in range(len(a)) if not positive[i]]
    big_m, big_n, big_i = len(pos), len(neg), len(ids)

    def components(s):
        auc = sum(_psi(s[i], s[j]) for i in pos for j in neg) / (big_m * big_n)
        x, y, m, n = [], [], [], []
        for pid in ids:
            mine = [i for i in range(len(s)) if patients[i] == pid]
            xs = [i for i in mine if positive[i]]
            ys = [i for i in mine if not positive[i]]
            x.append(sum(sum(_psi(s[i], s[j]) for j in neg) / big_n for i in xs))
            y.append(sum(sum(_psi(s[i], s[j]) for i in pos) / big_m for j in ys))
            m.append(len(xs))
            n.append(len(ys))
        return auc, x, y, m, n

    auc_a, xa, ya, m, n = components(a)
    auc_b, xb, yb, _, _ = components(b)
    i10 = sum(1 for k in m if k)
    i01 = sum(1 for k in n if k)

    def cov(xs1, ys1, t1, xs2, ys2, t2):
        s10 = (
            i10 / ((i10 - 1) * big_m) * sum((xs1[k] - m[k] * t1) * (xs2[k] - m[k] * t2) for k in range(big_i))
        )
        s01 = (
            i01 / ((i01 - 1) * big_n) * sum((ys1[k] - n[k] * t1) * (ys2[k] - n[k] * t2) for k in range(big_i))
        )
        s11_12 = big_i / (big_i - 1) * sum((xs1[k] - m[k] * t1) * (ys2[k] - n[k] * t2) for k in range(big_i))
        s11_21 = big_i / (big_i - 1) * sum((xs2[k] - m[k] * t2) * (ys1[k] - n[k] * t1) for k in range(big_i))
        return s10 / big_m + s01 / big_n + (s11_12 + s11_21) / (big_m * big_n)

    return (
        auc_a,
        auc_b,
        cov(xa, ya, auc_a, xa, ya, auc_a),
        cov(xb, yb, auc_b, xb, yb, auc_b),
        cov(xa, ya, auc_a, xb, yb, auc_b),
    )


def _clustered_cohort(rng, n_patients, per_patient, effect=1.0, spread=1.2):
    """Items of patients whose grades and scores share a patient effect (positives cluster)."""
    patients = np.repeat(np.arange(n_patients), per_patient)
    level = rng.normal(0, 1, n_patients)[patients]
    positive = (level + rng.normal(0, 0.7, patients.size)) > 0.3
    a = effect * positive + spread * rng.normal(0, 1, n_patients)[patients] + rng.normal(0, 1, patients.size)
    b = effect * positive + spread * rng.normal(0, 1, n_patients)[patients] + rng.normal(0, 1, patients.size)
    return positive, a, b, [f"P{p}" for p in patients]


def test_one_item_per_patient_is_delong_on_asah():
    """pROC's aSAH data (tests/test_evaluate_delong.py, checked there against pROC's roc.test)
    with every patient a cluster of one: AUCs, covariance, z and p equal DeLong's to 1e-12."""
    y = np.array(ASAH_POOR)
    scores = np.vstack([ASAH_S100B, ASAH_WFNS, ASAH_NDKA])
    patients = [f"patient {i}" for i in range(y.size)]
    aucs, cov = obuchowski_covariance(y, scores, patients)
    ref_aucs, ref_cov = delong_covariance(y, scores)
    np.testing.assert_allclose(aucs, ref_aucs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=0, atol=1e-12)
    for first, second in itertools.combinations(scores, 2):
        ours, ref = obuchowski_test(y, first, second, patients), delong_test(y, first, second)
        assert ours.method == "obuchowski" and ref.method == "delong"
        for field in ("auc_a", "auc_b", "z", "p", "var_a", "var_b", "cov_ab"):
            assert getattr(ours, field) == pytest.approx(getattr(ref, field), abs=1e-12)


def test_matches_a_literal_transcription_of_the_formulas():
    """Unequal clusters, ties, patients with only positives or only negatives: the module and
    the term-by-term transcription above agree to 1e-12."""
    rng = np.random.default_rng(11)
    sizes = rng.integers(1, 5, 17)
    patients = [f"P{k}" for k, size in enumerate(sizes) for _ in range(size)]
    positive = rng.random(len(patients)) < 0.4
    a = np.round(rng.normal(0, 1, len(patients)) + positive, 1)  # rounding makes ties
    b = np.round(rng.normal(0, 1, len(patients)) + 0.5 * positive, 1)
    auc_a, auc_b, var_a, var_b, cov_ab = _literal_covariance(positive, a, b, patients)
    result = obuchowski_test(positive, a, b, patients)
    assert result.auc_a == pytest.approx(auc_a, abs=1e-12)
    assert result.auc_b == pytest.approx(auc_b, abs=1e-12)
    assert result.var_a == pytest.approx(var_a, abs=1e-12)
    assert result.var_b == pytest.approx(var_b, abs=1e-12)
    assert result.cov_ab == pytest.approx(cov_ab, abs=1e-12)


def test_variance_agrees_with_the_patient_bootstrap():
    """On strongly clustered data Obuchowski's variance is near the patient bootstrap's and well
    above DeLong's (which treats items as independent)."""
    from rascore.evaluate.bootstrap import WeightedAUC
    from rascore.evaluate.clusters import Clusters, per_cluster_count_chunks

    rng = np.random.default_rng(3)
    positive, a, _, patients = _clustered_cohort(rng, 150, 4)
    _, cov = obuchowski_covariance(positive, a, patients)
    _, item_cov = delong_covariance(positive, a[None, :])
    clusters = Clusters.of(patients)
    weighted = WeightedAUC(a, positive)
    reps = np.concatenate(
        [weighted.gathered(src, clusters.codes) for src in per_cluster_count_chunks(clusters, 2000, 5)]
    )
    boot_var = np.nanvar(reps, ddof=1)
    assert cov[0, 0] == pytest.approx(boot_var, rel=0.15)
    assert cov[0, 0] > 1.5 * item_cov[0, 0]


def test_coverage_on_clustered_data():
    """Seeded simulation: two exchangeable models (true AUC difference 0) with patient-level
    noise. The clustered 95% test keeps its level (p >= 0.05 near 95% of the time); DeLong's
    item-level test does not."""
    rng = np.random.default_rng(2024)
    runs, covered_obu, covered_delong = 300, 0, 0
    for _ in range(runs):
        positive, a, b, patients = _clustered_cohort(rng, 30, 5)
        covered_obu += obuchowski_test(positive, a, b, patients).p >= 0.05
        covered_delong += delong_test(positive, a, b).p >= 0.05
    assert 0.91 <= covered_obu / runs <= 0.99
    assert covered_delong / runs < 0.86
    assert covered_delong < covered_obu - 20


def test_per_grade_and_macro_with_and_without_patients():
    """Per grade: Obuchowski with patient ids, DeLong (same numbers as delong_per_grade) without;
    the macro test says which grades it averaged."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 80)
    p = rng.dirichlet(np.ones(4), 80)
    q = rng.dirichlet(np.ones(4), 80)
    patients = [f"P{i // 4}" for i in range(80)]
    clustered = paired_auc_per_grade(y, p, q, patients)
    assert {r["method"] for r in clustered} == {"obuchowski"}
    plain = paired_auc_per_grade(y, p, q)
    for ours, ref in zip(plain, delong_per_grade(y, p, q)):
        assert ours["method"] == "delong"
        assert ours["p"] == pytest.approx(ref["p"], abs=1e-12)
    macro = paired_macro_test(y, p, q, patients)
    assert macro["method"] == "obuchowski" and macro["grades"] == [0, 1, 2, 3]
    assert macro["auc_a"] == pytest.approx(np.mean([r["auc_a"] for r in clustered]))
    assert 0 <= macro["p"] <= 1
    both = paired_auc_tests(y, p, q, patients)
    assert [r["grade"] for r in both] == [0, 1, 2, 3, "macro"]
    assert [r["p"] for r in both] == [r["p"] for r in clustered] + [macro["p"]]


def test_macro_variance_is_that_of_the_mean_of_the_grades():
    """The macro variance equals the variance of the mean of the per-grade AUCs under the
    patient bootstrap (within its noise), and a grade present in one patient only is left out
    with its reason."""
    from rascore.evaluate.auc import auc_differences

    rng = np.random.default_rng(8)
    n_patients, per = 120, 4
    patients = [f"P{i // per}" for i in range(n_patients * per)]
    level = np.repeat(rng.normal(0, 1, n_patients), per)
    y = np.clip(np.round(1.5 + level + rng.normal(0, 0.8, level.size)), 0, 3).astype(int)
    logits = rng.normal(0, 1, (y.size, 4)) + np.repeat(rng.normal(0, 1, (n_patients, 4)), per, axis=0)
    logits[np.arange(y.size), y] += 1.0
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    q = np.full_like(p, 0.25)  # constant scores: AUC 0.5 in every resample
    _, cov, kept, left_out = macro_covariance(y, [p], patients)
    diff = auc_differences(y, p, q, n_boot=1500, seed=1, patients=patients)["macro"]
    assert kept == [0, 1, 2, 3] and not left_out and diff.n_boot_excluded == 0
    half_width = (diff.ci_high - diff.ci_low) / 2
    assert np.sqrt(cov[0, 0]) * 1.96 == pytest.approx(half_width, rel=0.2)

    lone = y.copy()
    lone[lone == 3] = 2
    lone[:2] = 3  # grade 3 only in the first patient
    _, _, kept, left_out = macro_covariance(lone, [p], patients)
    assert kept == [0, 1, 2] and "at least 2" in left_out[3]
    macro = paired_macro_test(lone, p, q, patients)
    assert macro["grades"] == [0, 1, 2] and "at least 2" in macro["left_out"]["3"]


def test_undefined_parts_have_reasons():
    """Positives in a single patient: no variance, NaN with the reason; ValueError for the raw
    covariance."""
    positive = np.array([1, 1, 0, 0, 0, 0])
    patients = ["A", "A", "B", "B", "C", "C"]
    scores = np.array([0.9, 0.8, 0.1, 0.3, 0.2, 0.4])
    with pytest.warns(UndefinedMetricWarning):
        result = obuchowski_test(positive, scores, scores[::-1].copy(), patients)
    assert np.isnan(result.p) and "at least 2 patients" in result.reason
    with pytest.raises(ValueError):
        obuchowski_covariance(positive, scores, patients)
