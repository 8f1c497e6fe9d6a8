"""Scanner profiles (gain, frequency, depth, dynamic range, grey and colour maps) and screen layout.

Test cohort 2 comes from another machine, as in He et al. 2024: scanner-B has a lower frequency
(coarser speckle), deeper default depth, a narrower dynamic range, another grey curve, another
Doppler colour map and its colour bar on the other side of the screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_H, FRAME_W = 192, 256
CLIP_FRAMES = 16
CLIP_FPS = 15.0
# The ultrasound field (linear probe, rectangular) inside the frame; the rest is screen furniture.
FIELD_Y0, FIELD_X0 = 12, 26
FIELD_H, FIELD_W = 172, 204
PAD = 6  # canvas margin around the field, so probe jitter can move the anatomy
ATTENUATION_DB_CM_MHZ = 0.5


@dataclass(frozen=True)
class ScannerProfile:
    """How one ultrasound machine forms and shows an image."""

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
    colour_map: str  # "hot-a" or "hot-b"
    colour_bar_x: int  # left column of the Doppler colour bar
    grey_bar_x: int  # left column of the grey bar
    colour_threshold: float  # Doppler power shown above this (relative to flow peak ~1-3)


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
    ),
}


def profile(name: str) -> ScannerProfile:
    """Look up a scanner profile by name, or raise ValueError listing the known ones."""
    if name not in PROFILES:
        raise ValueError(f"unknown scanner profile {name!r}; expected one of {', '.join(PROFILES)}")
    return PROFILES[name]


def colour_lut(name: str) -> np.ndarray:
    """Power Doppler colour map as a (256, 3) uint8 table: dark red (weak) to yellow (strong).

    Fitted by eye to the GE LOGIQ "PWR" bar of pydicom-data's US1_UNCR.dcm, whose flow runs from
    (110, 0, 0) through (255, 110, 0) to (255, 255, 0) with no blue.
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
    else:
        raise ValueError(f"unknown colour map {name!r}")
    return np.stack([r, g, b], axis=1).round().clip(0, 255).astype(np.uint8)
