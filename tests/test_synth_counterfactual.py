"""Counterfactual renders: the same seed at another grade changes pixels only at the synovium.

Inside the synovium, within the PSF's reach of it, and in the tendon a distended synovium lifts;
nowhere else (colour box, distractors, furniture, the speckle of later clip frames). Stills and
every clip frame, greyscale and power Doppler, both scanner profiles.
"""

from __future__ import annotations

import numpy as np
import pytest

from rascore.synth import example_spec, plan_cohort, render_item
from rascore.synth.counterfactual import allowed_change, at_grade, changes_outside

PAIRS = [((0, 0), (3, 3)), ((1, 1), (2, 3)), ((2, 0), (1, 2)), ((3, 2), (1, 0))]


@pytest.mark.parametrize("modality", ["SGS", "DGS", "SPD", "DPD"])
@pytest.mark.parametrize("scanner", ["scanner-A", "scanner-B", "scanner-C"])
def test_another_grade_changes_only_the_synovium_and_its_margin(modality, scanner):
    for seed, (first, second) in enumerate(PAIRS[:2] if modality in ("DGS", "DPD") else PAIRS):
        spec = example_spec(*first, modality, seed=seed, profile=scanner)
        a, b = render_item(spec), render_item(at_grade(spec, *second))
        assert a.spec.seed == b.spec.seed and b.spec.sh == second[0]
        assert changes_outside(a, b).tolist() == [0] * len(a.frames), spec.key
        assert (a.frames != b.frames).any()  # the grade did change the picture
        assert a.colour_box == b.colour_box
        assert np.array_equal(a.offsets, b.offsets) and np.array_equal(a.pulse, b.pulse)
        # the margin stays small: the rest of the field (most of it) must not change
        field = a.layout.field_h * a.layout.field_w
        assert max(allowed_change(a, b, t).sum() for t in range(len(a.frames))) < 0.6 * field


def test_planned_items_of_the_test_cohorts_at_other_grades():
    specs = [s for s in plan_cohort("small", seed=5) if s.cohort in ("test1", "test2", "test3")]
    for spec in specs[::4]:
        other = (3 - spec.sh, min(3 - spec.sh, 3 - spec.pd) if spec.sh != 3 else 0)
        a, b = render_item(spec), render_item(at_grade(spec, *other))
        assert changes_outside(a, b).sum() == 0, (spec.key, other)


def test_the_check_catches_a_cue_outside_the_synovium():
    spec = example_spec(1, 1, "SPD", seed=2)
    a, b = render_item(spec), render_item(at_grade(spec, 3, 3))
    moved = b.frames.copy()
    moved[0, 20, 40:60] = (1, 254, 3)  # a mark somewhere else
    b.frames = moved
    assert changes_outside(a, b)[0] == 20
    with pytest.raises(ValueError):
        b.frames = moved[:, :100]
        changes_outside(a, b)
