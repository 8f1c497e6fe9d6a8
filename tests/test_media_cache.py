"""Decoded-frame cache codec and the content-addressed store."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from rascore.media import decode_frames, encode_frames
from rascore.media.cache import CacheFormatError
from tests.fixtures_media import random_clip, store  # noqa: F401


def speckle(frames: int, seed: int = 0) -> np.ndarray:
    """Log-compressed Rayleigh speckle, greyscale, as a (T, H, W, 3) clip."""
    rng = np.random.default_rng(seed)
    envelope = np.hypot(rng.standard_normal((frames, 64, 80)), rng.standard_normal((frames, 64, 80)))
    grey = np.clip((20 * np.log10(envelope + 1e-6) + 40) * 4, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def test_round_trip_is_lossless_for_grey_colour_and_clips():
    rng = np.random.default_rng(3)
    grey = speckle(1)
    colour = rng.integers(0, 256, (1, 33, 47, 3), dtype=np.uint8)
    doppler = speckle(5, seed=1)
    doppler[:, 20:30, 30:50] = [255, 200, 0]
    for frames in (grey, colour, doppler, random_clip(7), np.zeros((2, 5, 6, 3), np.uint8)):
        decoded = decode_frames(encode_frames(frames))
        assert decoded.dtype == np.uint8 and decoded.shape == frames.shape
        assert np.array_equal(decoded, frames)


def test_grey_and_mostly_grey_frames_cost_about_one_plane():
    grey = speckle(4)
    encoded = encode_frames(grey)
    assert len(encoded) < 0.36 * grey.nbytes  # about one third of raw: the difference planes vanish
    doppler = grey.copy()
    doppler[:, 10:20, 10:30] = [250, 180, 20]
    assert len(encode_frames(doppler)) < 1.1 * len(encoded)


def test_corrupt_or_foreign_data_is_refused():
    data = encode_frames(speckle(2))
    with pytest.raises(CacheFormatError):
        decode_frames(b"RIFF" + data[4:])
    with pytest.raises(CacheFormatError):
        decode_frames(data[:-10])
    damaged = bytearray(data)
    damaged[200] ^= 0xFF
    with pytest.raises(CacheFormatError):
        decode_frames(bytes(damaged))
    with pytest.raises(ValueError):
        encode_frames(np.zeros((4, 4, 3), np.uint8))  # no time axis


def test_put_bytes_names_files_by_sha256_and_skips_duplicates(store):
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(100)
    sha, is_new = store.put_bytes(data, ".png")
    assert sha == hashlib.sha256(data).hexdigest() and is_new
    path = store.media_path(sha)
    assert path == store.media_dir / sha[:2] / f"{sha}.png" and path.read_bytes() == data
    mtime = path.stat().st_mtime_ns
    assert store.put_bytes(data, "png") == (sha, False)
    assert path.stat().st_mtime_ns == mtime
    assert store.has(sha) and not store.has("0" * 64)
    with pytest.raises(ValueError):
        store.media_path("../../etc/passwd")
    with pytest.raises(FileNotFoundError):
        store.media_path("1" * 64)


def test_cache_write_load_and_shape(store):
    clip = speckle(3)
    sha = "ab" + "c" * 62
    path = store.write_cache(sha, clip)
    assert path == store.cache_dir / "ab" / f"{sha}.rasf" and store.has_cache(sha)
    assert np.array_equal(store.load_cache(sha), clip)
    assert store.cache_shape(sha) == (3, 64, 80)
    store.discard(sha)
    assert not store.has_cache(sha)
    with pytest.raises(FileNotFoundError):
        store.load_cache(sha)


def test_a_failed_write_leaves_no_file_and_no_temporary(store, monkeypatch):
    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.put_bytes(b"some bytes", ".bin")
    with pytest.raises(OSError):
        store.write_cache("d" * 64, speckle(1))
    leftovers = [p for p in store.media_dir.parent.rglob("*") if p.is_file()]
    assert leftovers == []
