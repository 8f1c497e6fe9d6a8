"""Non-learned SPD/DPD baseline, the PD-only colour rule: the EOSS power Doppler definitions
applied to the colour pixels inside an estimate of the synovium found by simple image processing.

Doppler pixels: HSV saturation > 0.4 with an orange-to-yellow hue (RATING's rule). Synovium: the
hypoechoic region (or coloured, since colour overwrites the greyscale) in a band above the bone
line, the bone line being the brightest deep row per column. PD grade: rascore.scale
.pd_grade_from_spots of the colour spots inside that region (scipy.ndimage.label; single up to
scale.SINGLE_SPOT_MAX_MM2, else confluent) and of their coverage (grade 3 above
scale.PD_GRADE3_COVERAGE), on a clip's best frame (readers grade a clip at peak flow). It grades
PD only, so it is scored against the PD reference. Per-grade scores come from soft thresholds on
the grade ordered within it by coverage, so AUCs can be computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from rascore.nets.heads import cumulative_to_grades
from rascore.scale import SINGLE_SPOT_MAX_MM2, pd_grade_from_spots

_EIGHT = np.ones((3, 3), dtype=bool)


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 (..., 3) RGB -> hue in degrees [0, 360), saturation and value in [0, 1]."""
    x = rgb.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    high = x.max(axis=-1)
    low = x.min(axis=-1)
    delta = high - low
    safe = np.where(delta > 0, delta, 1.0)
    hue = (
        np.where(
            high == r, ((g - b) / safe) % 6.0, np.where(high == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
        )
        * 60.0
    )
    hue = np.where(delta > 0, hue, 0.0)
    saturation = np.where(high > 0, delta / np.where(high > 0, high, 1.0), 0.0)
    return hue, saturation, high


@dataclass(frozen=True)
class PdReading:
    """The rule's reading of an image or clip (its best frame): PD grade, coverage and spots."""

    grade: int
    coverage: float  # coloured share of the estimated synovium
    n_single: int
    n_confluent: int

    @property
    def score(self) -> float:
        """Continuous severity: the grade, ordered within it by coverage (grade - 0.4 .. grade + 0.4)."""
        return self.grade + 0.8 * (min(max(self.coverage, 0.0), 1.0) - 0.5)


@dataclass(frozen=True)
class JointFit:
    """Where the joint is and how sure the image processing is of it."""

    column: int
    row: int
    dip: float  # depth of the bone-surface dip at the joint below the lower bone top, share of height
    edge: float  # bone-edge contrast (grey levels, 0-255) at the two bone tops, the weaker of them


@dataclass(frozen=True)
class ColourFractionRule:
    """Parameters of the PD-only colour rule; colour test after RATING, grades by rascore.scale."""

    min_saturation: float = 0.4
    hue_range: tuple[float, float] = (0.0, 70.0)  # red-orange to yellow, degrees
    min_value: float = 0.2
    band_fraction: float = 0.15  # how far synovium may rise above the bone tops, share of height
    bone_search: tuple[float, float] = (0.25, 0.9)  # rows where the bone surface may lie, share of height
    joint_reach: float = 0.15  # half-width of the joint region, share of width
    hypoechoic_percentile: float = 35.0  # darker than this share of the tissue above = hypoechoic
    grow: float = 0.03  # dilation of the found region, share of height
    edge_margin: float = 0.1  # side strips (colour bars, scales) ignored, share of width
    min_spot_px: int = 2  # colour components smaller than this (lone pixels) are noise, not flow
    display_depth_mm: float = 16.0  # frame height in mm when a file gives no pixel size (demo: 12-22)
    softness: float = 0.1  # of the soft grade thresholds on PdReading.score
    border_share: float | None = None  # joint crop "field" mode: a bright-over-dark edge on one row
    # across at least this share of the columns is the image field's own lower border, not bone

    def doppler_mask(self, rgb: np.ndarray) -> np.ndarray:
        """Boolean (H, W): power Doppler pixels (saturated orange-to-yellow)."""
        hue, sat, val = rgb_to_hsv(rgb)
        low, high = self.hue_range
        return (sat > self.min_saturation) & (val > self.min_value) & (hue >= low) & (hue <= high)

    def bone_surface(self, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per column: row of the bone surface (bright cortex over acoustic shadow) and its contrast.

        Only the rows the search needs are filtered (the search band, the shadow below it and
        the smoothing's reach), which is most of the cost of the joint crop at prediction time.
        """
        h, _ = grey.shape
        sigma = max(1.0, h / 96)
        start, stop = max(3, h // 48), max(8, h // 10)
        top, bottom = (
            int(self.bone_search[0] * h),
            max(int(self.bone_search[1] * h), int(self.bone_search[0] * h) + 1),
        )
        pad = int(np.ceil(4 * sigma))
        r0, r1 = max(0, top - pad), min(h, bottom + stop + pad)
        smooth = ndimage.gaussian_filter(grey[r0:r1], sigma=sigma)
        # mean of rows start..stop-1 below each row, as a shifted running mean
        size = stop - start
        running = ndimage.uniform_filter1d(smooth, size=size, axis=0, mode="nearest")
        offset = start + size // 2
        rows = np.arange(top, bottom) - r0
        score = smooth[rows] - running[np.minimum(rows + offset, smooth.shape[0] - 1)]
        strength = score.max(axis=0)
        strong = score >= 0.5 * np.percentile(strength, 90)
        if self.border_share is not None:
            border = np.nonzero(strong.mean(axis=1) >= self.border_share)[0]
            if border.size:  # the field's lower border: search above it, clear of its reach
                cut = max(1, int(border[0]) - size - int(2 * sigma))
                score, strong = score[:cut], strong[:cut]
                strength = score.max(axis=0)
                rows = rows[:cut]
        # the deepest strong bright-over-dark edge: below the bone there is only shadow
        deepest = len(rows) - 1 - np.argmax(strong[::-1], axis=0)
        surface = top + np.where(strong.any(axis=0), deepest, np.argmax(score, axis=0))
        return surface, strength

    def _joint(self, grey: np.ndarray) -> tuple[np.ndarray, int, int, int]:
        """Bone surface per column (smoothed), the joint column and the bone tops either side."""
        surface, joint, left_top, right_top, _ = self._joint_fit(grey)
        return surface, joint, left_top, right_top

    def _joint_fit(self, grey: np.ndarray) -> tuple[np.ndarray, int, int, int, np.ndarray]:
        """_joint and the bone-edge strength per column."""
        h, w = grey.shape
        margin = int(self.edge_margin * w)
        surface, strength = self.bone_surface(grey)
        surface = ndimage.median_filter(surface.astype(float), size=max(3, w // 32) | 1, mode="nearest")
        reach = max(4, int(self.joint_reach * w))
        inner = surface[margin : w - margin]
        pad = np.full(reach + 1, np.inf)
        left = sliding_window_view(np.concatenate([pad[:reach], inner]), reach)[: inner.size].min(axis=1)
        right = sliding_window_view(np.concatenate([inner, pad]), reach + 1)[: inner.size, 1:].min(axis=1)
        depth = np.full(w, -np.inf)
        both = np.isfinite(left) & np.isfinite(right)
        depth[margin : w - margin][both] = inner[both] - np.maximum(left, right)[both]
        joint = int(np.argmax(depth))
        left_top = (
            max(margin, joint - reach) + int(np.argmin(surface[max(margin, joint - reach) : joint]))
            if joint > margin
            else joint
        )
        right_top = (
            joint + 1 + int(np.argmin(surface[joint + 1 : min(w - margin, joint + reach + 1)]))
            if joint + 1 < w - margin
            else joint
        )
        return surface, joint, left_top, right_top, strength

    def fit_joint(self, rgb: np.ndarray) -> JointFit:
        """The joint (middle of the line joining the bone tops either side) and the fit's confidence.

        Uses the darkest channel as greyscale, so saturated Doppler colour reads as the dark
        synovium it sits in (and costs no HSV conversion). Confidence: how deep the bone surface
        dips at the joint below the lower of the two tops, and how strong the bone edge is at the
        tops (median over a few columns around each; the weaker side counts).
        """
        darkest = np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2]).astype(np.float32)
        surface, joint, left_top, right_top, strength = self._joint_fit(darkest)
        h, w = darkest.shape
        half = max(1, w // 64)
        edge = min(float(np.median(strength[max(0, c - half) : c + half + 1])) for c in (left_top, right_top))
        dip = float(surface[joint] - max(surface[left_top], surface[right_top])) / h
        return JointFit(
            (left_top + right_top) // 2, int(round((surface[left_top] + surface[right_top]) / 2)), dip, edge
        )

    def locate_joint(self, rgb: np.ndarray) -> tuple[int, int]:
        """(column, row) of the joint: the middle of the line joining the bone tops either side."""
        fit = self.fit_joint(rgb)
        return fit.column, fit.row

    def synovium_mask(self, rgb: np.ndarray, doppler: np.ndarray | None = None) -> np.ndarray:
        """Boolean (H, W): estimated synovium in the joint recess, hypoechoic or coloured.

        The bone surface is found per column; the joint is the deepest dip of that surface below
        the bone tops on either side; the synovium is the hypoechoic (or coloured) region above
        the surface around the joint, connected to the recess.
        """
        h, w, _ = rgb.shape
        doppler = self.doppler_mask(rgb) if doppler is None else doppler
        grey = rgb.astype(np.float32).mean(axis=-1)
        grey[doppler] = 0.0
        margin = int(self.edge_margin * w)
        reach = max(4, int(self.joint_reach * w))
        surface, joint, left_top, right_top = self._joint(grey)
        smooth = ndimage.gaussian_filter(grey, sigma=max(1.0, h / 64))
        rows = np.arange(h)[:, None]
        cols = np.arange(w)[None, :]
        line = np.interp(np.arange(w), [left_top, right_top], [surface[left_top], surface[right_top]])
        rise = int(self.band_fraction * h)
        span = (cols >= left_top - reach // 2) & (cols <= right_top + reach // 2)
        below_surface = rows < surface[None, :] - 1
        recess = span & below_surface & (rows >= line[None, :]) & (cols > left_top) & (cols < right_top)
        window = span & below_surface & (rows >= line[None, :] - rise)
        tissue = smooth[
            (rows < line[None, :] - 2)
            & (rows >= line[None, :] - 2 * rise)
            & (cols >= margin)
            & (cols < w - margin)
        ]
        if not window.any() or not tissue.size:
            return recess
        level = np.percentile(tissue, self.hypoechoic_percentile)
        region = window & ((smooth <= level) | doppler)
        region = ndimage.binary_opening(region, iterations=1) | recess | (window & doppler)
        labels, _ = ndimage.label(region)
        keep = np.unique(labels[recess & (labels > 0)])
        found = np.isin(labels, keep) if keep.size else recess
        # the estimate hugs the darkest core; grow it to the synovium's usual extent
        return ndimage.binary_dilation(found, iterations=max(1, round(h * self.grow)))

    def frame_fraction(self, rgb: np.ndarray) -> float:
        """Coloured share of the estimated synovium in one frame."""
        doppler = self.doppler_mask(rgb)
        synovium = self.synovium_mask(rgb, doppler)
        area = int(synovium.sum())
        return float((doppler & synovium).sum() / area) if area else 0.0

    def fraction(self, frames: np.ndarray) -> float:
        """Colour fraction of an image (H, W, 3) or clip (T, H, W, 3): the maximum over frames.

        The synovium is estimated once per clip (on its middle frame; the anatomy barely moves)
        and the flow counted in every frame, as a reader grades a clip at peak flow.
        """
        frames = frames[None] if frames.ndim == 3 else frames
        synovium = self.synovium_mask(frames[len(frames) // 2])
        area = int(synovium.sum())
        if area == 0:
            return 0.0
        return max(float((self.doppler_mask(frame) & synovium).sum() / area) for frame in frames)

    def single_spot_max_px(self, height: int, mm_per_px: float | None = None) -> float:
        """Largest "single" spot in pixels: scale.SINGLE_SPOT_MAX_MM2 at the frame's pixel size."""
        size = mm_per_px if mm_per_px else self.display_depth_mm / height
        return SINGLE_SPOT_MAX_MM2 / size**2

    def frame_reading(
        self, doppler: np.ndarray, synovium: np.ndarray, mm_per_px: float | None = None
    ) -> PdReading:
        """PD reading of one frame's Doppler mask inside a synovium mask (the EOSS spot rules)."""
        area = int(synovium.sum())
        inside = doppler & synovium
        if area == 0 or not inside.any():
            return PdReading(0, 0.0, 0, 0)
        labels, n = ndimage.label(inside, structure=_EIGHT)
        sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
        sizes = sizes[sizes >= self.min_spot_px]
        single = int((sizes <= self.single_spot_max_px(doppler.shape[0], mm_per_px)).sum())
        coverage = float(inside.sum() / area)
        return PdReading(
            pd_grade_from_spots(single, int(sizes.size) - single, coverage),
            coverage,
            single,
            int(sizes.size) - single,
        )

    def read(self, frames: np.ndarray, mm_per_px: float | None = None) -> PdReading:
        """PD reading of an image (H, W, 3) or clip (T, H, W, 3): its best frame (grade, then coverage).

        The synovium is estimated once per clip (on its middle frame; the anatomy barely moves)
        and the flow read in every frame, as a reader grades a clip at peak flow.
        """
        frames = frames[None] if frames.ndim == 3 else frames
        synovium = self.synovium_mask(frames[len(frames) // 2])
        readings = [self.frame_reading(self.doppler_mask(f), synovium, mm_per_px) for f in frames]
        return max(readings, key=lambda r: (r.grade, r.coverage))

    def grade(self, frames: np.ndarray) -> int:
        """PD grade 0-3 of an image or clip by the EOSS spot and area rules (rascore.scale)."""
        return self.read(frames).grade

    def probabilities(self, readings: list[PdReading] | np.ndarray) -> np.ndarray:
        """Readings (or their scores) -> (N, 4) grade scores: logistic around each grade boundary."""
        scores = [r.score if isinstance(r, PdReading) else float(r) for r in readings]
        z = torch.as_tensor(np.asarray(scores, dtype=np.float64)).reshape(-1, 1)
        cuts = torch.tensor([0.5, 1.5, 2.5], dtype=torch.float64)
        return cumulative_to_grades(torch.sigmoid((z - cuts) / self.softness)).numpy()
