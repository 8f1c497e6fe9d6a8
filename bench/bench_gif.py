"""Which palette quantiser the one GIF encoder (``rascore.media.gif``) uses: time, size, fidelity.

Two kinds of animation go through the encoder: a Doppler clip as a reader sees it (the simulated
DPD clip at grade SH 3 / PD 3, 16 frames of 192x256, at zoom 1 and 2) and an explanation's
overlay animation (each frame blended with a moving heat blob, with a title and a colour bar, as
``explain.service`` draws them). Each candidate encodes the frames, the GIF is decoded back, and
the script prints per candidate:

- encode time (the fastest of ``--repeats`` round-robin runs, ms) and size (KiB);
- mean absolute error (0-255, all channels) over all pixels and over the coloured pixels only
  (the Doppler signal on the clip, the painted heat on the overlay): the pixels a reader or a
  viewer judges, which a greyscale-heavy palette starves; and the worst error of any pixel.

Candidates: one palette for the whole clip from a sample of every frame (median cut, octree),
or a palette per frame (octree, median cut); never dithered (dithering speckles the overlay and
the Doppler colour).

    python bench/bench_gif.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rascore.explain.render import overlay_panel  # noqa: E402
from rascore.media import gif  # noqa: E402
from rascore.synth.cohort import example_spec  # noqa: E402
from rascore.synth.render import render_item  # noqa: E402

MEDIAN, OCTREE, NONE = Image.Quantize.MEDIANCUT, Image.Quantize.FASTOCTREE, Image.Dither.NONE


def _save(images: list[Image.Image]) -> bytes:
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=66, loop=0)
    return buffer.getvalue()


def _shared(method: Image.Quantize) -> Callable[[np.ndarray], bytes]:
    def encode(stack: np.ndarray) -> bytes:
        sample = np.ascontiguousarray(np.concatenate(list(stack[:, ::4, ::4]), axis=0))
        palette = Image.fromarray(sample).quantize(colors=256, method=method, dither=NONE)
        return _save([Image.fromarray(f).quantize(palette=palette, dither=NONE) for f in stack])

    return encode


def _per_frame(method: Image.Quantize) -> Callable[[np.ndarray], bytes]:
    def encode(stack: np.ndarray) -> bytes:
        return _save([Image.fromarray(f).quantize(colors=256, method=method, dither=NONE) for f in stack])

    return encode


CANDIDATES: dict[str, Callable[[np.ndarray], bytes]] = {
    "shared median cut": _shared(MEDIAN),
    "shared octree": _shared(OCTREE),
    "per-frame octree": _per_frame(OCTREE),
    "per-frame median cut": _per_frame(MEDIAN),
    "rascore.media.gif": lambda stack: gif.encode(stack, fps=15),
}


def _decoded(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    out = []
    for index in range(image.n_frames):
        image.seek(index)
        out.append(np.asarray(image.convert("RGB")))
    return np.stack(out)


def _clip(zoom: int) -> tuple[np.ndarray, np.ndarray]:
    item = render_item(example_spec(3, 3, "DPD"))
    frames, colour = item.frames, item.doppler
    if zoom > 1:
        frames = frames.repeat(zoom, 1).repeat(zoom, 2)
        colour = colour.repeat(zoom, 1).repeat(zoom, 2)
    return frames, colour


def _overlay() -> tuple[np.ndarray, np.ndarray]:
    item = render_item(example_spec(3, 3, "DPD"))
    t, h, w = item.frames.shape[:3]
    yy, xx = np.mgrid[0:h, 0:w]
    tiles, painted = [], []
    for k in range(t):
        cy, cx = h * 0.55, w * (0.3 + 0.4 * k / t)
        heat = np.exp(-(((yy - cy) / 30.0) ** 2 + ((xx - cx) / 45.0) ** 2)).astype(np.float32)
        heat[heat < 0.05] = 0.0
        tile = overlay_panel(item.frames[k : k + 1], heat[None], "SH 3 (p=0.91)", "1.0", [f"frame {k}"])
        grey = overlay_panel(
            item.frames[k : k + 1], np.zeros_like(heat)[None], "SH 3 (p=0.91)", "1.0", [f"frame {k}"]
        )
        tiles.append(tile)
        painted.append(np.abs(tile.astype(int) - grey.astype(int)).sum(axis=2) > 0)
    return np.stack(tiles), np.stack(painted)


def main() -> None:
    """Print time, size and error of each candidate on each kind of animation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    native = _clip(1)[0]
    cases = {"Doppler clip x1": _clip(1), "Doppler clip x2": _clip(2), "overlay animation": _overlay()}
    for name, (stack, colour) in cases.items():
        candidates = dict(CANDIDATES)
        if name == "Doppler clip x2":  # what preview.clip_gif does: quantise, then enlarge
            candidates["rascore.media.gif zoom"] = lambda _: gif.encode(native, fps=15, zoom=2)
        times: dict[str, list[float]] = {label: [] for label in candidates}
        encoded: dict[str, bytes] = {}
        for _ in range(args.repeats):  # round-robin, so a busy machine slows every candidate alike
            for label, encode in candidates.items():
                start = time.perf_counter()
                encoded[label] = encode(stack)
                times[label].append(time.perf_counter() - start)
        print(
            f"\n{name}: {stack.shape[0]} frames of {stack.shape[2]}x{stack.shape[1]}, "
            f"{colour.mean():.1%} coloured pixels"
        )
        print(f"  {'quantiser':24s} {'ms':>7s} {'KiB':>7s} {'MAE all':>8s} {'MAE colour':>11s} {'worst':>6s}")
        for label, data in encoded.items():
            error = np.abs(_decoded(data).astype(np.int16) - stack.astype(np.int16))
            print(
                f"  {label:24s} {1000 * min(times[label]):7.1f} {len(data) / 1024:7.1f} "
                f"{error.mean():8.2f} {error.mean(axis=3)[colour].mean():11.2f} {error.max():6d}"
            )


if __name__ == "__main__":
    main()
