"""The decoded form every reader returns (uint8 frames x H x W x 3) and the conversions to it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Decoded:
    """Decoded scan: frames (T, H, W, 3) uint8, frame rate, kind/format and non-identifying metadata.

    ``patient_key`` is the raw identifier the pseudonym is made from; it is never persisted.
    """

    frames: np.ndarray
    fps: float | None
    kind: str
    format: str
    meta: dict = field(default_factory=dict)
    patient_key: str | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(frames, height, width)."""
        t, h, w, _ = self.frames.shape
        return int(t), int(h), int(w)


def minmax_to_uint8(values: np.ndarray) -> np.ndarray:
    """Stretch any numeric array linearly onto 0-255 over its whole range (all frames together)."""
    values = np.asarray(values)
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
    return np.rint(scaled).clip(0, 255).astype(np.uint8)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Bring an image array to uint8: uint8 as is, booleans to 0/255, anything wider min-max stretched."""
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.bool_:
        return values.astype(np.uint8) * np.uint8(255)
    return minmax_to_uint8(values)


def to_rgb_frames(values: np.ndarray, *, multi_frame: bool) -> np.ndarray:
    """Shape uint8 pixels to (T, H, W, 3): greyscale to three equal channels, alpha dropped.

    ``multi_frame`` says whether the first axis is time (otherwise a single image is given).
    """
    values = np.asarray(values)
    if not multi_frame:
        values = values[None]
    if values.ndim == 3:  # (T, H, W) greyscale
        values = values[..., None]
    if values.ndim != 4:
        raise ValueError(f"cannot shape pixels of shape {values.shape} into frames")
    channels = values.shape[-1]
    if channels == 1:
        values = np.repeat(values, 3, axis=-1)
    elif channels == 2:  # grey + alpha
        values = np.repeat(values[..., :1], 3, axis=-1)
    elif channels >= 4:  # RGBA / CMYK-like extra channel: keep the colour channels
        values = values[..., :3]
    elif channels != 3:
        raise ValueError(f"unsupported number of channels: {channels}")
    return np.ascontiguousarray(values, dtype=np.uint8)
