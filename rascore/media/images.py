"""Stills and multi-frame images (PNG, JPEG, TIFF, BMP, GIF) through Pillow and imageio.v3."""

from __future__ import annotations

import io
import re
import struct
import warnings

import imageio.v3 as iio
import numpy as np
from PIL import Image

from .errors import Limits, MediaError
from .frames import Decoded, to_rgb_frames, to_uint8

#: Pillow modes holding more than 8 bits a sample: read natively, then stretched to 8 bits.
_WIDE_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N", "I;16S", "I;32", "I;32B"}
_CORRUPT = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError, struct.error)


def _corrupt_reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"truncated file: the image data ends early ({text})"
    return f"corrupt image data: {text}"


def _open(data: bytes, name: str, limits: Limits) -> Image.Image:
    """Open the header only (no pixels decoded); Pillow's own bomb check reports as ours."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "more pixels than Pillow allows"
        raise MediaError(
            name,
            f"decompression bomb: the header declares {size} per frame, "
            f"over the limit of {limits.max_pixels:,}",
        ) from None
    except Image.UnidentifiedImageError:
        raise MediaError(name, "corrupt image: the header cannot be read") from None
    except _CORRUPT as exc:
        raise MediaError(name, f"corrupt image header: {exc}") from None


def _gif_fps(image: Image.Image, frames: int) -> float | None:
    """Frames per second from the GIF frame durations (ms); None when they are missing or zero."""
    durations = []
    for index in range(frames):
        image.seek(index)
        durations.append(float(image.info.get("duration") or 0))
    image.seek(0)
    mean = sum(durations) / len(durations)
    return 1000.0 / mean if mean > 0 else None


def decode_image(data: bytes, fmt: str, name: str, limits: Limits = Limits()) -> Decoded:
    """Check the header against the limits, then decode every frame to uint8 RGB."""
    image = _open(data, name, limits)
    width, height = image.size
    try:
        frames = int(getattr(image, "n_frames", 1))
    except _CORRUPT as exc:
        raise MediaError(name, _corrupt_reason(exc)) from None
    limits.check(name, frames=frames, height=height, width=width)
    mode = image.mode
    fps = None
    if fmt == "gif" and frames > 1:
        try:
            fps = _gif_fps(image, frames)
        except _CORRUPT as exc:
            raise MediaError(name, _corrupt_reason(exc)) from None
    wide = mode in _WIDE_MODES
    read_mode = None if wide else "RGB"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arrays = [np.asarray(a) for a in iio.imiter(data, plugin="pillow", mode=read_mode)]
    except _CORRUPT as exc:
        raise MediaError(name, _corrupt_reason(exc)) from None
    if not arrays:
        raise MediaError(name, "the file holds no image frames")
    if any(a.shape[:2] != arrays[0].shape[:2] for a in arrays):
        raise MediaError(name, "frames of different sizes in one file are not supported")
    stack = np.stack(arrays)
    stack = to_uint8(stack) if wide else stack
    rgb = to_rgb_frames(stack, multi_frame=True)
    meta = {"mode": mode, "frames": int(rgb.shape[0]), "rows": int(rgb.shape[1]), "cols": int(rgb.shape[2])}
    if fps is not None:
        meta["fps"] = fps
    kind = "clip" if rgb.shape[0] > 1 else "image"
    return Decoded(frames=rgb, fps=fps, kind=kind, format=fmt, meta=meta)
