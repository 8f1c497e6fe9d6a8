"""Counterfactual renders: the same item drawn at another grade, and where its pixels may change.

Rendering is deterministic from ``spec.seed``; the grade enters only through the synovium and its
flow. So the same spec at another grade must change pixels only where the synovium is (in either
render), within the point-spread function's reach of it, and in the tendon a distended synovium
lifts (at most the tendon's thickness above the synovium, over its columns and the short ramp
beside them). A change anywhere else, such as the colour box, a distractor, the speckle of later
clip frames or the screen furniture, is a cue to the grade that no reader uses: a shortcut.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from rascore.synth.anatomy import sample_anatomy
from rascore.synth.cohort import ItemSpec
from rascore.synth.render import SimItem
from rascore.synth.variation import anatomy_setting, scan_setting

LIFT_GAP_MM = 0.35  # the lifted tendon's floor sits this far above the synovium
RAMP_MM = 1.75  # the lift ramps down over at most this much beside the synovium


def at_grade(spec: ItemSpec, sh: int, pd: int) -> ItemSpec:
    """The same item (seed, joint, acquisition) with other true grades."""
    return dataclasses.replace(spec, sh=sh, pd=pd if spec.doppler else 0)


def psf_reach_px(spec: ItemSpec, mm_per_px: float) -> tuple[int, int]:
    """(rows, columns) a change in tissue can spread through blur: 4 PSF sigmas plus 3 pixels."""
    axial, lateral = scan_setting(spec).psf_px(mm_per_px)
    return int(np.ceil(4 * axial)) + 3, int(np.ceil(4 * lateral)) + 3


def tendon_mm(spec: ItemSpec) -> float:
    """Thickness (mm) of the joint's extensor tendon: how far above a synovium a lift can reach."""
    jrng = np.random.default_rng(np.random.SeedSequence([spec.joint_seed, 1]))
    return float(sample_anatomy(spec.joint, jrng, anatomy_setting(spec)).tendon)


def allowed_change(a: SimItem, b: SimItem, t: int = 0) -> np.ndarray:
    """Bool (H, W) of frame t where two grades of one item may differ: synovium, blur, lifted tendon."""
    syn = a.synovium[t] | b.synovium[t]
    h, w = syn.shape
    px = 1.0 / a.mm_per_px
    spec = a.spec
    tendon = tendon_mm(spec)
    has = syn.any(axis=0)
    rows = np.arange(h)[:, None]
    top = np.where(has, np.argmax(syn, axis=0), h).astype(float)
    bottom = np.where(has, h - 1 - np.argmax(syn[::-1], axis=0), -1).astype(float)
    ramp = int(np.ceil(RAMP_MM * px)) + 1
    top = ndimage.minimum_filter1d(top, 2 * ramp + 1, mode="constant", cval=h)
    bottom = ndimage.maximum_filter1d(bottom, 2 * ramp + 1, mode="constant", cval=-1)
    up = (tendon + LIFT_GAP_MM) * px + 1
    zone = (rows >= (top - up)[None, :]) & (rows <= bottom[None, :])
    ry, rx = psf_reach_px(spec, a.mm_per_px)
    return ndimage.binary_dilation(zone | syn, structure=np.ones((2 * ry + 1, 2 * rx + 1), bool))


def changes_outside(a: SimItem, b: SimItem) -> np.ndarray:
    """Per frame, how many pixels differ between two renders outside allowed_change."""
    if a.frames.shape != b.frames.shape:
        raise ValueError("the two renders differ in shape")
    diff = (a.frames != b.frames).any(axis=-1)
    return np.array([int((diff[t] & ~allowed_change(a, b, t)).sum()) for t in range(len(diff))])


def grade_free_region(item: SimItem, t: int = 0) -> np.ndarray:
    """Bool (H, W) of frame t covering wherever a grade could show in this joint, whatever the grade.

    The joint's recess box (where a synovium of any grade could lie; it depends on the anatomy and
    the acquisition only) widened by the lift ramp and the PSF reach, raised by the tendon's
    thickness, and moved with the probe. Its outline carries no trace of the grade.
    """
    if item.recess is None:
        raise ValueError(f"{item.spec.key}: rendered without its recess box")
    h, w = item.frames.shape[1:3]
    px = 1.0 / item.mm_per_px
    ry, rx = psf_reach_px(item.spec, item.mm_per_px)
    up = int(np.ceil((tendon_mm(item.spec) + LIFT_GAP_MM) * px)) + 1 + ry
    side = int(np.ceil(RAMP_MM * px)) + 1 + rx
    dy, dx = (int(v) for v in item.offsets[t])
    y0, x0, y1, x1 = item.recess
    out = np.zeros((h, w), dtype=bool)
    out[
        max(y0 - dy - up, 0) : max(y1 - dy + ry + 1, 0), max(x0 - dx - side, 0) : max(x1 - dx + side + 1, 0)
    ] = True
    return out
