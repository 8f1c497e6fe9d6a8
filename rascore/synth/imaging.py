"""B-mode image formation: echogenicity map, speckle, PSF blur, attenuation/TGC, log compression.

Scatterers: a complex Gaussian field weighted by the echogenicity (Rayleigh envelope), with a
gamma-distributed scatterer density in fat (Nakagami-like statistics) and coherent specular
reflectors (skin, tendon fibres, cortex). The PSF is a separable Gaussian, finer axially than
laterally, sized by the profile's wavelength. Round-trip attenuation of 0.5 dB/cm/MHz is
compensated imperfectly by time-gain compensation; log compression maps a profile's dynamic
range to grey levels. Clips decorrelate the speckle frame to frame (AR(1) on the scatterers).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from rascore.synth.anatomy import JointAnatomy, Scene
from rascore.synth.profiles import grey_lut
from rascore.synth.variation import ScanSetting

SOUND_SPEED_MM_US = 1.54


def _unit_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: tuple[float, float]) -> np.ndarray:
    """Smooth Gaussian noise with unit standard deviation (coarse grid + interpolation when smooth)."""
    step = [max(1, int(sg / 1.5)) for sg in sigma]
    small = tuple(-(-n // k) + 2 for n, k in zip(shape, step))
    f = ndimage.gaussian_filter(
        rng.standard_normal(small, dtype=np.float32), [sg / k for sg, k in zip(sigma, step)], truncate=3.0
    )
    if step != [1, 1]:
        f = ndimage.zoom(f, step, order=1, grid_mode=False)[: shape[0], : shape[1]]
    return f / (f.std() + 1e-9)


def echo_maps(scene: Scene, anat: JointAnatomy, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Echogenicity (incoherent scattering power) and specular amplitude maps on the canvas."""
    px = 1.0 / scene.mm_per_px
    CANVAS_H, CANVAS_W = scene.synovium.shape  # noqa: N806
    rows = np.arange(CANVAS_H, dtype=np.float32)[:, None]
    cols = np.arange(CANVAS_W, dtype=np.float32)
    lay = scene.layers
    streak = _unit_noise(rng, (CANVAS_H, CANVAS_W), (0.2 * px, 1.5 * px))
    coarse = _unit_noise(rng, (CANVAS_H, CANVAS_W), (0.8 * px, 3.0 * px))
    echo = 0.09 * np.exp(0.5 * streak + 0.3 * coarse)  # periarticular / deep soft tissue
    spec = np.zeros((CANVAS_H, CANVAS_W), dtype=np.float32)
    # sparse fascial streaks in the deep soft tissue
    spec = np.where(streak > 2.2, 0.12 * (streak - 2.2), spec)
    # short bright horizontal dashes (fibrous septa, fascicles) scattered through soft tissue
    dash_sigma = 0.4 * px
    dashes = (rng.random((CANVAS_H, CANVAS_W)) < 0.01) * rng.uniform(0.3, 1.0, (CANVAS_H, CANVAS_W))
    dashes = ndimage.gaussian_filter1d(dashes.astype(np.float32), dash_sigma, axis=1, truncate=2.0)
    dashes *= np.float32(np.sqrt(2 * np.pi) * dash_sigma)

    gel = rows < lay["gel"][None, :]
    skin = ~gel & (rows < lay["skin"][None, :])
    sub = (rows >= lay["skin"][None, :]) & (rows < lay["tendon_top"][None, :])
    tendon = (rows >= lay["tendon_top"][None, :]) & (rows < lay["tendon_bottom"][None, :])

    # subcutis: hypoechoic fat lobules crossed by a few thin, broken, mostly horizontal septa
    lob = _unit_noise(rng, (CANVAS_H, CANVAS_W), (0.6 * px, 1.5 * px))
    echo = np.where(sub, 0.025 * np.exp(0.6 * lob), echo)
    top, bot = lay["skin"], lay["tendon_top_rest"]  # septa lie in the resting fat
    septa = np.zeros((CANVAS_H, CANVAS_W), dtype=bool)
    for _ in range(int(rng.integers(3, 9))):
        frac = rng.uniform(0.1, 0.9)
        wave = rng.uniform(0.0, 0.6) * px * np.sin(cols / (rng.uniform(2.0, 6.0) * px) + rng.uniform(0, 6.3))
        centre = top + frac * (bot - top) + wave + rng.uniform(-0.08, 0.08) * (cols - CANVAS_W / 2)
        x0 = rng.uniform(-0.3, 0.7) * CANVAS_W
        span = (cols > x0) & (cols < x0 + rng.uniform(0.2, 0.9) * CANVAS_W)
        septa |= (np.abs(rows - centre[None, :]) < 0.6) & span[None, :]
    septa &= sub
    echo = np.where(septa, 0.2, echo)
    spec = np.where(septa, 0.22, spec)

    # skin: bright entry echo and dermis
    echo = np.where(skin, 0.3 * np.exp(0.3 * streak), echo)
    entry = np.abs(rows - lay["gel"][None, :]) < max(0.8, 0.06 * px)
    spec = np.where(entry, 1.2, spec)

    # tendon: hyperechoic band of fine parallel fibrils following its course
    thick = np.maximum(lay["tendon_bottom"] - lay["tendon_top"], 1.0)
    q = (rows - lay["tendon_top"][None, :]) / thick[None, :]
    # fibril count from the tendon's own thickness, not from where a synovium lifts it
    n_fib = max(anat.tendon * px / rng.uniform(2.0, 2.8), 3.0)
    wobble = 0.5 * _unit_noise(rng, (1, CANVAS_W), (1, 8.0 * px))[0]
    fib = (0.5 + 0.5 * np.cos(2 * np.pi * (q * n_fib + wobble[None, :]))) ** 3
    breaks = np.clip(0.55 + 0.7 * _unit_noise(rng, (CANVAS_H, CANVAS_W), (0.25 * px, 2.5 * px)), 0, 1)
    echo = np.where(tendon, 0.12 + 0.5 * fib * breaks, echo)
    spec = np.where(tendon, 0.6 * fib * breaks, spec)
    edge = max(0.7, 0.05 * px)
    for name in ("tendon_top", "tendon_bottom"):
        spec = np.where(np.abs(rows - lay[name][None, :]) < edge, np.maximum(spec, 0.4), spec)

    # recess: intra-articular fat pad (echogenic) below the tendon, above the bones
    floor = lay["floor"]
    line = lay["line"]
    (x_l, _), (x_r, _) = scene.bone_line
    pad_zone = (
        (rows > line[None, :] - 0.5 * px)
        & (rows < floor[None, :])
        & ((cols > x_l - 1) & (cols < x_r + 1))[None, :]
    )
    echo = np.where(pad_zone, 0.16 * np.exp(0.4 * streak), echo)

    # bone: very bright cortex, dark acoustic shadow below; joint space between the bones
    surface = scene.surface
    below_gap = (rows > scene.gap_row) & ~scene.bone
    echo = np.where(below_gap, 0.008 * np.exp(0.4 * coarse), echo)
    shadow_depth = rows - surface[None, :]
    echo = np.where(scene.bone, 0.0003 * np.exp(0.5 * coarse), echo)
    spec = np.where(scene.bone | below_gap, 0.0, spec)
    cortex = scene.bone & (shadow_depth < max(1.0, 0.12 * px))
    slope = np.abs(np.gradient(np.where(np.isfinite(surface), surface, CANVAS_H)))
    facing = (1.0 / (1.0 + (1.6 * slope) ** 2)).astype(np.float32)
    spec = np.where(cortex, (0.35 + 1.9 * facing)[None, :], spec)
    reverb = scene.bone & (np.abs(shadow_depth - 0.9 * px) < 0.6)
    spec = np.where(reverb, 0.12, spec)
    # cartilage: anechoic band with a thin bright chondrosynovial margin on top
    echo = np.where(scene.cartilage, 0.003, echo)
    cart_top = scene.cartilage & ~np.roll(scene.cartilage, 1, axis=0)
    spec = np.where(cart_top, 0.55, spec)

    # synovium: hypoechoic, mildly heterogeneous, capsule line on top when distended
    syn = scene.synovium
    het = _unit_noise(rng, (CANVAS_H, CANVAS_W), (0.3 * px, 0.6 * px))
    echo = np.where(syn, 0.0025 * np.exp(0.6 * het), echo)
    syn_top = syn & ~np.roll(syn, 1, axis=0)
    spec = np.where(syn, 0.0, spec)
    spec = np.where(np.roll(syn_top, -1, axis=0) & ~syn, np.maximum(spec, 0.35), spec)

    # subcutaneous vessel: anechoic lumen with faint walls
    if scene.vessel.any():
        echo = np.where(scene.vessel, 0.002, echo)
        spec = np.where(scene.vessel, 0.0, spec)  # anechoic lumen, whatever runs beneath
        wall = ndimage.binary_dilation(scene.vessel, iterations=1) & ~scene.vessel
        spec = np.where(wall, np.maximum(spec, 0.3), spec)

    soft = ~(gel | skin | tendon | scene.bone | below_gap | scene.cartilage | syn | scene.vessel)
    spec = np.where(soft, spec + np.where(sub, 0.15, 0.3) * dashes, spec)
    echo = np.where(gel, 0.0004, echo)
    spec = np.where(gel & ~entry, 0.0, spec)
    return echo.astype(np.float32), spec.astype(np.float32)


class BModeImager:
    """Turns one acquisition's echo maps into grey frames, with decorrelating speckle."""

    def __init__(
        self,
        echo: np.ndarray,
        spec: np.ndarray,
        mm_per_px: float,
        setting: ScanSetting,
        gain_db: float,
        rng: np.random.Generator,
        fat_density: np.ndarray | None = None,
    ):
        self.rng = rng
        lay = setting.layout
        self.pad, self.field_h, self.field_w = lay.pad, lay.field_h, lay.field_w
        self.shape = echo.shape
        self.sigma = setting.psf_px(mm_per_px)
        self.smooth = setting.smooth_px
        depth_cm = np.clip((np.arange(echo.shape[0], dtype=np.float32) - lay.pad) * mm_per_px / 10.0, 0, None)
        db_per_cm = 2.0 * setting.attenuation * setting.freq_mhz
        loss_db = db_per_cm * depth_cm
        att = 10.0 ** (-loss_db / 10.0)
        density = np.ones_like(echo) if fat_density is None else fat_density
        power = echo * density * att[:, None] + setting.noise_floor
        self.amp = np.sqrt(power).astype(np.float32)
        self.spec_blur = ndimage.gaussian_filter(spec * np.sqrt(att)[:, None], self.sigma).astype(np.float32)
        # TGC in screen rows: compensates the loss, with a residual error and slider ripple
        n = lay.field_h
        screen_loss = db_per_cm * (np.arange(n, dtype=np.float32) * mm_per_px / 10.0)
        ripple = ndimage.gaussian_filter1d(rng.standard_normal(n), n / 8.0)
        ripple = ripple / (np.abs(ripple).max() + 1e-9)
        comp = rng.uniform(0.85, 1.08)
        if setting.tgc_comp is not None:  # the same draw, stretched over the wider range
            lo, hi = setting.tgc_comp
            comp = lo + (comp - 0.85) / 0.23 * (hi - lo)
        tgc = screen_loss * comp + setting.tgc_error_db * ripple
        if setting.tgc_sliders_db:  # the sonographer's slide pots, interpolated over depth
            knots = np.linspace(0, n - 1, len(setting.tgc_sliders_db))
            tgc = tgc + np.interp(np.arange(n), knots, setting.tgc_sliders_db)
        self.row_db = (tgc + gain_db + setting.gain_db)[:, None].astype(np.float32)
        self.dr = setting.dynamic_range_db
        self.lut = grey_lut(setting.grey_curve, setting.grey_gamma, setting.grey_black)
        self.ref_db = 9.0
        self.scatter = None

    def _fresh(self) -> np.ndarray:
        return self.rng.standard_normal((2,) + self.shape, dtype=np.float32)

    def next_scatter(self, rho: float) -> None:
        """Advance the scatterer field one frame with correlation rho (fresh field if none)."""
        if self.scatter is None or rho <= 0:
            self.scatter = self._fresh()
        else:
            self.scatter = rho * self.scatter + np.float32(np.sqrt(1 - rho**2)) * self._fresh()

    def frame(self, dy: int, dx: int) -> np.ndarray:
        """Grey field (field_h, field_w) uint8 of the current scatterers, probe moved by (dy, dx)."""
        PAD, FIELD_H, FIELD_W = self.pad, self.field_h, self.field_w  # noqa: N806
        CANVAS_H, CANVAS_W = self.shape  # noqa: N806
        y0, x0 = PAD + dy, PAD + dx
        # blur only the window needed (plus a PSF margin) for speed
        m = int(3 * max(self.sigma)) + 2
        ya, yb = max(y0 - m, 0), min(y0 + FIELD_H + m, CANVAS_H)
        xa, xb = max(x0 - m, 0), min(x0 + FIELD_W + m, CANVAS_W)
        field = self.scatter[:, ya:yb, xa:xb] * self.amp[ya:yb, xa:xb]
        field = ndimage.gaussian_filter1d(field, self.sigma[0], axis=1, truncate=3.0)
        field = ndimage.gaussian_filter1d(field, self.sigma[1], axis=2, truncate=3.0)
        field[0] += self.spec_blur[ya:yb, xa:xb]
        sl = (slice(y0 - ya, y0 - ya + FIELD_H), slice(x0 - xa, x0 - xa + FIELD_W))
        inten = field[0] ** 2 + field[1] ** 2
        # incoherent averaging (spatial compounding / display resampling) lowers speckle contrast
        inten = ndimage.gaussian_filter(inten, self.smooth, truncate=2.5)[sl]
        db = 10.0 * np.log10(inten + 1e-12) + self.row_db - self.ref_db
        idx = np.clip((db / self.dr + 1.0) * 1023.0, 0, 1023).astype(np.int32)
        return self.lut[idx]


def fat_density(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Gamma-distributed scatterer density: sparse, clumped scatterers in fat (Nakagami m < 1)."""
    lay = scene.layers
    CANVAS_H, CANVAS_W = scene.synovium.shape  # noqa: N806
    rows = np.arange(CANVAS_H)[:, None]
    sub = (rows >= lay["skin"][None, :]) & (rows < lay["tendon_top"][None, :])
    # both fields drawn whole, so the random stream does not depend on where fat or synovium lie
    sparse = rng.gamma(0.7, 1.0 / 0.7, size=(CANVAS_H, CANVAS_W)).astype(np.float32)
    dense = rng.gamma(6.0, 1.0 / 6.0, size=(CANVAS_H, CANVAS_W)).astype(np.float32)
    return np.where(sub | scene.synovium, sparse, dense)
