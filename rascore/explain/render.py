"""Pictures of attributions: a colour map, blended overlays with a colour bar, an importance curve, animations.

Drawn with numpy and Pillow only. The colour map runs indigo -> blue -> cyan -> pale cyan: no red,
orange or yellow, so an attribution is never mistaken for power Doppler signal (which scanners,
and the simulated cohort, draw orange to yellow). Only positive attribution (evidence for the
target grade) is painted; its opacity grows with its strength, so unimportant pixels show the
original scan unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rascore.media import gif

# Anchors of the "ice" colour map: (position, RGB).
ICE_ANCHORS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (40, 0, 120)),
    (0.35, (30, 80, 255)),
    (0.7, (0, 215, 255)),
    (1.0, (200, 255, 255)),
)
BAR_WIDTH = 14
MARGIN = 6


def colour_lut(anchors: Sequence[tuple[float, tuple[int, int, int]]] = ICE_ANCHORS) -> np.ndarray:
    """(256, 3) uint8 table interpolated linearly between anchors."""
    positions = np.array([a[0] for a in anchors])
    colours = np.array([a[1] for a in anchors], dtype=float)
    v = np.linspace(0.0, 1.0, 256)
    return (
        np.stack([np.interp(v, positions, colours[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)
    )


_LUT = colour_lut()


def colourise(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (any shape) -> uint8 RGB (..., 3) through the colour map."""
    index = (np.clip(np.nan_to_num(values), 0.0, 1.0) * 255).round().astype(np.intp)
    return _LUT[index]


def display_scale(maps: np.ndarray, percentile: float = 99.5) -> float:
    """The attribution that maps to the top of the colour bar: a high percentile of the positive values.

    A percentile, not the maximum, so one extreme pixel (frequent with gradients) does not wash
    the rest out; one scale for all frames of a clip, so frames compare. 1.0 when nothing is positive.
    """
    positive = np.asarray(maps, dtype=np.float64)
    positive = positive[positive > 0]
    if positive.size == 0:
        return 1.0
    scale = float(np.percentile(positive, percentile))
    return scale if scale > 0 else float(positive.max())


def normalise_heat(maps: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Positive attribution divided by the display scale, clipped to [0, 1]."""
    maps = np.asarray(maps, dtype=np.float32)
    scale = display_scale(maps) if scale is None else scale
    return np.clip(maps / max(scale, 1e-12), 0.0, 1.0)


def blend(frame: np.ndarray, heat: np.ndarray, max_alpha: float = 0.7, gamma: float = 0.8) -> np.ndarray:
    """Overlay heat in [0, 1] (H, W) on an RGB frame (H, W, 3) uint8; opacity grows with heat."""
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    heat = np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0)
    if heat.shape != frame.shape[:2]:
        raise ValueError(f"heat map {heat.shape} does not match the frame {frame.shape[:2]}")
    alpha = (max_alpha * heat**gamma)[..., None]
    out = frame.astype(np.float32) * (1.0 - alpha) + colourise(heat).astype(np.float32) * alpha
    return out.round().clip(0, 255).astype(np.uint8)


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=_font())
    return int(right - left)


def colour_bar(height: int, top_label: str, bottom_label: str = "0", width: int = 64) -> np.ndarray:
    """A vertical colour bar (height, width, 3) on black, strongest at the top, with two labels."""
    canvas = Image.new("RGB", (width, height), (0, 0, 0))
    bar_top, bar_bottom = 12, max(14, height - 12)
    ramp = np.linspace(1.0, 0.0, bar_bottom - bar_top)[:, None].repeat(BAR_WIDTH, axis=1)
    canvas.paste(Image.fromarray(colourise(ramp)), (4, bar_top))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([4, bar_top, 4 + BAR_WIDTH - 1, bar_bottom - 1], outline=(160, 160, 160))
    draw.text((6 + BAR_WIDTH, bar_top - 4), top_label, fill=(230, 230, 230), font=_font())
    draw.text((6 + BAR_WIDTH, bar_bottom - 8), bottom_label, fill=(230, 230, 230), font=_font())
    return np.asarray(canvas)


def _upscale(image: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return image
    return np.asarray(
        Image.fromarray(image).resize(
            (image.shape[1] * factor, image.shape[0] * factor), Image.Resampling.NEAREST
        )
    )


def _with_title(image: np.ndarray, title: str) -> np.ndarray:
    """Add a title strip above an image."""
    strip = Image.new("RGB", (image.shape[1], 16), (0, 0, 0))
    ImageDraw.Draw(strip).text((4, 2), title, fill=(235, 235, 235), font=_font())
    return np.concatenate([np.asarray(strip), image], axis=0)


def outline_box(
    image: np.ndarray, box: Sequence[int], colour: tuple[int, int, int] = (150, 150, 150)
) -> np.ndarray:
    """Draw a dashed rectangle (top, left, height, width) on an RGB array: the region the model saw."""
    top, left, height, width = (int(v) for v in box)
    out = np.array(image, copy=True)
    bottom, right = min(top + height, out.shape[0]) - 1, min(left + width, out.shape[1]) - 1
    dash = (np.arange(max(out.shape[:2])) // 4) % 2 == 0
    cols = np.arange(left, right + 1)
    rows = np.arange(top, bottom + 1)
    for y in (top, bottom):
        out[y, cols[dash[: len(cols)]]] = colour
    for x in (left, right):
        out[rows[dash[: len(rows)]], x] = colour
    return out


def overlay_panel(
    frames: np.ndarray,
    heat: np.ndarray,
    title: str,
    scale_label: str,
    captions: Sequence[str] | None = None,
    columns: int = 4,
    min_width: int = 384,
    box: Sequence[int] | None = None,
) -> np.ndarray:
    """The overlay picture: each frame blended with its heat, in a grid, a colour bar and a title.

    ``frames`` (T, H, W, 3) uint8 and ``heat`` (T, H, W) in [0, 1]; a still is T = 1. Small
    pictures are enlarged (nearest neighbour) to at least ``min_width`` pixels per tile row.
    ``box`` (top, left, height, width), when it is not the whole picture, is outlined: the model's crop.
    """
    frames = np.asarray(frames)
    heat = np.asarray(heat)
    count = len(frames)
    cols = min(columns, count)
    factor = max(1, int(np.ceil(min_width / (frames.shape[2] * cols))))
    tiles = []
    for t in range(count):
        tile = blend(frames[t], heat[t])
        if box is not None and tuple(box) != (0, 0, tile.shape[0], tile.shape[1]):
            tile = outline_box(tile, box)
        tile = _upscale(tile, factor)
        if captions is not None:
            tile = _with_title(tile, captions[t])
        tiles.append(tile)
    rows = int(np.ceil(count / cols))
    th, tw = tiles[0].shape[:2]
    grid = np.zeros((rows * th + (rows - 1) * 2, cols * tw + (cols - 1) * 2, 3), np.uint8)
    for t, tile in enumerate(tiles):
        r, c = divmod(t, cols)
        grid[r * (th + 2) : r * (th + 2) + th, c * (tw + 2) : c * (tw + 2) + tw] = tile
    bar = colour_bar(grid.shape[0], scale_label)
    body = np.concatenate([grid, bar], axis=1)
    return _with_title(body, title)


def importance_curve(
    frame_index: Sequence[int],
    importance: Sequence[float],
    n_frames: int,
    title: str,
    size: tuple[int, int] = (440, 220),
) -> np.ndarray:
    """A line plot of each frame's share of the attribution against its frame number (RGB array)."""
    width, height = size
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 44, width - 12, 22, height - 36
    draw.text((left, 4), title, fill=(0, 0, 0), font=_font())
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=(0, 0, 0))
    values = np.asarray(importance, dtype=float)
    y_max = max(float(values.max()) * 1.1 if values.size else 1.0, 1e-9)
    span = max(n_frames - 1, 1)

    def point(frame: float, value: float) -> tuple[float, float]:
        return (left + (right - left) * frame / span, bottom - (bottom - top) * value / y_max)

    for fraction in (0.0, 0.5, 1.0):
        y = bottom - (bottom - top) * fraction
        draw.line([(left - 3, y), (left, y)], fill=(0, 0, 0))
        label = f"{y_max * fraction:.2f}"
        draw.text((left - 6 - _text_width(draw, label), y - 5), label, fill=(0, 0, 0), font=_font())
    last_right = -1e9
    for frame in sorted({0, n_frames - 1, *[int(f) for f in frame_index]}):
        x = point(frame, 0)[0]
        draw.line([(x, bottom), (x, bottom + 3)], fill=(0, 0, 0))
        label = str(frame)
        half = _text_width(draw, label) / 2
        if x - half > last_right + 2:  # skip labels that would overlap
            draw.text((x - half, bottom + 5), label, fill=(0, 0, 0), font=_font())
            last_right = x + half
    axis = "frame of the clip (dots: frames the model saw)"
    draw.text(
        ((left + right - _text_width(draw, axis)) / 2, bottom + 16), axis, fill=(80, 80, 80), font=_font()
    )
    points = [point(f, v) for f, v in zip(frame_index, values)]
    if len(points) > 1:
        draw.line(points, fill=(20, 70, 200), width=2)
    for x, y in points:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(20, 70, 200))
    return np.asarray(image)


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB array as PNG (the caller makes it atomic by writing into a temporary folder)."""
    path = Path(path)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path, format="PNG")
    return path


def save_animation(path: str | Path, images: Sequence[np.ndarray], fps: float = 4.0) -> Path:
    """Write frames as a looping animated GIF (``.gif``, ``rascore.media.gif``) or an H.264 MP4
    (``.mp4``, through imageio)."""
    path = Path(path)
    stack = np.stack([np.asarray(i, dtype=np.uint8) for i in images])
    if path.suffix.lower() == ".mp4":
        import imageio.v3 as iio

        h, w = stack.shape[1:3]
        stack = np.pad(stack, ((0, 0), (0, (-h) % 16), (0, (-w) % 16), (0, 0)))
        iio.imwrite(path, stack, extension=".mp4", fps=fps, codec="libx264", macro_block_size=16)
        return path
    path.write_bytes(gif.encode(stack, fps))
    return path
