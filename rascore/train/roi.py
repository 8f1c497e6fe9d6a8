"""Region-of-interest crop around the joint, as RATING crops its inputs to the joint region.

The joint is located by simple image processing (rascore.nets.colour_fraction: the dip of the
bone surface between the two bone tops); the crop keeps the joint recess, the synovium above it
and some bone either side at close to full resolution, and drops side bars, deep shadow and most
of the subcutis. The crop box comes from the middle frame and applies to every frame of a clip.

The crop fails loudly, not silently: when the dip between the bone tops is shallow or the bone
edge at the tops is weak, the joint may have been missed, and the network sees the full frame
instead ("fallback"). Every prediction records which ("crop" or "fallback"; "none" for a model
without a joint crop). bench/bench_roi.py measures the share of synovium kept and the fallback
rate on simulated renders with their truth masks.

Two ways to place the crop (``within``, saved in each checkpoint as Preprocessing.roi_within):

- ``frame`` (checkpoints before the scanner-robustness changes): the joint is searched in the whole frame and the crop
  is ``roi`` (shares of the frame's height and width).
- ``field`` (new models): the image field's columns are found first (``field_columns``: the
  widest run of columns where enough pixels are not screen-dark, so side panels, bars, scales and
  an off-centre field drop out), the joint is searched in those columns only, a straight edge
  across the field (its lower border on a screen with space below it) is not taken for bone,
  and the crop width is ``roi[1]`` of the field's width (height: ``roi[0]`` of the frame's). On
  the narrow demo frames (field 204 of 256 columns) the fast preset's (0.55, 0.75) is the same
  crop as its frame-mode (0.55, 0.6). Measured on layouts the demo does not make
  (tests/roi_variants.py: 2.5x and 0.6x size, aspect 0.8/1.3, a 16:9 screen with the field
  off-centre, burned-in text, calipers and a body mark; bench/bench_roi.py --variants) and on the
  widened simulator's cohorts; where it still falls back, the prediction says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rascore.nets.colour_fraction import ColourFractionRule, JointFit

CROP, FALLBACK, NONE = "crop", "fallback", "none"
CROP_MODES: tuple[str, ...] = (CROP, FALLBACK, NONE)
WITHIN: tuple[str, ...] = ("field", "frame")
FIELD_RULE = ColourFractionRule(border_share=0.85)


@dataclass(frozen=True)
class CropCheck:
    """When a joint fit is trusted: a dip between ``min_dip`` and ``max_dip`` of the frame height
    deep (a shallow dip may be noise on a flat bone line; a very deep one a gap in the bone edge,
    not the joint) and a bone edge at least ``min_edge`` grey levels strong at both tops.

    Chosen on training-cohort renders (bench/bench_roi.py --choose --cohorts train --seed 0): 3 of
    358 crops kept under half of the synovium there, with dips of 2 px, 11 px and 75 px of 192;
    the other fits' dips lay between 2 and 106 px (2% and 98% quantiles 3 and 38 px) and their
    edges above 21 (2% quantile 38).
    """

    min_dip: float = 3 / 192
    max_dip: float = 0.25
    min_edge: float = 30.0

    def trusted(self, fit: JointFit) -> bool:
        """Whether the crop around this fit may be used."""
        return self.min_dip <= fit.dip <= self.max_dip and fit.edge >= self.min_edge


DEFAULT_CHECK = CropCheck()
# The field placement trusts deeper dips: on the widened simulator's textured shadows the deepest
# bright edge in the joint gap often lies far below the bone tops while the tops (which place the
# crop) are right. Chosen on 80 widened-simulator SGS items with synovium (train and test3, plan
# seed 5): max_dip 0.25 fell back on 45 and cut more than half of the synovium in 1; 0.5 fell
# back on 8 and cut more than half in 5.
FIELD_CHECK = CropCheck(max_dip=0.5)


def crop_counts(crops) -> dict[str, int]:
    """Items per crop mode ("crop", "fallback", "none"), for training logs, cards and reports."""
    return {mode: sum(1 for c in crops if c == mode) for mode in CROP_MODES}


def field_columns(frame: np.ndarray, level: int = 16, share: float = 0.15, gap: int = 3) -> tuple[int, int]:
    """[left, right) of the image field: the widest run of columns where at least ``share`` of the
    pixels are brighter than ``level`` (gaps up to ``2 * gap`` columns bridged); the whole width
    when no column qualifies."""
    content = (np.asarray(frame).max(axis=-1) > level).mean(axis=0) >= share
    content = content | ndimage.binary_closing(content, structure=np.ones(2 * gap + 1, dtype=bool))
    labels, n = ndimage.label(content)
    if n == 0:
        return 0, frame.shape[1]
    widest = 1 + int(np.argmax(ndimage.sum(content, labels, range(1, n + 1))))
    columns = np.nonzero(labels == widest)[0]
    return int(columns[0]), int(columns[-1]) + 1


def crop_box(
    shape: tuple[int, ...],
    fit: JointFit,
    roi: tuple[float, float],
    bone_at: float = 0.6,
    basis_width: int | None = None,
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a crop of ``roi`` (shares of frame height, and of
    ``basis_width`` or the frame's width) at the joint.

    Horizontally centred on the joint; vertically placed so the bone tops sit at ``bone_at`` of
    the crop's height; shifted back inside the frame where it would cross an edge.
    """
    h, w = shape[:2]
    crop_h = max(1, round(roi[0] * h))
    crop_w = min(w, max(1, round(roi[1] * (basis_width or w))))
    top = int(np.clip(round(fit.row - bone_at * crop_h), 0, h - crop_h))
    left = int(np.clip(round(fit.column - crop_w / 2), 0, w - crop_w))
    return top, left, crop_h, crop_w


def joint_crop(
    frame: np.ndarray,
    roi: tuple[float, float],
    bone_at: float = 0.6,
    rule: ColourFractionRule | None = None,
    check: CropCheck | None = None,
    within: str = "frame",
) -> tuple[tuple[int, int, int, int], str, JointFit]:
    """The crop box and "crop", or the full frame and "fallback" when the joint fit is weak.

    ``within``: "frame" (search the whole frame) or "field" (search the image field's columns;
    see the module docstring). ``check`` defaults to DEFAULT_CHECK (frame) or FIELD_CHECK (field).
    """
    h, w = frame.shape[:2]
    if within == "field":
        left, right = field_columns(frame)
        fit = (rule or FIELD_RULE).fit_joint(frame[:, left:right])
        fit = JointFit(fit.column + left, fit.row, fit.dip, fit.edge)
        basis = right - left
    elif within == "frame":
        fit = (rule or ColourFractionRule()).fit_joint(frame)
        basis = None
    else:
        raise ValueError(f"unknown crop placement {within!r}; expected one of {', '.join(WITHIN)}")
    if check is None:
        check = FIELD_CHECK if within == "field" else DEFAULT_CHECK
    if not check.trusted(fit):
        return (0, 0, h, w), FALLBACK, fit
    return crop_box(frame.shape, fit, roi, bone_at, basis), CROP, fit


def joint_box(
    frame: np.ndarray,
    roi: tuple[float, float],
    bone_at: float = 0.6,
    rule: ColourFractionRule | None = None,
    within: str = "frame",
) -> tuple[int, int, int, int]:
    """(top, left, height, width) the network sees: the joint crop, or the full frame on fallback."""
    return joint_crop(frame, roi, bone_at, rule, within=within)[0]
