"""EOSS rules applied to ground-truth masks: SH from synovium geometry, PD from Doppler spots.

SH: no synovium -> 0; synovium nowhere beyond the line joining the bone tops -> 1; beyond the
line with a flat or concave upper surface -> 2; beyond with a clearly convex upper surface -> 3.
PD: connected components of Doppler signal inside the synovium, split into single spots (small)
and confluent spots (larger), with the covered fraction, passed to scale.pd_grade_from_spots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from rascore import scale

if TYPE_CHECKING:  # pragma: no cover
    from rascore.synth.render import SimItem

SINGLE_SPOT_MAX_MM2 = (
    scale.SINGLE_SPOT_MAX_MM2
)  # a Doppler spot up to this area is "single"; larger "confluent"
MIN_SYNOVIUM_PX = 6  # fewer synovium pixels than this count as none
BEYOND_LINE_PX = 1.0  # upper surface this far above the line counts as "beyond"
CONVEX_MIN_PX = 1.5  # convexity (middle minus sides, px) above max(this, 3% of span): SH 3
CONVEX_SPAN_FRACTION = 0.03
_EIGHT = np.ones((3, 3), dtype=bool)


def line_y(bone_line: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Row of the line joining the two bone tops ((x, y), (x, y)) at columns xs."""
    (xl, yl), (xr, yr) = np.asarray(bone_line, dtype=float)
    return yl + (yr - yl) * (np.asarray(xs, dtype=float) - xl) / (xr - xl)


def surface_profile(synovium: np.ndarray, bone_line: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns between the bone tops, whether each holds synovium, and its top's height above the line."""
    h, w = synovium.shape
    (xl, _), (xr, _) = np.asarray(bone_line, dtype=float)
    cols = np.arange(max(int(np.ceil(xl)), 0), min(int(np.floor(xr)), w - 1) + 1)
    sub = synovium[:, cols]
    has = sub.any(axis=0)
    top = np.argmax(sub, axis=0).astype(float)
    elevation = line_y(bone_line, cols) - top
    return cols, has, elevation


def convexity(synovium: np.ndarray, bone_line: np.ndarray) -> float:
    """How much the synovium's upper surface bulges in the middle of the span (px, > 0 convex)."""
    cols, has, elevation = surface_profile(synovium, bone_line)
    (xl, _), (xr, _) = np.asarray(bone_line, dtype=float)
    u = (cols - (xl + xr) / 2) / ((xr - xl) / 2)
    window = has & (np.abs(u) <= 0.8)
    middle = window & (np.abs(u) <= 0.8 / 3)
    sides = window & (np.abs(u) > 0.8 / 3)
    if not middle.any() or not sides.any():
        return 0.0
    return float(elevation[middle].mean() - elevation[sides].mean())


def convexity_threshold(bone_line: np.ndarray) -> float:
    """Convexity (px) above which the upper surface counts as clearly convex."""
    (xl, _), (xr, _) = np.asarray(bone_line, dtype=float)
    return max(CONVEX_MIN_PX, CONVEX_SPAN_FRACTION * (xr - xl))


def sh_from_mask(synovium: np.ndarray, bone_line: np.ndarray) -> int:
    """SH grade of one frame from its synovium mask and the line joining the bone tops."""
    if int(synovium.sum()) < MIN_SYNOVIUM_PX:
        return 0
    _, has, elevation = surface_profile(synovium, bone_line)
    if not has.any() or elevation[has].max() < BEYOND_LINE_PX:
        return 1
    return 3 if convexity(synovium, bone_line) > convexity_threshold(bone_line) else 2


def doppler_spots(doppler: np.ndarray, synovium: np.ndarray, mm_per_px: float) -> tuple[int, int, float]:
    """(single spots, confluent spots, covered fraction) of Doppler signal inside the synovium."""
    inside = doppler & synovium
    area = int(synovium.sum())
    if area == 0 or not inside.any():
        return 0, 0, 0.0
    labels, n = ndimage.label(inside, structure=_EIGHT)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:] * mm_per_px**2
    n_single = int((sizes <= SINGLE_SPOT_MAX_MM2).sum())
    return n_single, int(n - n_single), float(inside.sum() / area)


def pd_from_mask(doppler: np.ndarray, synovium: np.ndarray, mm_per_px: float) -> int:
    """PD grade of one frame from Doppler signal inside the synovium (EOSS spot and area rules)."""
    n_single, n_confluent, coverage = doppler_spots(doppler, synovium, mm_per_px)
    return scale.pd_grade_from_spots(n_single, n_confluent, coverage)


def max_doppler_frame(item: SimItem) -> int:
    """Index of the frame with the most Doppler signal inside the synovium (0 for stills)."""
    counts = (item.doppler & item.synovium).reshape(len(item.doppler), -1).sum(axis=1)
    return int(np.argmax(counts))


def grade_from_masks(item: SimItem, shown: bool = False) -> tuple[int, int]:
    """(SH, PD) by the EOSS rules from an item's saved masks.

    Clips are graded on their frame of maximum Doppler. A still is one frame at a random phase
    of the cardiac cycle and may show less flow than the joint has, and a greyscale item shows
    none: for these PD comes from ``peak_doppler`` (the joint's flow at systolic peak, the
    truth) unless ``shown=True``, which grades only what the frames show.
    """
    t = max_doppler_frame(item)
    sh = sh_from_mask(item.synovium[t], item.bone_line[t])
    if not shown and (len(item.frames) == 1 or not item.doppler.any()):
        doppler = item.peak_doppler
    else:
        doppler = item.doppler[t]
    pd = pd_from_mask(doppler, item.synovium[t], item.mm_per_px) if sh > 0 else 0
    return sh, pd
