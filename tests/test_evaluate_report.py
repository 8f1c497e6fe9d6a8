"""The one model report: the same figures as the single metric functions, the macro AUC's grades,
and every undefined value's reason kept through the JSON of model cards and validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rascore.evaluate import (
    accuracy,
    confusion,
    expected_calibration_error,
    per_grade_auc,
    weighted_kappa,
)
from rascore.evaluate.report import model_report, model_reports, point_report
from rascore.train.evaluation import cohort_report
from rascore.train.loop import validation_metrics


def _data(n=90, seed=0, grades=(0, 1, 2, 3)):
    rng = np.random.default_rng(seed)
    y = rng.choice(grades, n)
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), y] += 1.2
    return y, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_report_equals_the_single_functions():
    y, p = _data()
    patients = [f"P{i // 3}" for i in range(y.size)]
    r = model_report(y, p, n_boot=80, seed=2, patients=patients)
    assert r.auc == per_grade_auc(y, p, n_boot=80, seed=2, patients=patients)
    predicted = p.argmax(axis=1)
    assert r.accuracy == accuracy(y, predicted)
    assert r.kappa_linear == weighted_kappa(y, predicted, "linear")
    assert r.kappa_quadratic == weighted_kappa(y, predicted, "quadratic")
    assert r.ece == expected_calibration_error(y, p)
    np.testing.assert_array_equal(r.confusion, confusion(y, predicted))
    assert r.macro.grades == (0, 1, 2, 3) and r.macro_auc == pytest.approx(
        np.mean([a.auc for a in r.auc.values()])
    )
    assert (r.cluster, r.n_clusters) == ("patient", 30)
    assert r.resampled == "Intervals resample patients: 30 patients, 90 items"


def test_hard_grades_given_apart_from_the_probabilities():
    y, p = _data(seed=1)
    hard = np.zeros_like(y)
    both = model_reports(y, {"a": p, "b": p}, {"b": hard}, n_boot=0)
    assert both["a"].accuracy == accuracy(y, p.argmax(1))
    assert both["b"].accuracy == accuracy(y, hard)


def test_macro_says_which_grades_it_averaged_and_why_others_are_left_out():
    y, p = _data(grades=(0, 1, 2))
    r = model_report(y, p, n_boot=0)
    assert r.macro.n_grades == 3 and r.macro.grades == (0, 1, 2)
    assert "no case of grade 3" in r.macro.left_out[3]
    assert "mean of 3 grades (0, 1, 2); grade 3 left out" in r.macro.describe()


def test_cohort_report_json_keeps_every_reason():
    """What `rascore evaluate --json` and the model cards store: NaN as null, reason beside it."""
    y = np.zeros(12, dtype=int)
    y[6:] = 1
    p = np.tile([0.7, 0.1, 0.1, 0.1], (12, 1))
    constant = np.zeros(12, dtype=int)  # the reference has two grades, the rule predicts one
    report = json.loads(
        json.dumps(cohort_report(y, p, constant, n_boot=20, patients=[f"P{i // 2}" for i in range(12)]))
    )
    assert report["auc"]["3"]["auc"] is None and "no case of grade 3" in report["auc"]["3"]["reason"]
    assert report["macro_n_grades"] == 2 and "3" in report["macro_left_out"]
    assert report["cluster"] == "patient" and report["n_clusters"] == 6
    kappa_y = np.zeros(12, dtype=int)
    same = json.loads(json.dumps(cohort_report(kappa_y, p, constant, n_boot=0)))
    assert same["kappa_linear"] is None and "kappa" in same["reasons"]["kappa_linear"]
    assert same["macro_auc"] is None and "no grade" in same["reasons"]["macro_auc"]


def test_validation_uses_the_same_report():
    y, p = _data(seed=3, grades=(0, 1, 3))
    val = validation_metrics(y, p)
    r = point_report(y, p)
    assert val["auc"][0] == r.auc[0].auc and np.isnan(val["auc"][2])
    assert val["macro_auc"] == r.macro_auc and val["macro_n_grades"] == 3
    assert "no case of grade 2" in val["reasons"]["auc 2"]
    assert val["accuracy"] == accuracy(y, p.argmax(1))
