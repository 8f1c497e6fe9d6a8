"""Reliability curve, ECE and multi-class Brier score against hand computations and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from rascore.evaluate import brier_score, expected_calibration_error, reliability_curve


def sample(n: int, seed: int):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(4) * 0.7, size=n)
    y = np.array([rng.choice(4, p=row) for row in p])  # calibrated by construction
    return y, p


def test_reliability_curve_and_ece_match_a_plain_loop():
    y, p = sample(500, 0)
    curve = reliability_curve(y, p, n_bins=10)
    conf, correct = p.max(axis=1), p.argmax(axis=1) == y
    ece = 0.0
    for m in range(10):
        lo, hi = m / 10, (m + 1) / 10
        inside = (conf > lo) & (conf <= hi) if m else (conf <= hi)
        assert curve.count[m] == inside.sum()
        if inside.any():
            assert curve.confidence[m] == pytest.approx(conf[inside].mean())
            assert curve.accuracy[m] == pytest.approx(correct[inside].mean())
            ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
        else:
            assert np.isnan(curve.confidence[m])
    assert curve.count.sum() == 500
    assert expected_calibration_error(y, p) == pytest.approx(ece)


def test_ece_small_when_calibrated_large_when_overconfident():
    y, p = sample(4000, 1)
    calibrated = expected_calibration_error(y, p)
    sharp = p**4 / (p**4).sum(axis=1, keepdims=True)
    assert calibrated < 0.03
    assert expected_calibration_error(y, sharp) > calibrated + 0.05


def test_brier_equals_sklearn_multiclass():
    y, p = sample(300, 2)
    expected = brier_score_loss(y, p, labels=[0, 1, 2, 3], scale_by_half=False)
    assert brier_score(y, p) == pytest.approx(expected)
    assert brier_score(y, np.eye(4)[y]) == 0.0
