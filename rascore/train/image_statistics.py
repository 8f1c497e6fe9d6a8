"""What a scan looks like, in numbers: the image statistics of the shift check (rascore.train.shift).

Of the decoded scan (the middle frame of a clip), ``IMAGE_STATISTICS``: size and aspect; the
grey-level histogram (mean, spread, five percentiles, shares of near-black and near-white pixels);
the speckle scale of tissue (the autocorrelation width of the grey level minus its local mean,
across and along the beam, with the Doppler-coloured pixels set to the median grey of the rest);
the share of coloured pixels; the tint of the uncoloured pixels (a neutral greyscale has none; a
tinted screen, a YBR or colour-managed capture has some); and of the coloured pixels, the share in
each hue sextant, their mean saturation and value, and their bounding box (the colour box). They
describe what differs between scanners and screens and do not depend on the network.
"""

from __future__ import annotations

import math

import numpy as np

MAX_LAG = 16  # autocorrelation widths are capped here (pixels)
SPECKLE_PATCH = 256  # the speckle scale is measured on at most this many pixels a side
HISTOGRAM_SIDE = 512  # grey levels and colour are read on a grid of about this many pixels a side
MIN_COLOUR = 20  # coloured pixels (on the histogram grid) needed to describe the colour at all
HUES = ("red", "yellow", "green", "cyan", "blue", "magenta")  # sextants centred on these hues
IMAGE_STATISTICS: tuple[str, ...] = (
    "log_height",
    "log_aspect",
    "grey_mean",
    "grey_sd",
    "grey_p05",
    "grey_p25",
    "grey_p50",
    "grey_p75",
    "grey_p95",
    "dark_share",
    "bright_share",
    "tissue_speckle_across",
    "tissue_speckle_along",
    "colour_share",
    "grey_tint_red",
    "grey_tint_green",
    *(f"colour_hue_{h}" for h in HUES),
    "colour_saturation",
    "colour_value",
    "colour_box_height",
    "colour_box_width",
    "colour_box_fill",
)
# the smallest spread each statistic is given when standardised: differences below these mean
# nothing (5% in size or aspect, 1% of the grey range, a tenth of a pixel of speckle, half a
# percent of the pixels, a fifth of a percent of the range in tint, 2% in hue shares, saturation,
# value and colour-box geometry), so a statistic constant in training (the simulator's exactly
# neutral grey: tint 0) still gives finite, readable distances
IMAGE_FLOORS: tuple[float, ...] = (
    *(0.05, 0.05, *(0.01,) * 7, 0.005, 0.005, 0.1, 0.1, 0.005),
    *(0.002, 0.005),
    *(0.02,) * (len(HUES) + 5),
)


def _width(acf: np.ndarray) -> float:
    """Lag (pixels, interpolated) where a normalised autocorrelation first drops below 1/2."""
    below = np.nonzero(acf < 0.5)[0]
    if not below.size:
        return float(MAX_LAG)
    j = int(below[0])
    if j == 0:
        return 0.0
    a, b = acf[j - 1], acf[j]
    return float(j - 1 + (a - 0.5) / (a - b))


def speckle_scale(grey: np.ndarray, colour: np.ndarray | None = None) -> tuple[float, float]:
    """Autocorrelation half-widths (across, along the beam) of ``grey`` minus its 9x9 local mean,
    on the central half of the frame (the joint, not the borders; at most SPECKLE_PATCH pixels a
    side, so a large frame costs no more), from one FFT. Pixels where ``colour`` is true (the
    Doppler overlay) are set to the median grey of the rest first: the speckle of tissue only."""
    from scipy.ndimage import uniform_filter

    if colour is not None and colour.any() and not colour.all():
        grey = np.where(colour, np.median(grey[~colour]), grey)
    h, w = grey.shape
    ph, pw = min(max(h // 2, 8), SPECKLE_PATCH), min(max(w // 2, 8), SPECKLE_PATCH)
    top, left = (h - ph) // 2, (w - pw) // 2
    patch = grey[top : top + ph, left : left + pw].astype(np.float64)
    residual = patch - uniform_filter(patch, size=9, mode="reflect")
    residual -= residual.mean()
    spectrum = np.fft.rfft2(residual, s=(2 * patch.shape[0], 2 * patch.shape[1]))
    acf = np.fft.irfft2(np.abs(spectrum) ** 2, s=(2 * patch.shape[0], 2 * patch.shape[1]))
    if acf[0, 0] <= 0:  # a flat patch has no speckle
        return 0.0, 0.0
    acf /= acf[0, 0]
    return _width(acf[0, : MAX_LAG + 1]), _width(acf[: MAX_LAG + 1, 0])


def _coloured(frame: np.ndarray) -> np.ndarray:
    """Doppler-coloured pixels: saturation > 0.4 and value > 0.2 in HSV terms, as
    rascore.predict.guess_modality reads colour."""
    high = frame.max(axis=-1).astype(np.float32)
    low = frame.min(axis=-1).astype(np.float32)
    return (high > 0.2 * 255) & (high - low > 0.4 * high)


def _hue_sextants(rgb: np.ndarray) -> np.ndarray:
    """Share of (N, 3) coloured pixels in each hue sextant (``HUES``, each 60 degrees wide and
    centred on its hue: red is -30 to 30 degrees)."""
    rgb = rgb.astype(np.float64)
    high, low = rgb.max(axis=1), rgb.min(axis=1)
    chroma = np.maximum(high - low, 1e-9)
    r, g, b = rgb.T
    hue = np.where(
        high == r, ((g - b) / chroma) % 6, np.where(high == g, (b - r) / chroma + 2, (r - g) / chroma + 4)
    )  # in sextants, 0 to 6
    return np.bincount(np.floor((hue + 0.5) % 6).astype(int), minlength=6)[:6] / len(rgb)


def colour_statistics(frame: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Of a (H, W, 3) frame and its coloured-pixel mask: the tint of the grey pixels (the median of
    red minus blue and of green minus blue over the uncoloured pixels brighter than 5% of the range,
    as shares of the range: a tinted screen shifts every grey pixel, while the colour a lossy codec
    bleeds next to the Doppler overlay touches a minority, which the median ignores), then of the
    coloured pixels the share in
    each hue sextant, the mean saturation and value, and the colour box (the coloured pixels'
    bounding box: height and width as shares of the frame, and the share of it coloured). Zeros
    where fewer than MIN_COLOUR pixels are coloured (a greyscale scan)."""
    high = frame.max(axis=-1).astype(np.float32)
    spread = high - frame.min(axis=-1).astype(np.float32)
    grey = ~colour & (high > 0.05 * 255)
    rgb = frame[grey].astype(np.float32)
    tint = (
        (float(np.median(rgb[:, 0] - rgb[:, 2])) / 255, float(np.median(rgb[:, 1] - rgb[:, 2])) / 255)
        if len(rgb)
        else (0.0, 0.0)
    )
    if colour.sum() < MIN_COLOUR:
        return np.array([*tint, *np.zeros(len(HUES) + 5)])
    ys, xs = np.nonzero(colour)
    box_h, box_w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    return np.array(
        [
            *tint,
            *_hue_sextants(frame[colour]),
            float((spread[colour] / high[colour]).mean()),
            float(high[colour].mean()) / 255,
            box_h / colour.shape[0],
            box_w / colour.shape[1],
            len(ys) / (box_h * box_w),
        ]
    )


def image_statistics(frames: np.ndarray) -> np.ndarray:
    """The ``IMAGE_STATISTICS`` of decoded frames (T, H, W, 3) or one (H, W, 3) uint8 image."""
    frames = np.asarray(frames)
    frame = frames[frames.shape[0] // 2] if frames.ndim == 4 else frames
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) or (H, W, 3) frames, got {frames.shape}")
    h, w = frame.shape[:2]
    grey = frame.mean(axis=-1, dtype=np.float32) / 255.0
    across, along = speckle_scale(grey, _coloured(frame))  # at full resolution, tissue only
    # the histogram and colour from every k-th row and column of a large frame
    step = max(1, math.ceil(max(h, w) / HISTOGRAM_SIDE))
    grey, frame = grey[::step, ::step], frame[::step, ::step]
    colour = _coloured(frame)
    return np.array(
        [
            math.log(h),
            math.log(w / h),
            grey.mean(),
            grey.std(),
            *np.percentile(grey, [5, 25, 50, 75, 95]),
            (grey < 0.02).mean(),
            (grey > 0.9).mean(),
            across,
            along,
            colour.mean(),
            *colour_statistics(frame, colour),
        ],
        dtype=np.float64,
    )
