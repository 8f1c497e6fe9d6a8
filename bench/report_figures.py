"""Print the README's result tables from a project: models, between modalities, reader study.

Reads what the project already holds (the active model versions' stored test figures written by
`rascore train` / `rascore evaluate`, their stored predictions, the readers' grades and the
reference standard) and prints Markdown tables:

* per-grade AUC with 95% CIs (patients resampled where the items have patient ids), macro AUC
  with the number of grades it averaged, accuracy, quadratic kappa, ECE before and after the
  sampling-prior correction, joint-crop fallbacks; for SPD/DPD the PD-only colour rule and the
  model on the PD reference of the same items;
* between modalities: every matched joint against the joint's combined EOSS (Obuchowski's
  clustered test), macro rows only;
* reader study: each model against the 12 readers (verdicts after Holm's adjustment), and the
  readers by experience level.

Nothing here chooses anything; it reports. Usage:
    RASCORE_DATA=DEMO python bench/report_figures.py [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections import Counter

import numpy as np

from rascore import scale
from rascore.services import dashboard
from rascore.evaluate.auc import per_grade_auc
from rascore.project import open_project
from rascore.store import registry, results

ADMIN = {"id": 0, "name": "report", "role": "admin"}


def fmt(value: object, digits: int = 2) -> str:
    """A number, or 'undef.' for a missing/NaN one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "undef."
    return f"{float(value):.{digits}f}"


def auc_cell(figures: dict) -> str:
    """Per-grade AUC (CI) lines and the macro, for one table cell."""
    lines = []
    for grade in map(str, scale.GRADES):
        g = (figures.get("auc") or {}).get(grade) or {}
        if g.get("auc") is None or (isinstance(g["auc"], float) and math.isnan(g["auc"])):
            lines.append(f"{grade}: undef. (n_pos {g.get('n_pos', 0)})")
        else:
            lines.append(f"{grade}: {fmt(g['auc'])} ({fmt(g['ci_low'])}-{fmt(g['ci_high'])})")
    lines.append(f"macro **{fmt(figures.get('macro_auc'))}** ({figures.get('macro_n_grades', '?')} grades)")
    return "<br>".join(lines)


def model_table(project) -> None:
    """The model table: one row per modality, a column per test cohort."""
    print("| model | training | test1 per-grade AUC (95% CI) | test2 per-grade AUC (95% CI) |")
    print("|---|---|---|---|")
    extra = []
    for code in scale.MODALITIES:
        row = registry.active_version(project.store, code)
        if row is None:
            print(f"| {code} | no active model | | |")
            continue
        metrics = row["metrics"]
        training = metrics.get("training") or {}
        cohorts = (metrics.get("test") or {}).get("cohorts") or {}
        cells = [auc_cell((cohorts.get(c) or {}).get("model") or {}) for c in ("test1", "test2")]
        epochs = f"{training.get('epochs_run', '?')} epochs (best {training.get('best_epoch', '?')})"
        secs = training.get("seconds")
        took = f"{secs:.0f} s, " if isinstance(secs, (int, float)) else ""
        print(f"| {code} v{row['version']} | {took}{epochs} | {cells[0]} | {cells[1]} |")
        for cohort in ("test1", "test2"):
            entry = cohorts.get(cohort) or {}
            model = entry.get("model") or {}
            cal = entry.get("calibration") or {}
            crops = entry.get("crops") or {}
            line = {
                "model": f"{code} v{row['version']}",
                "cohort": cohort,
                "n": entry.get("n"),
                "resampled": model.get("resampled", ""),
                "accuracy": fmt(model.get("accuracy")),
                "kappa quad.": fmt(model.get("kappa_quadratic")),
                "ECE before / after": f"{fmt(cal.get('ece_uncorrected'), 3)} / {fmt(cal.get('ece_corrected'), 3)}",
                "accuracy before correction": fmt(cal.get("accuracy_uncorrected")),
                "crop / fallback": f"{crops.get('crop', 0)} / {crops.get('fallback', 0)}",
            }
            if "pd_colour_rule" in entry:
                line["PD reference: model / PD-only colour rule (macro AUC)"] = (
                    f"{fmt(entry['model_pd_reference'].get('macro_auc'))} / "
                    f"{fmt(entry['pd_colour_rule'].get('macro_auc'))}"
                )
            extra.append(line)
    print()
    keys = list(dict.fromkeys(k for line in extra for k in line))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for line in extra:
        print("| " + " | ".join(str(line.get(k, "")) for k in keys) + " |")


def width_table(project, n_boot: int) -> None:
    """How much wider the patient-bootstrap intervals are than item-bootstrap ones, same data."""
    print(
        "| model | cohort | patients | items | mean 95% CI width, items resampled | "
        "patients resampled | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for code in scale.MODALITIES:
        row = registry.active_version(project.store, code)
        if row is None:
            continue
        target = 2 if scale.modality(code).target == "EOSS" else 1
        for cohort in ("test1", "test2"):
            reference = {
                int(r[0]): int(r[target]) for r in results.reference_rows(project.store, code, cohort)
            }
            ids, _, probs = results.predictions(project.store, row["id"], cohort)
            keep = np.array([int(i) in reference for i in ids], dtype=bool)
            ids, probs = ids[keep], probs[keep]
            if not ids.size:
                continue
            y = np.array([reference[int(i)] for i in ids])
            patients = results.patients(project.store, ids)
            widths = []
            for clustered in (None, patients):
                per = per_grade_auc(y, probs, n_boot=n_boot, patients=clustered)
                widths.append(np.nanmean([r.ci_high - r.ci_low for r in per.values()]))
            print(
                f"| {code} v{row['version']} | {cohort} | {len(set(patients))} | {ids.size} | "
                f"{widths[0]:.3f} | {widths[1]:.3f} | {widths[1] / widths[0]:.2f} |"
            )


def cross_table(project, n_boot: int) -> None:
    """Between modalities: macro and per-grade tests on every matched joint (combined EOSS)."""
    result = dashboard.overview(project.store, ADMIN, n_boot=n_boot)
    rows = [r for r in dashboard.cross_rows(result.cross)]
    if not rows:
        print("(no cross-modality comparison: fewer than two active models)")
        return
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")
    for note in result.cross_notes:
        print(f"- {note}")


def reader_tables(project, n_boot: int) -> None:
    """Models against readers (verdicts) and readers by level, all four modalities together."""
    res = dashboard.reader_results(project.store, ADMIN, n_boot=n_boot)
    study = res.study
    print(
        f"Reference items: {res.n_reference}; comparisons resample "
        f"{study.get('cluster', 'item')}s ({study.get('n_clusters', '?')} clusters), "
        f"{study.get('n_boot', n_boot)} resamples, Holm over the readers each model is compared with."
    )
    print()
    print("| who | level | items | accuracy | kappa quad. | ICC |")
    print("|---|---|---|---|---|---|")
    for r in dashboard.reader_rows(res):
        icc = next((v for k, v in r.items() if k.startswith("ICC")), "")
        print(
            f"| {r['who']} | {r['level']} | {r['items']} | {r['accuracy']} | {r['kappa quadratic']} | {icc} |"
        )
    print()
    print("| model | model better | reader better | no difference shown | undefined |")
    print("|---|---|---|---|---|")
    for model, m in study["models"].items():
        counts = Counter(c.get("verdict") for c in m["vs_readers"].values())
        print(
            f"| {model} | {counts.get('model better', 0)} | {counts.get('reader better', 0)} | "
            f"{counts.get('no difference shown', 0)} | {counts.get('undefined', 0)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    project = open_project()
    warnings.simplefilter("ignore")
    print("## Models on the test cohorts\n")
    model_table(project)
    print("\n## Interval widths: patients against items resampled\n")
    width_table(project, args.n_boot)
    print("\n## Between modalities (every matched joint, combined EOSS of the joint)\n")
    cross_table(project, args.n_boot)
    print("\n## Reader study (all four modalities' test items)\n")
    reader_tables(project, args.n_boot)


if __name__ == "__main__":
    main()
