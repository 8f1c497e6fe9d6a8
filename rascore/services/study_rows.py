"""The study section's tables as rows of text: the MRMC summary, the levels, the model beside the
readers, per-grade AUC, kappa with intervals, and per reader (``rascore.services.study_analysis``).

An undefined figure reads "undefined" and its reason is in the row's ``reason`` column.
"""

from __future__ import annotations

import math

from rascore.evaluate.undefined import is_undefined, reason_of
from rascore.evaluate.study import SPLITS
from rascore.services.dashboard.rows import fmt
from rascore.services.study import ARMS
from rascore.services.study_analysis import AIDED, UNAIDED, StudyAnalysis


def interval(low: float, high: float, digits: int = 3) -> str:
    """'low to high', or 'undefined'."""
    if is_undefined(low) or is_undefined(high):
        return "undefined"
    return f"{low:.{digits}f} to {high:.{digits}f}"


def signed(value: float, digits: int = 3) -> str:
    """A difference with its sign, or 'undefined'."""
    return "undefined" if is_undefined(value) else f"{value:+.{digits}f}"


def p_text(p: float, n_boot_used: int | None = None) -> str:
    """A p-value; a bootstrap p of 0 is shown as below 1/B."""
    if is_undefined(p):
        return "undefined"
    if p == 0 and n_boot_used:
        return f"< {1 / n_boot_used:.3f}"
    return f"{p:.4f}" if p >= 0.0001 else "< 0.0001"


def _reason(*values: object, reason: str | None = None) -> str:
    """The first reason that applies: ``reason``, else those the undefined values carry."""
    if reason:
        return reason
    found = [reason_of(v) for v in values if is_undefined(v)]
    return "; ".join(dict.fromkeys(r for r in found if r and r != "undefined"))


def threshold_text(a: StudyAnalysis) -> str:
    """What 'positive' means in this analysis: e.g. 'EOSS >= 1 against 0'."""
    return f"{a.grade} >= {a.positive_from} against lower"


def summary_line(a: StudyAnalysis) -> str:
    """One sentence: the aided - unaided difference of mean AUC, its RRRC CI and p, on what."""
    o = a.overall
    if o is None:
        return a.reason or "nothing to analyse"
    base = (
        f"{len(o.readers)} readers, {a.n_cases} cases ({a.n_positive} positive, {a.n_negative} "
        f"negative; {threshold_text(a)})"
    )
    if is_undefined(o.diff):
        return f"Aided - unaided mean AUC: undefined ({o.reason}); {base}."
    text = (
        f"Aided - unaided mean AUC: {signed(o.diff)} (aided {o.auc_aided:.3f}, unaided {o.auc_unaided:.3f}); "
    )
    if is_undefined(o.p):
        text += f"random-reader random-case interval and p undefined ({o.reason})"
    else:
        ddf = "infinite" if math.isinf(o.ddf) else f"{o.ddf:.2f}"
        text += (
            f"95% CI {interval(o.ci_low, o.ci_high)}, p = {p_text(o.p)} (random readers and cases, "
            f"Obuchowski-Rockette, Hillis ddf {ddf})"
        )
    return f"{text}; {base}."


def level_rows(a: StudyAnalysis) -> list[dict]:
    """The MRMC difference over all readers and per experience level."""
    rows = []
    for d in ([a.overall] if a.overall else []) + a.levels:
        rows.append(
            {
                "readers": d.label,
                "n": len(d.readers),
                "AUC unaided": fmt(d.auc_unaided),
                "AUC aided": fmt(d.auc_aided),
                "aided - unaided": signed(d.diff),
                "95% CI (RRRC)": interval(d.ci_low, d.ci_high),
                "p": p_text(d.p),
                "reason": d.reason or "",
            }
        )
    return rows


def model_rows(a: StudyAnalysis) -> list[dict]:
    """The readers' mean AUC per arm (RRRC single-arm CI) and the model alone (DeLong CI), with
    the quadratic kappas (patient-bootstrap CIs) beside them."""
    rows = []
    arms = {r["arm"]: r for r in a.arm_auc.to_dict("records")} if len(a.arm_auc) else {}
    kappas = {r["arm"]: r for r in a.kappa.arms.to_dict("records")} if a.kappa else {}
    for arm in ARMS:
        auc, kap = arms.get(arm, {}), kappas.get(arm, {})
        rows.append(
            {
                "who": f"readers, {arm} (mean of {auc.get('readers', 0)})",
                "AUC": fmt(auc.get("auc", math.nan)),
                "AUC 95% CI": interval(auc.get("ci_low", math.nan), auc.get("ci_high", math.nan)),
                "AUC interval": "RRRC single arm",
                "kappa": fmt(kap.get("kappa", math.nan)),
                "kappa 95% CI": interval(kap.get("ci_low", math.nan), kap.get("ci_high", math.nan)),
                "cases": a.n_cases,
                "reason": _reason(reason=auc.get("reason") or kap.get("reason")),
            }
        )
    m = a.model
    kappa = m.get("kappa_detail", {})
    rows.append(
        {
            "who": f"model alone: {m['source']}" if m.get("source") else "model alone",
            "AUC": fmt(m.get("auc", math.nan)),
            "AUC 95% CI": interval(m.get("ci_low", math.nan), m.get("ci_high", math.nan)),
            "AUC interval": "DeLong",
            "kappa": fmt(m.get("kappa", math.nan)),
            "kappa 95% CI": interval(kappa.get("ci_low", math.nan), kappa.get("ci_high", math.nan)),
            "cases": m.get("n_cases", 0),
            "reason": _reason(m.get("kappa"), reason=m.get("reason")),
        }
    )
    return rows


def per_grade_rows(a: StudyAnalysis) -> list[dict]:
    """AUC at each cumulative split (grade >= g against lower), per reader and arm, the means
    over readers, and the model's predicted grade as a rating."""
    rows = []
    for r in a.per_grade.to_dict("records"):
        row = {"who": r["who"], "experience": r["experience"], "arm": r["arm"]}
        for g in SPLITS:
            row[f"AUC >= {g}"] = fmt(r[f">={g}"])
        row["positive/negative cases"] = ", ".join(f">= {g}: {r[f'n >={g}']}" for g in SPLITS)
        row["reason"] = r["reason"] or ""
        rows.append(row)
    return rows


def kappa_rows(a: StudyAnalysis) -> list[dict]:
    """Quadratic kappa against the reference per reader in each arm with its patient-bootstrap
    95% interval, and aided - unaided with its paired interval and p; the mean of the readers last."""
    if a.kappa is None:
        return []
    cells = {(r["reader"], r["arm"]): r for r in a.kappa.cells.to_dict("records")}
    levels = dict(zip(a.readers["reader"], a.readers["experience"]))
    rows = []
    means = {r["arm"]: r for r in a.kappa.arms.to_dict("records")}
    for d in a.kappa.diffs.to_dict("records"):
        reader = d["reader"]
        row = {
            "reader": reader if reader != "mean" else "mean of readers",
            "experience": levels.get(reader, ""),
        }
        reasons = []
        for arm in (UNAIDED, AIDED):
            c = cells.get((reader, arm)) or means[arm]
            row[f"kappa {arm}"] = fmt(c["kappa"])
            row[f"{arm} 95% CI"] = interval(c["ci_low"], c["ci_high"])
            reasons.append(c["reason"])
        row["aided - unaided"] = signed(d["diff"])
        row["difference 95% CI"] = interval(d["ci_low"], d["ci_high"])
        row["p"] = p_text(d["p"], d["n_boot_used"])
        row["reason"] = "; ".join(dict.fromkeys(r for r in [*reasons, d["reason"]] if r))
        rows.append(row)
    return rows


def resampling_line(a: StudyAnalysis) -> str:
    """What the kappa intervals resample."""
    if a.kappa is None:
        return ""
    unit = "patients" if a.cluster == "patient" else "cases (no patient ids)"
    return (
        f"Kappa intervals: {a.kappa.n_boot} bootstrap resamples of {a.n_clusters} {unit} behind "
        f"the {a.n_cases} cases, every reader and arm on the same resamples (paired differences)."
    )


def reader_rows(a: StudyAnalysis) -> list[dict]:
    """Per enrolled reader: experience, reads, AUC and kappa in each arm, their differences, and
    the median seconds per read; a reader left out says why."""
    rows = []
    for r in a.per_reader.to_dict("records"):
        row = {"reader": r["reader"], "experience": r["experience"]}
        for arm in ARMS:
            row[f"reads {arm}"] = r[f"reads {arm}"]
        for what in ("AUC", "kappa"):
            for arm in ARMS:
                row[f"{what} {arm}"] = fmt(r[f"{what} {arm}"])
            row[f"{what} aided - unaided"] = signed(r[f"{what} aided - unaided"])
        for arm in ARMS:
            row[f"median s/read {arm}"] = fmt(r[f"median s {arm}"], 1)
        row["status"] = r["status"] if isinstance(r["status"], str) else "analysed"
        rows.append(row)
    return rows
