"""One acquisition's concrete settings, drawn from its scanner profile's ranges by the item's seed.

``scan_setting(spec)`` is the sampler: with ``spec.variation == "none"`` it returns the profile's
centre settings on the narrow 192 x 256 layout (the simulator as it was before it was widened);
with ``"wide"`` it draws every factor of ``profiles.Variation`` from its own random stream
(``SeedSequence([seed, 6])``), so the draws of the narrow simulator (depth, gain, jitter,
speckle, pulse) are untouched and the same item differs only by the widened factors.
``anatomy_setting(spec)`` draws the joint's widened anatomy from the joint seed, so every modality
of one joint shows the same bones, tendon and subcutis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rascore.synth.profiles import (
    ATTENUATION_DB_CM_MHZ,
    NARROW_LAYOUT,
    VARIATIONS,
    Layout,
    ScannerProfile,
    Variation,
    profile,
)


@dataclass(frozen=True)
class ScanSetting:
    """Everything one acquisition's image formation and screen use, as concrete values."""

    variation: str
    layout: Layout
    freq_mhz: float
    psf_axial_wl: float
    psf_lateral_wl: float
    smooth_px: tuple[float, float]  # (axial, lateral) display blur of the intensity
    attenuation: float  # dB/cm/MHz
    noise_floor: float
    gain_db: float  # offset added to the narrow acquisition's gain
    tgc_error_db: float  # residual TGC ripple amplitude
    tgc_comp: tuple[float, float] | None  # range of loss compensation (None: the narrow 0.85-1.08)
    tgc_sliders_db: tuple[float, ...]  # slider offsets from the top of the field to its bottom
    dynamic_range_db: float
    grey_curve: str
    grey_gamma: float
    grey_black: float
    colour_map: str
    colour_bar_x: int
    grey_bar_x: int
    tick_x: int  # column of the depth ticks
    depth_mm: float | None  # display depth for a full-size joint (None: drawn as the narrow one)
    mm_per_px: tuple[float, float] | None  # clip of the pixel scale
    joint_x: float | None  # joint centre across the field, share of its width (None: narrow)
    standoff_mm: float  # extra gel / stand-off above the skin
    box_wh: tuple[float, float] | None  # colour box size as a share of the field (None: narrow)
    tilt: float  # probe tilt as the shear of the anatomy (rows per column)
    n_annotations: int

    @property
    def wavelength_mm(self) -> float:
        """Wavelength at the centre frequency (speed of sound 1.54 mm/us)."""
        return 1.54 / self.freq_mhz

    def psf_px(self, mm_per_px: float) -> tuple[float, float]:
        """(axial, lateral) PSF sigma in pixels at a pixel scale."""
        wl = self.wavelength_mm / mm_per_px
        return self.psf_axial_wl * wl, self.psf_lateral_wl * wl


@dataclass(frozen=True)
class AnatomySetting:
    """Per-joint factors that widen the anatomy (ones: the narrow anatomy)."""

    head_r_scale: float = 1.0
    shaft_slope: float | None = None
    tendon_scale: float = 1.0
    subcutis_mm: float | None = None


def check_variation(name: str) -> str:
    """Validate a variation name ('none' or 'wide')."""
    if name not in VARIATIONS:
        raise ValueError(f"unknown variation {name!r}; expected one of {', '.join(VARIATIONS)}")
    return name


def narrow_setting(prof: ScannerProfile) -> ScanSetting:
    """The profile's centre settings on the narrow layout: the simulator before it was widened."""
    lay = NARROW_LAYOUT
    return ScanSetting(
        variation="none",
        layout=lay,
        freq_mhz=prof.freq_mhz,
        psf_axial_wl=prof.psf_axial_wl,
        psf_lateral_wl=prof.psf_lateral_wl,
        smooth_px=(0.6, 1.0),
        attenuation=ATTENUATION_DB_CM_MHZ,
        noise_floor=prof.noise_floor,
        gain_db=prof.gain_db,
        tgc_error_db=prof.tgc_error_db,
        tgc_comp=None,
        tgc_sliders_db=(),
        dynamic_range_db=prof.dynamic_range_db,
        grey_curve="gamma",
        grey_gamma=prof.grey_gamma,
        grey_black=0.0,
        colour_map=prof.colour_map,
        colour_bar_x=prof.colour_bar_x,
        grey_bar_x=prof.grey_bar_x,
        tick_x=lay.field_x0 + lay.field_w + 2,
        depth_mm=None,
        mm_per_px=None,
        joint_x=None,
        standoff_mm=0.0,
        box_wh=None,
        tilt=0.0,
        n_annotations=0,
    )


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1]))


def _even(x: float) -> int:
    return int(round(x / 2.0)) * 2  # H.264 (yuv420p) needs even frame sizes


def sample_layout(v: Variation, rng: np.random.Generator) -> Layout:
    """A frame size and aspect, and the field's place in it."""
    h = _even(_u(rng, v.frame_h))
    w = _even(h * _u(rng, v.aspect))
    left = max(20, int(round(w * _u(rng, v.margin_x))))
    right = max(20, int(round(w * _u(rng, v.margin_x))))
    top = max(8, int(round(h * _u(rng, v.margin_y))))
    bottom = max(6, int(round(h * _u(rng, v.margin_y))))
    return Layout(h, w, top, left, h - top - bottom, w - left - right)


def wide_setting(prof: ScannerProfile, rng: np.random.Generator) -> ScanSetting:
    """One acquisition drawn from the profile's ranges."""
    v = prof.variation
    lay = sample_layout(v, rng)
    bar_side = str(rng.choice(v.colour_bar_sides))
    left_bar = max(1, (lay.field_x0 - 16) // 2)  # left of the depth ticks and the focus marker
    right_bar = lay.field_x0 + lay.field_w + max(5, (lay.frame_w - lay.field_x0 - lay.field_w - 5) // 2)
    right_bar = min(right_bar, lay.frame_w - 6)
    colour_x, grey_x = (left_bar, right_bar) if bar_side == "left" else (right_bar, left_bar)
    ticks_right = rng.random() < 0.7
    tick_x = lay.field_x0 + lay.field_w + 2 if ticks_right else lay.field_x0 - 10
    sliders = rng.uniform(-v.tgc_slider_db, v.tgc_slider_db, size=8)
    smooth = _u(rng, v.smooth_px)
    return ScanSetting(
        variation="wide",
        layout=lay,
        freq_mhz=_u(rng, v.freq_mhz),
        psf_axial_wl=_u(rng, v.psf_axial_wl),
        psf_lateral_wl=_u(rng, v.psf_lateral_wl),
        smooth_px=(0.6 * smooth, smooth),
        attenuation=_u(rng, v.attenuation),
        noise_floor=float(10.0 ** _u(rng, v.noise_floor_log10)),
        gain_db=_u(rng, v.gain_db),
        tgc_error_db=0.5 * v.tgc_slider_db,
        tgc_comp=v.tgc_comp,
        tgc_sliders_db=tuple(float(s) for s in sliders),
        dynamic_range_db=_u(rng, v.dynamic_range_db),
        grey_curve=str(rng.choice(v.grey_curves)),
        grey_gamma=_u(rng, v.grey_gamma),
        grey_black=_u(rng, v.grey_black),
        colour_map=str(rng.choice(v.colour_maps)),
        colour_bar_x=int(colour_x),
        grey_bar_x=int(grey_x),
        tick_x=int(tick_x),
        depth_mm=_u(rng, v.depth_mm),
        mm_per_px=v.mm_per_px,
        joint_x=_u(rng, v.joint_x),
        standoff_mm=_u(rng, v.standoff_mm),
        box_wh=(_u(rng, v.box_w), _u(rng, v.box_h)),
        tilt=float(np.tan(np.radians(_u(rng, v.tilt_deg)))),
        n_annotations=int(rng.integers(int(v.annotations[0]), int(v.annotations[1]) + 1)),
    )


def scan_setting(spec) -> ScanSetting:
    """The concrete settings of one item's acquisition, deterministic from its seed and profile."""
    prof = profile(spec.scanner_profile)
    if check_variation(spec.variation) == "none":
        return narrow_setting(prof)
    return wide_setting(prof, np.random.default_rng(np.random.SeedSequence([spec.seed, 6])))


def anatomy_setting(spec) -> AnatomySetting:
    """The joint's widened anatomy factors (from the joint seed: the same in every modality)."""
    if check_variation(spec.variation) == "none":
        return AnatomySetting()
    v = profile(spec.scanner_profile).variation
    rng = np.random.default_rng(np.random.SeedSequence([spec.joint_seed, 7]))
    return AnatomySetting(
        head_r_scale=_u(rng, v.head_r_scale),
        shaft_slope=_u(rng, v.shaft_slope),
        tendon_scale=_u(rng, v.tendon_scale),
        subcutis_mm=_u(rng, v.subcutis_mm),
    )
