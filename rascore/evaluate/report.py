"""One model report: every figure RAScore shows for a model scored against a reference.

Per-grade AUC (one grade against the rest) with its percentile bootstrap CI (patients resampled
when patient ids are given, else items), the macro AUC with the grades it averaged and those left
out with the reason, accuracy, the 4x4 confusion, linearly and quadratically weighted kappa and
top-label ECE. The model cards (``rascore.train.evaluation``), the Dashboard
(``rascore.services.dashboard``), ``rascore metrics`` and validation during training all build their
figures here, so a figure means the same everywhere and an undefined one keeps its reason
(``ModelReport.reasons``, and ``to_dict`` writes them beside the NaNs).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from rascore.evaluate.agreement import accuracy, confusion, weighted_kappa
from rascore.evaluate.auc import NO_BOOT_REASON, GradeAUC, per_grade_auc_models
from rascore.evaluate.calibration import expected_calibration_error
from rascore.evaluate.clusters import Clusters
from rascore.evaluate.inputs import as_grades, as_probs
from rascore.evaluate.undefined import UndefinedMetricWarning, UndefinedValue, reason_of

SCALARS: tuple[str, ...] = ("macro_auc", "accuracy", "kappa_linear", "kappa_quadratic", "ece")


@dataclass(frozen=True)
class MacroAUC:
    """Mean of the defined per-grade AUCs, the grades it averaged and those it left out (why)."""

    value: float
    grades: tuple[int, ...]
    left_out: dict[int, str]

    @property
    def n_grades(self) -> int:
        """How many grades the mean averages."""
        return len(self.grades)

    def describe(self) -> str:
        """E.g. 'mean of 3 grades (0, 1, 2); grade 3 left out: no case of grade 3 ...'."""
        if not self.grades:
            return "undefined: no grade has an AUC"
        text = f"mean of {self.n_grades} grades ({', '.join(map(str, self.grades))})"
        if self.left_out:
            text += "; " + "; ".join(f"grade {g} left out: {r}" for g, r in self.left_out.items())
        return text


def macro_of(per_grade: Mapping[int, GradeAUC]) -> MacroAUC:
    """The macro AUC of per-grade results: mean of the defined AUCs, the rest left out with why."""
    grades = tuple(g for g, r in per_grade.items() if not np.isnan(r.auc))
    left_out = {g: (r.reason or "undefined") for g, r in per_grade.items() if np.isnan(r.auc)}
    if not grades:
        return MacroAUC(
            UndefinedValue("no grade has both positive and negative cases: macro AUC is undefined"),
            (),
            left_out,
        )
    return MacroAUC(float(np.mean([per_grade[g].auc for g in grades])), grades, left_out)


@dataclass
class ModelReport:
    """Every figure of one model on one set of cases, and what its intervals resampled."""

    n: int
    auc: dict[int, GradeAUC]
    macro: MacroAUC
    accuracy: float
    confusion: np.ndarray
    kappa_linear: float
    kappa_quadratic: float
    ece: float
    cluster: str  # "patient" or "item": what the bootstrap resampled
    n_clusters: int
    resampled: str  # one line saying so, for a table or a page
    extra: dict = field(default_factory=dict)

    @property
    def macro_auc(self) -> float:
        """The macro AUC's value."""
        return self.macro.value

    def reasons(self) -> dict[str, str]:
        """Why each undefined scalar figure is undefined (only the undefined ones)."""
        out = {}
        for key in SCALARS:
            reason = reason_of(getattr(self, key))
            if reason:
                out[key] = reason
        return out

    def to_dict(self) -> dict:
        """Plain types (NaN stays NaN), every undefined value with its reason beside it."""
        per_grade = {}
        for grade, r in self.auc.items():
            entry = {
                "auc": r.auc,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "n_pos": r.n_pos,
                "n_neg": r.n_neg,
                "n_clusters": r.n_clusters,
                "cluster": r.cluster,
                "n_boot_used": r.n_boot_used,
                "n_excluded": r.n_boot_excluded,
            }
            if r.reason:
                entry["reason"] = r.reason
            per_grade[str(grade)] = entry
        out = {
            "n": self.n,
            "cluster": self.cluster,
            "n_clusters": self.n_clusters,
            "resampled": self.resampled,
            "auc": per_grade,
            "macro_auc": float(self.macro.value),
            "macro_grades": list(self.macro.grades),
            "macro_n_grades": self.macro.n_grades,
            "macro_left_out": {str(g): r for g, r in self.macro.left_out.items()},
            "accuracy": float(self.accuracy),
            "confusion": self.confusion.tolist(),
            "kappa_linear": float(self.kappa_linear),
            "kappa_quadratic": float(self.kappa_quadratic),
            "ece": float(self.ece),
        }
        reasons = self.reasons()
        if reasons:
            out["reasons"] = reasons
        return out


def resampled_line(clusters: Clusters) -> str:
    """One line: what the intervals resample, e.g. 'Intervals resample patients: 31 patients,
    38 items'."""
    if clusters.kind == "patient":
        text = f"Intervals resample patients: {clusters.n_clusters} patients, {clusters.n_items} items"
        if clusters.n_without_patient:
            text += f" ({clusters.n_without_patient} items without a patient id count as their own patient)"
        return text
    return f"Intervals resample items: {clusters.n_items} items, no patient ids"


def model_reports(
    y_true: ArrayLike,
    probs_by_model: Mapping[str, ArrayLike],
    predicted_by_model: Mapping[str, ArrayLike | None] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    patients: Sequence[object] | None = None,
    ci: float = 0.95,
    quiet: bool = True,
) -> dict[str, ModelReport]:
    """Reports of several models scored on the same cases (one shared bootstrap stream).

    ``predicted_by_model`` gives a model's hard grades where they are not the argmax of its
    probabilities (lowest grade on ties). With ``quiet`` the ``UndefinedMetricWarning`` of an
    undefined figure is silenced: its reason is in the report.
    """
    grades = as_grades(y_true)
    probs = {name: as_probs(p, grades.size, f"probs of {name}") for name, p in probs_by_model.items()}
    predicted_by_model = predicted_by_model or {}
    clusters = Clusters.of(patients, n_items=grades.size)
    resampled = resampled_line(clusters)
    if n_boot == 0:
        resampled = "No intervals (no resamples requested)"
    out: dict[str, ModelReport] = {}
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", UndefinedMetricWarning)
        per_model = (
            per_grade_auc_models(grades, probs, n_boot=n_boot, seed=seed, ci=ci, patients=patients)
            if grades.size
            else {}
        )
        for name, p in probs.items():
            given = predicted_by_model.get(name)
            predicted = p.argmax(axis=1) if given is None else as_grades(given, "predicted")
            per = per_model.get(name) or _no_cases()
            out[name] = ModelReport(
                n=int(grades.size),
                auc=per,
                macro=macro_of(per),
                accuracy=accuracy(grades, predicted),
                confusion=confusion(grades, predicted),
                kappa_linear=weighted_kappa(grades, predicted, "linear"),
                kappa_quadratic=weighted_kappa(grades, predicted, "quadratic"),
                ece=expected_calibration_error(grades, p),
                cluster=clusters.kind,
                n_clusters=clusters.n_clusters,
                resampled=resampled,
            )
    return out


def _no_cases() -> dict[int, GradeAUC]:
    """Per-grade results of an empty set of cases: every AUC undefined with the reason."""
    reason = "no cases: AUC is undefined"
    return {g: GradeAUC(np.nan, np.nan, np.nan, 0, 0, reason) for g in range(4)}


def model_report(
    y_true: ArrayLike,
    probs: ArrayLike,
    predicted: ArrayLike | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    patients: Sequence[object] | None = None,
    ci: float = 0.95,
) -> ModelReport:
    """The report of one model (see ``model_reports``)."""
    return model_reports(
        y_true, {"model": probs}, {"model": predicted}, n_boot=n_boot, seed=seed, patients=patients, ci=ci
    )["model"]


def point_report(y_true: ArrayLike, probs: ArrayLike) -> ModelReport:
    """The report without intervals (no resamples): for validation during training."""
    report = model_report(y_true, probs, n_boot=0)
    report.auc = {
        g: r
        if r.reason != NO_BOOT_REASON
        else GradeAUC(r.auc, r.ci_low, r.ci_high, r.n_pos, r.n_neg, None, 0, 0, r.n_clusters, r.cluster)
        for g, r in report.auc.items()
    }
    return report
