"""A foreign ultrasound-like cohort for tests and benchmarks: not the demo simulator.

The question is whether models trained on the demo simulator (``rascore/synth``) carry to scans of
another kind. This module draws dorsal longitudinal stills of an MCP/PIP joint with its own
everything, and imports nothing from ``rascore.synth`` (only ``rascore.scale`` for the EOSS
combined rule and the PD spot rule):

- **Frame.** Varying size (about 260-340 x 340-440 pixels, against the demo's fixed 192 x 256),
  the image field inset in a black screen with a dotted depth scale on the right, field depth
  9-16 mm, the joint anywhere within the middle fifth of the width.
- **Anatomy.** A skin line, subcutis, a fibrillar tendon band that a distended synovium lifts, the
  proximal bone as a rounded head (an ellipse arc) and the distal bone as a sloping base, each a
  bright cortex with a hypoechoic cartilage cap on the head and an acoustic shadow below.
- **Synovium** by the EOSS SH rules: none (0); inside the angle between the bones, below the line
  joining the bone tops (1); beyond that line with a flat or concave top (2); beyond it with a
  convex top (3).
- **Image formation.** Multiplicative gamma (Nakagami-intensity) speckle with its own
  anisotropic smoothing, attenuation with partial time-gain compensation, log compression into a
  dynamic range of 40-62 dB, a gain offset and a grey map (a power curve, sometimes tinted sepia
  or blue-grey).
- **Doppler** (SPD): a colour box placed at random around the joint recess, an orange-to-yellow
  map with a colour bar at the top-left, flow spots by the PD rules (grade 1: an allowed spot
  pattern; 2: more spots, or a field under half of the synovium; 3: a field over more than half),
  and distractors outside the synovium (a subcutaneous vessel, colour noise).

Grades come back from the truth masks by this module's own reading of the rules
(``grade_masks``); an item is redrawn until they equal the planned grades.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rascore import scale

BEYOND_PX = 1.5  # synovium top at least this far above the bone-top line counts as beyond it
CONVEX_MIN_PX = 2.0  # fitted bulge (px) above max(this, CONVEX_SPAN * span) is clearly convex
CONVEX_SPAN = 0.04
MIN_SYNOVIUM_PX = 10
_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass
class ForeignItem:
    """One still and its truth: synovium and Doppler masks, the bone-top line, the pixel size."""

    frame: np.ndarray  # (H, W, 3) uint8
    synovium: np.ndarray  # (H, W) bool
    doppler: np.ndarray  # (H, W) bool, coloured flow pixels (anywhere in the frame)
    bone_line: tuple[tuple[float, float], tuple[float, float]]  # ((x, y), (x, y)) of the bone tops
    mm_per_px: float
    sh: int
    pd: int


def _line(bone_line, xs: np.ndarray) -> np.ndarray:
    (xl, yl), (xr, yr) = bone_line
    return yl + (yr - yl) * (xs - xl) / (xr - xl)


def _top_profile(synovium: np.ndarray, bone_line) -> tuple[np.ndarray, np.ndarray]:
    """Columns strictly between the bone tops that hold synovium, and the top's height above the line."""
    (xl, _), (xr, _) = bone_line
    cols = np.arange(int(np.ceil(xl)), int(np.floor(xr)) + 1)
    cols = cols[(cols >= 0) & (cols < synovium.shape[1])]
    sub = synovium[:, cols]
    has = sub.any(axis=0)
    top = np.argmax(sub, axis=0).astype(float)
    return cols[has], (_line(bone_line, cols.astype(float)) - top)[has]


def sh_from_truth(synovium: np.ndarray, bone_line) -> int:
    """SH by this module's reading of the EOSS rule.

    Beyond the line: the top stands at least BEYOND_PX above it somewhere between the bone tops.
    Clearly convex: a parabola fitted to the top's height over the middle 80% of the span bulges
    (vertex minus ends) by more than max(CONVEX_MIN_PX, CONVEX_SPAN x span).
    """
    if int(synovium.sum()) < MIN_SYNOVIUM_PX:
        return 0
    cols, elevation = _top_profile(synovium, bone_line)
    if not len(cols) or elevation.max() < BEYOND_PX:
        return 1
    (xl, _), (xr, _) = bone_line
    u = (cols - (xl + xr) / 2) / ((xr - xl) / 2)
    keep = np.abs(u) <= 0.8
    if keep.sum() < 5:
        return 2
    curvature = np.polyfit(u[keep], elevation[keep], 2)[0]
    bulge = -curvature * 0.8**2  # a downward-opening parabola: vertex above its ends at |u| = 0.8
    return 3 if bulge > max(CONVEX_MIN_PX, CONVEX_SPAN * (xr - xl)) else 2


def pd_from_truth(doppler: np.ndarray, synovium: np.ndarray, mm_per_px: float) -> int:
    """PD from the flow inside the synovium: 8-connected spots, single up to scale.SINGLE_SPOT_MAX_MM2."""
    inside = doppler & synovium
    area = int(synovium.sum())
    if area == 0 or not inside.any():
        return 0
    labels, n = ndimage.label(inside, structure=_EIGHT)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:] * mm_per_px**2
    single = int((sizes <= scale.SINGLE_SPOT_MAX_MM2).sum())
    return scale.pd_grade_from_spots(single, n - single, float(inside.sum() / area))


def grade_masks(item: ForeignItem) -> tuple[int, int]:
    """(SH, PD) of an item from its truth masks alone."""
    sh = sh_from_truth(item.synovium, item.bone_line)
    return sh, (pd_from_truth(item.doppler, item.synovium, item.mm_per_px) if sh else 0)


# ---------------------------------------------------------------- anatomy


def _bones(rng, w: int, mm: float, x_joint: float, y_bone: float):
    """Bone surfaces (row per column; inf where no bone), the bone-top line, the head's centre."""
    xs = np.arange(w, dtype=float)
    gap = rng.uniform(2.0, 3.2) / mm  # joint gap between the bone tops
    xl, xr = x_joint - gap / 2, x_joint + gap / 2
    yl = y_bone + rng.uniform(-0.25, 0.25) / mm
    yr = y_bone + rng.uniform(-0.35, 0.35) / mm
    xg = x_joint + rng.uniform(-0.15, 0.15) * gap  # the deepest point of the recess
    # proximal head: rounded top at xl, falling by d_l into the recess, and back along the neck
    d_l, d_r = rng.uniform(0.9, 1.6) / mm, rng.uniform(0.7, 1.3) / mm
    p_l, p_r = rng.uniform(1.2, 1.9), rng.uniform(1.1, 1.7)
    neck = rng.uniform(0.04, 0.12) * mm  # curvature of the head's back (px^-1)
    head = np.where(
        xs <= xl,
        yl + neck * (xl - xs) ** 2 / (1 + (xl - xs) * mm / 4),
        yl + d_l * ((xs - xl) / (xg - xl)).clip(0) ** p_l,
    )
    # distal base: rises from the recess to its top at xr, then a gently sloping shaft
    dist = np.where(
        xs >= xr, yr + (xs - xr) * rng.uniform(-0.03, 0.06), yr + d_r * ((xr - xs) / (xr - xg)).clip(0) ** p_r
    )
    surface = np.where(xs <= xg, head, dist)
    cx, a, b = xl, d_l, d_r
    # the line joins the highest points of each bone near the joint
    left = np.arange(max(0, int(xl - 0.8 / mm)), int(xl) + 1)
    right = np.arange(int(np.ceil(xr)), min(w - 1, int(xr + 0.8 / mm)) + 1)
    il, ir = left[np.argmin(surface[left])], right[np.argmin(surface[right])]
    line = ((float(il), float(surface[il])), (float(ir), float(surface[ir])))
    return surface, line, (cx, a, b)


def _synovium(rng, shape, surface: np.ndarray, line, sh: int, mm: float) -> np.ndarray:
    """A synovium mask of grade ``sh`` in the angle between the bones (empty for 0)."""
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    if sh == 0:
        return mask
    (xl, yl), (xr, yr) = line
    span = xr - xl
    xs = np.arange(w, dtype=float)
    base = _line(line, xs)
    u = (xs - (xl + xr) / 2) / (span / 2)
    if sh == 1:
        top = base + rng.uniform(0.1, 0.35) / mm * (0.3 + u**2)  # below the line, dipping to the recess
        reach = 1.0
    elif sh == 2:
        lift = rng.uniform(0.25, 0.7) / mm
        dip = rng.uniform(0.0, 0.35) * lift  # 0 flat, >0 concave (the middle lower than the sides)
        top = base - lift + dip * (1 - u**2)
        reach = 1 + rng.uniform(0.3, 0.9)
    else:
        lift = rng.uniform(0.25, 0.5) / mm
        bulge = max(rng.uniform(0.08, 0.2) * span, 4.0 + CONVEX_SPAN * span) * rng.uniform(1.3, 2.0)
        top = base - lift - bulge * (1 - u**2).clip(0, None)
        reach = 1 + rng.uniform(0.5, 1.4)
    # beyond the bone tops (|u| > 1) the top sinks back onto the bone
    outside = np.abs(u) > 1
    sink = ((np.abs(u) - 1) / max(reach - 1, 1e-6)).clip(0, 1)
    top = np.where(outside, top + (surface.clip(max=h) - top) * sink, top)
    rows = np.arange(h, dtype=float)[:, None]
    inside_cols = (np.abs(u) <= reach)[None, :]
    mask = (rows >= top[None, :]) & (rows < surface.clip(max=h)[None, :]) & inside_cols
    return ndimage.binary_opening(mask, structure=np.ones((2, 2), bool))


def _blobs(rng, shape, centres, radii) -> np.ndarray:
    """Power (0-1) of soft elliptical blobs."""
    h, w = shape
    power = np.zeros(shape)
    for (cy, cx), r in zip(centres, radii, strict=True):
        y0, y1 = int(max(0, cy - 2 * r - 2)), int(min(h, cy + 2 * r + 3))
        x0, x1 = int(max(0, cx - 3 * r - 2)), int(min(w, cx + 3 * r + 3))
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d = ((yy - cy) / r) ** 2 + ((xx - cx) / (1.4 * r)) ** 2
        power[y0:y1, x0:x1] = np.maximum(power[y0:y1, x0:x1], np.exp(-d))
    return power


def _flow(rng, synovium: np.ndarray, pd: int, mm: float) -> np.ndarray:
    """Flow power inside the synovium for PD grade ``pd`` (0 where no flow)."""
    shape = synovium.shape
    ys, xs = np.nonzero(ndimage.binary_erosion(synovium, iterations=2) if synovium.sum() > 200 else synovium)
    if pd == 0 or not len(ys):
        return np.zeros(shape)
    # a blob of radius r covers about 4.6 r^2 pixels above the colour threshold
    single_r = np.sqrt(rng.uniform(0.25, 0.6) * scale.SINGLE_SPOT_MAX_MM2 / 4.6) / mm
    conf_r = np.sqrt(rng.uniform(1.3, 2.0) * scale.SINGLE_SPOT_MAX_MM2 / 4.6) / mm
    if pd == 1:
        n_single, n_conf = [(3, 0), (2, 0), (1, 0), (0, 1), (0, 2), (2, 1), (1, 1)][rng.integers(7)]
    elif pd == 2 and rng.random() < 0.5:
        n_single, n_conf = [(4, 0), (5, 0), (6, 0), (0, 3), (3, 1), (2, 2)][rng.integers(6)]
    else:
        n_single, n_conf = 0, 0
    if n_single + n_conf:
        radii = [conf_r] * n_conf + [single_r] * n_single
        centres: list[tuple[float, float]] = []
        for k in rng.permutation(len(ys))[:300]:  # spots apart from each other, so they stay separate
            if all((ys[k] - y) ** 2 + (xs[k] - x) ** 2 > (3.2 * conf_r) ** 2 for y, x in centres):
                centres.append((ys[k], xs[k]))
            if len(centres) == len(radii):
                break
        return _blobs(rng, shape, centres, radii[: len(centres)]) * synovium
    # a branching field covering a share of the synovium
    share = rng.uniform(0.12, 0.38) if pd == 2 else rng.uniform(0.6, 0.9)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(1.5, 3.5) * 0.04 / mm)
    values = field[synovium]
    cut = np.quantile(values, 1 - share)
    power = np.where(synovium & (field >= cut), 1.0, 0.0)
    return power


# ---------------------------------------------------------------- image formation


def _echo(
    rng, shape, surface, synovium, mm, y_skin, tendon_top, tendon_bottom, head_from, head_to
) -> np.ndarray:
    """Tissue echogenicity (mean backscatter) per pixel."""
    h, w = shape
    rows = np.arange(h, dtype=float)[:, None]
    echo = np.full(shape, rng.uniform(0.22, 0.4))
    # subcutis lobules
    echo *= 1 + 0.35 * ndimage.gaussian_filter(rng.standard_normal(shape), (3 * 0.04 / mm, 8 * 0.04 / mm))
    skin = np.broadcast_to(np.abs(rows - y_skin) < rng.uniform(0.12, 0.25) / mm, shape)
    echo[skin] = rng.uniform(1.1, 1.6)
    tendon = (rows >= tendon_top[None, :]) & (rows < tendon_bottom[None, :])
    fibres = 0.75 + 0.35 * np.sin(rows * 2 * np.pi / rng.uniform(4, 7) + rng.uniform(0, 6))
    echo = np.where(tendon, rng.uniform(0.6, 0.95) * fibres, echo)
    cortex = (rows >= surface[None, :]) & (rows < surface[None, :] + rng.uniform(0.15, 0.3) / mm)
    below = rows >= surface[None, :]
    depth_below = rows - surface[None, :]
    shadow = rng.uniform(0.003, 0.012) * (1 + 2.0 * np.exp(-depth_below / 10.0))
    echo = np.where(below, shadow, echo)
    echo[cortex] = rng.uniform(1.8, 2.6)
    cartilage = (rows < surface[None, :]) & (rows >= surface[None, :] - rng.uniform(0.2, 0.35) / mm)
    cartilage &= (np.arange(shape[1]) > head_from)[None, :] & (np.arange(shape[1]) < head_to)[None, :]
    echo[cartilage & ~synovium] = np.minimum(echo[cartilage & ~synovium], 0.03)
    echo[synovium] = rng.uniform(0.03, 0.09) * (1 + 0.5 * rng.random(int(synovium.sum())))
    return echo


def _speckle(rng, shape, mm) -> np.ndarray:
    """Multiplicative gamma speckle (Nakagami intensity) with its own grain."""
    m = rng.uniform(0.8, 2.5)  # Nakagami shape: under 1 pre-Rayleigh, above it denser scatterers
    cy, cx = rng.uniform(1.2, 2.2), rng.uniform(2.5, 5.0)  # speckle cell (px), longer laterally
    coarse = (int(np.ceil(shape[0] / cy)) + 1, int(np.ceil(shape[1] / cx)) + 1)
    grain = rng.gamma(m, 1 / m, size=coarse)
    grain = ndimage.zoom(grain, (shape[0] / (coarse[0] - 1), shape[1] / (coarse[1] - 1)), order=1)
    grain = ndimage.gaussian_filter(grain[: shape[0], : shape[1]], 0.6)
    return np.sqrt(grain / grain.mean())  # intensity speckle -> amplitude


GREY_TINTS = {"neutral": (1.0, 1.0, 1.0), "sepia": (1.0, 0.9, 0.72), "slate": (0.86, 0.93, 1.0)}
# amplitude 0 -> 1 of the flow: deep orange through orange to pale yellow
FLOW_MAP = np.array([[190, 70, 10], [235, 125, 20], [255, 190, 40], [255, 240, 140]], dtype=float)


def _colour(power: np.ndarray) -> np.ndarray:
    """Flow amplitude (0-1) -> RGB by FLOW_MAP."""
    pos = power.clip(0, 1) * (len(FLOW_MAP) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(FLOW_MAP) - 2)
    t = (pos - lo)[..., None]
    return FLOW_MAP[lo] * (1 - t) + FLOW_MAP[lo + 1] * t


def draw(rng: np.random.Generator, sh: int, pd: int, doppler: bool) -> ForeignItem:
    """One still at the planned grades (not yet checked against the rules)."""
    h = int(rng.integers(26, 35)) * 10
    w = int(rng.integers(34, 45)) * 10
    left, right, top_margin = int(rng.integers(8, 30)), int(rng.integers(24, 40)), int(rng.integers(6, 24))
    fh, fw = h - top_margin - int(rng.integers(4, 16)), w - left - right
    depth_mm = rng.uniform(9, 16)
    mm = depth_mm / fh
    x_joint = fw * rng.uniform(0.4, 0.6)
    y_bone = rng.uniform(3.0, 5.5) / mm
    surface, line, _ = _bones(rng, fw, mm, x_joint, y_bone)
    syn = _synovium(rng, (fh, fw), surface, line, sh, mm)
    xs = np.arange(fw, dtype=float)
    y_skin = rng.uniform(0.15, 0.4) / mm
    tilt = rng.uniform(-0.04, 0.04)
    tendon_bottom = y_bone - rng.uniform(0.5, 1.2) / mm + tilt * (xs - x_joint)
    syn_top = np.where(syn.any(axis=0), np.argmax(syn, axis=0), fh).astype(float)
    tendon_bottom = np.minimum(tendon_bottom, ndimage.minimum_filter1d(syn_top, 9) - 2)  # lifted
    tendon_top = tendon_bottom - rng.uniform(0.7, 1.3) / mm
    tendon_top = np.maximum(tendon_top, y_skin + 0.5 / mm)
    head_to = line[0][0] + 0.5 * (line[1][0] - line[0][0])  # the cartilage caps the proximal head only
    echo = _echo(
        rng, (fh, fw), surface, syn, mm, y_skin, tendon_top, tendon_bottom, head_to - 3.5 / mm, head_to
    )
    rows = np.arange(fh, dtype=float)[:, None]
    atten = np.exp(-rng.uniform(0.05, 0.15) * rows * mm) * (1 + rng.uniform(0.0, 0.8) * rows / fh)
    amp = echo * _speckle(rng, (fh, fw), mm) * np.sqrt(atten)
    db = 20 * np.log10(amp + 1e-4)
    dr = rng.uniform(40, 62)
    ref = np.quantile(db, 0.995) + rng.uniform(-4, 3)  # the gain
    grey = ((db - (ref - dr)) / dr).clip(0, 1) ** rng.uniform(0.7, 1.6)
    tint = GREY_TINTS[("neutral", "neutral", "sepia", "slate")[rng.integers(4)]]
    field = grey[..., None] * 255 * np.array(tint)
    flow_mask = np.zeros((fh, fw), bool)
    if doppler:
        power = _flow(rng, syn, pd, mm)
        # the box holds the whole recess envelope (where synovium of any grade could lie)
        (xl, yl), (xr, yr) = line
        bx0 = int(max(0, xl - rng.uniform(1.5, 3.5) / mm))
        bx1 = int(min(fw, xr + rng.uniform(1.5, 3.5) / mm))
        by0 = int(max(0, min(yl, yr) - rng.uniform(2.0, 3.0) / mm))
        by1 = int(min(fh, max(yl, yr) + rng.uniform(1.0, 2.0) / mm))
        box = np.zeros((fh, fw), bool)
        box[by0:by1, bx0:bx1] = True
        # distractors outside the synovium: a subcutaneous vessel, isolated colour noise
        if rng.random() < 0.6:
            vy = rng.uniform(y_skin + 0.4 / mm, max(y_skin + 0.5 / mm, tendon_top.min() - 2))
            vessel = _blobs(rng, (fh, fw), [(vy, rng.uniform(bx0, bx1))], [rng.uniform(3, 6)])
            power = np.maximum(power, vessel * ~syn)
        noise = (rng.random((fh, fw)) < rng.uniform(0.0, 0.0015)) & ~syn
        power = np.maximum(power, noise * rng.uniform(0.3, 1.0, (fh, fw)))
        flow_mask = (power > 0.35) & box
        field[flow_mask] = _colour(power[flow_mask] * rng.uniform(0.8, 1.2))
        outline = box & ~ndimage.binary_erosion(box)
        field[outline] = (200, 200, 200)
    frame = np.zeros((h, w, 3), np.uint8)
    frame[top_margin : top_margin + fh, left : left + fw] = field.clip(0, 255).astype(np.uint8)
    # a dotted depth scale, one dot per mm, right of the field
    for k in range(int(depth_mm) + 1):
        r = top_margin + int(k / mm)
        if r < h - 1:
            frame[r : r + 2, left + fw + 6 : left + fw + 8] = 170 if k % 5 else 230
    if doppler:  # colour bar, top-left
        bar = _colour(np.linspace(1, 0, 40))[:, None, :]
        frame[top_margin : top_margin + 40, 2:6] = bar.astype(np.uint8)
    synovium = np.zeros((h, w), bool)
    synovium[top_margin : top_margin + fh, left : left + fw] = syn
    flow = np.zeros((h, w), bool)
    flow[top_margin : top_margin + fh, left : left + fw] = flow_mask
    (xl, yl), (xr, yr) = line
    shifted = ((xl + left, yl + top_margin), (xr + left, yr + top_margin))
    return ForeignItem(frame, synovium, flow, shifted, mm, sh, pd)


def draw_checked(rng: np.random.Generator, sh: int, pd: int, doppler: bool, tries: int = 40) -> ForeignItem:
    """Draw until the truth masks grade as planned (ValueError if they never do)."""
    for _ in range(tries):
        item = draw(rng, sh, pd if doppler else 0, doppler)
        got_sh, got_pd = grade_masks(item)
        if got_sh == sh and (not doppler or got_pd == pd):
            if not doppler:
                item.pd = 0
            return item
    raise ValueError(f"could not draw SH {sh} PD {pd} in {tries} tries")


# SPD: each combined grade equally often, spread over the (SH, PD) pairs that give it
_PAIRS = {
    c: [(s, p) for s in range(4) for p in range(4) if scale.is_valid_pair(s, p) and scale.combined(s, p) == c]
    for c in range(4)
}


def plan(n: int, rng: np.random.Generator, modality: str) -> list[tuple[int, int]]:
    """Balanced (SH, PD) plan: SH 0-3 in turn for SGS; combined 0-3 in turn for SPD."""
    targets = rng.permutation(np.arange(n) % 4)
    if modality == "SGS":
        return [(int(t), 0) for t in targets]
    return [_PAIRS[int(t)][rng.integers(len(_PAIRS[int(t)]))] for t in targets]


def make_items(n: int, seed: int, modality: str = "SGS", grades=None) -> list[tuple[ForeignItem, str]]:
    """``n`` items with their truth and a patient id (1-3 joints per patient), deterministic in ``seed``."""
    modality = scale.modality(modality).code
    if modality not in ("SGS", "SPD"):
        raise ValueError(f"the foreign cohort draws SGS or SPD stills, not {modality}")
    rng = np.random.default_rng([seed, 16])
    if grades is None:
        pairs = plan(n, rng, modality)
    else:
        pairs = [(g, 0) if np.isscalar(g) else tuple(g) for g in grades]
        if len(pairs) != n:
            raise ValueError(f"grades has {len(pairs)} entries for n={n}")
    out, patient, left = [], 0, 0
    for i, (sh, pd) in enumerate(pairs):
        if left == 0:
            patient, left = patient + 1, int(rng.integers(1, 4))
        left -= 1
        item_rng = np.random.default_rng([seed, 16, i, modality == "SPD"])
        out.append(
            (draw_checked(item_rng, int(sh), int(pd), modality == "SPD"), f"foreign-{seed}-{patient:04d}")
        )
    return out


def make_foreign(
    n: int, seed: int, modality: str = "SGS", grades=None
) -> list[tuple[np.ndarray, int, int, str]]:
    """(frames uint8 (1, H, W, 3), SH, PD, patient id) per item; see the module docstring."""
    return [(item.frame[None], item.sh, item.pd, pid) for item, pid in make_items(n, seed, modality, grades)]


def target(modality: str, sh: int, pd: int) -> int:
    """The grade a model of this modality learns (SH, or the combined EOSS on Doppler)."""
    return scale.target_grade(modality, sh, pd if scale.modality(modality).doppler else None)


def contact_sheet(n: int = 12, seed: int = 0, columns: int = 4) -> np.ndarray:
    """``n`` items (SGS and SPD alternating) on one RGB sheet, each captioned with its grades."""
    from PIL import Image, ImageDraw

    half = n // 2
    items = [
        x
        for pair in zip(make_items(half, seed, "SGS"), make_items(n - half, seed, "SPD"), strict=False)
        for x in pair
    ]
    cell_h, cell_w = 360, 460
    rows = -(-len(items) // columns)
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (32, 32, 32))
    pen = ImageDraw.Draw(sheet)
    for k, (item, _) in enumerate(items):
        y, x = divmod(k, columns)
        sheet.paste(Image.fromarray(item.frame), (x * cell_w + 4, y * cell_h + 4))
        caption = f"SH {item.sh}" + (
            f"  PD {item.pd}  EOSS {scale.combined(item.sh, item.pd)}" if k % 2 else ""
        )
        caption += (
            f"  {item.frame.shape[1]}x{item.frame.shape[0]}  {item.mm_per_px * item.synovium.shape[0]:.0f} mm"
        )
        pen.text((x * cell_w + 6, y * cell_h + cell_h - 16), caption, fill=(255, 255, 255))
    return np.asarray(sheet)


if __name__ == "__main__":  # python -m tests.foreign_cohort docs/foreign-cohort.png
    import sys

    from PIL import Image

    Image.fromarray(contact_sheet()).save(sys.argv[1] if len(sys.argv) > 1 else "docs/foreign-cohort.png")
