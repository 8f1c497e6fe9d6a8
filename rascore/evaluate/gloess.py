"""Patient-level GLOESS and its agreement with the reference: sums, ICC, Bland-Altman.

The global OMERACT-EULAR synovitis score (GLOESS; D'Agostino et al., RMD Open 2016) of a patient
is the sum of the combined EOSS (0-3, ``rascore.scale``) over the joints examined. Only power
Doppler items carry a combined EOSS, so a static GLOESS comes from a patient's SPD items and a
dynamic one from the DPD items; greyscale items are refused here.

Input: one row per item and rater with ``patient, cohort, modality, joint, side, rater,
combined`` (the combined grade as the store holds it: formed by ``rascore.scale.check_pair``
for readers and the reference; a Doppler model's predicted grade is its combined EOSS, the
target it was trained on). Rules, all per patient x cohort x modality x rater:

* a joint is (joint, side); where one patient has several items of the same joint and side in
  one modality, the joint counts once, with the highest of their grades (as the dashboard's
  cross-modality joint reference takes the higher grade), and ``n_collapsed`` counts the
  grades folded in that way;
* rows without a patient id or a joint name cannot be placed in a patient's joint set and rows
  without a grade (not assessable) grade no joint: each is left out and counted by reason;
* ``gloess`` is the sum over the joints, ``n_joints`` how many joints it sums.

Agreement (``patient_agreement``), per modality x rater against the rater named ``reference``,
over the patients of the table (filter cohorts before calling): a patient counts only when the
rater's joint set equals the reference's for that patient; a patient where the rater lacks a
joint of the reference (``n_missing_joints``), or graded a joint the reference has no grade for
(``n_extra_joints``), is left out and counted, as are the reference's patients the rater scored
no joint of (``n_not_scored``) and the rater's patients the reference has no grade for
(``n_without_reference``). On the patients kept: ICC(2,1) (pingouin's ICC(A,1), two-way random,
absolute agreement, single rater; ``rascore.evaluate.icc``) of the two columns reference and
rater, and Bland-Altman: differences rater - reference, their mean, their SD (n - 1) and the
95% limits of agreement mean +- 1.96 SD, with each patient's (mean, difference) pair for a plot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rascore import scale
from rascore.evaluate.icc import ICC_FORMS, icc_table
from rascore.evaluate.reader_study import DEFAULT_ICC_FORM
from rascore.evaluate.undefined import undefined

REFERENCE = "reference"
ROW_COLUMNS: tuple[str, ...] = ("patient", "cohort", "modality", "joint", "side", "rater", "combined")
SCORE_COLUMNS: tuple[str, ...] = ("patient", "cohort", "modality", "rater", "gloess", "n_joints")
# Doppler modalities in scale order: SPD gives the static GLOESS, DPD the dynamic one
GLOESS_MODALITIES: tuple[str, ...] = tuple(code for code, m in scale.MODALITIES.items() if m.doppler)
LOA_Z = 1.96  # 95% limits of agreement (Bland & Altman 1986)
_KEYS = ["patient", "cohort", "modality", "rater"]


@dataclass(frozen=True)
class PatientScores:
    """GLOESS per patient x cohort x modality x rater (``table``), and the rows not used.

    ``table`` holds ``SCORE_COLUMNS`` plus ``joints``: the sorted (joint, side) pairs summed
    (side "" where an item has none).
    """

    table: pd.DataFrame
    left_out: dict[str, int] = field(default_factory=dict)
    n_collapsed: int = 0

    def notes(self) -> list[str]:
        """One line per kind of row not used, and for joints seen in more than one item."""
        lines = [f"{n} item grade(s) left out: {why}" for why, n in self.left_out.items() if n]
        if self.n_collapsed:
            lines.append(
                f"{self.n_collapsed} item grade(s) of a joint already graded in another item of the "
                "same modality: the joint counts once, with its highest grade"
            )
        return lines


def _frame(rows: Iterable[Mapping] | pd.DataFrame) -> pd.DataFrame:
    """The rows as a frame with ``ROW_COLUMNS``, or ValueError naming what is missing."""
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty and not len(frame.columns):
        frame = pd.DataFrame(columns=list(ROW_COLUMNS))
    missing = [c for c in ROW_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"GLOESS rows need the column(s) {', '.join(missing)}")
    return frame[list(ROW_COLUMNS)].astype(object)


def _blank(values: pd.Series) -> pd.Series:
    """True where a text cell is missing or empty."""
    return values.isna() | (values.astype(str).str.strip() == "")


def patient_scores(rows: Iterable[Mapping] | pd.DataFrame) -> PatientScores:
    """GLOESS and joint count per patient x cohort x modality x rater (see the module's rules).

    ValueError for a missing column, a greyscale modality or a grade outside 0-3.
    """
    frame = _frame(rows)
    bad = sorted(set(frame["modality"].dropna().astype(str)) - set(GLOESS_MODALITIES))
    if bad:
        raise ValueError(
            f"GLOESS sums the combined EOSS, which only power Doppler items "
            f"({', '.join(GLOESS_MODALITIES)}) carry; got {', '.join(bad)}"
        )
    if _blank(frame["rater"]).any() or _blank(frame["cohort"]).any() or frame["modality"].isna().any():
        raise ValueError("every GLOESS row needs a rater, a cohort and a modality")
    left_out: dict[str, int] = {}
    for reason, column in (
        ("no patient id", "patient"),
        ("no joint name", "joint"),
        ("no grade (not assessable)", "combined"),
    ):  # each row counted once, under the first reason it meets
        mask = _blank(frame[column])
        left_out[reason] = int(mask.sum())
        frame = frame[~mask]
    frame = frame.assign(
        combined=[scale.check_grade(g, "combined EOSS") for g in frame["combined"]],
        side=frame["side"].where(~_blank(frame["side"]), "").astype(str),
        joint=frame["joint"].astype(str),
    )
    if frame.empty:
        return PatientScores(_empty_table(), left_out, 0)
    per_joint = frame.groupby([*_KEYS, "joint", "side"], as_index=False, sort=True)["combined"].max()
    per_joint["key"] = list(zip(per_joint["joint"], per_joint["side"]))
    table = (
        per_joint.groupby(_KEYS, sort=True)
        .agg(gloess=("combined", "sum"), n_joints=("combined", "size"), joints=("key", tuple))
        .reset_index()
        .astype({"gloess": "int64", "n_joints": "int64"})
    )
    return PatientScores(table, left_out, len(frame) - len(per_joint))


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            **{c: pd.Series(dtype=object) for c in _KEYS},
            "gloess": pd.Series(dtype="int64"),
            "n_joints": pd.Series(dtype="int64"),
            "joints": pd.Series(dtype=object),
        }
    )


@dataclass
class BlandAltman:
    """Differences rater - reference over patients: mean, SD, 95% limits, the plot's pairs."""

    n: int
    mean_diff: float
    sd_diff: float
    loa_low: float
    loa_high: float
    reason: str | None
    means: np.ndarray  # per patient (rater + reference) / 2
    diffs: np.ndarray  # per patient rater - reference


def bland_altman(reference: np.ndarray, rater: np.ndarray) -> BlandAltman:
    """Bland-Altman figures of two paired 1-D arrays (NaN with a reason where undefined)."""
    ref = np.asarray(reference, dtype=float)
    got = np.asarray(rater, dtype=float)
    if ref.shape != got.shape or ref.ndim != 1:
        raise ValueError(f"Bland-Altman needs two 1-D arrays of one length, got {ref.shape} and {got.shape}")
    diffs, means = got - ref, (got + ref) / 2
    n = int(diffs.size)
    if n == 0:
        reason = "no patient to compare: the differences have no mean"
        nan = undefined(reason)
        return BlandAltman(0, nan, nan, nan, nan, reason, means, diffs)
    mean = float(diffs.mean())
    if n == 1:
        reason = "one patient: the SD of the differences and the limits of agreement need at least 2"
        nan = undefined(reason)
        return BlandAltman(1, mean, nan, nan, nan, reason, means, diffs)
    sd = float(diffs.std(ddof=1))
    return BlandAltman(n, mean, sd, mean - LOA_Z * sd, mean + LOA_Z * sd, None, means, diffs)


@dataclass
class RaterAgreement:
    """One rater's patient-level GLOESS against the reference's, in one modality."""

    modality: str
    rater: str
    n_patients: int  # compared: the rater's joint set equals the reference's
    n_missing_joints: int  # left out: the rater lacks a joint the reference graded
    n_extra_joints: int  # left out: all the reference's joints, and one more the reference lacks
    n_not_scored: int  # reference patients the rater graded no joint of
    n_without_reference: int  # the rater's patients the reference graded no joint of
    icc_form: str
    icc: float
    icc_ci_low: float
    icc_ci_high: float
    icc_reason: str | None
    bland_altman: BlandAltman
    pairs: pd.DataFrame  # patient, cohort, reference, rater, mean, diff (compared patients)

    def to_dict(self) -> dict:
        """Plain types, undefined values NaN with their reasons beside them (pairs left out)."""
        ba = self.bland_altman
        out = {
            "modality": self.modality,
            "rater": self.rater,
            "n_patients": self.n_patients,
            "n_missing_joints": self.n_missing_joints,
            "n_extra_joints": self.n_extra_joints,
            "n_not_scored": self.n_not_scored,
            "n_without_reference": self.n_without_reference,
            "icc_form": self.icc_form,
            "icc": float(self.icc),
            "icc_ci_low": float(self.icc_ci_low),
            "icc_ci_high": float(self.icc_ci_high),
            "mean_diff": float(ba.mean_diff),
            "sd_diff": float(ba.sd_diff),
            "loa_low": float(ba.loa_low),
            "loa_high": float(ba.loa_high),
        }
        reasons = {"icc": self.icc_reason, "bland_altman": ba.reason}
        out["reasons"] = {k: v for k, v in reasons.items() if v}
        return out


def _agreement_of(
    modality: str, rater: str, ref: pd.DataFrame, mine: pd.DataFrame, icc_form: str
) -> RaterAgreement:
    """One rater against the reference in one modality (both frames indexed by patient, cohort)."""
    shared = ref.add_suffix("_ref").join(mine.add_suffix("_rater"), how="inner")
    ref_sets = shared["joints_ref"].map(set)
    rater_sets = shared["joints_rater"].map(set)
    missing = np.array([bool(r - m) for r, m in zip(ref_sets, rater_sets)], dtype=bool)
    extra = np.array([bool(m - r) for r, m in zip(ref_sets, rater_sets)], dtype=bool) & ~missing
    kept = shared[~missing & ~extra]
    pairs = pd.DataFrame(
        {
            "patient": kept.index.get_level_values("patient"),
            "cohort": kept.index.get_level_values("cohort"),
            "reference": kept["gloess_ref"].to_numpy(dtype=float),
            "rater": kept["gloess_rater"].to_numpy(dtype=float),
        }
    )
    ba = bland_altman(pairs["reference"].to_numpy(), pairs["rater"].to_numpy())
    pairs["mean"], pairs["diff"] = ba.means, ba.diffs
    matrix = pairs[["reference", "rater"]].to_numpy() if len(pairs) else np.empty((0, 2))
    form = icc_table(matrix)[icc_form]
    return RaterAgreement(
        modality=modality,
        rater=rater,
        n_patients=len(pairs),
        n_missing_joints=int(missing.sum()),
        n_extra_joints=int(extra.sum()),
        n_not_scored=int(len(ref) - len(shared)),
        n_without_reference=int(len(mine) - len(shared)),
        icc_form=icc_form,
        icc=form["icc"],
        icc_ci_low=form["ci_low"],
        icc_ci_high=form["ci_high"],
        icc_reason=form.get("reason"),
        bland_altman=ba,
        pairs=pairs,
    )


def patient_agreement(
    scores: PatientScores | pd.DataFrame, reference: str = REFERENCE, icc_form: str = DEFAULT_ICC_FORM
) -> list[RaterAgreement]:
    """Each rater against ``reference`` per modality at the patient level (see the module's rules).

    ``scores`` is ``patient_scores``' result (or its table). Modalities in scale order, raters
    by name; the reference itself is not listed.
    """
    if icc_form not in ICC_FORMS:
        raise ValueError(f"icc_form must be one of {', '.join(ICC_FORMS)}, got {icc_form!r}")
    table = scores.table if isinstance(scores, PatientScores) else scores
    out: list[RaterAgreement] = []
    order = {code: i for i, code in enumerate(GLOESS_MODALITIES)}
    for modality in sorted(table["modality"].unique(), key=lambda m: order.get(m, len(order))):
        of_modality = table[table["modality"] == modality].set_index(["patient", "cohort"])
        ref = of_modality[of_modality["rater"] == reference][["gloess", "joints"]]
        for rater in sorted(set(of_modality["rater"]) - {reference}):
            mine = of_modality[of_modality["rater"] == rater][["gloess", "joints"]]
            out.append(_agreement_of(modality, rater, ref, mine, icc_form))
    return out
