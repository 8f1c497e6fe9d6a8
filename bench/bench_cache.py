"""Decoded-frame cache: size ratio against raw arrays and write/load speed on speckle-like clips.

Data: log-compressed Rayleigh speckle (blurred complex Gaussian envelope, depth attenuation,
50 dB dynamic range) with a few pulsating orange-to-yellow "power Doppler" blobs, the shape of
the demo cohort (16 x 192 x 256 x 3 clips, single-frame stills). Prints MB/s of raw array bytes
for encode+write (atomic, no fsync) and read+decode, the stored size relative to raw, and the
projected cache size of the paper-size demo project (875 stills + 875 clips).

Run: .venv/bin/python bench/bench_cache.py [--clips 12] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from rascore.media.cache import encode_frames, decode_frames
from rascore.media.storage import MediaStore


def speckle_clip(
    rng: np.random.Generator, frames: int = 16, height: int = 192, width: int = 256, doppler: bool = True
) -> np.ndarray:
    """A synthetic ultrasound clip: Rayleigh speckle, log compression, a few hot-map Doppler blobs."""
    shape = (frames, height, width)
    real = ndimage.gaussian_filter(rng.standard_normal(shape), (0, 0.6, 1.2))
    imag = ndimage.gaussian_filter(rng.standard_normal(shape), (0, 0.6, 1.2))
    envelope = np.hypot(real, imag) * np.linspace(1.4, 0.5, height)[None, :, None]
    decibels = 20 * np.log10(envelope + 1e-6)
    decibels -= decibels.max()
    grey = np.clip((decibels + 50) / 50 * 255, 0, 255).astype(np.uint8)
    clip = np.repeat(grey[..., None], 3, axis=-1)
    if doppler:
        yy, xx = np.mgrid[:height, :width]
        for _ in range(4):
            cy, cx, radius = rng.integers(30, height - 30), rng.integers(30, width - 30), rng.integers(4, 14)
            blob = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
            for t in range(frames):
                power = ndimage.gaussian_filter(rng.random((height, width)), 1.5) * blob
                power *= 0.6 + 0.4 * np.sin(2 * np.pi * t / 8)
                lit = power > 0.25
                level = np.clip(power[lit] * 2, 0, 1)
                clip[t][lit] = np.stack(
                    [
                        np.full(level.shape, 255),
                        (80 + 175 * level).astype(np.uint8),
                        (40 * level).astype(np.uint8),
                    ],
                    axis=-1,
                )
    return clip


def measure(arrays: list[np.ndarray], repeat: int, **codec) -> dict:
    """Encode/decode timings and sizes in memory for one codec setting."""
    raw = sum(a.nbytes for a in arrays)
    blobs = [encode_frames(a, **codec) for a in arrays]
    t0 = time.perf_counter()
    for _ in range(repeat):
        for a in arrays:
            encode_frames(a, **codec)
    enc = (time.perf_counter() - t0) / repeat
    t0 = time.perf_counter()
    for _ in range(repeat):
        for b in blobs:
            decode_frames(b)
    dec = (time.perf_counter() - t0) / repeat
    assert all(np.array_equal(decode_frames(b), a) for a, b in zip(arrays, blobs))
    return {"ratio": sum(map(len, blobs)) / raw, "enc_mb_s": raw / enc / 1e6, "dec_mb_s": raw / dec / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    clips = [speckle_clip(rng, doppler=i % 2 == 0) for i in range(args.clips)]
    stills = [c[:1].copy() for c in clips]
    raw_mb = sum(c.nbytes for c in clips) / 1e6
    print(f"data: {args.clips} clips of {clips[0].shape}, half with Doppler ({raw_mb:.1f} MB raw)")

    print("\ncodec comparison (in memory, raw MB/s):")
    print(f"{'codec':30s} {'size/raw':>8s} {'encode':>9s} {'decode':>9s}")
    for label, codec in [
        ("zlib-1 grey rle, diff default", {"level": 1}),  # the cache's setting
        ("zlib-1 rle everywhere", {"level": 1, "grey_strategy": "rle", "diff_strategy": "rle"}),
        ("zlib-1 default everywhere", {"level": 1, "grey_strategy": "default"}),
        ("zlib-6 default everywhere", {"level": 6, "grey_strategy": "default"}),
        ("zlib-1 huffman only", {"level": 1, "grey_strategy": "huffman", "diff_strategy": "huffman"}),
    ]:
        m = measure(clips, args.repeat, **codec)
        print(f"{label:30s} {m['ratio']:8.3f} {m['enc_mb_s']:9.0f} {m['dec_mb_s']:9.0f}")
    import zlib

    raw_interleaved = sum(len(zlib.compress(c.tobytes(), 1)) for c in clips) / sum(c.nbytes for c in clips)
    print(f"{'(zlib-1 on interleaved RGB)':30s} {raw_interleaved:8.3f}")

    with tempfile.TemporaryDirectory() as tmp:
        store = MediaStore(Path(tmp) / "media", Path(tmp) / "cache", fsync=False)
        shas = [f"{i:064x}" for i in range(len(clips))]
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            for sha, clip in zip(shas, clips):
                store.write_cache(sha, clip)
        write = (time.perf_counter() - t0) / args.repeat
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            for sha in shas:
                store.load_cache(sha)
        load = (time.perf_counter() - t0) / args.repeat
        clip_bytes = sum(store.cache_path(s).stat().st_size for s in shas) / len(shas)
        still_shas = [f"{i + 10_000:064x}" for i in range(len(stills))]
        for sha, still in zip(still_shas, stills):
            store.write_cache(sha, still)
        t0 = time.perf_counter()
        for sha in still_shas:
            store.load_cache(sha)
        still_load = (time.perf_counter() - t0) / len(stills)
        still_bytes = sum(store.cache_path(s).stat().st_size for s in still_shas) / len(stills)
    print("\nMediaStore files (atomic write, no fsync):")
    print(
        f"  clip write {raw_mb / write:.0f} MB/s ({write / len(clips) * 1e3:.1f} ms/clip), "
        f"load {raw_mb / load:.0f} MB/s ({load / len(clips) * 1e3:.1f} ms/clip)"
    )
    print(f"  still load {still_load * 1e3:.2f} ms/still")
    print(
        f"  mean file: clip {clip_bytes / 1e6:.2f} MB (raw {clips[0].nbytes / 1e6:.2f} MB, "
        f"ratio {clip_bytes / clips[0].nbytes:.3f}), still {still_bytes / 1e3:.0f} kB"
    )
    total = 875 * clip_bytes + 875 * still_bytes
    print(
        f"  paper-size demo project (875 clips + 875 stills): cache {total / 1e6:.0f} MB "
        f"(raw .npy would be {875 * (clips[0].nbytes + stills[0].nbytes) / 1e6:.0f} MB)"
    )


if __name__ == "__main__":
    main()
