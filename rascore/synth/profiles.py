"""Scanner profiles, the ranges an acquisition of each is drawn from, and the screen layout.

A ``ScannerProfile`` holds a machine's centre settings (what every acquisition used before the
simulator was widened, still reachable with ``variation="none"``) and a ``Variation``: the ranges
that one acquisition's concrete ``ScanSetting`` is drawn from, per item, deterministically from
the item's seed (``rascore.synth.variation.scan_setting``). The ranges are meant to be at least
as wide as the differences between real machines, presets and sites: image size and aspect,
field depth (zoom), where the joint sits, gain, time-gain compensation, dynamic range, grey map,
frequency and point-spread function, attenuation, colour map, colour box and bar, probe tilt,
burned-in annotations, and the anatomy of the joint.

Three profiles. The training cohort and test cohort 1 come from ``scanner-A``, a wide family
of settings (several sites' presets); test cohort 2 from ``scanner-B``, another machine, as in
He et al. 2024; test cohort 3 from ``scanner-C``, an "unseen" machine whose settings lie outside
or at the edge of scanner-A's ranges on several factors (another colour map and grey map, a
lower frequency, another frame aspect), which the training cohort never samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FRAME_H, FRAME_W = 192, 256  # the narrow (variation "none") frame
CLIP_FRAMES = 16
CLIP_FPS = 15.0
# The ultrasound field (linear probe, rectangular) inside the narrow frame; the rest is furniture.
FIELD_Y0, FIELD_X0 = 12, 26
FIELD_H, FIELD_W = 172, 204
PAD = 6  # canvas margin around the field, so probe jitter can move the anatomy
ATTENUATION_DB_CM_MHZ = 0.5
VARIATIONS: tuple[str, ...] = ("none", "wide")

Range = tuple[float, float]


@dataclass(frozen=True)
class Layout:
    """Where the ultrasound field lies in one acquisition's frame (pixels)."""

    frame_h: int
    frame_w: int
    field_y0: int
    field_x0: int
    field_h: int
    field_w: int
    pad: int = PAD

    @property
    def canvas_h(self) -> int:
        """Canvas rows: the field plus the jitter margin above and below."""
        return self.field_h + 2 * self.pad

    @property
    def canvas_w(self) -> int:
        """Canvas columns: the field plus the jitter margin left and right."""
        return self.field_w + 2 * self.pad

    @property
    def field_box(self) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1) of the field in frame pixels (y1, x1 exclusive)."""
        return self.field_y0, self.field_x0, self.field_y0 + self.field_h, self.field_x0 + self.field_w


NARROW_LAYOUT = Layout(FRAME_H, FRAME_W, FIELD_Y0, FIELD_X0, FIELD_H, FIELD_W)


@dataclass(frozen=True)
class Variation:
    """Ranges (low, high) that one acquisition's settings are drawn from; anatomy per joint."""

    frame_h: Range = (160, 288)  # frame height, pixels
    aspect: Range = (1.15, 1.6)  # frame width / height
    margin_x: Range = (0.04, 0.16)  # screen furniture left and right of the field, share of width
    margin_y: Range = (0.04, 0.12)  # above and below the field, share of height
    depth_mm: Range = (10.0, 24.0)  # display depth for a full-size joint (small joints zoomed in)
    mm_per_px: Range = (0.055, 0.13)  # the depth is clipped so the pixel scale stays in here
    joint_x: Range = (0.3, 0.7)  # the joint's centre across the field (share of its width)
    standoff_mm: Range = (0.0, 3.0)  # gel or stand-off above the skin: where the joint sits in depth
    gain_db: Range = (-8.0, 8.0)
    tgc_slider_db: float = 3.0  # each of 8 time-gain sliders is off by up to this
    tgc_comp: Range = (0.8, 1.1)  # how much of the depth loss the TGC compensates
    dynamic_range_db: Range = (45.0, 66.0)
    grey_gamma: Range = (1.1, 1.8)
    grey_curves: tuple[str, ...] = ("gamma", "s-curve")  # grey map shapes (see grey_lut)
    grey_black: Range = (0.0, 0.06)  # grey map floor (lifted blacks)
    freq_mhz: Range = (10.0, 16.0)
    psf_axial_wl: Range = (0.5, 0.8)
    psf_lateral_wl: Range = (1.6, 2.6)
    smooth_px: Range = (0.4, 1.2)  # display resampling / compounding blur (lateral; axial 0.6x)
    attenuation: Range = (0.35, 0.7)  # dB/cm/MHz
    noise_floor_log10: Range = (-6.0, -5.0)
    colour_maps: tuple[str, ...] = ("hot-a", "hot-c", "hot-d")
    colour_bar_sides: tuple[str, ...] = ("left", "right")
    box_w: Range = (0.4, 0.95)  # colour box width, share of the field (at least the recess)
    box_h: Range = (0.35, 0.85)
    tilt_deg: Range = (-4.0, 4.0)  # probe tilt: the anatomy rotates (sheared) by up to this
    annotations: Range = (1, 6)  # burned-in annotations (text, calipers, body mark, depth labels)
    # anatomy, drawn per joint (the same in every modality of it)
    head_r_scale: Range = (0.75, 1.35)
    shaft_slope: Range = (0.0, 0.16)
    tendon_scale: Range = (0.7, 1.4)
    subcutis_mm: Range = (0.6, 5.0)


@dataclass(frozen=True)
class ScannerProfile:
    """How one ultrasound machine forms and shows an image: centre settings and their ranges."""

    name: str
    freq_mhz: float  # centre frequency: sets the speckle (PSF) size
    depth_mm: tuple[float, float]  # range of display depth (zoom) chosen per acquisition
    gain_db: float  # mean overall gain
    gain_sd_db: float  # acquisition-to-acquisition gain variation
    dynamic_range_db: float  # log-compression window
    grey_gamma: float  # grey map curve applied after log compression
    tgc_error_db: float  # residual depth-gain error after time-gain compensation
    noise_floor: float  # electronic noise power, relative to tissue
    psf_axial_wl: float  # axial PSF sigma in wavelengths (finer than lateral)
    psf_lateral_wl: float  # lateral PSF sigma in wavelengths
    colour_map: str  # a name in COLOUR_MAPS
    colour_bar_x: int  # left column of the Doppler colour bar (narrow layout)
    grey_bar_x: int  # left column of the grey bar (narrow layout)
    colour_threshold: float  # Doppler power shown above this (relative to flow peak ~1-3)
    variation: Variation = field(default_factory=Variation)  # ranges of the wide family


PROFILES: dict[str, ScannerProfile] = {
    "scanner-A": ScannerProfile(
        name="scanner-A",
        freq_mhz=13.0,
        depth_mm=(12.0, 19.0),
        gain_db=0.0,
        gain_sd_db=3.0,
        dynamic_range_db=54.0,
        grey_gamma=1.45,
        tgc_error_db=3.0,
        noise_floor=2e-6,
        psf_axial_wl=0.6,
        psf_lateral_wl=2.0,
        colour_map="hot-a",
        colour_bar_x=8,
        grey_bar_x=244,
        colour_threshold=1.0,
        variation=Variation(),
    ),
    "scanner-B": ScannerProfile(
        name="scanner-B",
        freq_mhz=9.5,
        depth_mm=(15.0, 22.0),
        gain_db=2.0,
        gain_sd_db=3.0,
        dynamic_range_db=46.0,
        grey_gamma=1.25,
        tgc_error_db=4.0,
        noise_floor=6e-6,
        psf_axial_wl=0.65,
        psf_lateral_wl=2.2,
        colour_map="hot-b",
        colour_bar_x=244,
        grey_bar_x=8,
        colour_threshold=1.0,
        variation=Variation(
            frame_h=(176, 256),
            aspect=(1.25, 1.5),
            depth_mm=(14.0, 24.0),
            gain_db=(-4.0, 8.0),
            tgc_slider_db=4.0,
            dynamic_range_db=(42.0, 54.0),
            grey_gamma=(1.1, 1.4),
            freq_mhz=(8.5, 11.0),
            psf_axial_wl=(0.55, 0.75),
            psf_lateral_wl=(1.9, 2.5),
            noise_floor_log10=(-5.6, -4.9),
            colour_maps=("hot-b",),
            colour_bar_sides=("right",),
        ),
    ),
    # the unseen machine: at or past scanner-A's edges on frequency, aspect, grey map, colour map
    "scanner-C": ScannerProfile(
        name="scanner-C",
        freq_mhz=8.0,
        depth_mm=(18.0, 26.0),
        gain_db=4.0,
        gain_sd_db=3.0,
        dynamic_range_db=70.0,
        grey_gamma=0.9,
        tgc_error_db=4.0,
        noise_floor=8e-6,
        psf_axial_wl=0.75,
        psf_lateral_wl=2.6,
        colour_map="hot-e",
        colour_bar_x=8,
        grey_bar_x=244,
        colour_threshold=1.0,
        variation=Variation(
            frame_h=(176, 240),
            aspect=(1.65, 1.9),  # wider screens than scanner-A ever shows
            margin_x=(0.1, 0.2),
            depth_mm=(20.0, 28.0),
            mm_per_px=(0.09, 0.14),
            gain_db=(0.0, 10.0),
            tgc_slider_db=5.0,
            dynamic_range_db=(66.0, 76.0),
            grey_gamma=(0.8, 1.05),
            grey_curves=("knee",),
            grey_black=(0.06, 0.12),
            freq_mhz=(7.0, 9.0),
            psf_axial_wl=(0.7, 0.9),
            psf_lateral_wl=(2.4, 3.0),
            smooth_px=(1.0, 1.6),
            attenuation=(0.6, 0.8),
            noise_floor_log10=(-5.4, -4.8),
            colour_maps=("hot-e",),
            colour_bar_sides=("right",),
            tilt_deg=(-6.0, 6.0),
            annotations=(4, 8),
        ),
    ),
}


def profile(name: str) -> ScannerProfile:
    """Look up a scanner profile by name, or raise ValueError listing the known ones."""
    if name not in PROFILES:
        raise ValueError(f"unknown scanner profile {name!r}; expected one of {', '.join(PROFILES)}")
    return PROFILES[name]


COLOUR_MAPS: tuple[str, ...] = ("hot-a", "hot-b", "hot-c", "hot-d", "hot-e")


def colour_lut(name: str) -> np.ndarray:
    """Power Doppler colour map as a (256, 3) uint8 table: dark red (weak) to yellow (strong).

    ``hot-a`` was fitted by eye to the GE LOGIQ "PWR" bar of pydicom-data's US1_UNCR.dcm, whose
    flow runs from (110, 0, 0) through (255, 110, 0) to (255, 255, 0) with no blue. The others are
    hot-like ramps of other machines: ``hot-b`` red to yellow with a pale top, ``hot-c`` deep
    orange to pale yellow, ``hot-d`` maroon through red and orange to near white, ``hot-e``
    (scanner-C only) purple-red through orange to yellow.
    """
    v = np.linspace(0.0, 1.0, 256)
    if name == "hot-a":
        r = 110 + 145 * np.clip(v / 0.35, 0, 1)
        g = 255 * np.clip((v - 0.22) / 0.78, 0, 1) ** 0.9
        b = np.zeros_like(v)
    elif name == "hot-b":
        r = 90 + 165 * np.clip(v / 0.5, 0, 1)
        g = 250 * np.clip((v - 0.3) / 0.7, 0, 1) ** 1.2
        b = 90 * np.clip((v - 0.85) / 0.15, 0, 1)
    elif name == "hot-c":
        r = 170 + 85 * np.clip(v / 0.2, 0, 1)
        g = 60 + 180 * np.clip(v, 0, 1) ** 1.1
        b = 120 * np.clip((v - 0.7) / 0.3, 0, 1)
    elif name == "hot-d":
        r = 80 + 175 * np.clip(v / 0.45, 0, 1)
        g = 235 * np.clip((v - 0.35) / 0.65, 0, 1) ** 1.3
        b = 200 * np.clip((v - 0.8) / 0.2, 0, 1) ** 1.5
    elif name == "hot-e":
        r = 120 + 135 * np.clip(v / 0.4, 0, 1)
        g = 240 * np.clip((v - 0.3) / 0.7, 0, 1)
        b = 110 * np.clip(1.0 - v / 0.35, 0, 1)
    else:
        raise ValueError(f"unknown colour map {name!r}; expected one of {', '.join(COLOUR_MAPS)}")
    return np.stack([r, g, b], axis=1).round().clip(0, 255).astype(np.uint8)


def grey_lut(curve: str, gamma: float, black: float = 0.0, size: int = 1024) -> np.ndarray:
    """Grey map from log-compressed level (0..1 over ``size`` steps) to uint8.

    ``gamma``: v ** gamma; ``s-curve``: a gamma then a smooth S (more mid-grey contrast);
    ``knee``: a gamma with a soft knee that compresses the bright end. ``black`` lifts the floor.
    """
    v = np.linspace(0.0, 1.0, size)
    if curve == "gamma":
        out = v**gamma
    elif curve == "s-curve":
        g = v**gamma
        out = 0.5 * g + 0.5 * g * g * (3 - 2 * g)
    elif curve == "knee":
        g = v**gamma
        out = np.where(g < 0.6, g, 0.6 + 0.4 * (1 - np.exp(-(g - 0.6) / 0.25)) / (1 - np.exp(-1.6)))
    else:
        raise ValueError(f"unknown grey curve {curve!r}")
    out = black + (1.0 - black) * np.clip(out, 0.0, 1.0)
    return (255.0 * out).astype(np.uint8)
