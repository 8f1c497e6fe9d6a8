"""The widened simulator: acquisitions really vary, deterministically, test3's scanner lies outside
what training samples, annotations keep off the joint, and variation "none" is the old simulator."""

from __future__ import annotations

import numpy as np
import pytest

from rascore.synth import example_spec, plan_cohort, render_item
from rascore.synth.counterfactual import at_grade, grade_free_region
from rascore.synth.profiles import NARROW_LAYOUT, PROFILES, Variation
from rascore.synth.render import bar_rows
from rascore.synth.variation import anatomy_setting, narrow_setting, scan_setting


@pytest.fixture(scope="module")
def planned():
    return plan_cohort("paper", seed=0)


def _settings(specs, cohort):
    return [scan_setting(s) for s in specs if s.cohort == cohort]


def test_settings_are_deterministic_and_narrow_is_the_profile(planned):
    spec = planned[5]
    assert scan_setting(spec) == scan_setting(spec)
    narrow = example_spec(2, 1, "SPD", seed=3, variation="none")
    assert scan_setting(narrow) == narrow_setting(PROFILES["scanner-A"])
    assert scan_setting(narrow).layout == NARROW_LAYOUT
    assert anatomy_setting(narrow).tendon_scale == 1.0
    with pytest.raises(ValueError, match="unknown variation"):
        scan_setting(example_spec(2, 1, "SPD", variation="extreme"))


def test_the_training_cohort_varies_on_every_factor(planned):
    train = _settings(planned, "train")
    assert len(train) == 1244

    def spread(values):
        return max(values) - min(values)

    heights = [s.layout.frame_h for s in train]
    aspects = [s.layout.frame_w / s.layout.frame_h for s in train]
    assert min(heights) <= 170 and max(heights) >= 276 and len(set(heights)) > 40
    assert spread(aspects) > 0.35
    assert all(s.layout.frame_h % 2 == 0 and s.layout.frame_w % 2 == 0 for s in train)  # H.264
    assert spread([s.freq_mhz for s in train]) > 4.5
    assert spread([s.dynamic_range_db for s in train]) > 15
    assert spread([s.grey_gamma for s in train]) > 0.5
    assert spread([s.gain_db for s in train]) > 12
    assert spread([s.attenuation for s in train]) > 0.25
    assert spread([np.degrees(np.arctan(s.tilt)) for s in train]) > 6
    assert spread([s.joint_x for s in train]) > 0.3
    assert {s.grey_curve for s in train} == {"gamma", "s-curve"}
    assert len({s.colour_map for s in train}) == 3 and {s.colour_bar_x > 100 for s in train} == {True, False}
    assert np.mean([s.n_annotations > 0 for s in train]) == 1.0
    anat = [anatomy_setting(s) for s in planned if s.cohort == "train"]
    assert spread([a.tendon_scale for a in anat]) > 0.5 and spread([a.subcutis_mm for a in anat]) > 3


def _field_stats(variation: str) -> tuple[set, list[float], list[float]]:
    """Frame sizes, mean field brightness and lateral speckle correlation of 8 planned SGS stills."""
    specs = [s for s in plan_cohort("small", seed=2, variation=variation) if s.modality == "SGS"][:8]
    sizes, means, grains = set(), [], []
    for spec in specs:
        it = render_item(spec)
        sizes.add(it.frames.shape[1:3])
        y0, x0, y1, x1 = it.layout.field_box
        field = it.frames[0, y0:y1, x0:x1, 0].astype(float)
        means.append(field.mean())
        d = field - field.mean(axis=1, keepdims=True)  # lag-1 lateral correlation: speckle grain
        grains.append((d[:, 1:] * d[:, :-1]).mean() / d.var())
    return sizes, means, grains


def test_rendered_items_differ_in_size_brightness_and_speckle():
    """The same planned items, widened and narrow: the widened ones spread further."""
    wide, narrow = _field_stats("wide"), _field_stats("none")
    assert len(wide[0]) >= 6 and narrow[0] == {(192, 256)}
    assert np.std(wide[1]) > np.std(narrow[1])
    assert np.ptp(wide[2]) > 0.1 and np.ptp(wide[2]) > 5 * np.ptp(narrow[2])


def test_test3_lies_outside_what_training_samples(planned):
    """scanner-C's settings are outside scanner-A's ranges on colour map, grey curve, frequency,
    frame aspect and dynamic range, in every item the plan holds."""
    train, test3 = _settings(planned, "train"), _settings(planned, "test3")
    assert len(test3) == 152
    assert not {s.colour_map for s in test3} & {s.colour_map for s in train}
    assert not {s.grey_curve for s in test3} & {s.grey_curve for s in train}
    assert max(s.freq_mhz for s in test3) < min(s.freq_mhz for s in train)
    aspect = [s.layout.frame_w / s.layout.frame_h for s in test3]
    assert min(aspect) > max(s.layout.frame_w / s.layout.frame_h for s in train)
    assert min(s.dynamic_range_db for s in test3) >= max(s.dynamic_range_db for s in train)
    # and the training profile's ranges say the same (not only this plan's draws)
    a, c = PROFILES["scanner-A"].variation, PROFILES["scanner-C"].variation
    assert c.freq_mhz[1] < a.freq_mhz[0] and c.aspect[0] > a.aspect[1]
    assert not set(c.colour_maps) & set(a.colour_maps) and not set(c.grey_curves) & set(a.grey_curves)
    assert isinstance(a, Variation)


@pytest.mark.parametrize("profile", ["scanner-A", "scanner-C"])
def test_annotations_stay_off_the_grade_zone_and_do_not_depend_on_the_grade(profile):
    for seed in range(3):
        spec = example_spec(3, 3, "DPD", seed=40 + seed, profile=profile, joint="PIP2" if seed else "MCP2")
        item = render_item(spec)
        other = render_item(at_grade(spec, 0, 0))
        assert item.annotations is not None and item.annotations.any()
        assert np.array_equal(item.annotations, other.annotations)
        for t in range(len(item.frames)):
            assert not (item.annotations & grade_free_region(item, t)).any()
            assert not (item.annotations & item.synovium[t]).any()
        # the colour bar is intact and the annotations are grey
        (cy0, cy1), _ = bar_rows(item.layout)
        frame = item.frames[0]
        notes = frame[item.annotations]
        assert (notes[:, 0] == notes[:, 1]).all() and (notes[:, 1] == notes[:, 2]).all()
        assert (frame[cy0:cy1, item.setting.colour_bar_x, 0] > 60).all()
