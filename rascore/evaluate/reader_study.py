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
* a model is compared with each reader on the items both graded, by the difference of their
  quadratic kappas against the reference, with a paired bootstrap
  (``rascore.evaluate.agreement.paired_kappa_bootstrap``). With an item -> patient mapping the
  bootstrap draws patients and keeps all their items (a patient's joints are correlated, so
  drawing items would make the interval too narrow); without one it draws items;
* "model better" (the model "beats" the reader) or "reader better" only when it is shown: the
  difference's bootstrap p-value, Holm-adjusted over the readers that model is compared with
  (``pingouin.multicomp``, method "holm"), is below ``alpha`` (0.05). Otherwise "no difference
  shown", whatever the sign of the point difference. Comparisons whose p-value is undefined
  are left out of the family and say "undefined";
* the interval shown beside each comparison is the one that decision rests on. The bootstrap
  p-value is the smallest alpha at which the equal-tailed percentile interval excludes 0
  (``bootstrap_p``, ``percentile_interval``), so the interval is drawn at level
  1 - alpha * p / p_holm: Holm's own step level alpha / (m - k + 1) for the k-th smallest of
  m p-values, lower still when a smaller p-value was not shown. It excludes 0 exactly when the
  Holm-adjusted p-value is below alpha (at an exact tie the tail is rounded to the decision's
  side), and it is at least as wide as the 95% interval (``ci_low``, ``ci_high``, unadjusted,
  also kept). Each comparison keeps ``p``, ``p_holm``, ``level``, ``ci_low_holm``,
  ``ci_high_holm``, ``family`` (how many comparisons were adjusted over) and ``verdict``;
* the summary by experience level gives the mean and range (min, max) over the raters of that
  level, skipping raters whose value is undefined.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
from pingouin import multicomp

from rascore.evaluate.agreement import (
    accuracy,
    paired_kappa_bootstrap,
    sensitivity_specificity,
    tail_count,
    weighted_kappa,
)
from rascore.evaluate.clusters import Clusters
from rascore.evaluate.icc import ICC_FORMS, icc_table
from rascore.evaluate.inputs import as_grades
from rascore.evaluate.undefined import reason_of

DEFAULT_ICC_FORM = "ICC2"
SUMMARY_METRICS: tuple[str, ...] = ("accuracy", "kappa_linear", "kappa_quadratic", "icc")
UNSPECIFIED_LEVEL = "unspecified"
ALPHA = 0.05  # family-wise error rate over the readers one model is compared with
MODEL_BETTER, READER_BETTER = "model better", "reader better"
NO_DIFFERENCE, UNDEFINED_VERDICT = "no difference shown", "undefined"

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
    return {"mean": float(np.mean(defined)), "min": min(defined), "max": max(defined), "n": len(defined)}


def _holm_decisions(versus: dict[str, dict], alpha: float) -> None:
    """Holm-adjust one model's comparisons with the readers, then decide and size each interval.

    In place: ``p_holm``, ``alpha_local``, ``level``, ``ci_low_holm``/``ci_high_holm``,
    ``verdict`` and ``beats``. Only comparisons with a defined p-value count in the family.
    """
    defined = [r for r, c in versus.items() if not np.isnan(c["p"])]
    family = len(defined)
    adjusted = (
        dict(zip(defined, multicomp([versus[r]["p"] for r in defined], alpha=alpha, method="holm")[1]))
        if defined
        else {}
    )
    for rater, c in versus.items():
        resamples = c.pop("resamples")
        c.update(
            {
                "family": family,
                "p_holm": np.nan,
                "alpha_local": np.nan,
                "level": np.nan,
                "ci_low_holm": np.nan,
                "ci_high_holm": np.nan,
                "verdict": UNDEFINED_VERDICT,
                "beats": False,
            }
        )
        if rater not in adjusted or np.isnan(c["diff"]):
            continue
        p, p_holm = float(c["p"]), float(adjusted[rater])
        shown = p_holm < alpha
        # the level at which the unadjusted test stands to the adjusted one: p < alpha_local
        # exactly when p_holm < alpha (Holm's own step alpha/(m-k+1) unless a smaller p failed)
        local = alpha * p / p_holm if p_holm > 0 else alpha / family
        # each tail of the interval, in whole resamples, kept on the side of the decision at
        # exact ties (a floating-point p_holm equal to alpha)
        far = min(int((resamples <= 0).sum()), int((resamples >= 0).sum()))
        tail = tail_count(resamples.size, local)
        tail = max(tail, far + 1) if shown else min(tail, max(far, 1))
        ordered = np.sort(resamples)
        low, high = float(ordered[tail - 1]), float(ordered[ordered.size - tail])
        c.update(
            {
                "p_holm": p_holm,
                "alpha_local": local,
                "level": 1.0 - local,
                "ci_low_holm": low,
                "ci_high_holm": high,
            }
        )
        if shown:  # the interval excludes 0: its side says who is better
            c["verdict"] = MODEL_BETTER if low > 0 else READER_BETTER
            c["beats"] = low > 0
        else:
            c["verdict"] = NO_DIFFERENCE


def reader_study(
    reference: Mapping[Item, int],
    reads: Mapping[str, Mapping[Item, int]],
    levels: Mapping[str, str],
    model_preds: Mapping[str, Mapping[Item, int]],
    icc_form: str = DEFAULT_ICC_FORM,
    n_boot: int = 1000,
    seed: int = 0,
    patients: Mapping[Item, object] | None = None,
    alpha: float = ALPHA,
) -> dict:
    """Raters and models against the reference: per-rater and per-model tables, by level, verdicts.

    ``reference`` maps item -> reference grade; ``reads`` rater -> {item: grade}; ``levels``
    rater -> experience level (e.g. "junior", "senior"; missing -> "unspecified");
    ``model_preds`` model -> {item: predicted grade}; ``patients`` item -> patient id (the
    comparisons then resample patients; an item missing from it is its own cluster). Returns a
    dict with ``icc_form``, ``alpha``, ``n_boot``, ``cluster`` ("patient" or "item"),
    ``n_clusters`` and ``n_without_patient`` over the reference items, ``raters``
    {rater: grading_summary + level}, ``by_level`` {level: {n_raters, raters,
    accuracy/kappa_linear/kappa_quadratic/icc: {mean, min, max, n}}} and ``models`` {model:
    grading_summary + beats [readers] + vs_readers {reader: paired comparison with verdict}}.
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
                [reference[i] for i in items],
                [preds[i] for i in items],
                [grades[i] for i in items],
                "quadratic",
                n_boot=n_boot,
                seed=seed,
                patients=None if patients is None else [patients.get(i) for i in items],
                keep_resamples=True,
            )
            comparison["kappa_model"] = comparison.pop("kappa_a")
            comparison["kappa_reader"] = comparison.pop("kappa_b")
            versus[rater] = comparison
        _holm_decisions(versus, alpha)
        summary["beats"] = [rater for rater, c in versus.items() if c["beats"]]
        summary["vs_readers"] = versus
        models[model] = summary
    clusters = Clusters.of(None if patients is None else [patients.get(i) for i in reference], len(reference))
    return {
        "icc_form": icc_form,
        "n_reference": len(reference),
        "alpha": alpha,
        "cluster": clusters.kind,
        "n_clusters": clusters.n_clusters,
        "n_without_patient": clusters.n_without_patient,
        "n_boot": n_boot,
        "raters": raters,
        "by_level": by_level,
        "models": models,
    }
