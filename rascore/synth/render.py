"""Render an ItemSpec to frames and truth masks: stills, cine clips, power Doppler overlays.

Deterministic from ``spec.seed``: the joint's anatomy, synovium and flow come from the joint
seed (``seed // 8``), the acquisition (depth, gain, probe position, speckle, phase, jitter,
distractors) from the item seed, and with ``spec.variation == "wide"`` the acquisition's widened
settings (frame size, grey and colour maps, frequency, tilt, annotations: ``variation.py``) from
the item seed's own stream.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rascore.synth import doppler as dop
from rascore.synth import grading
from rascore.synth.anatomy import (
    JOINT_SIZE,
    Scene,
    build_scene,
    enlarge,
    sample_anatomy,
    sample_synovium,
)
from rascore.synth.cohort import ItemSpec
from rascore.synth.imaging import BModeImager, echo_maps, fat_density
from rascore.synth.profiles import (
    CLIP_FPS,
    CLIP_FRAMES,
    PAD,
    Layout,
    ScannerProfile,
    colour_lut,
    profile,
)
from rascore.synth.screen import COLOUR_BAR_Y, GREY_BAR_Y, annotations, bar_rows, furniture
from rascore.synth.variation import ScanSetting, anatomy_setting, scan_setting

__all__ = [
    "COLOUR_BAR_Y",
    "GREY_BAR_Y",
    "SimItem",
    "bar_rows",
    "render_item",
    "render_many",
    "visible_grades",
]


@dataclass
class SimItem:
    """A rendered item: RGB frames and the truth behind them (masks in frame pixels)."""

    spec: ItemSpec
    frames: np.ndarray  # uint8 (T, H, W, 3): 192 x 256 with variation "none", else the setting's
    fps: float | None  # None for stills
    synovium: np.ndarray  # bool (T, H, W)
    doppler: np.ndarray  # bool (T, H, W): coloured synovial flow shown in each frame
    bone_line: np.ndarray  # float (T, 2, 2): per frame the two bone tops (x, y)
    bone: np.ndarray  # bool (T, H, W)
    peak_doppler: np.ndarray  # bool (H, W): the joint's synovial flow at systolic peak (also on
    # greyscale items), in the pixels of the max-Doppler frame (0 if none)
    mm_per_px: float
    offsets: np.ndarray  # int (T, 2): probe jitter (dy, dx) in pixels
    pulse: np.ndarray  # float (T,): Doppler power modulation (1 = systolic peak)
    colour_box: tuple[int, int, int, int] | None  # (y0, x0, y1, x1) in frame pixels, PD only
    shown_pd: int  # PD grade the frames show at their best (0 on greyscale; stills may understate)
    recess: tuple[int, int, int, int] | None = None  # (y0, x0, y1, x1) frame pixels at zero probe offset:
    # where a synovium of any grade could lie in this joint (grade-independent)
    setting: ScanSetting | None = None  # the acquisition's concrete settings (layout, maps, ...)
    annotations: np.ndarray | None = None  # bool (H, W): burned-in annotation pixels

    @property
    def layout(self) -> Layout:
        """Where the ultrasound field lies in this item's frames."""
        return (self.setting or scan_setting(self.spec)).layout


@dataclass
class _Acquisition:
    depth_mm: float
    gain_db: float
    x_shift_mm: float
    gel_mm: float
    rho: float
    m_min: float
    heart_frames: float
    peak_frame: int
    still_phase: float
    flash_frames: tuple[int, ...]
    noise_density: float
    box_wh: tuple[float, float]


def _sample_acquisition(
    spec: ItemSpec, prof: ScannerProfile, rng: np.random.Generator, setting: ScanSetting
) -> _Acquisition:
    """The narrow acquisition's draws (always made, in this order), then the widened overrides."""
    lay = setting.layout
    # sonographers zoom in on small joints
    zoom = 0.55 + 0.45 * JOINT_SIZE.get(spec.joint, 1.0)
    depth = rng.uniform(*prof.depth_mm) * zoom
    n_frames = CLIP_FRAMES if spec.dynamic else 1
    flash: tuple[int, ...] = ()
    if spec.doppler:
        if spec.dynamic and rng.random() < 0.4:
            k = int(rng.integers(n_frames - 1))
            flash = (k, k + 1) if rng.random() < 0.5 else (k,)
        elif not spec.dynamic and rng.random() < 0.2:
            flash = (0,)
    acq = _Acquisition(
        depth_mm=depth,
        gain_db=rng.normal(0.0, prof.gain_sd_db),
        x_shift_mm=rng.uniform(-0.14, 0.14) * lay.field_w * depth / lay.field_h,
        gel_mm=rng.uniform(0.0, 1.2),
        rho=rng.uniform(0.75, 0.95),
        m_min=rng.uniform(0.55, 0.92),
        heart_frames=CLIP_FPS * 60.0 / rng.uniform(55, 95),
        peak_frame=int(rng.integers(n_frames)),
        still_phase=rng.uniform(0, 1),
        flash_frames=flash,
        noise_density=rng.uniform(0.0, 0.002) if rng.random() < 0.6 else 0.0,
        box_wh=(rng.uniform(0.45, 0.92), rng.uniform(0.4, 0.8)),
    )
    if setting.depth_mm is not None:
        lo, hi = setting.mm_per_px
        acq.depth_mm = float(np.clip(setting.depth_mm * zoom / lay.field_h, lo, hi)) * lay.field_h
        acq.x_shift_mm = (setting.joint_x - 0.5) * lay.field_w * acq.depth_mm / lay.field_h
    acq.gel_mm += setting.standoff_mm
    if setting.box_wh is not None:
        acq.box_wh = setting.box_wh
    return acq


def _jitter(n: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth hand-held probe motion: integer (dy, dx) offsets within the canvas margin."""
    if n == 1:
        return np.zeros((1, 2), dtype=int)
    walk = np.cumsum(rng.normal(0, [0.5, 0.9], size=(n, 2)), axis=0)
    walk = ndimage.gaussian_filter1d(walk, 1.0, axis=0)
    walk -= walk.mean(axis=0)
    lim = np.array([2, PAD - 1])
    return np.clip(np.round(walk), -lim, lim).astype(int)


def _pulse(acq: _Acquisition, n: int) -> np.ndarray:
    """Doppler power modulation per frame: exactly 1 on the peak frame of a clip."""
    if n == 1:
        phases = np.array([acq.still_phase])
    else:
        phases = dop.PEAK_PHASE + (np.arange(n) - acq.peak_frame) / acq.heart_frames
    m = acq.m_min + (1 - acq.m_min) * dop.cardiac_wave(phases) / dop.cardiac_wave(dop.PEAK_PHASE)
    m = np.minimum(m, 1.0)
    if n > 1:
        m[acq.peak_frame] = 1.0
    return m


class _Geometry:
    """Joint anatomy, synovium and flow for one acquisition, verified against the EOSS rules."""

    def __init__(self, spec: ItemSpec, acq: _Acquisition, setting: ScanSetting):
        jrng = np.random.default_rng(np.random.SeedSequence([spec.joint_seed, 1]))
        self.anat = sample_anatomy(spec.joint, jrng, anatomy_setting(spec))
        self.u_sh, self.u_pd = jrng.uniform(0.05, 0.95, size=2)
        lay = setting.layout
        if setting.depth_mm is not None:
            # the sonographer sets the depth deep enough to show the joint and the bone below it
            a = self.anat
            need = acq.gel_mm + a.skin + a.subcutis + a.tendon + a.capsule + max(a.phal_dy, 0.0)
            need += 1.6 * a.v_depth + 2.0 + abs(setting.tilt) * lay.field_w * acq.depth_mm / lay.field_h * 0.6
            acq.depth_mm = max(acq.depth_mm, need)
        s = acq.depth_mm / lay.field_h
        min_area = max(40.0, 0.45 * self.anat.size**2 / s**2)
        anat = self.anat
        for attempt in range(60):
            # later attempts move towards a larger synovium within the grade, then a larger
            # joint, so that small joints at coarse pixel scales can still hold the synovitis
            u_sh = self.u_sh + (0.98 - self.u_sh) * min(attempt / 20, 1.0)
            if attempt >= 25:
                anat = enlarge(self.anat, 1.04 ** (attempt - 24))
            syn = sample_synovium(spec.sh, u_sh, anat, jrng)
            scene = build_scene(anat, syn, s, acq.x_shift_mm, acq.gel_mm, lay, setting.tilt)
            area = int(scene.synovium.sum())
            if grading.sh_from_mask(scene.synovium, scene.bone_line) != spec.sh:
                continue
            if spec.sh > 0 and area < min_area * (1.0 - attempt / 60):
                continue
            try:
                flow = dop.synovial_flow(scene.synovium, spec.pd, self.u_pd, s, jrng, tries=15)
            except RuntimeError:
                continue
            break
        else:
            raise RuntimeError(f"could not draw SH {spec.sh} / PD {spec.pd} for {spec.key}")
        self.anat = anat
        self.scene: Scene = scene
        self.flow: np.ndarray = flow


def _crop(canvas: np.ndarray, dy: int, dx: int, lay: Layout) -> np.ndarray:
    """Canvas window seen by the probe at offset (dy, dx), placed in a full frame."""
    out = np.zeros((lay.frame_h, lay.frame_w) + canvas.shape[2:], dtype=canvas.dtype)
    y0, x0, p = lay.field_y0, lay.field_x0, lay.pad
    out[y0 : y0 + lay.field_h, x0 : x0 + lay.field_w] = canvas[
        p + dy : p + dy + lay.field_h, p + dx : p + dx + lay.field_w
    ]
    return out


def _colour_box(
    scene: Scene, acq: _Acquisition, rng: np.random.Generator, lay: Layout
) -> tuple[int, int, int, int]:
    """Doppler colour box in frame pixels: random size and place, always holding the joint recess.

    What it must hold (scene.recess) is where a synovium of any grade could lie in this joint, so
    neither its size nor its place depends on the grade.
    """
    FIELD_Y0, FIELD_X0, FIELD_H, FIELD_W = lay.field_y0, lay.field_x0, lay.field_h, lay.field_w  # noqa: N806
    PAD = lay.pad  # noqa: N806
    y0, x0, y1, x1 = scene.recess
    margin = 3 + PAD
    ry0, rx0 = y0 - PAD + FIELD_Y0 - margin, x0 - PAD + FIELD_X0 - margin
    ry1, rx1 = y1 - PAD + FIELD_Y0 + margin, x1 - PAD + FIELD_X0 + margin
    ry0, rx0 = max(ry0, FIELD_Y0 + 1), max(rx0, FIELD_X0 + 1)
    ry1, rx1 = min(ry1, FIELD_Y0 + FIELD_H - 2), min(rx1, FIELD_X0 + FIELD_W - 2)
    bw = max(int(acq.box_wh[0] * FIELD_W), rx1 - rx0)
    bh = max(int(acq.box_wh[1] * FIELD_H), ry1 - ry0)
    bw, bh = min(bw, FIELD_W - 2), min(bh, FIELD_H - 2)
    lo_x, hi_x = max(FIELD_X0 + 1, rx1 - bw), min(rx0, FIELD_X0 + FIELD_W - 1 - bw)
    lo_y, hi_y = max(FIELD_Y0 + 1, ry1 - bh), min(ry0, FIELD_Y0 + FIELD_H - 1 - bh)
    bx = (
        int(rng.integers(lo_x, hi_x + 1))
        if hi_x >= lo_x
        else max(FIELD_X0 + 1, min(rx0, FIELD_X0 + FIELD_W - 1 - bw))
    )
    by = (
        int(rng.integers(lo_y, hi_y + 1))
        if hi_y >= lo_y
        else max(FIELD_Y0 + 1, min(ry0, FIELD_Y0 + FIELD_H - 1 - bh))
    )
    return by, bx, by + bh, bx + bw


def render_item(spec: ItemSpec) -> SimItem:
    """Render one item (still or clip, greyscale or power Doppler), deterministic from spec.seed."""
    prof = profile(spec.scanner_profile)
    setting = scan_setting(spec)
    lay = setting.layout
    fh, fw = lay.frame_h, lay.frame_w
    fy0, fx0, fy1, fx1 = lay.field_box
    irng = np.random.default_rng(np.random.SeedSequence([spec.seed, 2]))
    acq = _sample_acquisition(spec, prof, irng, setting)
    geo = _Geometry(spec, acq, setting)
    scene = geo.scene
    s = scene.mm_per_px
    n = CLIP_FRAMES if spec.dynamic else 1
    offsets = _jitter(n, irng)
    pulse = _pulse(acq, n) if spec.doppler else np.ones(n)

    trng = np.random.default_rng(np.random.SeedSequence([spec.joint_seed, 3]))
    echo, spec_map = echo_maps(scene, geo.anat, trng)
    imager = BModeImager(echo, spec_map, s, setting, acq.gain_db, irng, fat_density(scene, trng))
    focus_row = float(np.mean(scene.bone_line[:, 1])) - lay.pad

    box = None
    if spec.doppler:
        box = _colour_box(scene, acq, irng, lay)
        vrng = np.random.default_rng(np.random.SeedSequence([spec.joint_seed, 4]))
        vessel = dop.vessel_flow(scene.vessel, scene.vessel_radius_px, vrng)
        vessel_pulse = irng.uniform(0.5, 0.95)
        flash = None
        if acq.flash_frames:
            layers = scene.layers
            flash = dop.flash_field(scene.synovium.shape, layers["skin"] + 1, layers["tendon_bottom"], irng)
        lut = colour_lut(setting.colour_map)
        inside = np.zeros((fh, fw), dtype=bool)
        inside[box[0] + 1 : box[2], box[1] + 1 : box[3]] = True
        inside[:fy0] = inside[fy1:] = False
        inside[:, :fx0] = inside[:, fx1:] = False
        keep_out = ndimage.binary_dilation(scene.synovium, iterations=2)
    recess = _to_frame(scene.recess, lay)
    notes = None
    if setting.n_annotations:
        notes = annotations(spec, setting, recess, s, geo.anat.tendon, focus_row, acq.depth_mm)

    frames = np.zeros((n, fh, fw, 3), dtype=np.uint8)
    syn_t = np.zeros((n, fh, fw), dtype=bool)
    dop_t = np.zeros((n, fh, fw), dtype=bool)
    bone_t = np.zeros((n, fh, fw), dtype=bool)
    line_t = np.zeros((n, 2, 2))
    for t in range(n):
        dy, dx = int(offsets[t, 0]), int(offsets[t, 1])
        imager.next_scatter(acq.rho)
        grey = imager.frame(dy, dx)
        frame = frames[t]
        frame[fy0:fy1, fx0:fx1] = grey[:, :, None]
        syn_t[t] = _crop(scene.synovium, dy, dx, lay)
        bone_t[t] = _crop(scene.bone, dy, dx, lay)
        line_t[t] = scene.bone_line - [lay.pad + dx, lay.pad + dy] + [fx0, fy0]
        furniture(frame, setting, acq.depth_mm, focus_row, spec.doppler, box)
        if spec.doppler:
            m = pulse[t]
            flow_shown = (geo.flow * m > 1.0) & scene.synovium
            power = np.where(flow_shown, geo.flow * m, 0.0)
            vm = vessel_pulse + (1 - vessel_pulse) * m
            power = np.where(vessel * vm > 1.0, np.maximum(power, vessel * vm), power)
            if flash is not None and t in acq.flash_frames:
                power = np.where((flash > 1.0) & ~keep_out, np.maximum(power, flash), power)
            # a frame's own stream for colour noise and colour level, so that neither the frames
            # after it nor anything outside the synovium depends on how much synovium there is
            frng = np.random.default_rng(np.random.SeedSequence([spec.seed, 5, t]))
            if acq.noise_density > 0:  # colour noise: isolated pixels, never on the synovium
                ch, cw = scene.synovium.shape
                n_speck = frng.poisson(acq.noise_density * ch * cw)
                ys, xs = frng.integers(0, ch, n_speck), frng.integers(0, cw, n_speck)
                level_speck = 1.0 + 0.4 * frng.random(n_speck)
                ok = ~keep_out[ys, xs]
                power[ys[ok], xs[ok]] = np.maximum(power[ys[ok], xs[ok]], level_speck[ok])
            shown = _crop(power, dy, dx, lay)
            colour = inside & (shown > 1.0)
            dop_t[t] = _crop(flow_shown, dy, dx, lay) & inside
            level = 0.12 + 0.88 * np.clip((shown[colour] - 1.0) / 1.3, 0, 1) ** 0.7
            level = np.clip(level + frng.normal(0, 0.06, size=(fh, fw))[colour], 0, 1)
            frame[colour] = lut[(level * 255).astype(int)]
        if notes is not None:  # burned in on top of everything, the same in every frame
            frame[notes[0]] = notes[1][notes[0]][:, None]

    t_max = int(np.argmax(dop_t.reshape(n, -1).sum(axis=1)))
    dy, dx = int(offsets[t_max, 0]), int(offsets[t_max, 1])
    peak = _crop((geo.flow > 1.0) & scene.synovium, dy, dx, lay)
    shown_pd = grading.pd_from_mask(dop_t[t_max], syn_t[t_max], s) if spec.doppler and spec.sh > 0 else 0
    return SimItem(
        spec=spec,
        frames=frames,
        fps=CLIP_FPS if spec.dynamic else None,
        synovium=syn_t,
        doppler=dop_t,
        bone_line=line_t,
        bone=bone_t,
        peak_doppler=peak,
        mm_per_px=s,
        offsets=offsets,
        pulse=pulse,
        colour_box=box,
        shown_pd=shown_pd,
        recess=recess,
        setting=setting,
        annotations=None if notes is None else notes[0],
    )


def _to_frame(box: tuple[int, int, int, int], lay: Layout) -> tuple[int, int, int, int]:
    """A canvas box in frame pixels at zero probe offset."""
    y0, x0, y1, x1 = box
    dy, dx = lay.field_y0 - lay.pad, lay.field_x0 - lay.pad
    return y0 + dy, x0 + dx, y1 + dy, x1 + dx


def visible_grades(spec: ItemSpec) -> tuple[int, int | None]:
    """(SH, PD) a careful reader could see on the item: PD None on greyscale; a still may show less PD.

    Cheap: draws the geometry and flow only, no speckle.
    """
    if not spec.doppler:
        return spec.sh, None
    if spec.dynamic or spec.pd == 0:
        return spec.sh, spec.pd
    prof = profile(spec.scanner_profile)
    setting = scan_setting(spec)
    irng = np.random.default_rng(np.random.SeedSequence([spec.seed, 2]))
    acq = _sample_acquisition(spec, prof, irng, setting)
    geo = _Geometry(spec, acq, setting)
    m = float(_pulse(acq, 1)[0])
    shown = (geo.flow * m > 1.0) & geo.scene.synovium
    return spec.sh, grading.pd_from_mask(shown, geo.scene.synovium, geo.scene.mm_per_px)


def render_many(specs: Iterable[ItemSpec], workers: int = 2) -> Iterator[SimItem]:
    """Render specs in worker processes, yielding items in the order given.

    Workers start with the forkserver method (safe in threaded parents such as Streamlit), so
    a calling script needs the usual ``if __name__ == "__main__":`` guard.
    """
    specs = list(specs)
    if workers <= 1 or len(specs) <= 1:
        for spec in specs:
            yield render_item(spec)
        return
    # forkserver: safe in threaded parents (Streamlit, BLAS/OpenMP pools), cheap after the first start
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers) as pool:
        yield from pool.imap(render_item, specs, chunksize=4)
