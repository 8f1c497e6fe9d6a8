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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rascore.nets.colour_fraction import ColourFractionRule, JointFit

CROP, FALLBACK, NONE = "crop", "fallback", "none"
CROP_MODES: tuple[str, ...] = (CROP, FALLBACK, NONE)


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


def crop_box(
    shape: tuple[int, ...], fit: JointFit, roi: tuple[float, float], bone_at: float = 0.6
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a crop of ``roi`` (shares of frame height, width) at the joint.

    Horizontally centred on the joint; vertically placed so the bone tops sit at ``bone_at`` of
    the crop's height; shifted back inside the frame where it would cross an edge.
    """
    h, w = shape[:2]
    crop_h, crop_w = max(1, round(roi[0] * h)), max(1, round(roi[1] * w))
    top = int(np.clip(round(fit.row - bone_at * crop_h), 0, h - crop_h))
    left = int(np.clip(round(fit.column - crop_w / 2), 0, w - crop_w))
    return top, left, crop_h, crop_w


def joint_crop(
    frame: np.ndarray,
    roi: tuple[float, float],
    bone_at: float = 0.6,
    rule: ColourFractionRule | None = None,
    check: CropCheck = DEFAULT_CHECK,
) -> tuple[tuple[int, int, int, int], str, JointFit]:
    """The crop box and "crop", or the full frame and "fallback" when the joint fit is weak."""
    fit = (rule or ColourFractionRule()).fit_joint(frame)
    if not check.trusted(fit):
        h, w = frame.shape[:2]
        return (0, 0, h, w), FALLBACK, fit
    return crop_box(frame.shape, fit, roi, bone_at), CROP, fit


def joint_box(
    frame: np.ndarray, roi: tuple[float, float], bone_at: float = 0.6, rule: ColourFractionRule | None = None
) -> tuple[int, int, int, int]:
    """(top, left, height, width) the network sees: the joint crop, or the full frame on fallback."""
    return joint_crop(frame, roi, bone_at, rule)[0]
