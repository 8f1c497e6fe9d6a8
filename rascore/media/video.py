"""Video clips (MP4, MOV, AVI) through imageio.v3 and the ffmpeg binary of imageio-ffmpeg."""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from .errors import Limits, MediaError
from .frames import Decoded, to_rgb_frames
from .sniff import EXTENSIONS


@contextmanager
def _as_path(source: bytes | str | os.PathLike[str], fmt: str) -> Iterator[str]:
    """ffmpeg reads files: hand it the path, or a private temporary copy of the bytes."""
    if not isinstance(source, (bytes, bytearray, memoryview)):
        yield os.fspath(source)
        return
    handle, tmp = tempfile.mkstemp(suffix=EXTENSIONS[fmt], prefix="rascore-video-")
    try:
        with os.fdopen(handle, "wb") as fh:
            fh.write(source)
        yield tmp
    finally:
        Path(tmp).unlink(missing_ok=True)


def _ffmpeg_reason(exc: BaseException) -> str:
    """The useful line of an ffmpeg failure."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in lines:
        lowered = line.lower()
        if any(
            k in lowered
            for k in (
                "moov atom not found",
                "invalid data",
                "no such",
                "could not find codec",
                "decoder",
                "truncat",
                "end of file",
                "error",
            )
        ):
            return line[:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


def decode_video(
    source: bytes | str | os.PathLike[str], fmt: str, name: str, limits: Limits = Limits()
) -> Decoded:
    """Read size, frame rate and frame count from the container first, check limits, then decode."""
    with _as_path(source, fmt) as path:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                meta = iio.immeta(path, plugin="FFMPEG")
        except Exception as exc:  # imageio-ffmpeg raises OSError/RuntimeError with ffmpeg's log
            raise MediaError(name, f"corrupt or unsupported video: {_ffmpeg_reason(exc)}") from None
        width, height = (int(v) for v in meta.get("size", (0, 0)))
        fps = float(meta["fps"]) if meta.get("fps") and math.isfinite(float(meta["fps"])) else None
        duration = float(meta.get("duration") or 0.0)
        nframes = meta.get("nframes")
        if isinstance(nframes, (int, float)) and math.isfinite(nframes) and nframes > 0:
            expected = int(nframes)
        elif fps and duration > 0:
            expected = int(round(fps * duration))
        else:
            expected = 1
        limits.check(name, frames=expected, height=height, width=width)
        frames: list[np.ndarray] = []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for frame in iio.imiter(path, plugin="FFMPEG"):
                    frames.append(np.asarray(frame))
                    if len(frames) > limits.max_frames:
                        raise MediaError(
                            name, f"too many frames: more than the limit of {limits.max_frames:,}"
                        )
        except MediaError:
            raise
        except Exception as exc:
            raise MediaError(name, f"corrupt video data: {_ffmpeg_reason(exc)}") from None
    if not frames:
        raise MediaError(name, "the video holds no frames")
    rgb = to_rgb_frames(np.stack(frames), multi_frame=True)
    info = {
        "codec": str(meta.get("codec", "")),
        "frames": int(rgb.shape[0]),
        "rows": int(rgb.shape[1]),
        "cols": int(rgb.shape[2]),
        "fps": fps,
        "duration_s": duration or None,
    }
    return Decoded(frames=rgb, fps=fps, kind="clip", format=fmt, meta=info)
