"""Rendering: frame format, grey vs colour rules, determinism, jitter-tracking masks, profiles."""

from __future__ import annotations

import numpy as np
import pytest

from rascore.synth import example_spec, plan_cohort, render_item, render_many
from rascore.synth.profiles import PROFILES
from rascore.synth.render import COLOUR_BAR_Y, bar_rows
from rascore.synth.shortcuts import coloured


@pytest.fixture(scope="module")
def items():
    specs = [
        example_spec(sh, pd, mod, seed=11)
        for mod in ("SGS", "DGS", "SPD", "DPD")
        for sh, pd in ((0, 0), (2, 2), (3, 3))
    ]
    return {(it.spec.modality, it.spec.sh): it for it in map(render_item, specs)}


def test_frame_format(items):
    for (mod, _), it in items.items():
        n = 16 if mod in ("DGS", "DPD") else 1
        h, w = it.layout.frame_h, it.layout.frame_w
        assert 160 <= h <= 288 and 200 <= w <= 480 and h % 2 == 0 and w % 2 == 0
        assert it.frames.shape == (n, h, w, 3) and it.frames.dtype == np.uint8
        assert it.fps == (15.0 if n == 16 else None)
        for mask in (it.synovium, it.doppler, it.bone):
            assert mask.shape == (n, h, w) and mask.dtype == bool
        assert it.bone_line.shape == (n, 2, 2)
        assert it.peak_doppler.shape == (h, w)
        assert 0.05 < it.mm_per_px < 0.16


def test_narrow_frame_format():
    it = render_item(example_spec(2, 2, "DPD", seed=11, variation="none"))
    assert it.frames.shape == (16, 192, 256, 3) and it.synovium.shape == (16, 192, 256)
    assert it.annotations is None and it.setting.colour_map == "hot-a"


def test_greyscale_items_are_pure_grey(items):
    for (mod, _), it in items.items():
        if mod in ("SGS", "DGS"):
            f = it.frames
            assert np.array_equal(f[..., 0], f[..., 1]) and np.array_equal(f[..., 1], f[..., 2])
            assert not it.doppler.any() and it.colour_box is None


def test_colour_only_in_doppler_box_and_bar(items):
    for (mod, sh), it in items.items():
        if mod not in ("SPD", "DPD"):
            continue
        y0, x0, y1, x1 = it.colour_box
        (cy0, cy1), _ = bar_rows(it.layout)
        bar_x = it.setting.colour_bar_x
        allowed = np.zeros(it.frames.shape[1:3], dtype=bool)
        allowed[y0 + 1 : y1, x0 + 1 : x1] = True
        allowed[cy0:cy1, bar_x : bar_x + 5] = True
        for t, frame in enumerate(it.frames):
            col = coloured(frame)
            assert not (col & ~allowed).any()
            assert col[cy0:cy1, bar_x].all()
            # the truth Doppler mask is coloured synovium, and every synovium pixel is in the box
            assert not (it.doppler[t] & ~it.synovium[t]).any()
            assert col[it.doppler[t]].all()
            assert allowed[it.synovium[t]].all()
        if sh == 3:
            assert it.doppler.any()


def test_masks_follow_probe_jitter(items):
    it = items[("DPD", 3)]
    assert (np.abs(it.offsets) > 0).any()
    ys0, xs0 = np.nonzero(it.synovium[0])
    for t in range(1, len(it.frames)):
        dy, dx = it.offsets[t] - it.offsets[0]
        ys, xs = np.nonzero(it.synovium[t])
        assert np.array_equal(np.sort(ys * 1000 + xs), np.sort((ys0 - dy) * 1000 + (xs0 - dx)))
        assert np.allclose(it.bone_line[t], it.bone_line[0] - [dx, dy])
    # speckle decorrelates but the frames stay alike
    a, b = it.frames[0, 40:150, 60:200, 0].astype(float), it.frames[1, 40:150, 60:200, 0].astype(float)
    assert not np.array_equal(a, b)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.3


def test_anatomy_visible_where_truth_says(items):
    it = items[("SGS", 3)]
    grey = it.frames[0, ..., 0].astype(float)
    syn = it.synovium[0]
    below_line_bone = it.bone[0]
    # hypoechoic synovium is darker than the tissue band right above it; bone shadow is dark
    ring = np.roll(syn, -8, axis=0) & ~syn & ~below_line_bone
    assert grey[syn].mean() < 0.7 * grey[ring].mean()
    shadow = below_line_bone & ~np.roll(below_line_bone, 4, axis=0)
    deep = below_line_bone & np.roll(below_line_bone, 12, axis=0)
    assert grey[deep].mean() < grey[shadow].mean()


def test_deterministic_pixels():
    spec = example_spec(2, 2, "DPD", seed=5)
    a, b = render_item(spec), render_item(spec)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.doppler, b.doppler)
    c = render_item(example_spec(2, 2, "DPD", seed=6))
    assert not np.array_equal(a.frames, c.frames)


def test_render_many_keeps_order_and_matches_render_item():
    specs = plan_cohort("small", seed=3)[:6]
    got = list(render_many(specs, workers=2))
    assert [it.spec.key for it in got] == [s.key for s in specs]
    assert np.array_equal(got[3].frames, render_item(specs[3]).frames)


def test_scanner_b_differs():
    a = render_item(example_spec(2, 2, "SPD", seed=2, profile="scanner-A", variation="none"))
    b = render_item(example_spec(2, 2, "SPD", seed=2, profile="scanner-B", variation="none"))
    bar_b = PROFILES["scanner-B"].colour_bar_x
    assert coloured(b.frames[0])[COLOUR_BAR_Y[0] : COLOUR_BAR_Y[1], bar_b].all()
    assert not coloured(a.frames[0])[:, bar_b].any()
    assert b.mm_per_px != a.mm_per_px
