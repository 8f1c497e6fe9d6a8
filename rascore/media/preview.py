"""Pictures for display: decoded frames as PNG stills, GIF clips and thumbnails, cached in memory.

Decoded frames and encoded pictures are kept in two least-recently-used caches keyed by the
frame cache's folder and the file's sha256, so a page rerun, a second reader or a warmed-up next
item costs nothing. ``cache_info`` reports their hits and misses.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np
from PIL import Image

from rascore.lru import LRU, CacheInfo

from . import gif
from .storage import MediaStore

_FRAMES = LRU(24)  # (cache folder, sha256) -> decoded (T, H, W, 3) frames
_IMAGES = LRU(256)  # (kind, cache folder, sha256, ...) -> PNG or GIF bytes


class Shown(Protocol):
    """What a page shows of a stored file: its sha256, how many frames and at what rate."""

    sha256: str
    frames: int
    fps: float | None


def cache_info() -> dict[str, CacheInfo]:
    """Hits and misses of the decoded-frame cache ("frames") and the picture cache ("images")."""
    return {"frames": _FRAMES.info(), "images": _IMAGES.info()}


def clear_cache() -> None:
    """Forget every cached frame and picture, and reset the counters."""
    _FRAMES.clear()
    _IMAGES.clear()


def frames(media: MediaStore, sha256: str) -> np.ndarray:
    """Decoded (T, H, W, 3) uint8 frames of a stored file, kept in memory for the next reruns."""
    return _FRAMES.get_or_make((str(media.cache_dir), sha256), lambda: media.load_cache(sha256))


def zoom_for(width: int, chosen: int | None, target: int = 640) -> int:
    """The whole-pixel zoom to show an image at: the chosen one, or (auto) the largest that keeps
    it within ``target`` pixels wide, never below native size."""
    if chosen:
        return _clamp_zoom(chosen)
    return _clamp_zoom(target // max(width, 1))


def _clamp_zoom(zoom: int) -> int:
    return int(min(max(zoom, 1), 4))


def _zoomed(frame: np.ndarray, zoom: int) -> np.ndarray:
    return frame if zoom <= 1 else np.repeat(np.repeat(frame, zoom, axis=0), zoom, axis=1)


def _png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def frame_png(media: MediaStore, sha256: str, index: int = 0, zoom: int = 1) -> bytes:
    """One frame as a lossless PNG, optionally enlarged by whole pixels (no smoothing)."""
    zoom = _clamp_zoom(zoom)

    def make() -> bytes:
        stack = frames(media, sha256)
        frame = stack[int(min(max(index, 0), stack.shape[0] - 1))]
        return _png(Image.fromarray(_zoomed(frame, zoom)), compress_level=1)

    return _IMAGES.get_or_make(("png", str(media.cache_dir), sha256, index, zoom), make)


def clip_gif(
    media: MediaStore, sha256: str, fps: float | None = None, zoom: int = 1, max_frames: int = 64
) -> bytes:
    """A clip as a looping animated GIF at its frame rate (at most ``max_frames``, evenly spaced)."""
    zoom = _clamp_zoom(zoom)

    def make() -> bytes:
        stack = frames(media, sha256)
        step = max(1, int(np.ceil(stack.shape[0] / max_frames)))
        return gif.encode(stack[::step], fps=(fps or 15) / step, zoom=zoom)

    return _IMAGES.get_or_make(("gif", str(media.cache_dir), sha256, zoom, max_frames), make)


def thumbnail_png(media: MediaStore, sha256: str, width: int = 160) -> bytes:
    """A small PNG of a file's middle frame (the atlas)."""

    def make() -> bytes:
        stack = frames(media, sha256)
        image = Image.fromarray(stack[stack.shape[0] // 2])
        height = max(1, round(image.height * width / image.width))
        return _png(image.resize((width, height), Image.Resampling.LANCZOS))

    return _IMAGES.get_or_make(("thumb", str(media.cache_dir), sha256, width), make)


def data_url(data: bytes) -> str:
    """PNG or GIF bytes as a data: URL, so the page ships the image inside its own message
    instead of the browser fetching it afterwards (one round trip less per item)."""
    mime = "image/gif" if data[:6] in (b"GIF87a", b"GIF89a") else "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def warm(media: MediaStore, shown: Shown, zoom: int = 1) -> None:
    """Decode and encode what a page first shows of a file, so showing it later costs nothing."""
    if shown.frames > 1:
        clip_gif(media, shown.sha256, shown.fps, zoom)
    frame_png(media, shown.sha256, 0 if shown.frames == 1 else shown.frames // 2, zoom)


def warm_in_background(
    media: MediaStore, find: Callable[[], Shown | None], zoom: int = 1
) -> threading.Thread:
    """Warm what ``find()`` returns (None: nothing) in a daemon thread; failures are ignored."""

    def work() -> None:
        try:
            shown = find()
            if shown is not None:
                warm(media, shown, zoom)
        except Exception:  # a warm-up is only an optimisation
            pass

    thread = threading.Thread(target=work, name="rascore-warm", daemon=True)
    thread.start()
    return thread
