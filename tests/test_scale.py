"""The EOSS rules: combined score on all 16 pairs, targets per modality, PD spot rules."""

from __future__ import annotations

import pytest

from rascore import scale

# D'Agostino 2017 Table 4, written out pair by pair (None: invalid, flagged).
EXPECTED = {
    (0, 0): 0,
    (0, 1): None,
    (0, 2): None,
    (0, 3): None,
    (1, 0): 1,
    (1, 1): 1,
    (1, 2): 2,
    (1, 3): 3,
    (2, 0): 2,
    (2, 1): 2,
    (2, 2): 2,
    (2, 3): 3,
    (3, 0): 3,
    (3, 1): 3,
    (3, 2): 3,
    (3, 3): 3,
}


@pytest.mark.parametrize("pair", sorted(EXPECTED))
def test_combined_rule_all_16_pairs(pair):
    sh, pd = pair
    expected = EXPECTED[pair]
    if expected is None:
        assert not scale.is_valid_pair(sh, pd)
        with pytest.raises(scale.InvalidGrade, match="not a valid EOSS combination"):
            scale.combined(sh, pd)
    else:
        assert scale.is_valid_pair(sh, pd)
        assert scale.combined(sh, pd) == expected


@pytest.mark.parametrize("bad", [-1, 4, 1.5, "x", None])
def test_grades_outside_0_3_refused(bad):
    with pytest.raises(scale.InvalidGrade):
        scale.check_grade(bad, "SH")


def test_targets_per_modality():
    assert scale.MODALITIES["SGS"].target == "SH" and scale.MODALITIES["DGS"].target == "SH"
    assert scale.MODALITIES["SPD"].target == "EOSS" and scale.MODALITIES["DPD"].target == "EOSS"
    assert scale.target_grade("SGS", 2, None) == 2
    assert scale.target_grade("DPD", 1, 3) == 3
    assert scale.MODALITIES["SPD"].reader_items == ("SH", "PD")
    assert scale.MODALITIES["DGS"].dynamic and not scale.MODALITIES["SGS"].dynamic
    with pytest.raises(scale.InvalidGrade):
        scale.target_grade("SPD", 2, None)
    with pytest.raises(ValueError, match="unknown modality"):
        scale.modality("XYZ")


def test_definitions_cover_every_grade():
    for item, definitions in scale.ITEMS.items():
        assert sorted(definitions) == [0, 1, 2, 3], item
        assert all(len(text) > 10 for text in definitions.values())


@pytest.mark.parametrize(
    "single,confluent,coverage,grade",
    [
        (0, 0, 0.0, 0),
        (1, 0, 0.01, 1),
        (3, 0, 0.05, 1),
        (4, 0, 0.05, 2),
        (0, 2, 0.1, 1),
        (0, 3, 0.1, 2),
        (2, 1, 0.1, 1),
        (3, 1, 0.1, 2),
        (0, 1, 0.4, 1),
        (5, 2, 0.3, 2),
        (0, 1, 0.6, 3),
    ],
)
def test_pd_spot_rules(single, confluent, coverage, grade):
    assert scale.pd_grade_from_spots(single, confluent, coverage) == grade


def test_quantitative_pd_thresholds():
    assert [scale.pd_grade_from_fraction(f) for f in (0, 0.03, 0.06, 0.07, 0.12, 0.2)] == [0, 1, 1, 2, 2, 3]
