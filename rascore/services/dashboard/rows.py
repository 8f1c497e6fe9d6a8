"""The Dashboard's tables: figures of ``Section``s and the tests between models as rows of text,
'undefined' with the reason where a figure is undefined, never a number made up to fill a cell."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rascore import scale
from rascore.evaluate.report import SCALARS
from rascore.evaluate.undefined import is_undefined, reason_of
from rascore.names import SHIFT_NOT_TRAINED
from rascore.services.dashboard.sections import ModelFigures, Section


def fmt(value: object, digits: int = 3) -> str:
    """A figure as text, or 'undefined'."""
    if is_undefined(value):
        return "undefined"
    return f"{float(value):.{digits}f}"


def auc_rows(sections: Sequence[Section]) -> list[dict]:
    """Per-grade AUC with its 95% CI per model, cohort and grade; undefined ones with the reason."""
    rows = []
    for sec in sections:
        for m in sec.models:
            for grade in scale.GRADES:
                r = m.auc.get(grade)
                if r is None:
                    reason = "no reference item of this cohort has a prediction" if not m.n else None
                    rows.append(
                        {
                            "model": m.model.label,
                            "cohort": sec.cohort,
                            "grade": grade,
                            "n_pos": 0,
                            "n_neg": 0,
                            "resampled": "",
                            "clusters": 0,
                            "excluded": 0,
                            "AUC": None,
                            "CI low": None,
                            "CI high": None,
                            "AUC (95% CI)": "undefined",
                            "reason": reason,
                        }
                    )
                    continue
                defined = not np.isnan(r.auc)
                text = (
                    f"{r.auc:.3f} ({r.ci_low:.3f}-{r.ci_high:.3f})"
                    if defined and not np.isnan(r.ci_low)
                    else f"{r.auc:.3f} (no CI)"
                    if defined
                    else "undefined"
                )
                rows.append(
                    {
                        "model": m.model.label,
                        "cohort": sec.cohort,
                        "grade": grade,
                        "n_pos": r.n_pos,
                        "n_neg": r.n_neg,
                        "resampled": "patients" if r.cluster == "patient" else "items",
                        "clusters": r.n_clusters,
                        "excluded": r.n_boot_excluded,
                        "AUC": float(r.auc) if defined else None,
                        "CI low": None if np.isnan(r.ci_low) else float(r.ci_low),
                        "CI high": None if np.isnan(r.ci_high) else float(r.ci_high),
                        "AUC (95% CI)": text,
                        "reason": r.reason or "",
                    }
                )
    return rows


def auc_table_rows(sections: Sequence[Section]) -> list[dict]:
    """Per-grade AUC (95% CI) as text, one row per model and cohort, a column per grade."""
    rows: dict[tuple[str, str], dict] = {}
    for r in auc_rows(sections):
        row = rows.setdefault(
            (r["model"], r["cohort"]), {"model": r["model"], "cohort": r["cohort"], "reason": ""}
        )
        row[f"grade {r['grade']}"] = r["AUC (95% CI)"]
        if r["reason"]:
            row["reason"] = "; ".join(x for x in (row["reason"], f"grade {r['grade']}: {r['reason']}") if x)
    return [
        {k: v for k, v in row.items() if k != "reason"} | {"reason": row["reason"]} for row in rows.values()
    ]


def summary_rows(sections: Sequence[Section]) -> list[dict]:
    """One row per model and cohort: cases, macro AUC (and its grades), what the intervals
    resampled, accuracy, kappas, ECE, missing predictions."""
    rows = []
    for sec in sections:
        for m in sec.models:
            reasons = {k: reason_of(getattr(m, k)) for k in SCALARS}
            if m.macro is not None and m.macro.grades:
                reasons.update({f"macro AUC leaves out grade {g}": r for g, r in m.macro.left_out.items()})
            rows.append(
                {
                    "model": m.model.label,
                    "active": m.model.active,
                    "cohort": sec.cohort,
                    "target": sec.target,
                    "cases": m.n,
                    "without prediction": m.n_missing,
                    "macro AUC": fmt(m.macro_auc),
                    "macro of grades": (", ".join(map(str, m.macro.grades)) if m.macro is not None else ""),
                    "intervals": m.resampled,
                    "accuracy": fmt(m.accuracy),
                    "kappa linear": fmt(m.kappa_linear),
                    "kappa quadratic": fmt(m.kappa_quadratic),
                    "ECE": fmt(m.ece),
                    "ECE before prior correction": fmt((m.calibration or {}).get("ece_uncorrected")),
                    "crop fell back": (m.crops or {}).get("fallback", ""),
                    "unlike training": shift_text(m),
                    "reason": "; ".join(f"{k}: {v}" for k, v in reasons.items() if v and m.n)
                    or ("" if m.n else "no reference item of this cohort has a prediction"),
                }
            )
    return rows


def shift_text(m: ModelFigures) -> str:
    """Share of a model's predictions in a cohort flagged as unlike its training data
    (rascore.train.shift), or why none was checked."""
    n, checked, flagged = m.shift_counts
    if not n:
        return ""
    if not checked:
        return f"not checked ({m.shift_reason or SHIFT_NOT_TRAINED})"
    text = f"{flagged} of {checked} ({flagged / checked:.0%})"
    return text if checked == n else f"{text}; {n - checked} not checked"


def shift_item_rows(sec: Section) -> list[dict]:
    """The items each model flagged as unlike its training data, highest shift score first."""
    rows = []
    for m in sec.models:
        grades = dict(zip(m.item_ids.tolist(), zip(m.y.tolist(), m.predicted.tolist())))
        for item_id, score in sorted(m.flagged.items(), key=lambda kv: -kv[1]):
            reference, predicted = grades.get(item_id, (None, None))
            rows.append(
                {
                    "model": m.model.label,
                    "item": f"#{item_id}",
                    "shift score": f"{score:.2f}",
                    "reference grade": "" if reference is None else reference,
                    "predicted grade": "" if predicted is None else predicted,
                }
            )
    return rows


def baseline_rows(sections: Sequence[Section]) -> list[dict]:
    """The PD-only colour rule's stored per-grade AUCs beside each Doppler model, both against the
    PD reference of the same items (stored by ``rascore evaluate``)."""
    rows = []
    for sec in sections:
        for m in sec.models:
            if not m.baseline:
                continue
            for name, figures in (
                (m.model.label, m.baseline.get("model")),
                ("PD-only colour rule", m.baseline.get("pd_colour_rule")),
            ):
                if not figures:
                    continue
                aucs = figures.get("auc") or {}
                row = {"scored": name, "beside": m.model.label, "cohort": sec.cohort, "reference": "PD"}
                for grade in scale.GRADES:
                    cell = aucs.get(str(grade)) or {}
                    value = cell.get("auc")
                    row[f"AUC {grade}"] = (
                        fmt(value) if value is not None else f"undefined (n_pos {cell.get('n_pos', '?')})"
                    )
                row.update(
                    {"macro AUC": fmt(figures.get("macro_auc")), "accuracy": fmt(figures.get("accuracy"))}
                )
                rows.append(row)
    return rows


def delong_rows(rows: Sequence[dict]) -> list[dict]:
    """DeLong rows for a table: p-values and AUCs as text, 'undefined' with the reason."""
    return [
        {
            **({"cohort": r["cohort"]} if "cohort" in r else {}),
            "A": r["a"],
            "B": r["b"],
            "grade": str(r["grade"]),
            "cases": r["n"],
            "test": r.get("method", "delong"),
            **({"patients": r["n_clusters"]} if r.get("method") == "obuchowski" else {}),
            "AUC A": fmt(r["auc_a"]),
            "AUC B": fmt(r["auc_b"]),
            "z": fmt(r["z"], 2),
            "p": fmt(r["p"], 4),
            "reason": r["reason"] or "",
        }
        for r in rows
    ]


def cross_rows(rows: Sequence[dict]) -> list[dict]:
    """Between-modality rows for a table: the joint-level reference, joints, patients, method."""
    return [
        {
            "cohort": r["cohort"],
            "A": r["a"],
            "B": r["b"],
            "reference": r["reference"],
            "grade": r["grade"],
            "joints": r["n"],
            "patients": r["patients"] if r["patients"] is not None else "no patient ids",
            "AUC A": fmt(r["auc_a"]),
            "AUC B": fmt(r["auc_b"]),
            "z": fmt(r["z"], 2),
            "p": fmt(r["p"], 4),
            "method": r["method"],
            "reason": r["reason"] or "",
        }
        for r in rows
    ]
