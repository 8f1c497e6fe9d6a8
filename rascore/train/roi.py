"""Region-of-interest crop around the joint, as RATING crops its inputs to the joint region.

The joint is located by simple image processing (rascore.nets.colour_fraction: the dip of the
bone surface between the two bone tops); the crop keeps the joint recess, the synovium above it
and some bone either side at close to full resolution, and drops side bars, deep shadow and most
of the subcutis. The crop box comes from the middle frame and applies to every frame of a clip.
"""
from __future__ import annotations

import numpy as np

from rascore.nets.colour_fraction import ColourFractionRule


def joint_box(frame: np.ndarray, roi: tuple[float, float], bone_at: float = 0.6,
              rule: ColourFractionRule | None = None) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a crop of ``roi`` (shares of frame height, width) at the joint.

    Horizontally centred on the joint; vertically placed so the bone tops sit at ``bone_at`` of
    the crop's height; shifted back inside the frame where it would cross an edge.
    """
    h, w = frame.shape[:2]
    crop_h, crop_w = max(1, round(roi[0] * h)), max(1, round(roi[1] * w))
    x, y = (rule or ColourFractionRule()).locate_joint(frame)
    top = int(np.clip(round(y - bone_at * crop_h), 0, h - crop_h))
    left = int(np.clip(round(x - crop_w / 2), 0, w - crop_w))
    return top, left, crop_h, crop_w
