"""What a scanner draws on the screen besides the image: bars, depth ticks, focus marker, colour box
outline, and (on widened acquisitions) burned-in annotations kept off the joint's grade zone."""

from __future__ import annotations

import numpy as np

from rascore.synth import annotate
from rascore.synth.profiles import Layout, colour_lut
from rascore.synth.cohort import ItemSpec
from rascore.synth.variation import ScanSetting

COLOUR_BAR_Y = (44, 108)  # narrow layout; a wide one places them by bar_rows
GREY_BAR_Y = (60, 124)


def bar_rows(lay: Layout) -> tuple[tuple[int, int], tuple[int, int]]:
    """Rows (start, end) of the colour bar and the grey bar in a frame."""
    if lay.frame_h == 192 and lay.field_y0 == 12 and lay.field_h == 172:
        return COLOUR_BAR_Y, GREY_BAR_Y
    c0 = lay.field_y0 + int(0.19 * lay.field_h)
    g0 = lay.field_y0 + int(0.28 * lay.field_h)
    n = int(0.37 * lay.field_h)
    return (c0, c0 + n), (g0, g0 + n)


def furniture_boxes(setting: ScanSetting, focus_row: float) -> list[tuple[int, int, int, int]]:
    """(y0, x0, y1, x1) of the grey bar, colour bar, depth ticks and focus marker."""
    lay = setting.layout
    (cy0, cy1), (gy0, gy1) = bar_rows(lay)
    fr = int(np.clip(focus_row, 3, lay.field_h - 4)) + lay.field_y0
    return [
        (gy0, setting.grey_bar_x, gy1, setting.grey_bar_x + 5),
        (cy0 - 2, setting.colour_bar_x, cy1 + 2, setting.colour_bar_x + 5),
        (lay.field_y0, setting.tick_x, lay.field_y0 + lay.field_h + 2, setting.tick_x + 3),
        (fr - 3, lay.field_x0 - 6, fr + 4, lay.field_x0 - 2),
    ]


def furniture(
    frame: np.ndarray,
    setting: ScanSetting,
    depth_mm: float,
    focus_row: float,
    doppler: bool,
    box: tuple[int, int, int, int] | None,
) -> None:
    """Screen furniture without text: grey bar, depth ticks, focus marker, colour bar and box."""
    lay = setting.layout
    (cy0, cy1), (gy0, gy1) = bar_rows(lay)
    ramp = np.linspace(255, 0, gy1 - gy0).astype(np.uint8)
    frame[gy0:gy1, setting.grey_bar_x : setting.grey_bar_x + 5] = ramp[:, None, None]
    tick_x = setting.tick_x
    for mm in np.arange(0.0, depth_mm, 5.0):
        r = lay.field_y0 + int(round(mm / depth_mm * lay.field_h))
        size = 3 if mm % 10 == 0 else 2
        frame[r : r + 2, tick_x : tick_x + size] = 190
    fr = int(np.clip(focus_row, 3, lay.field_h - 4)) + lay.field_y0
    for k in range(4):
        frame[fr - 3 + k : fr + 4 - k, lay.field_x0 - 6 + k] = 215
    if doppler and box is not None:
        lut = colour_lut(setting.colour_map)
        bar = lut[np.linspace(255, 0, cy1 - cy0).astype(int)]
        bx = setting.colour_bar_x
        frame[cy0:cy1, bx : bx + 5] = bar[:, None, :]
        frame[cy0 - 2 : cy0, bx : bx + 5] = 200
        frame[cy1 : cy1 + 2, bx : bx + 5] = 200
        y0, x0, y1, x1 = box
        frame[y0, x0 : x1 + 1] = 200
        frame[y1, x0 : x1 + 1] = 200
        frame[y0 : y1 + 1, x0] = 200
        frame[y0 : y1 + 1, x1] = 200


def grade_zone(
    recess: tuple[int, int, int, int],
    mm_per_px: float,
    tendon_mm: float,
    psf_px: tuple[float, float],
    pad: int,
) -> tuple[int, int, int, int]:
    """Frame box (y0, x0, y1, x1) that holds every pixel a grade could change, at any probe jitter.

    The recess box widened by the lifted tendon (its thickness and a gap above the synovium), a
    ramp of 2 mm beside it, four PSF sigmas and the jitter's reach, plus a margin: generous on
    purpose, since it only keeps annotations off the joint.
    """
    px = 1.0 / mm_per_px
    ry, rx = int(np.ceil(4 * psf_px[0])) + 3, int(np.ceil(4 * psf_px[1])) + 3
    up = int(np.ceil((tendon_mm + 0.5) * px)) + ry + 2 + 3
    side = int(np.ceil(2.0 * px)) + rx + pad + 3
    y0, x0, y1, x1 = recess
    return y0 - up, x0 - side, y1 + ry + 2 + 3, x1 + side


def annotations(
    spec: ItemSpec,
    setting: ScanSetting,
    recess: tuple[int, int, int, int],
    mm_per_px: float,
    tendon_mm: float,
    focus_row: float,
    depth_mm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Burned-in annotations (mask, grey level), placed off the grade zone and the furniture."""
    lay = setting.layout
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 8]))
    zone = grade_zone(recess, mm_per_px, tendon_mm, setting.psf_px(mm_per_px), lay.pad)
    keep_out = [zone, *furniture_boxes(setting, focus_row)]
    labels = None
    if rng.random() < 0.6:
        right = setting.tick_x > lay.field_x0
        rows = [
            (lay.field_y0 + int(round(mm / depth_mm * lay.field_h)), f"{mm / 10:.1f}")
            for mm in np.arange(5.0, depth_mm, 5.0)
        ]
        labels = (setting.tick_x + 4 if right else -(setting.tick_x - 1), rows)
    return annotate.overlay(
        (lay.frame_h, lay.frame_w),
        keep_out,
        setting.n_annotations,
        rng,
        joint=spec.joint,
        side=spec.side,
        doppler=spec.doppler,
        depth_labels=labels,
    )
