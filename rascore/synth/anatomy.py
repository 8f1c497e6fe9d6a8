"""Dorsal longitudinal view of a small joint (MCP-like): layers, bones, cartilage, synovium.

Everything is sampled in millimetres from the joint's seed, then drawn on a canvas (the
ultrasound field plus a margin for probe jitter) at the acquisition's pixel scale. Proximal is
on the left: metacarpal head (rounded, with cartilage), the joint recess, the phalanx base.
The synovium is drawn by the EOSS SH geometry and checked against grading.sh_from_mask.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from rascore.synth import grading
from rascore.synth.profiles import FIELD_H, FIELD_W, NARROW_LAYOUT, PAD, Layout

CANVAS_H, CANVAS_W = FIELD_H + 2 * PAD, FIELD_W + 2 * PAD  # the narrow layout's canvas
JOINT_SIZE: dict[str, float] = {
    "MCP1": 0.95,
    "MCP2": 1.0,
    "MCP3": 1.0,
    "MCP4": 0.92,
    "MCP5": 0.85,
    "PIP2": 0.68,
    "PIP3": 0.7,
    "MTP2": 0.9,
    "MTP5": 0.8,
    "wrist": 1.1,
    "knee": 1.4,
}


@dataclass(frozen=True)
class JointAnatomy:
    """Millimetre dimensions of one joint, shared by every acquisition of it."""

    size: float
    gap_w: float  # distance between the two bone tops
    v_depth: float  # depth of the recess floor below the line
    head_r: float  # radius of the metacarpal head (proximal curvature)
    head_rd: float  # radius of its distal slope into the joint
    neck_drop: float  # how far the bone falls proximal to the head
    phal_dy: float  # phalanx top below the head top (+ deeper)
    lip_w: float  # width of the phalanx base lip
    shaft_slope: float  # phalanx shaft slope (rows per column)
    skin: float
    subcutis: float
    tendon: float
    capsule: float  # tendon floor to the line, in a normal joint
    cartilage: float
    vessel_d: float  # subcutaneous vessel diameter (0: none)
    vessel_pos: float  # its depth within the subcutis, 0..1
    vessel_slope: float


@dataclass(frozen=True)
class SynoviumShape:
    """SH geometry in millimetres; u is the position within the grade (0 low .. 1 high)."""

    sh: int
    u: float
    d: float = 0.0  # SH1: top this far below the line
    e: float = 0.0  # SH2/3: elevation above the line at the bone tops
    kappa: float = 0.0  # SH2: concavity (elevation rises towards the tops)
    beta: float = 0.0  # SH3: convex bulge in the middle
    ext_l: float = 0.0  # extension beyond the bone tops
    ext_r: float = 0.0
    tail: float = 0.0  # SH3: length along the metacarpal shaft
    tail_thick: float = 0.0
    skew: float = 0.0


@dataclass
class Scene:
    """The canvas drawing of one acquisition: geometry in pixels and truth masks."""

    mm_per_px: float
    bone_line: np.ndarray  # (2, 2) canvas (x, y) of the two bone tops
    synovium: np.ndarray  # bool (CANVAS_H, CANVAS_W)
    bone: np.ndarray  # bool
    cartilage: np.ndarray  # bool
    layers: dict[str, np.ndarray]  # per-column rows: gel, skin, tendon_top, tendon_bottom, floor
    surface: np.ndarray  # per-column bone surface row (inf where no bone)
    gap_row: float | np.ndarray  # row of the joint space (per column when the probe is tilted)
    vessel: np.ndarray  # bool lumen of the subcutaneous vessel
    vessel_radius_px: float
    region: tuple[int, int, int, int]  # (y0, x0, y1, x1) canvas box of the joint recess + synovium
    recess: tuple[int, int, int, int]  # (y0, x0, y1, x1) canvas box holding a synovium of any grade


def sample_anatomy(joint: str, rng: np.random.Generator, widen=None) -> JointAnatomy:
    """Draw one joint's dimensions (mm); ``widen`` (a variation.AnatomySetting) widens them.

    The narrow draws come first and in the same order either way, so widening changes only the
    head radius, the shaft slope, the tendon's thickness and the subcutis depth.
    """
    k = JOINT_SIZE.get(joint, 1.0) * rng.uniform(0.88, 1.12)
    has_vessel = rng.random() < 0.65
    anat = JointAnatomy(
        size=k,
        gap_w=k * rng.uniform(4.2, 6.0),
        v_depth=k * rng.uniform(2.0, 3.0),
        head_r=k * rng.uniform(3.5, 5.0),
        head_rd=0.0,
        neck_drop=k * rng.uniform(0.8, 1.6),
        phal_dy=k * rng.uniform(-0.2, 0.8),
        lip_w=k * rng.uniform(1.2, 2.2),
        shaft_slope=rng.uniform(0.0, 0.08),
        skin=rng.uniform(0.55, 0.95),
        subcutis=rng.uniform(0.8, 4.0),
        tendon=k * rng.uniform(1.0, 1.8),
        capsule=rng.uniform(0.6, 1.3),
        cartilage=rng.uniform(0.25, 0.5),
        vessel_d=float(np.exp(rng.uniform(np.log(0.35), np.log(2.0)))) if has_vessel else 0.0,
        vessel_pos=rng.uniform(0.2, 0.8),
        vessel_slope=rng.uniform(-0.06, 0.06),
    )
    head_rd = max(anat.gap_w * rng.uniform(0.5, 0.68), anat.v_depth * 1.08)
    anat = replace(anat, head_rd=head_rd)
    if widen is not None:
        anat = replace(
            anat,
            head_r=anat.head_r * widen.head_r_scale,
            shaft_slope=anat.shaft_slope if widen.shaft_slope is None else widen.shaft_slope,
            tendon=anat.tendon * widen.tendon_scale,
            subcutis=anat.subcutis if widen.subcutis_mm is None else widen.subcutis_mm,
        )
    return anat


def enlarge(anat: JointAnatomy, factor: float) -> JointAnatomy:
    """The same joint scaled up (used when a small joint cannot hold the required synovitis)."""
    return replace(
        anat,
        size=anat.size * factor,
        gap_w=anat.gap_w * factor,
        v_depth=anat.v_depth * factor,
        head_r=anat.head_r * factor,
        head_rd=anat.head_rd * factor,
        lip_w=anat.lip_w * factor,
        neck_drop=anat.neck_drop * factor,
    )


# Ranges of the SH2/SH3 geometry (in joint-size units k unless said): extension beyond the bone
# tops, SH3's extra extension, SH2 elevation and concavity, SH3 elevation and bulge, SH3 tail.
_EXT_L, _EXT_R = (0.6, 2.2), (0.5, 1.8)
_EXT3_L, _EXT3_R = 1.3, 1.2
_E2, _KAPPA2 = (0.5, 1.0), 0.6
_E3, _BETA3, _BETA3_JITTER = (0.1, 0.7), (0.6, 2.0), (0.8, 1.2)
_TAIL = (2.0, 6.0)


def sample_synovium(sh: int, u: float, anat: JointAnatomy, rng: np.random.Generator) -> SynoviumShape:
    """Draw an SH geometry of grade sh at position u within the grade (mm)."""
    k = anat.size
    if sh == 0:
        return SynoviumShape(sh=0, u=u)
    if sh == 1:
        return SynoviumShape(sh=1, u=u, d=(1.0 - u) * rng.uniform(0.15, 0.35) * anat.v_depth)
    ext_l = k * rng.uniform(*_EXT_L)
    ext_r = k * rng.uniform(*_EXT_R)
    skew = rng.uniform(-0.15, 0.15)
    if sh == 2:
        e = anat.cartilage + 0.15 + u * k * rng.uniform(*_E2)
        kappa = (1.0 - 0.6 * u) * rng.uniform(0.0, _KAPPA2) * e
        return SynoviumShape(sh=2, u=u, e=e, kappa=kappa, ext_l=ext_l, ext_r=ext_r, skew=skew)
    e = anat.cartilage + 0.15 + k * rng.uniform(*_E3)
    beta = k * (_BETA3[0] + (_BETA3[1] - _BETA3[0]) * u) * rng.uniform(*_BETA3_JITTER)
    has_tail = rng.random() < 0.6
    return SynoviumShape(
        sh=3,
        u=u,
        e=e,
        beta=beta,
        ext_l=ext_l * _EXT3_L,
        ext_r=ext_r * _EXT3_R,
        skew=skew,
        tail=k * rng.uniform(*_TAIL) if has_tail else 0.0,
        tail_thick=rng.uniform(0.35, 0.8) if has_tail else 0.0,
    )


def _recess(
    anat: JointAnatomy,
    px: float,
    x_l: float,
    x_r: float,
    y_l: float,
    y_r: float,
    gap_row: float,
    shift: np.ndarray | None = None,
) -> tuple[int, int, int, int]:
    """Canvas box (y0, x0, y1, x1) that holds a synovium of any grade in this joint.

    It depends on the anatomy and the acquisition only, never on the grade, so whatever is placed
    by it (the Doppler colour box) carries no trace of the grade.
    """
    k = anat.size
    cart_px = anat.cartilage * px
    left = (k * _EXT_L[1] * _EXT3_L + k * _TAIL[1]) * px + 2.5 * px
    right = k * _EXT_R[1] * _EXT3_R * px
    e2 = max((anat.cartilage + 0.15 + k * _E2[1]) * px, cart_px + 2.5)
    e3 = max((anat.cartilage + 0.15 + k * _E3[1]) * px, cart_px + 2.5)
    thr = grading.convexity_threshold(np.array([[x_l, y_l], [x_r, y_r]]))
    beta = max(k * _BETA3[1] * _BETA3_JITTER[1] * px, (thr + 2.0) / 0.28)
    up = max((1.0 + _KAPPA2) * e2, e3 + beta) + cart_px
    y0 = int(np.floor(min(y_l, y_r) - up)) - 2
    y1 = int(np.ceil(gap_row)) + 2
    x0, x1 = int(np.floor(x_l - left)) - 2, int(np.ceil(x_r + right)) + 2
    if shift is not None:  # probe tilt: the recess moves down by the shear over its columns
        span = shift[np.clip(np.arange(x0, x1 + 1), 0, len(shift) - 1)]
        y0, y1 = y0 + int(np.floor(span.min())), y1 + int(np.ceil(span.max()))
    return y0, x0, y1, x1


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def build_scene(
    anat: JointAnatomy,
    syn: SynoviumShape,
    mm_per_px: float,
    x_shift_mm: float,
    gel_mm: float,
    layout: Layout = NARROW_LAYOUT,
    tilt: float = 0.0,
) -> Scene:
    """Draw the joint on the canvas at mm_per_px; x_shift_mm moves the probe along the finger.

    ``tilt`` (rows per column) tilts the probe: everything below the probe face is sheared, one
    side deeper than the other, so the line between the bone tops, the synovium's height above it
    and its shape column by column stay as drawn (the grade does not depend on the tilt).
    """
    s = mm_per_px
    px = 1.0 / s
    PAD, FIELD_H, FIELD_W = layout.pad, layout.field_h, layout.field_w  # noqa: N806
    CANVAS_H, CANVAS_W = layout.canvas_h, layout.canvas_w  # noqa: N806
    cols = np.arange(CANVAS_W, dtype=float)
    rows = np.arange(CANVAS_H, dtype=float)[:, None]
    gel_b = PAD + gel_mm * px
    skin_b = gel_b + anat.skin * px
    y_l = skin_b + (anat.subcutis + anat.tendon + anat.capsule) * px
    y_r = y_l + anat.phal_dy * px
    x_c = PAD + FIELD_W / 2 + x_shift_mm * px
    half = anat.gap_w * px / 2
    x_l, x_r = x_c - half, x_c + half
    line = y_l + (y_r - y_l) * (cols - x_l) / (x_r - x_l)
    gap_row = y_l + (y_r - y_l) / 2 + anat.v_depth * px
    r_head = anat.head_r * px
    r_dist = anat.head_rd * px
    neck = anat.neck_drop * px
    dx = cols - x_l
    with np.errstate(invalid="ignore"):
        circle = np.where(dx < r_dist, y_l + r_dist - np.sqrt(np.maximum(r_dist**2 - dx**2, 0.0)), np.inf)
    left_drop = y_l + neck * (1 - np.exp(-(dx**2) / (2 * r_head * neck)))
    b_left = np.where(dx >= 0, circle, left_drop)
    lip = anat.lip_w * px
    deep = gap_row - y_r + 4.0
    undulation = 0.6 * np.sin(cols / (7.0 * px) + anat.shaft_slope * 40)
    b_right = np.where(
        cols >= x_r,
        y_r + anat.shaft_slope * (cols - x_r) + undulation * _smoothstep((cols - x_r) / (2 * px)),
        y_r + deep * np.clip((x_r - cols) / lip, 0, 1) ** 1.5,
    )
    surface = np.minimum(b_left, b_right)
    floor_bone = np.minimum(surface, gap_row)
    surface = np.where(surface > gap_row + 1.0, np.inf, surface)  # the joint space between the bones
    on_head = (b_left < b_right) & (cols > x_l - 0.55 * r_head) & (b_left < gap_row - 1)
    cart_px = anat.cartilage * px * on_head * _smoothstep((cols - (x_l - 0.55 * r_head)) / (0.2 * r_head))
    floor = floor_bone - cart_px

    # synovium top per column (inf where none)
    top = np.full(CANVAS_W, np.inf)
    if syn.sh == 1:
        d = max(2.5, syn.d * px)
        core = (cols > x_l) & (cols < x_r)
        top = np.where(core, line + d, np.inf)
    elif syn.sh >= 2:
        w = x_r - x_l
        x_m = x_c + syn.skew * w / 2
        u = np.clip((cols - x_m) / np.where(cols < x_m, x_m - x_l, x_r - x_m), -1.0, 1.0)
        cart_top = anat.cartilage * px
        e = max(syn.e * px, cart_top + 2.5)
        if syn.sh == 2:
            elev = e + syn.kappa * px * u**2
        else:
            thr = grading.convexity_threshold(np.array([[x_l, y_l], [x_r, y_r]]))
            beta = max(syn.beta * px, (thr + 2.0) / 0.28)
            elev = e + beta * (1 - u**2)
        core_top = line - elev
        thick_edge_l = floor[np.clip(int(round(x_l)), 0, CANVAS_W - 1)] - (y_l - e)
        thick_edge_r = floor[np.clip(int(round(x_r)), 0, CANVAS_W - 1)] - (y_r - e)
        ext_l, ext_r = syn.ext_l * px, syn.ext_r * px
        tail_thick = syn.tail_thick * px
        thick = np.zeros(CANVAS_W)
        left = cols < x_l
        ramp_l = _smoothstep((cols - (x_l - ext_l)) / ext_l)
        thick = np.where(left, tail_thick + (thick_edge_l - tail_thick) * ramp_l, thick)
        if syn.tail > 0:
            tail_end = x_l - ext_l - syn.tail * px
            thick = np.where(
                left & (cols <= x_l - ext_l), tail_thick * _smoothstep((cols - tail_end) / (1.5 * px)), thick
            )
        else:
            thick = np.where(left & (cols <= x_l - ext_l), 0.0, thick)
        right = cols > x_r
        ramp_r = _smoothstep(((x_r + ext_r) - cols) / ext_r)
        thick = np.where(right, thick_edge_r * ramp_r, thick)
        top = np.where(left | right, np.where(thick > 0.5, floor - thick, np.inf), core_top)
    shear = tilt * (cols - x_c)
    shear = shear - shear.min()  # rows each column moves down (0 without tilt)
    synovium = (rows > (top + shear)[None, :]) & (rows < (floor + shear)[None, :])
    if syn.sh == 0:
        synovium[:] = False
    # keep only what the probe sees at every jitter offset (|dy| <= 2, |dx| <= PAD - 1)
    synovium[: PAD + 2] = synovium[PAD - 2 + FIELD_H :] = False
    synovium[:, : 2 * PAD - 1] = synovium[:, FIELD_W + 1 :] = False

    # tendon floor follows the bones (its resting course depends on the anatomy only) and is
    # lifted, only over the synovium and a short ramp beside it, where a distended synovium rises
    window = max(3, int(1.5 * px))
    ref = np.minimum(floor_bone, line + 0.6 * px) - anat.capsule * px
    ref = ndimage.gaussian_filter1d(ref, 2.0 * px, mode="nearest")
    ref = ndimage.minimum_filter1d(ref, window, mode="nearest")
    ref = ndimage.gaussian_filter1d(ref, 1.0 * px, mode="nearest")
    syn_cols = synovium.any(axis=0) & np.isfinite(top)
    lift = np.where(syn_cols, np.maximum(ref - (top - 0.35 * px), 0.0), 0.0)
    lift = ndimage.maximum_filter1d(lift, window, mode="constant")
    lift = ndimage.gaussian_filter1d(lift, 0.5 * px, mode="constant", truncate=2.0)
    tb = ref - lift
    tb = np.minimum(tb, np.where(syn_cols, top - 0.2 * px, np.inf))
    tt_rest = np.maximum(ref - anat.tendon * px, skin_b + 0.4 * px)
    tt = np.maximum(tb - anat.tendon * px, skin_b + 0.4 * px)
    tb = np.maximum(tb, tt + 0.5 * px)
    # the probe tilt: every per-column row below the probe face moves down by its shear
    recess = _recess(anat, px, x_l, x_r, y_l, y_r, gap_row, shear if tilt else None)
    low = float((tilt * (cols - x_c)).min())
    y_l, y_r = y_l + tilt * (x_l - x_c) - low, y_r + tilt * (x_r - x_c) - low
    tt_rest, tt, tb = tt_rest + shear, tt + shear, tb + shear
    floor_bone, floor, surface, line = floor_bone + shear, floor + shear, surface + shear, line + shear
    skin_b = skin_b + shear
    gel_b = gel_b + shear
    gap_row = gap_row + shear if tilt else gap_row

    bone = rows >= surface[None, :]
    cartilage = (
        (rows >= (floor_bone - cart_px)[None, :]) & (rows < floor_bone[None, :]) & (cart_px > 0.5)[None, :]
    )

    vessel = np.zeros((CANVAS_H, CANVAS_W), dtype=bool)
    r_v = 0.0
    if anat.vessel_d > 0:
        room = (tt_rest - skin_b) * s  # its calibre comes from the resting anatomy
        d_v = min(anat.vessel_d, float(np.median(room)) - 0.4)
        if d_v >= 0.3:
            r_v = d_v * px / 2
            # placed in the resting subcutis (a tendon lifted by the synovium runs beneath it)
            centre = (
                skin_b
                + r_v
                + 0.2 * px
                + anat.vessel_pos * np.maximum(tt_rest - skin_b - 2 * r_v - 0.4 * px, 0)
            )
            centre = centre + anat.vessel_slope * (cols - x_c)
            centre = np.clip(centre, skin_b + r_v, tt_rest - r_v)
            vessel = np.abs(rows - centre[None, :]) < r_v

    ys, xs = np.nonzero(synovium)
    y0 = int(min(line.min() - 2, ys.min() if len(ys) else np.inf, y_l - 2))
    y1 = int(max(np.max(gap_row) + 2, ys.max() + 1 if len(ys) else 0))
    x0 = int(min(x_l - 2, xs.min() if len(xs) else np.inf))
    x1 = int(max(x_r + 2, xs.max() + 1 if len(xs) else 0))
    return Scene(
        mm_per_px=s,
        bone_line=np.array([[x_l, y_l], [x_r, y_r]]),
        synovium=synovium,
        bone=bone,
        cartilage=cartilage,
        layers={
            "gel": np.full(CANVAS_W, gel_b),
            "skin": np.full(CANVAS_W, skin_b),
            "tendon_top": tt,
            "tendon_bottom": tb,
            "tendon_top_rest": tt_rest,
            "floor": floor,
            "line": line,
        },
        surface=surface,
        gap_row=gap_row if tilt else float(gap_row),
        vessel=vessel,
        vessel_radius_px=r_v,
        region=(y0, x0, y1, x1),
        recess=recess,
    )
