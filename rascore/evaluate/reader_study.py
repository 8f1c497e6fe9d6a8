"""Reader study: each radiologist and each model against the reference standard, per image.

He et al. (Rheumatology 2024) compared their models with 12 radiologists of different
experience, reporting ICC 0.239-0.756 against the reference. The paper does not say which ICC
form; we use, by default, ICC2 = ICC(A,1) (two-way random effects, absolute agreement, single
rater; Shrout & Fleiss 1979) between one rater's grades and the reference grades on the items
that rater graded: the rater is one of many who could have read, the items a sample, and a
systematic shift from the reference should count against agreement. ``icc_form`` picks any of
the six forms instead.

Choices made here, all per item (image or clip), grades 0-3:
* each rater or model is scored on the reference items it graded (``n``); grades of items
  outside the reference are ignored and counted (``n_unreferenced``);
* kappa is Cohen's weighted kappa (linear and quadratic) against the reference, grades 0-3;
* sensitivity and specificity are per grade, that grade against the rest;
* a model "beats" a reader when its quadratic kappa against the reference is higher on the
  items both graded; the paired bootstrap p-value of that kappa difference resamples those
  shared items (``rascore.evaluate.agreement.paired_kappa_bootstrap``);
* the summary by experience level gives the mean and range (min, max) over the raters of that
  level, skipping raters whose value is undefined.
"""
from __future__ import annotations

from typing import Hashable, Mapping

import numpy as np

from rascore.evaluate.agreement import (
    accuracy,
    paired_kappa_bootstrap,
    sensitivity_specificity,
    weighted_kappa,
)
from rascore.evaluate.icc import ICC_FORMS, icc_table
from rascore.evaluate.inputs import as_grades
from rascore.evaluate.undefined import reason_of

DEFAULT_ICC_FORM = "ICC2"
SUMMARY_METRICS: tuple[str, ...] = ("accuracy", "kappa_linear", "kappa_quadratic", "icc")
UNSPECIFIED_LEVEL = "unspecified"

Item = Hashable


def _shared(
    reference: Mapping[Item, int], grades: Mapping[Item, int], who: str
) -> tuple[list[Item], np.ndarray, np.ndarray]:
    """The reference items ``who`` graded, in reference order, with both gradings as arrays."""
    items = [item for item in reference if item in grades]
    ref = as_grades([reference[i] for i in items], "reference")
    got = as_grades([grades[i] for i in items], f"grades of {who}")
    return items, ref, got


def grading_summary(
    reference: Mapping[Item, int],
    grades: Mapping[Item, int],
    who: str = "rater",
    icc_form: str = DEFAULT_ICC_FORM,
) -> dict:
    """One rater's (or model's) agreement with the reference on the items it graded.

    Keys: n, n_unreferenced, accuracy, kappa_linear, kappa_quadratic, icc, icc_ci_low,
    icc_ci_high, icc_form, per_grade {grade: {sensitivity, specificity, n_pos, n_neg}}, and
    reasons {metric: why} for every undefined value.
    """
    if icc_form not in ICC_FORMS:
        raise ValueError(f"icc_form must be one of {ICC_FORMS}, got {icc_form!r}")
    items, ref, got = _shared(reference, grades, who)
    out: dict = {"n": len(items), "n_unreferenced": sum(1 for i in grades if i not in reference)}
    out["accuracy"] = accuracy(ref, got)
    out["kappa_linear"] = weighted_kappa(ref, got, "linear")
    out["kappa_quadratic"] = weighted_kappa(ref, got, "quadratic")
    icc = icc_table(np.column_stack([ref, got]).astype(float) if items else np.empty((0, 2)))
    form = icc[icc_form]
    out["icc"], out["icc_ci_low"], out["icc_ci_high"] = form["icc"], form["ci_low"], form["ci_high"]
    out["icc_form"] = icc_form
    out["per_grade"] = sensitivity_specificity(ref, got)
    reasons = {k: reason_of(out[k]) for k in ("accuracy", "kappa_linear", "kappa_quadratic")}
    reasons["icc"] = form.get("reason")
    for grade, row in out["per_grade"].items():
        for key in ("sensitivity", "specificity"):
            reasons[f"{key}_{grade}"] = reason_of(row[key])
    out["reasons"] = {k: v for k, v in reasons.items() if v}
    return out


def _spread(values: list[float]) -> dict:
    """Mean, min and max of the defined values, with how many there were."""
    defined = [float(v) for v in values if v is not None and not np.isnan(v)]
    if not defined:
        return {"mean": np.nan, "min": np.nan, "max": np.nan, "n": 0}
    return {"mean": float(np.mean(defined)), "min": min(defined), "max": max(defined),
            "n": len(defined)}


def reader_study(
    reference: Mapping[Item, int],
    reads: Mapping[str, Mapping[Item, int]],
    levels: Mapping[str, str],
    model_preds: Mapping[str, Mapping[Item, int]],
    icc_form: str = DEFAULT_ICC_FORM,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Raters and models against the reference: per-rater and per-model tables, by level, wins.

    ``reference`` maps item -> reference grade; ``reads`` rater -> {item: grade}; ``levels``
    rater -> experience level (e.g. "junior", "senior"; missing -> "unspecified");
    ``model_preds`` model -> {item: predicted grade}. Returns a dict with ``icc_form``,
    ``raters`` {rater: grading_summary + level}, ``by_level`` {level: {n_raters, raters,
    accuracy/kappa_linear/kappa_quadratic/icc: {mean, min, max, n}}} and ``models``
    {model: grading_summary + beats [readers] + vs_readers {reader: paired comparison}}.
    """
    raters: dict[str, dict] = {}
    for rater, grades in reads.items():
        summary = grading_summary(reference, grades, rater, icc_form)
        summary["level"] = str(levels.get(rater, UNSPECIFIED_LEVEL))
        raters[rater] = summary

    by_level: dict[str, dict] = {}
    for level in dict.fromkeys(r["level"] for r in raters.values()):
        members = [name for name, r in raters.items() if r["level"] == level]
        entry: dict = {"n_raters": len(members), "raters": members}
        for metric in SUMMARY_METRICS:
            entry[metric] = _spread([raters[name][metric] for name in members])
        by_level[level] = entry

    models: dict[str, dict] = {}
    for model, preds in model_preds.items():
        summary = grading_summary(reference, preds, model, icc_form)
        versus: dict[str, dict] = {}
        for rater, grades in reads.items():
            items = [i for i in reference if i in preds and i in grades]
            comparison = paired_kappa_bootstrap(
                [reference[i] for i in items], [preds[i] for i in items],
                [grades[i] for i in items], "quadratic", n_boot=n_boot, seed=seed,
            )
            diff = comparison["diff"]
            comparison["beats"] = bool(diff is not None and not np.isnan(diff) and diff > 0)
            comparison["kappa_model"] = comparison.pop("kappa_a")
            comparison["kappa_reader"] = comparison.pop("kappa_b")
            versus[rater] = comparison
        summary["beats"] = [rater for rater, c in versus.items() if c["beats"]]
        summary["vs_readers"] = versus
        models[model] = summary
    return {"icc_form": icc_form, "n_reference": len(reference), "raters": raters,
            "by_level": by_level, "models": models}
