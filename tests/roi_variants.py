"""Layouts the demo simulator does not produce, made from its renders: for the joint crop's tests
and bench/bench_roi.py --variants.

Each variant takes one frame (H, W, 3) uint8 and its truth synovium mask (H, W) bool and returns
both in the new layout: another frame size, another aspect, the image field placed off-centre on
a wider screen, and annotations burned into the pixels (text, calipers, a body mark).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Variant = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _resize(frame: np.ndarray, mask: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    image = Image.fromarray(frame).resize((width, height), Image.BILINEAR)
    m = Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height), Image.NEAREST)
    return np.asarray(image).copy(), np.asarray(m) > 127


def larger(frame, mask, rng):
    """Another machine's resolution: 2.5 times the size."""
    h, w = mask.shape
    return _resize(frame, mask, int(h * 2.5), int(w * 2.5))


def smaller(frame, mask, rng):
    """A low-resolution export: 0.6 times the size."""
    h, w = mask.shape
    return _resize(frame, mask, int(h * 0.6), int(w * 0.6))


def aspect(frame, mask, rng):
    """Pixels not square: width stretched by 1.3 or squeezed by 0.8."""
    h, w = mask.shape
    return _resize(frame, mask, h, int(w * float(rng.choice([0.8, 1.3]))))


def wide_screen(frame, mask, rng):
    """The image on a 16:9 screen with a dark side panel, placed off-centre."""
    h, w = mask.shape
    H, W = int(h * 1.25), int(h * 1.25 * 16 / 9)
    y0 = int(rng.integers(0, H - h + 1))
    x0 = int(rng.integers(0, W - w + 1))
    out = np.full((H, W, 3), 8, np.uint8)
    out[y0 : y0 + h, x0 : x0 + w] = frame
    m = np.zeros((H, W), bool)
    m[y0 : y0 + h, x0 : x0 + w] = mask
    panel = slice(x0 + w + 4, W - 4) if x0 < W - x0 - w else slice(4, max(5, x0 - 4))
    out[10:40, panel] = 60  # a menu block
    return out, m


def annotated(frame, mask, rng):
    """Text, calipers (crosses and a dotted line) and a body mark burned into the image field."""
    h, w = mask.shape
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((int(w * 0.12), 2), "MCP2 R  L12-5  18Hz", fill=(255, 255, 255), font=font)
    draw.text((int(w * 0.55), int(h * 0.9)), "D 1.8 cm", fill=(240, 240, 240), font=font)
    ys = np.nonzero(mask.any(axis=1))[0]
    xs = np.nonzero(mask.any(axis=0))[0]
    if ys.size:  # calipers across the synovium, as a reader measures it
        y, x0, x1 = int(ys.mean()), int(xs.min()), int(xs.max())
        for x in (x0, x1):
            draw.line([(x - 3, y), (x + 3, y)], fill=(255, 255, 0))
            draw.line([(x, y - 3), (x, y + 3)], fill=(255, 255, 0))
        for x in range(x0 + 4, x1 - 3, 4):
            draw.point((x, y), fill=(255, 255, 0))
    bx, by = int(w * 0.8), int(h * 0.72)  # a body mark: a small hand outline
    draw.rectangle([bx, by, bx + 16, by + 20], outline=(200, 200, 200))
    draw.line([(bx + 4, by + 8), (bx + 12, by + 8)], fill=(255, 255, 255), width=2)
    return np.asarray(image).copy(), mask


VARIANTS: dict[str, Variant] = {
    "larger": larger,
    "smaller": smaller,
    "aspect": aspect,
    "wide_screen": wide_screen,
    "annotated": annotated,
}
