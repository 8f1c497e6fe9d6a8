"""EOSS rules on masks: hand-made geometry, and every rendered item grades back to its truth."""

from __future__ import annotations

import numpy as np
import pytest

from rascore import scale
from rascore.synth import example_spec, grade_from_masks, plan_cohort, render_item
from rascore.synth.grading import pd_from_mask, sh_from_mask

LINE = np.array([[40.0, 50.0], [100.0, 50.0]])
VALID = [(sh, pd) for sh in range(4) for pd in range(4) if scale.is_valid_pair(sh, pd)]


def _mask(top_of_column) -> np.ndarray:
    m = np.zeros((120, 140), dtype=bool)
    for x in range(40, 101):
        m[int(round(top_of_column(x))) : 70, x] = True
    return m


def test_sh_rules_on_hand_made_masks():
    assert sh_from_mask(np.zeros((120, 140), dtype=bool), LINE) == 0
    assert sh_from_mask(_mask(lambda x: 55), LINE) == 1  # below the line
    assert sh_from_mask(_mask(lambda x: 44), LINE) == 2  # beyond, flat
    assert sh_from_mask(_mask(lambda x: 47 - 8 * ((x - 70) / 30) ** 2), LINE) == 2  # concave top
    assert sh_from_mask(_mask(lambda x: 32 + 12 * ((x - 70) / 30) ** 2), LINE) == 3  # convex top


def test_pd_rules_on_hand_made_spots():
    syn = np.zeros((100, 100), dtype=bool)
    syn[20:80, 20:80] = True
    s = 0.1  # mm per px: single spot <= 10 px
    dop = np.zeros_like(syn)
    assert pd_from_mask(dop, syn, s) == 0
    for y in (25, 40, 55):
        dop[y : y + 2, 30:32] = True  # three single spots
    assert pd_from_mask(dop, syn, s) == 1
    dop[70:72, 70:72] = True  # a fourth single spot
    assert pd_from_mask(dop, syn, s) == 2
    conf = np.zeros_like(syn)
    conf[30:35, 30:40] = True
    conf[60:65, 30:40] = True  # two confluent spots
    assert pd_from_mask(conf, syn, s) == 1
    conf[45:47, 60:62] = True  # plus one single
    assert pd_from_mask(conf, syn, s) == 2
    big = syn.copy()
    big[20:45, 20:80] = False  # 58% covered
    assert pd_from_mask(big, syn, s) == 3
    assert pd_from_mask(dop & ~syn, syn, s) == 0  # signal outside the synovium does not count


@pytest.mark.parametrize("modality", ["SGS", "DGS", "SPD", "DPD"])
def test_every_valid_pair_grades_back(modality):
    for seed in (0, 1):
        for sh, pd in VALID:
            spec = example_spec(sh, pd, modality, seed=seed)
            item = render_item(spec)
            assert grade_from_masks(item) == (sh, pd), spec.key


def test_planned_items_grade_back_including_scanner_b():
    specs = plan_cohort("small", seed=1)
    for spec in specs[::3]:
        assert grade_from_masks(render_item(spec)) == (spec.sh, spec.pd), spec.key


def test_shown_grade_of_stills_never_exceeds_truth():
    for sh, pd in VALID:
        item = render_item(example_spec(sh, pd, "SPD", seed=3))
        shown = grade_from_masks(item, shown=True)
        assert shown[0] == sh and shown[1] <= pd and shown[1] == item.shown_pd


def test_widened_acquisitions_grade_back_on_every_profile_and_small_joints():
    """Many widened acquisitions (all three profiles, PIP and MCP, every valid pair): the EOSS
    rules on the rendered truth masks give the planned grades back."""
    from rascore.synth.profiles import PROFILES

    rng = np.random.default_rng(0)
    n = 0
    for profile in PROFILES:
        for i in range(16):
            sh, pd = VALID[int(rng.integers(len(VALID)))]
            joint = ("PIP2", "PIP3", "MCP2", "MCP5")[i % 4]
            spec = example_spec(sh, pd, "SPD" if i % 2 else "SGS", seed=200 + i, profile=profile, joint=joint)
            assert spec.variation == "wide"
            item = render_item(spec)
            assert grade_from_masks(item) == (sh, pd), spec.key
            n += 1
    assert n == 48
