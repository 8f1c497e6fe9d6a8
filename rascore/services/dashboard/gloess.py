"""Patient-level GLOESS on the Reader study page: each reader and each active model against the
reference (ICC(2,1), Bland-Altman), and how many joints make a patient's GLOESS.

The rows are the GLOESS export's (``rascore.export.rater_rows``: every reader's latest combined
grade, the reference standard, each active Doppler model's predicted grade) on the chosen test
cohorts; sums and agreement are ``rascore.evaluate.gloess``'s (static from SPD items, dynamic
from DPD items, never mixed). Experts' and admins' grades make the reference, so they are left
out unless asked for, as in the reader table beside it. Cached while the store is unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from rascore import scale
from rascore.evaluate.gloess import (
    GLOESS_MODALITIES,
    REFERENCE,
    RaterAgreement,
    patient_agreement,
    patient_scores,
)
from rascore.evaluate.undefined import UndefinedMetricWarning
from rascore.export import rater_rows
from rascore.permissions import require
from rascore.services.dashboard import cache
from rascore.services.dashboard.readers import REFERENCE_ROLES
from rascore.services.dashboard.rows import fmt
from rascore.services.dashboard.sections import TEST_COHORTS
from rascore.store import Store, accounts

KIND_MODEL = "model"
_DYNAMIC = {"SPD": "static (SPD)", "DPD": "dynamic (DPD)"}


@dataclass
class GloessAgreement:
    """Each rater's patient GLOESS against the reference per Doppler modality, the reference's
    joint count per patient, and what was left out."""

    cohorts: tuple[str, ...]
    agreements: list[RaterAgreement]
    joints: pd.DataFrame  # modality, patient, cohort, n_joints, gloess (the reference's)
    notes: list[str] = field(default_factory=list)
    excluded_readers: list[str] = field(default_factory=list)


def gloess_agreement(
    store: Store,
    user: Mapping,
    cohorts: Sequence[str] = TEST_COHORTS,
    include_reference_readers: bool = False,
) -> GloessAgreement:
    """Patient GLOESS agreement with the reference on ``cohorts`` (pooled: a patient is in one)."""
    require(user, "view_results")
    cohorts = tuple(scale.cohort(c) for c in cohorts)

    def compute() -> GloessAgreement:
        roles = {u["name"]: u["role"] for u in accounts.users(store)}
        rows, excluded = [], set()
        for row in rater_rows(store):
            if row["cohort"] not in cohorts:
                continue
            if roles.get(row["rater"]) in REFERENCE_ROLES and not include_reference_readers:
                excluded.add(row["rater"])
                continue
            rows.append(row)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            scores = patient_scores(rows)
            agreements = patient_agreement(scores)
        table = scores.table
        joints = table[table["rater"] == REFERENCE][["modality", "patient", "cohort", "n_joints", "gloess"]]
        return GloessAgreement(
            cohorts, agreements, joints.reset_index(drop=True), scores.notes(), sorted(excluded)
        )

    return cache.cached(store, "gloess", (cohorts, include_reference_readers), compute, with_readers=True)


def modality_label(code: str) -> str:
    """'static (SPD)' or 'dynamic (DPD)'."""
    return _DYNAMIC.get(code, code)


def agreement_rows(found: GloessAgreement) -> list[dict]:
    """One row per modality and rater: patients compared, ICC(2,1) with its 95% CI, the mean
    difference and 95% limits of agreement, the patients left out, and reasons."""
    rows = []
    for a in found.agreements:
        d = a.to_dict()
        icc = fmt(d["icc"])
        if icc != "undefined" and d["icc_ci_low"] == d["icc_ci_low"]:
            icc += f" ({d['icc_ci_low']:.2f} to {d['icc_ci_high']:.2f})"
        loa = "undefined" if d["loa_low"] != d["loa_low"] else f"{d['loa_low']:.2f} to {d['loa_high']:.2f}"
        rows.append(
            {
                "GLOESS": modality_label(a.modality),
                "rater": a.rater,
                "kind": KIND_MODEL if a.rater.startswith(f"{KIND_MODEL}:") else "reader",
                "patients": d["n_patients"],
                "ICC(2,1) (95% CI)": icc,
                "mean difference": fmt(d["mean_diff"], 2),
                "95% limits of agreement": loa,
                "left out: joints missing": d["n_missing_joints"],
                "left out: extra joints": d["n_extra_joints"],
                "reference patients not graded": d["n_not_scored"],
                "reason": "; ".join(f"{k}: {v}" for k, v in d["reasons"].items()),
            }
        )
    return rows


def joint_count_rows(found: GloessAgreement) -> list[dict]:
    """Per modality: how many patients' reference GLOESS sums 1, 2, ... joints."""
    if found.joints.empty:
        return []
    counts = found.joints.groupby(["modality", "n_joints"]).size().reset_index(name="patients")
    order = {code: k for k, code in enumerate(GLOESS_MODALITIES)}  # static first, then dynamic
    counts = counts.sort_values(
        ["modality", "n_joints"], key=lambda c: c.map(order) if c.name == "modality" else c
    )
    return [
        {
            "GLOESS": modality_label(r["modality"]),
            "joints per patient": int(r["n_joints"]),
            "patients": int(r["patients"]),
        }
        for r in counts.to_dict("records")
    ]


def bland_altman_points(found: GloessAgreement, modality: str, rater: str) -> RaterAgreement | None:
    """The agreement of one rater in one modality (its ``pairs`` hold the plot's points)."""
    for a in found.agreements:
        if a.modality == modality and a.rater == rater:
            return a
    return None
