"""The analysis of a reader study (unaided against AI-aided reading), for the Reader study page.

``analyse`` reads the study's long table (``rascore.services.study_results.reads_table``: the
same permission, so while a study is open only its designers see it, and experts once it is
closed) and computes, with ``rascore.evaluate.study`` and ``rascore.evaluate.mrmc``:

* the MRMC analysis (Obuchowski-Rockette, Hillis ddf) of aided - unaided, over all readers and
  per experience level (junior, intermediate, senior);
* the model alone on the same cases and truth: its empirical AUC from its probability that the
  grade is at least the study's threshold, with DeLong's 95% interval, and its quadratic kappa
  from its predicted grade, beside the readers' mean AUC per arm (the model's suggestion per
  case is passed in as ``aid``: columns ``case, grade, prob``; without it the model's figures
  are NaN with "no model suggestion recorded for this study");
* the per-grade AUC at the cumulative splits grade >= 1, 2, 3 (the reader's grade as an ordinal
  rating), per reader and arm and as the mean over readers;
* the quadratic weighted kappa against the reference per reader and arm, with intervals of a
  patient bootstrap (each case's patient pseudonym), and the paired aided - unaided differences;
* per reader: AUC and kappa in each arm, experience, reads and the median seconds per read.

What is analysed: the readers who read every case of the study in both arms (a reader still
reading is listed with how far they got and left out of the figures, since the MRMC analysis
needs every reader to read every case in every arm), on the cases that have a reference grade
(the others are left out and counted). Every number that cannot be computed is NaN with the
reason (``rascore.evaluate.undefined``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rascore.evaluate.delong import delong_auc_ci
from rascore.evaluate.mrmc import MRMCResult
from rascore.evaluate.study import (
    ArmDifference,
    KappaFigures,
    arm_difference,
    by_level,
    cumulative_auc,
    kappa_figures,
    single_kappa,
)
from rascore.evaluate.undefined import UndefinedMetricWarning, UndefinedValue
from rascore.permissions import allowed, require
from rascore.services.study import ARMS, EXPERIENCE, StudyError
from rascore.services.study_results import aid_table, read_times, reads_table
from rascore.store import Store
from rascore.store import studies as sql

UNAIDED, AIDED = ARMS
AID_COLUMNS: tuple[str, ...] = ("case", "grade", "prob")
NO_AID = "no model suggestion recorded for this study"
N_BOOT = 1000
_RANK = {level: k for k, level in enumerate(EXPERIENCE)}


@dataclass
class StudyAnalysis:
    """Everything the study section of the Reader study page shows (see the module docstring)."""

    study: dict
    grade: str
    positive_from: int
    readers: pd.DataFrame  # every enrolled reader: experience, reads per arm, status
    n_cases: int = 0  # analysed: every case with a reference grade
    n_positive: int = 0
    n_negative: int = 0
    cluster: str = "item"  # what the kappa bootstrap resampled
    n_clusters: int = 0
    notes: list[str] = field(default_factory=list)
    reason: str | None = None  # why nothing could be analysed
    overall: ArmDifference | None = None
    mrmc: MRMCResult | None = None
    levels: list[ArmDifference] = field(default_factory=list)
    arm_auc: pd.DataFrame = field(default_factory=pd.DataFrame)  # readers' mean AUC per arm, RRRC CI
    model: dict = field(default_factory=dict)
    per_grade: pd.DataFrame = field(default_factory=pd.DataFrame)
    kappa: KappaFigures | None = None
    per_reader: pd.DataFrame = field(default_factory=pd.DataFrame)
    times: pd.DataFrame = field(default_factory=pd.DataFrame)


def analysable_studies(store: Store, actor: Mapping) -> list[dict]:
    """The studies this user may see analysed: every study for a designer (admin), the closed
    ones for someone who may see results (readers stay blind while a study is open)."""
    if allowed(actor, "design_study"):
        return sql.studies(store)
    require(actor, "view_results")
    return [s for s in sql.studies(store) if s["status"] == "closed"]


def _readers(store: Store, study_id: int, table: pd.DataFrame, n_cases: int) -> pd.DataFrame:
    """One row per enrolled reader: name, experience, reads per arm, and why it is left out."""
    counts = table.groupby(["reader", "arm"]).size() if len(table) else pd.Series(dtype=int)
    rows = []
    for r in sql.readers(store, study_id):
        reads = {arm: int(counts.get((r["name"], arm), 0)) for arm in ARMS}
        done = sum(reads.values())
        status = None
        if done == 0:
            status = "has not started: left out"
        elif done < 2 * n_cases:
            status = f"read {done} of {2 * n_cases}: left out until every case is read in both arms"
        rows.append(
            {
                "reader": r["name"],
                "experience": r["experience"],
                **{f"reads {arm}": reads[arm] for arm in ARMS},
                "status": status,
            }
        )
    rows.sort(key=lambda row: (_RANK.get(row["experience"], len(_RANK)), row["reader"]))
    return pd.DataFrame(rows, columns=["reader", "experience", *(f"reads {a}" for a in ARMS), "status"])


def _check_aid(aid: pd.DataFrame) -> pd.DataFrame:
    """The model's suggestions indexed by case, or StudyError naming the first problem."""
    missing = [c for c in AID_COLUMNS if c not in aid.columns]
    if missing:
        raise StudyError(f"The model's suggestions lack the column(s) {', '.join(missing)}.")
    frame = aid[list(AID_COLUMNS)].copy()
    twice = frame["case"][frame["case"].duplicated()]
    if len(twice):
        raise StudyError(f"The model's suggestions list case {twice.iloc[0]} twice.")
    frame["prob"] = pd.to_numeric(frame["prob"], errors="coerce")
    frame["grade"] = pd.to_numeric(frame["grade"], errors="coerce")
    probs = frame["prob"].dropna()
    if ((probs < 0) | (probs > 1)).any():
        raise StudyError("The model's probabilities must lie between 0 and 1.")
    if not frame["grade"].dropna().isin([0, 1, 2, 3]).all():
        raise StudyError("The model's grades must be 0-3.")
    return frame.set_index("case")


def _model(
    aid: pd.DataFrame | None,
    cases: list,
    reference: np.ndarray,
    truth: np.ndarray,
    patients: list,
    n_boot: int,
    seed: int,
) -> dict:
    """The model alone on the analysed cases: AUC with DeLong's CI (from ``prob``) and quadratic
    kappa with a patient-bootstrap CI (from ``grade``), with the cases it covers."""
    if aid is None:
        nan = UndefinedValue(NO_AID)
        return {"auc": nan, "ci_low": nan, "ci_high": nan, "kappa": nan, "reason": NO_AID, "n_cases": 0}
    found = _check_aid(aid).reindex(cases)
    probs, grades = found["prob"].to_numpy(dtype=float), found["grade"].to_numpy(dtype=float)
    has_prob, has_grade = ~np.isnan(probs), ~np.isnan(grades)
    out: dict = {"n_cases": int(has_prob.sum()), "n_graded": int(has_grade.sum()), "notes": []}
    lacking = len(cases) - int(has_prob.sum())
    if lacking:
        out["notes"].append(f"{lacking} of the {len(cases)} cases have no model probability: left out")
    if not has_prob.any():
        reason = "the model has no probability for any analysed case"
        nan = UndefinedValue(reason)
        out.update(auc=nan, ci_low=nan, ci_high=nan, stderr=nan, reason=reason)
    else:
        auc = delong_auc_ci(truth[has_prob].astype(int), probs[has_prob])
        out.update(auc=auc.auc, ci_low=auc.ci_low, ci_high=auc.ci_high, stderr=auc.stderr, reason=auc.reason)
    if has_grade.any():
        pts = [p for p, keep in zip(patients, has_grade) if keep]
        kappa = single_kappa(reference[has_grade], grades[has_grade].astype(int), pts, n_boot, seed)
        out["kappa_detail"] = kappa
        out["kappa"] = kappa["kappa"]
        out["grades"] = grades
    else:
        out["kappa"] = UndefinedValue("the model has no grade for any analysed case")
    return out


def _per_grade(
    reference: np.ndarray, scores: np.ndarray, readers: list[str], levels: Mapping[str, str], model: dict
) -> pd.DataFrame:
    """Cumulative-split AUC rows: each reader per arm, the mean over readers per arm, the model
    (``scores``: (arms in ``ARMS`` order, readers, cases))."""
    splits = cumulative_auc(reference, scores.reshape(-1, scores.shape[-1]))  # rows: arm-major
    rows = []
    for i, arm in enumerate(ARMS):
        for j, reader in enumerate(readers):
            cells = {g: (s.auc[i * len(readers) + j], s.n_pos, s.n_neg, s.reason) for g, s in splits.items()}
            rows.append(_grade_row(reader, "reader", levels[reader], arm, cells))
        means = {
            g: (float(np.mean(s.auc[i * len(readers) : (i + 1) * len(readers)])), s.n_pos, s.n_neg, s.reason)
            for g, s in splits.items()
        }
        rows.append(_grade_row(f"mean of {len(readers)} readers", "mean", "", arm, means))
    grades = model.get("grades")
    if grades is not None:
        keep = ~np.isnan(grades)
        found = cumulative_auc(reference[keep], grades[keep][None, :])
        cells = {g: (s.auc[0], s.n_pos, s.n_neg, s.reason) for g, s in found.items()}
        rows.append(_grade_row("model alone", "model", "", "", cells))
    return pd.DataFrame(rows)


def _grade_row(who: str, kind: str, level: str, arm: str, cells: dict) -> dict:
    row = {"who": who, "kind": kind, "experience": level, "arm": arm}
    reasons = []
    for g, (auc, n_pos, n_neg, reason) in cells.items():
        row[f">={g}"] = auc
        row[f"n >={g}"] = f"{n_pos}/{n_neg}"
        if reason:
            reasons.append(reason)
    row["reason"] = "; ".join(dict.fromkeys(reasons)) or None
    return row


def _arm_auc(result: MRMCResult | None, overall: ArmDifference) -> pd.DataFrame:
    """Readers' mean AUC per arm with its RRRC single-arm 95% interval (or NaN and why)."""
    rows = []
    for arm in (UNAIDED, AIDED):
        single = (result.rrrc.get("single") or {}).get(arm, {}) if result else {}
        reason = overall.reason if not single else single.get("reason")
        rows.append(
            {
                "arm": arm,
                "readers": len(result.readers) if result else 0,
                "auc": result.auc[arm] if result else np.nan,
                "ci_low": single.get("ci_low", np.nan),
                "ci_high": single.get("ci_high", np.nan),
                "reason": reason,
            }
        )
    return pd.DataFrame(rows)


def _per_reader(
    analysis: StudyAnalysis, readers: list[str], kappa: KappaFigures | None, times: pd.DataFrame
) -> pd.DataFrame:
    """Per enrolled reader: experience, reads, AUC and kappa per arm and their differences, and
    the median seconds per read in each arm."""
    result = analysis.mrmc
    rows = []
    for reader in analysis.readers.to_dict("records"):
        name = reader["reader"]
        row = dict(reader)
        for arm in ARMS:
            mine = times[(times["reader"] == name) & (times["arm"] == arm)] if len(times) else times
            row[f"median s {arm}"] = float(mine["median_s"].iloc[0]) if len(mine) else np.nan
        analysed = result is not None and name in result.readers
        for arm in ARMS:
            row[f"AUC {arm}"] = (
                float(result.reader_auc[result.arms.index(arm), result.readers.index(name)])
                if analysed
                else np.nan
            )
            row[f"kappa {arm}"] = np.nan
        if analysed and kappa is not None:
            cells = kappa.cells[kappa.cells["reader"] == name].set_index("arm")["kappa"]
            for arm in ARMS:
                row[f"kappa {arm}"] = cells[arm]
        row["AUC aided - unaided"] = row[f"AUC {AIDED}"] - row[f"AUC {UNAIDED}"]
        row["kappa aided - unaided"] = row[f"kappa {AIDED}"] - row[f"kappa {UNAIDED}"]
        rows.append(row)
    return pd.DataFrame(rows)


def analyse(
    store: Store,
    actor: Mapping,
    study_id: int,
    *,
    aid: pd.DataFrame | None = None,
    grade: str | None = None,
    positive_from: int = 1,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> StudyAnalysis:
    """The analysis of a study's reads (see the module docstring); permission as ``reads_table``.

    ``aid``: the model's suggestion per case (``case, grade, prob``: its predicted grade of the
    study's grade and its probability that the grade is at least ``positive_from``). By default
    it is the aid each case showed, frozen when the study opened (``aid_table``), when the
    analysis grades what the study graded.
    """
    table = reads_table(store, actor, study_id, grade=grade, positive_from=positive_from)
    study = sql.study(store, study_id)
    source = None
    if aid is None and table.attrs["grade"] == study["grade"]:
        shown = aid_table(store, actor, study_id, threshold=table.attrs["positive_from"])
        if shown.attrs.get("source") is not None:
            aid, source = shown, _aid_source(shown.attrs)
    case_ids = [int(c["item_id"]) for c in sql.cases(store, study_id)]
    readers = _readers(store, study_id, table, len(case_ids))
    out = StudyAnalysis(study, table.attrs["grade"], table.attrs["positive_from"], readers)
    out.times = read_times(table)
    complete = readers.loc[readers["status"].isna(), "reader"].tolist()
    out.notes += [
        f"{r['reader']} {r['status']}" for r in readers.to_dict("records") if isinstance(r["status"], str)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        _analyse_complete(out, table, complete, case_ids, aid, n_boot, seed)
    out.per_reader = _per_reader(out, complete, out.kappa, out.times)
    if source and out.model:
        out.model["source"] = source
        if isinstance(aid.attrs.get("reason"), str) and not out.model.get("reason"):
            out.model["reason"] = aid.attrs["reason"]
    return out


def _aid_source(attrs: Mapping) -> str:
    """Where the shown aid came from, in words: the model versions, or the demo's simulated aid."""
    if attrs.get("source") == "simulated":
        return "the simulated aid of the demo (a simulated model's suggestions, no network)"
    models = attrs.get("models") or []
    return ", ".join(str(m) for m in models) or str(attrs.get("source"))


def _analyse_complete(
    out: StudyAnalysis,
    table: pd.DataFrame,
    complete: list[str],
    case_ids: list[int],
    aid: pd.DataFrame | None,
    n_boot: int,
    seed: int,
) -> None:
    """Fill ``out`` with the figures of the complete readers on the referenced cases."""
    if not complete:
        out.reason = "no reader has read every case in both arms yet: nothing to analyse"
        return
    frame = table[table["reader"].isin(complete)]
    unreferenced = sorted(set(frame.loc[frame["reference"].isna(), "case"]))
    if unreferenced:
        out.notes.append(f"{len(unreferenced)} case(s) without a reference grade: left out")
    frame = frame[frame["reference"].notna()]
    cases = [c for c in case_ids if c in set(frame["case"])]
    if not cases:
        out.reason = "no case of the study has a reference grade: nothing to analyse"
        return
    levels = dict(zip(out.readers["reader"], out.readers["experience"]))
    ordered = [r for r in out.readers["reader"] if r in complete]
    per_case = frame.drop_duplicates("case").set_index("case").loc[cases]
    reference = per_case["reference"].to_numpy(dtype=np.int64)
    truth = per_case["truth"].to_numpy(dtype=np.int64)
    patients = per_case["patient"].tolist()
    out.n_cases, out.n_positive = len(cases), int(truth.sum())
    out.n_negative = out.n_cases - out.n_positive
    out.overall, out.mrmc = arm_difference(frame, "all readers", AIDED, UNAIDED)
    out.levels = by_level(frame, levels, EXPERIENCE, AIDED, UNAIDED)
    out.arm_auc = _arm_auc(out.mrmc, out.overall)
    grid = frame.set_index(["arm", "reader", "case"])["score"].astype(float)
    scores = np.stack(
        [grid.loc[arm].unstack("case").reindex(index=ordered, columns=cases).to_numpy() for arm in ARMS]
    )  # (2, r, K) in ARMS order: unaided, aided
    out.kappa = kappa_figures(
        reference,
        scores[[ARMS.index(AIDED), ARMS.index(UNAIDED)]].astype(np.int64),
        (AIDED, UNAIDED),
        ordered,
        patients,
        n_boot,
        seed,
    )
    out.cluster, out.n_clusters = out.kappa.cluster, out.kappa.n_clusters
    out.model = _model(aid, cases, reference, truth, patients, n_boot, seed)
    out.per_grade = _per_grade(reference, scores, ordered, levels, out.model)
