"""Power Doppler: synovial flow placed by the EOSS PD rules, pulsatility, and distractors.

Flow is a power map P on the canvas, normalised so that a pixel is coloured where P * m > 1,
m being the cardiac modulation (1 at systolic peak, down to m_min in diastole). At m = 1 the
coloured pixels inside the synovium follow the PD grade exactly (checked with grading); in
diastole spots shrink or vanish, so one frame can understate the grade.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from rascore.synth import grading


def cardiac_wave(phase: np.ndarray | float) -> np.ndarray:
    """Relative Doppler power over the cardiac cycle (1 at the systolic peak, phase 0.12)."""
    p = np.asarray(phase, dtype=float)
    d1 = (p - 0.12 + 0.5) % 1.0 - 0.5
    d2 = (p - 0.34 + 0.5) % 1.0 - 0.5
    w = np.exp(-((d1 / 0.075) ** 2)) + 0.32 * np.exp(-((d2 / 0.09) ** 2))
    return w / (1.0 + 0.32 * np.exp(-(((0.22) / 0.09) ** 2)))


PEAK_PHASE = 0.12


def _blob(shape: tuple[int, int], cy: float, cx: float, sy: float, sx: float, angle: float) -> np.ndarray:
    """Unit-peak anisotropic Gaussian on a grid (only a local window is evaluated)."""
    h, w = shape
    r = int(np.ceil(3.2 * max(sy, sx))) + 1
    y0, y1 = max(int(cy) - r, 0), min(int(cy) + r + 2, h)
    x0, x1 = max(int(cx) - r, 0), min(int(cx) + r + 2, w)
    out = np.zeros(shape)
    if y0 >= y1 or x0 >= x1:
        return out
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(float)
    c, s = np.cos(angle), np.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    out[y0:y1, x0:x1] = np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    return out


def _spots(
    synovium: np.ndarray, n_single: int, n_confluent: int, mm_per_px: float, rng: np.random.Generator
) -> np.ndarray | None:
    """Separate single and confluent spots inside the synovium; None if they do not fit."""
    single_max = grading.SINGLE_SPOT_MAX_MM2 / mm_per_px**2
    inner = ndimage.binary_erosion(synovium, iterations=1)
    if not inner.any():
        inner = synovium
    ys, xs = np.nonzero(inner)
    if len(ys) == 0:
        return None
    power = np.zeros(synovium.shape)
    placed: list[tuple[float, float, float]] = []
    kinds = ["c"] * n_confluent + ["s"] * n_single
    for kind in kinds:
        amp = rng.uniform(1.5, 3.5)
        if kind == "s":
            area = max(2.2, rng.uniform(0.25, 0.6) * single_max)
            sig = np.sqrt(area / (2 * np.pi * np.log(amp)))
            sy = sx = sig
            reach = sig * np.sqrt(2 * np.log(amp))
        else:
            area = max(1.8 * single_max, rng.uniform(2.0, 4.5) * single_max, 10.0)
            elong = rng.uniform(1.6, 3.0)
            sig = np.sqrt(area / (2 * np.pi * np.log(amp) * elong))
            sy, sx = sig, sig * elong
            reach = sx * np.sqrt(2 * np.log(amp))
        for _ in range(60):
            i = rng.integers(len(ys))
            cy, cx = float(ys[i]), float(xs[i])
            if all(np.hypot(cy - py, cx - px_) > reach + pr + 2.5 for py, px_, pr in placed):
                break
        else:
            return None
        placed.append((cy, cx, reach))
        power = np.maximum(power, amp * _blob(synovium.shape, cy, cx, sy, sx, rng.uniform(0, np.pi)))
    return power


def _field(
    synovium: np.ndarray, coverage: float, mm_per_px: float, rng: np.random.Generator, corr_mm: float
) -> np.ndarray:
    """Smooth random flow filling a given fraction of the synovium at systolic peak."""
    sig = max(corr_mm / mm_per_px, 0.8)
    angle_stretch = rng.uniform(0.7, 1.5)
    noise = rng.standard_normal(synovium.shape)
    f = ndimage.gaussian_filter(noise, (sig * angle_stretch, sig / angle_stretch))
    # near the zero crossings of a smooth field: branching, vessel-like streaks
    blob = ndimage.gaussian_filter(rng.standard_normal(synovium.shape), 2.5 * sig)
    f = -np.abs(f / (f[synovium].std() + 1e-9)) + 1.2 * blob / (blob[synovium].std() + 1e-9)
    vals = f[synovium]
    thr = np.quantile(vals, 1.0 - coverage)
    top = vals.max()
    amp = rng.uniform(2.0, 3.6)
    power = 1.0 + (amp - 1.0) * (f - thr) / max(top - thr, 1e-9)
    return np.where(synovium, np.maximum(power, 0.0), 0.0)


def synovial_flow(
    synovium: np.ndarray, pd: int, u: float, mm_per_px: float, rng: np.random.Generator, tries: int = 40
) -> np.ndarray:
    """Flow power map whose coloured pixels at systolic peak grade exactly as PD ``pd``."""
    if pd == 0 or not synovium.any():
        return np.zeros(synovium.shape)
    for _ in range(tries):
        if pd == 1:
            pattern = rng.choice(3)
            if pattern == 0:
                power = _spots(synovium, 1 + int(u * 2.99), 0, mm_per_px, rng)
            elif pattern == 1:
                power = _spots(synovium, 0, 1 + int(u * 1.99), mm_per_px, rng)
            else:
                power = _spots(synovium, 1 + int(u * 1.99), 1, mm_per_px, rng)
        elif pd == 2 and rng.random() < 0.3:
            # just past grade 1: too many spots for it (4 single, 3 confluent, 2 + 1, 1 + 3)
            n_single, n_confluent = [(4, 0), (0, 3), (1, 2), (3, 1)][rng.integers(4)]
            power = _spots(synovium, n_single, n_confluent, mm_per_px, rng)
        elif pd == 2:
            coverage = 0.07 + 0.33 * u * rng.uniform(0.8, 1.0)
            power = _field(synovium, coverage, mm_per_px, rng, rng.uniform(0.15, 0.35))
        else:
            coverage = 0.56 + 0.34 * u * rng.uniform(0.8, 1.0)
            power = _field(synovium, coverage, mm_per_px, rng, rng.uniform(0.15, 0.4))
        if power is None:
            continue
        if grading.pd_from_mask(power > 1.0, synovium, mm_per_px) == pd:
            return power
    raise RuntimeError(f"could not place PD {pd} flow in a synovium of {int(synovium.sum())} px")


def vessel_flow(vessel: np.ndarray, radius_px: float, rng: np.random.Generator) -> np.ndarray:
    """Flow power in a subcutaneous vessel: laminar profile, patchy along its length."""
    if not vessel.any() or radius_px <= 0:
        return np.zeros(vessel.shape)
    dist = ndimage.distance_transform_edt(vessel)
    profile = np.clip(dist / max(radius_px, 1.0), 0, 1) ** 0.6
    patch = ndimage.gaussian_filter1d(rng.standard_normal(vessel.shape[1]), 12.0)
    patch = 1.0 + 0.8 * patch / (patch.std() + 1e-9)
    amp = rng.uniform(1.1, 2.4)
    return np.where(vessel, amp * profile * np.clip(patch, 0.2, 2.0)[None, :], 0.0)


def flash_field(
    shape: tuple[int, int], top: np.ndarray, bottom: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Motion flash: blotchy low-level colour across a band of superficial tissue."""
    rows = np.arange(shape[0])[:, None]
    band = (rows >= top[None, :]) & (rows < bottom[None, :])
    f = ndimage.gaussian_filter(rng.standard_normal(shape), (4.0, 10.0))
    f = f / (f.std() + 1e-9)
    x0 = rng.uniform(0, shape[1] * 0.5)
    x1 = x0 + rng.uniform(0.3, 1.0) * shape[1]
    lateral = (np.arange(shape[1]) >= x0) & (np.arange(shape[1]) <= x1)
    level = rng.uniform(0.9, 1.8)
    return np.where(band & lateral[None, :], np.maximum(level + 0.6 * f, 0), 0.0)
