"""One animated-GIF encoder, for a clip shown to a reader and for an explanation's animation.

Every frame is mapped, without dithering, onto ONE 256-colour palette that Pillow's fast octree
quantiser builds from a sample of all frames (every 4th pixel of every 4th row). Measured by
``bench/bench_gif.py`` against a shared median-cut palette (what the labelling clip used), a
per-frame octree palette (what the explanation animation used) and per-frame median cut, on the
simulated DPD clip (SH 3, PD 3, 16 frames of 256x192) and a 16-frame overlay animation:

- the fastest (clip 32 ms against 46 ms for shared median cut, 78 against 158 ms at zoom 2;
  overlay 153 against 274 ms; fastest of 7 runs on a shared 2-core CPU) and the smallest files
  (clip 80 KiB against 174 KiB; overlay 424 against 572 KiB): fewer bytes in each labelling
  page's data URL;
- on the overlay, the lowest error on painted pixels (mean 3.1 of 255, worst pixel 38, against
  3.8 and 59 for shared median cut, whose sample starves the rare heat colours, the text and the
  colour bar; per-frame median cut is worse still at worst and takes over a second);
- on the clip, mean error 1.8 of 255 against 0.7 for median cut (worst pixel 12 against 11). A
  reader who needs exact pixels steps to a frame, which is shown as a lossless PNG.

A zoomed clip is quantised at native size and then enlarged by whole pixels: less time than
quantising the enlarged frames, at the same error. One palette for the whole animation also keeps
a greyscale level from flickering between frames, as per-frame palettes can. Dithering is never
used: it speckles the Doppler colour and the overlay.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

SAMPLE_STEP = 4


def encode(frames: Sequence[np.ndarray] | np.ndarray, fps: float, zoom: int = 1) -> bytes:
    """(H, W, 3) uint8 frames as a looping animated GIF at ``fps`` frames per second (one palette),
    enlarged ``zoom`` times by whole pixels after quantising (no smoothing)."""
    stack = np.stack([np.asarray(f, dtype=np.uint8) for f in frames])
    sample = np.concatenate(list(stack[:, ::SAMPLE_STEP, ::SAMPLE_STEP]), axis=0)
    palette = Image.fromarray(np.ascontiguousarray(sample)).quantize(
        colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in stack]
    if zoom > 1:
        size = (stack.shape[2] * zoom, stack.shape[1] * zoom)
        images = [image.resize(size, Image.Resampling.NEAREST) for image in images]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(20, int(round(1000 / fps))),
        loop=0,
    )
    return buffer.getvalue()
