"""The Reader-study page's tables: readers and models, experience levels, sensitivity and
specificity, each model against each reader, and the verdicts in words."""

from __future__ import annotations

import numpy as np

from rascore.auth import LEVELS
from rascore.services.dashboard.readers import ReaderResults
from rascore.services.dashboard.rows import fmt
from rascore.services.dashboard.sections import N_BOOT

LEVEL_ORDER: tuple[str, ...] = (*LEVELS, "unspecified")
_LEVEL_RANK = {lvl: i for i, lvl in enumerate(LEVEL_ORDER)}


def reader_rows(results: ReaderResults) -> list[dict]:
    """One row per reader and per model: level, items, accuracy, kappas, ICC with CI, reasons."""
    rows = []
    entries = [(name, "reader", r["level"], r) for name, r in results.study["raters"].items()]
    entries += [(name, "model", "model", r) for name, r in results.study["models"].items()]
    for name, kind, level, r in entries:
        icc = fmt(r["icc"])
        if icc != "undefined" and not np.isnan(r["icc_ci_low"]):
            icc += f" ({r['icc_ci_low']:.2f}-{r['icc_ci_high']:.2f})"
        rows.append(
            {
                "who": name,
                "kind": kind,
                "level": level,
                "items": r["n"],
                "accuracy": fmt(r["accuracy"]),
                "kappa linear": fmt(r["kappa_linear"]),
                "kappa quadratic": fmt(r["kappa_quadratic"]),
                "kappa quadratic value": None
                if np.isnan(r["kappa_quadratic"])
                else float(r["kappa_quadratic"]),
                f"ICC ({results.study['icc_form']})": icc,
                "reason": "; ".join(f"{k}: {v}" for k, v in r["reasons"].items()),
            }
        )
    readers = sorted(
        (r for r in rows if r["kind"] == "reader"),
        key=lambda row: (_LEVEL_RANK.get(row["level"], 9), row["who"]),
    )
    return readers + [r for r in rows if r["kind"] == "model"]  # models in modality order


def level_rows(results: ReaderResults) -> list[dict]:
    """Per experience level: readers, and mean (min-max) of accuracy, kappas and ICC."""
    rows = []
    for level, entry in sorted(results.study["by_level"].items(), key=lambda kv: _LEVEL_RANK.get(kv[0], 9)):
        row = {"level": level, "readers": entry["n_raters"]}
        for metric in ("accuracy", "kappa_linear", "kappa_quadratic", "icc"):
            s = entry[metric]
            row[metric.replace("_", " ")] = (
                "undefined" if s["n"] == 0 else f"{s['mean']:.3f} ({s['min']:.3f}-{s['max']:.3f})"
            )
        rows.append(row)
    return rows


def sens_spec_rows(results: ReaderResults) -> list[dict]:
    """Per reader and model: sensitivity and specificity per grade (that grade against the rest)."""
    rows = []
    for kind, group in (("reader", results.study["raters"]), ("model", results.study["models"])):
        for name, r in group.items():
            row = {"who": name, "kind": kind}
            for grade, cell in r["per_grade"].items():
                row[f"sens {grade}"] = fmt(cell["sensitivity"])
                row[f"spec {grade}"] = fmt(cell["specificity"])
            rows.append(row)
    return rows


def resampling_line(results: ReaderResults) -> str:
    """One line for the page: what the model-reader comparisons resample, and how often."""
    study = results.study
    n_boot = study.get("n_boot", N_BOOT)
    if study.get("cluster") == "patient":
        text = (
            f"Comparisons resample patients: {study['n_clusters']} patients behind the "
            f"{results.n_reference} reference items, {n_boot} resamples"
        )
        lone = study.get("n_without_patient", 0)
        if lone:
            text += f" ({lone} items without a patient id count as their own patient)"
        return text + "."
    return f"Comparisons resample items ({results.n_reference} items, no patient ids), {n_boot} resamples."


def _p_text(p: float, n_used: int) -> str:
    """A bootstrap p-value as text: below 1/B when no resample reached 0."""
    if p == 0 and n_used:
        return f"< {1 / n_used:.4f}"
    return fmt(p, 4)


def versus_rows(results: ReaderResults) -> list[dict]:
    """Each model against each reader on their shared items: kappas, difference, the interval the
    verdict rests on (Holm-adjusted level), p and Holm-adjusted p, and the verdict."""
    rows = []
    for model, r in results.study["models"].items():
        for reader, c in r["vs_readers"].items():
            level = results.study["raters"].get(reader, {}).get("level", "")
            low, high = c.get("ci_low_holm", np.nan), c.get("ci_high_holm", np.nan)
            interval = "undefined" if np.isnan(low) else f"{low:.3f} to {high:.3f} ({100 * c['level']:.1f}%)"
            rows.append(
                {
                    "model": model,
                    "reader": reader,
                    "level": level,
                    "shared items": c["n"],
                    "patients": c["n_clusters"] if c.get("cluster") == "patient" else "no ids",
                    "kappa model": fmt(c["kappa_model"]),
                    "kappa reader": fmt(c["kappa_reader"]),
                    "difference": fmt(c["diff"]),
                    "interval (Holm level)": interval,
                    "p": _p_text(c["p"], c["n_boot_used"]),
                    "p (Holm)": _p_text(c["p_holm"], c["n_boot_used"]),
                    "verdict": c["verdict"],
                    "reason": c.get("reason") or "",
                }
            )
    return rows


def verdict_lines(results: ReaderResults) -> list[str]:
    """Per model, in words: the readers it beats, those better than it, and no difference shown."""
    lines = []
    for name, r in results.study["models"].items():
        by: dict[str, list[str]] = {}
        for reader, c in r["vs_readers"].items():
            by.setdefault(c["verdict"], []).append(reader)
        total = len(r["vs_readers"])
        beaten = by.get("model better", [])
        text = f"{name} beats {len(beaten)} of {total} readers" + (
            f" ({', '.join(beaten)})" if beaten else ""
        )
        for verdict, label in (
            ("reader better", "better than the model"),
            ("no difference shown", "no difference shown"),
            ("undefined", "undefined"),
        ):
            if by.get(verdict):
                text += f"; {label}: {', '.join(by[verdict])}"
        lines.append(text + ".")
    return lines
