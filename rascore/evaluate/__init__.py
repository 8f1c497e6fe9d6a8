"""Evaluation statistics: per-grade AUC with CIs, kappa, ICC, DeLong, calibration, reader study,
patient-level GLOESS.

Patient-clustered statistics where patient ids exist: the patient bootstrap (``clusters``,
``auc``) and Obuchowski's clustered AUC test (``obuchowski``). Multi-reader multi-case reader studies:
the Obuchowski-Rockette analysis with Hillis's degrees of freedom (``mrmc``), and the figures
reported beside it for reading with and without AI aid (``study``). One model report (``report``)
assembles the figures every page and command shows.

Metrics are plain functions taking numpy arrays and returning floats, dicts or small
dataclasses. An undefined value is NaN with a reason (and an ``UndefinedMetricWarning``), never
an exception and never a made-up number.
"""

from __future__ import annotations

from rascore.evaluate.agreement import (
    accuracy,
    confusion,
    kappa_from_confusions,
    kappa_replicates,
    paired_kappa_bootstrap,
    sensitivity_specificity,
    weighted_kappa,
)
from rascore.evaluate.auc import (
    AUCDifference,
    GradeAUC,
    ROCPoints,
    auc_differences,
    macro_auc,
    macro_from,
    per_grade_auc,
    per_grade_auc_models,
    roc_points,
)
from rascore.evaluate.calibration import (
    ReliabilityCurve,
    brier_score,
    expected_calibration_error,
    reliability_curve,
)
from rascore.evaluate.delong import (
    AUCInterval,
    DeLongResult,
    delong_auc_ci,
    delong_covariance,
    delong_per_grade,
    delong_test,
)
from rascore.evaluate.gloess import patient_agreement, patient_scores
from rascore.evaluate.icc import ICC_FORMS, icc_table
from rascore.evaluate.mrmc import MRMCInputError, MRMCResult, mrmc_analysis
from rascore.evaluate.obuchowski import (
    obuchowski_covariance,
    obuchowski_test,
    paired_auc_per_grade,
    paired_macro_test,
)
from rascore.evaluate.reader_study import grading_summary, reader_study
from rascore.evaluate.undefined import UndefinedMetricWarning, UndefinedValue, reason_of

__all__ = [
    "AUCDifference",
    "MRMCInputError",
    "MRMCResult",
    "mrmc_analysis",
    "auc_differences",
    "obuchowski_covariance",
    "obuchowski_test",
    "paired_auc_per_grade",
    "paired_macro_test",
    "AUCInterval",
    "DeLongResult",
    "GradeAUC",
    "ICC_FORMS",
    "ROCPoints",
    "ReliabilityCurve",
    "UndefinedMetricWarning",
    "UndefinedValue",
    "accuracy",
    "brier_score",
    "confusion",
    "delong_auc_ci",
    "delong_covariance",
    "delong_per_grade",
    "delong_test",
    "expected_calibration_error",
    "grading_summary",
    "icc_table",
    "kappa_from_confusions",
    "kappa_replicates",
    "macro_auc",
    "macro_from",
    "paired_kappa_bootstrap",
    "patient_agreement",
    "patient_scores",
    "per_grade_auc",
    "per_grade_auc_models",
    "reader_study",
    "reason_of",
    "reliability_curve",
    "roc_points",
    "sensitivity_specificity",
    "weighted_kappa",
]
