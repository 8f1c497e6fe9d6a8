"""Patient-level GLOESS: sums over hand-made tables, the joint-set rule, ICC and Bland-Altman."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pingouin
import pytest

from rascore.evaluate import UndefinedMetricWarning
from rascore.evaluate.gloess import (
    SCORE_COLUMNS,
    bland_altman,
    patient_agreement,
    patient_scores,
)


def row(patient, rater, joint, grade, side="R", modality="SPD", cohort="test1") -> dict:
    return {
        "patient": patient,
        "cohort": cohort,
        "modality": modality,
        "joint": joint,
        "side": side,
        "rater": rater,
        "combined": grade,
    }


def scores_of(rows) -> dict[tuple, tuple[int, int]]:
    """(patient, modality, rater) -> (gloess, n_joints)."""
    table = patient_scores(rows).table
    return {
        (r.patient, r.modality, r.rater): (int(r.gloess), int(r.n_joints))
        for r in table.itertuples(index=False)
    }


def test_sum_per_patient_modality_and_rater_with_a_missing_joint_and_a_single_joint():
    rows = [
        row("p1", "reference", "MCP2", 2),
        row("p1", "reference", "MCP3", 3),
        row("p1", "reference", "MCP2", 1, side="L"),
        row("p1", "reader-a", "MCP2", 2),
        row("p1", "reader-a", "MCP3", None),  # not assessable: grades no joint
        row("p1", "reader-a", "MCP2", 0, side="L"),
        row("p2", "reference", "wrist", 3),  # a patient with one joint
        row("p2", "reader-a", "wrist", 2),
        row("p1", "reference", "MCP2", 0, modality="DPD"),  # dynamic: its own score
        row("p1", "reference", "MCP3", 1, modality="DPD"),
    ]
    scores = patient_scores(rows)
    assert list(scores.table.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    assert scores_of(rows) == {
        ("p1", "SPD", "reference"): (6, 3),
        ("p1", "SPD", "reader-a"): (2, 2),
        ("p2", "SPD", "reference"): (3, 1),
        ("p2", "SPD", "reader-a"): (2, 1),
        ("p1", "DPD", "reference"): (1, 2),
    }
    assert scores.left_out["no grade (not assessable)"] == 1
    joints = scores.table.set_index(["patient", "modality", "rater"])["joints"]
    assert joints[("p1", "SPD", "reader-a")] == (("MCP2", "L"), ("MCP2", "R"))


def test_a_joint_in_two_items_counts_once_with_its_highest_grade_ties_included():
    rows = [
        row("p1", "reference", "MCP2", 1),
        row("p1", "reference", "MCP2", 3),  # a second item of the same joint and side
        row("p1", "reference", "MCP3", 2),
        row("p1", "reference", "MCP3", 2),  # a tie: still one joint
    ]
    scores = patient_scores(rows)
    assert scores_of(rows) == {("p1", "SPD", "reference"): (5, 2)}
    assert scores.n_collapsed == 2
    assert any("counts once" in note for note in scores.notes())


def test_rows_without_patient_or_joint_are_left_out_and_counted_and_a_missing_side_is_its_own_joint():
    rows = [
        row(None, "reference", "MCP2", 3),
        row("", "reference", "MCP2", 3),
        row(None, "reference", None, None),  # counted once, under its first reason
        row("p1", "reference", None, 3),
        row("p1", "reference", "knee", 2, side=None),
        row("p1", "reference", "knee", 1, side="L"),
    ]
    scores = patient_scores(rows)
    assert scores.left_out == {"no patient id": 3, "no joint name": 1, "no grade (not assessable)": 0}
    assert scores_of(rows) == {("p1", "SPD", "reference"): (3, 2)}
    assert scores.notes() == [
        "3 item grade(s) left out: no patient id",
        "1 item grade(s) left out: no joint name",
    ]


def test_a_frame_and_no_rows_are_accepted():
    frame = pd.DataFrame([row("p1", "reference", "MCP2", 2), row("p1", "reference", "MCP3", 1)])
    assert scores_of(frame) == {("p1", "SPD", "reference"): (3, 2)}
    empty = patient_scores([])
    assert empty.table.empty and list(empty.table.columns[:6]) == list(SCORE_COLUMNS)
    assert patient_agreement(empty) == []


@pytest.mark.parametrize(
    "bad, message",
    [
        (row("p1", "reference", "MCP2", 2, modality="SGS"), "only power Doppler items"),
        (row("p1", "reference", "MCP2", 4), "combined EOSS must be 0-3"),
        (row("p1", "reference", "MCP2", 1.5), "combined EOSS must be an integer"),
        (row("p1", None, "MCP2", 1), "needs a rater"),
        (
            {"patient": "p1", "rater": "reference"},
            "need the column(s) cohort, modality, joint, side, combined",
        ),
    ],
)
def test_bad_rows_are_refused_with_a_reason(bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        patient_scores([bad])


def _study() -> list[dict]:
    """Reference and a reader over 6 patients; the reader misses a joint of p5 and adds one to p6."""
    grades = {
        "p1": (1, 2, 3),
        "p2": (0, 1, 0),
        "p3": (3, 3, 2),
        "p4": (2, 0, 1),
        "p5": (1, 1, 1),
        "p6": (0, 0, 2),
    }
    reader = {
        "p1": (2, 2, 3),
        "p2": (1, 1, 2),
        "p3": (3, 3, 3),
        "p4": (3, 1, 3),
        "p5": (1, 1, None),
        "p6": (0, 1, 2),
    }
    rows = []
    for patient, ref in grades.items():
        for joint, g_ref, g_read in zip(("MCP2", "MCP3", "wrist"), ref, reader[patient]):
            rows.append(row(patient, "reference", joint, g_ref))
            rows.append(row(patient, "reader-a", joint, g_read))
    rows.append(row("p6", "reader-a", "MCP5", 1))  # a joint the reference has no grade for
    rows.append(row("p7", "reference", "MCP2", 2))  # a patient the reader did not read
    rows.append(row("p8", "reader-a", "MCP2", 2))  # a patient the reference has no grade for
    return rows


def test_agreement_keeps_only_patients_with_the_reference_joint_set():
    (result,) = patient_agreement(patient_scores(_study()))
    assert (result.modality, result.rater) == ("SPD", "reader-a")
    assert result.n_patients == 4
    assert result.n_missing_joints == 1  # p5
    assert result.n_extra_joints == 1  # p6
    assert result.n_not_scored == 1  # p7
    assert result.n_without_reference == 1  # p8
    pairs = result.pairs.set_index("patient")
    assert list(pairs.index) == ["p1", "p2", "p3", "p4"]
    assert pairs["reference"].tolist() == [6, 1, 8, 3]
    assert pairs["rater"].tolist() == [7, 4, 9, 7]
    assert pairs["diff"].tolist() == [1, 3, 1, 4]
    assert pairs["mean"].tolist() == [6.5, 2.5, 8.5, 5.0]


def test_agreement_figures_equal_pingouin_and_hand_arithmetic():
    (result,) = patient_agreement(patient_scores(_study()))
    ba = result.bland_altman
    # differences 1, 3, 1, 4: mean 9/4, squared deviations 25/16 + 9/16 + 25/16 + 49/16 = 108/16
    assert ba.mean_diff == pytest.approx(9 / 4)
    assert ba.sd_diff == pytest.approx(math.sqrt(108 / 16 / 3))
    assert ba.loa_low == pytest.approx(9 / 4 - 1.96 * math.sqrt(108 / 16 / 3))
    assert ba.loa_high == pytest.approx(9 / 4 + 1.96 * math.sqrt(108 / 16 / 3))
    long = pd.DataFrame(
        {
            "patient": [1, 2, 3, 4] * 2,
            "rater": ["ref"] * 4 + ["a"] * 4,
            "score": [6, 1, 8, 3, 7, 4, 9, 7],
        }
    )
    expected = pingouin.intraclass_corr(long, "patient", "rater", "score").set_index("Type").loc["ICC(A,1)"]
    assert result.icc_form == "ICC2"
    assert result.icc == pytest.approx(expected["ICC"], abs=1e-12)
    assert result.icc_ci_low == pytest.approx(expected["CI95"][0], abs=5e-3)
    assert result.icc_ci_high == pytest.approx(expected["CI95"][1], abs=5e-3)
    out = result.to_dict()
    assert out["n_patients"] == 4 and out["reasons"] == {}


def test_a_rater_equal_to_the_reference_has_zero_limits_and_an_icc_of_one():
    # patients' GLOESS 1, 3 and 4 (pingouin's residual for 1, 3, 3 is 1e-16 rather than 0, and its
    # interval then comes out as [1, 1] instead of undefined)
    grades = {"p1": [("MCP2", 1)], "p2": [("MCP2", 3)], "p3": [("MCP2", 2), ("MCP3", 2)]}
    rows = [
        row(p, who, j, g) for p, joints in grades.items() for j, g in joints for who in ("reference", "copy")
    ]
    with pytest.warns(UndefinedMetricWarning):
        (result,) = patient_agreement(patient_scores(rows))
    assert result.icc == pytest.approx(1.0)
    assert (result.bland_altman.mean_diff, result.bland_altman.sd_diff) == (0.0, 0.0)
    assert (result.bland_altman.loa_low, result.bland_altman.loa_high) == (0.0, 0.0)
    assert np.isnan(result.icc_ci_low) and "confidence interval" in result.icc_reason


def test_all_patients_tied_leaves_the_icc_undefined_with_a_reason():
    rows = [row(p, who, "MCP2", 2) for p in ("p1", "p2", "p3") for who in ("reference", "same")]
    with pytest.warns(UndefinedMetricWarning):
        (result,) = patient_agreement(patient_scores(rows))
    assert np.isnan(result.icc) and "all ratings are equal" in result.icc_reason
    assert result.bland_altman.mean_diff == 0.0


def test_one_patient_or_none_leaves_the_spread_undefined_with_a_reason():
    with pytest.warns(UndefinedMetricWarning):
        one = bland_altman(np.array([4.0]), np.array([6.0]))
    assert one.mean_diff == 2.0 and np.isnan(one.sd_diff) and np.isnan(one.loa_low)
    assert "at least 2" in one.reason
    rows = [row("p1", "reference", "MCP2", 2), row("p1", "reader-a", "MCP3", 2)]
    with pytest.warns(UndefinedMetricWarning):
        (result,) = patient_agreement(patient_scores(rows))
    assert result.n_patients == 0 and result.n_missing_joints == 1
    assert np.isnan(result.bland_altman.mean_diff) and "no patient" in result.bland_altman.reason
    assert "at least 2 complete targets" in result.icc_reason
    with pytest.raises(ValueError, match="icc_form"):
        patient_agreement(patient_scores(rows), icc_form="ICC9")
