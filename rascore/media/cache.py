"""Lossless, compact codec for decoded frames (T, H, W, 3) uint8, as read by training every epoch.

Layout: 20-byte header (magic "RASF", version, codec, T, H, W), three stream lengths, then three
zlib streams with their lengths: the green plane G, then R-G and B-G modulo 256. Greyscale
pixels give zero difference planes, so grey and mostly-grey Doppler frames cost about one plane
of speckle; an all-zero difference plane is stored as an empty stream. Measured in
bench/bench_cache.py: zlib level 1 with the Z_RLE strategy compresses the speckle plane as well as
the default strategy at twice the write speed, while the default strategy decodes the long zero
runs of the difference planes five times faster than Z_RLE, so each plane gets its best one.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

MAGIC = b"RASF"
VERSION = 1
CODEC_ZLIB_PLANES = 1
CACHE_EXT = ".rasf"
_HEADER = struct.Struct("<4sBBxxIII")  # magic, version, codec, pad, T, H, W
_LENGTHS = struct.Struct("<QQQ")

STRATEGIES = {
    "default": zlib.Z_DEFAULT_STRATEGY,
    "rle": zlib.Z_RLE,
    "huffman": zlib.Z_HUFFMAN_ONLY,
    "filtered": zlib.Z_FILTERED,
}


class CacheFormatError(ValueError):
    """A cache file that is not ours, is corrupt or does not match its header."""


def _compress(plane: np.ndarray, level: int, strategy: int) -> bytes:
    if not plane.any():
        return b""
    packer = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    return packer.compress(plane) + packer.flush()


def encode_frames(
    frames: np.ndarray, level: int = 1, grey_strategy: str = "rle", diff_strategy: str = "default"
) -> bytes:
    """Encode (T, H, W, 3) uint8 frames losslessly (see the module docstring)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    green = np.ascontiguousarray(frames[..., 1])
    red = np.ascontiguousarray(frames[..., 0]) - green  # uint8 arithmetic wraps modulo 256
    blue = np.ascontiguousarray(frames[..., 2]) - green
    streams = [_compress(green, level, STRATEGIES[grey_strategy])]
    streams += [_compress(p, level, STRATEGIES[diff_strategy]) for p in (red, blue)]
    header = _HEADER.pack(MAGIC, VERSION, CODEC_ZLIB_PLANES, t, h, w)
    return b"".join([header, _LENGTHS.pack(*(len(s) for s in streams)), *streams])


def read_header(data: bytes) -> tuple[int, int, int]:
    """(frames, height, width) from an encoded buffer's header, without decompressing."""
    if len(data) < _HEADER.size + _LENGTHS.size:
        raise CacheFormatError("cache file too short")
    magic, version, codec, t, h, w = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or codec != CODEC_ZLIB_PLANES:
        raise CacheFormatError("not a RAScore frame cache file (or an unknown version)")
    return t, h, w


def decode_frames(data: bytes) -> np.ndarray:
    """Decode a buffer made by encode_frames back to the identical (T, H, W, 3) uint8 array."""
    t, h, w = read_header(data)
    lengths = _LENGTHS.unpack_from(data, _HEADER.size)
    offset = _HEADER.size + _LENGTHS.size
    if offset + sum(lengths) != len(data):
        raise CacheFormatError("cache file length does not match its header")
    size = t * h * w
    planes: list[np.ndarray | None] = []
    view = memoryview(data)
    for length in lengths:
        chunk = view[offset : offset + length]
        offset += length
        if length == 0:
            planes.append(None)
            continue
        try:
            raw = zlib.decompress(chunk, bufsize=size)
        except zlib.error as exc:
            raise CacheFormatError(f"corrupt cache data: {exc}") from None
        if len(raw) != size:
            raise CacheFormatError("cache plane size does not match its header")
        planes.append(np.frombuffer(raw, np.uint8).reshape(t, h, w))
    green, red, blue = planes
    if green is None:
        green = np.zeros((t, h, w), np.uint8)
    out = np.empty((t, h, w, 3), np.uint8)
    out[..., 1] = green
    if red is None:
        out[..., 0] = green
    else:
        np.add(green, red, out=out[..., 0])
    if blue is None:
        out[..., 2] = green
    else:
        np.add(green, blue, out=out[..., 2])
    return out
