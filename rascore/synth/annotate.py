"""Burned-in screen annotations: text lines, calipers, a body mark and depth labels.

Real exports carry what the scanner drew on the screen: preset and probe names, gain and
frequency read-outs, a measurement's calipers and its value, a body mark, depth numbers. A model
must learn to ignore them. They are placed at random, from the item's own random stream, anywhere
on the frame except the joint's grade zone (the recess box where a synovium of any grade could
lie, widened by the lifted tendon, the blur and the probe jitter), the grey and colour bars and the
focus marker. So neither their place nor their content depends on the grade, and they never
cover a pixel the EOSS rules read. All are grey or white: colour on the screen stays Doppler.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), y1 and x1 exclusive

_PRESETS = ("MSK", "Small Parts", "MSK Sup", "Hand/Wrist", "Joint", "SmPart Hi")
_PROBES = ("L12-5", "L15-7io", "L18-4", "ML6-15", "L10-22", "LA523", "18L6", "L8-18i")


def _text_lines(rng: np.random.Generator, joint: str, side: str, doppler: bool) -> list[str]:
    lines = [
        f"{rng.choice(_PROBES)} {rng.choice(_PRESETS)}",
        f"Gn {int(rng.integers(30, 80))}  DR {int(rng.integers(45, 80))}",
        f"FR {int(rng.integers(8, 40))}Hz",
        f"{'R' if side == 'R' else 'L'} {joint}",
        f"{rng.uniform(7, 18):.1f}MHz",
        f"MI {rng.uniform(0.4, 1.3):.1f} TIS {rng.uniform(0.0, 0.6):.1f}",
        f"{int(rng.integers(1, 28)):02d}/{int(rng.integers(1, 12)):02d} {int(rng.integers(7, 19)):02d}:"
        f"{int(rng.integers(0, 59)):02d}",
    ]
    if doppler:
        lines += [f"PWR {int(rng.integers(40, 95))}%", f"PRF {rng.uniform(0.4, 1.5):.1f}kHz", "WF Low"]
    k = int(rng.integers(1, 4))
    return [lines[i] for i in rng.choice(len(lines), size=k, replace=False)]


def _font(rng: np.random.Generator) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=int(rng.integers(9, 13)))


def _patch_text(rng: np.random.Generator, lines: Sequence[str]) -> np.ndarray:
    font = _font(rng)
    h = max(int(font.getbbox("Ag")[3]) + 1, 8)
    w = max(int(font.getlength(line)) for line in lines) + 2
    img = Image.new("L", (w, h * len(lines) + 1), 0)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((1, i * h), line, fill=255, font=font)
    return np.asarray(img) > 96


def _patch_calipers(rng: np.random.Generator) -> np.ndarray:
    size = int(rng.integers(2, 4))
    length = int(rng.integers(14, 48))
    vertical = rng.random() < 0.4
    h, w = (length + 2 * size + 1, 2 * size + 1) if vertical else (2 * size + 1, length + 2 * size + 1)
    out = np.zeros((h, w), dtype=bool)
    ends = [(size, size), (h - 1 - size, w - 1 - size)]
    for cy, cx in ends:
        out[cy, cx - size : cx + size + 1] = True
        out[cy - size : cy + size + 1, cx] = True
    if rng.random() < 0.6:  # dotted line between the marks
        if vertical:
            out[2 * size + 2 : h - 2 * size - 2 : 3, size] = True
        else:
            out[size, 2 * size + 2 : w - 2 * size - 2 : 3] = True
    return out


def _patch_body_mark(rng: np.random.Generator) -> np.ndarray:
    w, h = int(rng.integers(18, 28)), int(rng.integers(20, 32))
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    palm_top = h // 2
    draw.rectangle((2, palm_top, w - 3, h - 2), outline=255)
    for i in range(4):  # fingers
        x = 3 + i * (w - 6) // 4 + (w - 6) // 8
        draw.line((x, 1, x, palm_top), fill=255)
    px = 3 + int(rng.integers(0, 4)) * (w - 6) // 4 + (w - 6) // 8  # the probe over one finger
    py = int(rng.integers(3, max(palm_top - 2, 4)))
    draw.rectangle((px - 3, py - 1, px + 3, py + 1), fill=255)
    return np.asarray(img) > 96


def _free(occupied: np.ndarray, y: int, x: int, patch: np.ndarray) -> bool:
    h, w = patch.shape
    return not occupied[max(y - 1, 0) : y + h + 1, max(x - 1, 0) : x + w + 1].any()


def overlay(
    frame_shape: tuple[int, int],
    keep_out: Sequence[Box],
    n: int,
    rng: np.random.Generator,
    joint: str = "",
    side: str = "R",
    doppler: bool = False,
    depth_labels: tuple[int, Sequence[tuple[int, str]]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(mask, level): where annotations are burned in and their grey level (uint8), frame-sized.

    ``keep_out``: boxes no annotation may touch. ``depth_labels``: (column, [(row, text), ...])
    numbers beside the depth ticks, drawn where they fit.
    """
    h, w = frame_shape
    occupied = np.zeros((h, w), dtype=bool)
    for y0, x0, y1, x1 in keep_out:
        occupied[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    mask = np.zeros((h, w), dtype=bool)
    level = np.zeros((h, w), dtype=np.uint8)

    def place(patch: np.ndarray, grey: int, at: tuple[int, int] | None = None, tries: int = 40) -> bool:
        ph, pw = patch.shape
        if ph >= h or pw >= w:
            return False
        for _ in range(1 if at else tries):
            y, x = at if at else (int(rng.integers(0, h - ph)), int(rng.integers(0, w - pw)))
            if 0 <= y <= h - ph and 0 <= x <= w - pw and _free(occupied, y, x, patch):
                mask[y : y + ph, x : x + pw] |= patch
                level[y : y + ph, x : x + pw][patch] = grey
                occupied[max(y - 1, 0) : y + ph + 1, max(x - 1, 0) : x + pw + 1] = True
                return True
        return False

    if depth_labels is not None:
        col, labels = depth_labels
        font = ImageFont.load_default(size=9)
        for row, text in labels:
            img = Image.new("L", (int(font.getlength(text)) + 2, 10), 0)
            ImageDraw.Draw(img).text((1, -1), text, fill=255, font=font)
            patch = np.asarray(img) > 96
            x = col if col >= 0 else -col - patch.shape[1]
            place(patch, 200, (row - 4, x))
    kinds = ("text", "text", "calipers", "body", "text", "calipers", "text", "body")
    for i in range(n):
        kind = kinds[i % len(kinds)] if i < len(kinds) else str(rng.choice(["text", "calipers"]))
        grey = int(rng.integers(170, 256))
        if kind == "text":
            patch = _patch_text(rng, _text_lines(rng, joint, side, doppler))
        elif kind == "calipers":
            patch = _patch_calipers(rng)
        else:
            patch = _patch_body_mark(rng)
        place(patch, grey)
    return mask, level
