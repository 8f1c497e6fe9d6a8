"""Pictures for display (rascore.media.preview), the one GIF encoder and the one LRU cache."""

from __future__ import annotations

import io
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from rascore.lru import LRU
from rascore.media import MediaStore, gif, preview

ORANGE = (255, 160, 0)  # a Doppler colour


def _clip(frames: int = 6, height: int = 24, width: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 200, size=(frames, height, width), dtype=np.uint8)
    stack = np.repeat(grey[..., None], 3, axis=3)
    stack[:, 8:12, 10:16] = ORANGE
    return stack


def _frames(data: bytes) -> list[np.ndarray]:
    image = Image.open(io.BytesIO(data))
    out = []
    for index in range(image.n_frames):
        image.seek(index)
        out.append(np.asarray(image.convert("RGB")))
    return out


@pytest.fixture
def media(tmp_path):
    store = MediaStore(tmp_path / "media", tmp_path / "cache", fsync=False)
    store.write_cache("a" * 64, _clip())
    store.write_cache("b" * 64, _clip(frames=1))
    return store


def test_frame_png_is_lossless_and_enlarged_by_whole_pixels(media):
    png = preview.frame_png(media, "a" * 64, 2, zoom=2)
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.shape == (48, 64, 3)
    assert np.array_equal(image[::2, ::2], _clip()[2]) and np.array_equal(image[1::2, 1::2], _clip()[2])
    last = preview.frame_png(media, "a" * 64, 99)  # past the end: the last frame
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(last)).convert("RGB")), _clip()[-1])


def test_clip_gif_has_every_frame_at_the_clip_rate(media):
    data = preview.clip_gif(media, "a" * 64, fps=10, zoom=2)
    assert data[:6] == b"GIF89a"
    image = Image.open(io.BytesIO(data))
    assert image.n_frames == 6 and image.size == (64, 48) and image.info["duration"] == 100
    assert image.info["loop"] == 0
    fewer = Image.open(io.BytesIO(preview.clip_gif(media, "a" * 64, fps=10, max_frames=3)))
    assert fewer.n_frames == 3 and fewer.info["duration"] == 200  # every 2nd frame, as long


def test_thumbnail_keeps_the_aspect_ratio(media):
    thumb = Image.open(io.BytesIO(preview.thumbnail_png(media, "b" * 64, width=16)))
    assert thumb.format == "PNG" and thumb.size == (16, 12)


def test_a_second_call_is_served_from_memory_without_decoding_again(media, monkeypatch):
    first = preview.clip_gif(media, "a" * 64, fps=12)
    calls, load = [], MediaStore.load_cache
    monkeypatch.setattr(MediaStore, "load_cache", lambda self, sha: calls.append(sha) or load(self, sha))
    before = preview.cache_info()["images"]
    assert preview.clip_gif(media, "a" * 64, fps=12) == first
    after = preview.cache_info()["images"]
    assert calls == [] and (after.hits, after.misses) == (before.hits + 1, before.misses)
    preview.clear_cache()  # forgotten: decoded again, the same bytes
    assert preview.clip_gif(media, "a" * 64, fps=12) == first and calls == ["a" * 64]


def test_warm_prepares_what_a_page_shows_first(media, monkeypatch):
    shown = SimpleNamespace(sha256="a" * 64, frames=6, fps=10.0)
    preview.warm_in_background(media, lambda: shown, zoom=1).join(timeout=30)
    monkeypatch.setattr(MediaStore, "load_cache", lambda self, sha: pytest.fail("decoded again"))
    assert preview.clip_gif(media, "a" * 64, 10.0)[:6] == b"GIF89a"
    assert preview.frame_png(media, "a" * 64, 3)[:4] == b"\x89PNG"  # the middle frame
    preview.warm_in_background(media, lambda: 1 / 0).join(timeout=30)  # a failed warm-up is ignored


def test_zoom_and_data_url():
    assert preview.zoom_for(256, None) == 2 and preview.zoom_for(800, None) == 1
    assert preview.zoom_for(256, 3) == 3 and preview.zoom_for(100, 9) == 4
    assert preview.data_url(b"GIF89a...").startswith("data:image/gif;base64,")
    assert preview.data_url(b"\x89PNG...").startswith("data:image/png;base64,")


def test_gif_encoder_keeps_the_doppler_colour_and_zooms_after_quantising():
    stack = _clip()
    data = gif.encode(stack, fps=4)
    decoded = _frames(data)
    assert len(decoded) == len(stack) and Image.open(io.BytesIO(data)).info["duration"] == 250
    colour = np.abs(decoded[0][8:12, 10:16].astype(int) - ORANGE).max()
    assert colour <= 16, colour
    error = np.mean([np.abs(d.astype(int) - s.astype(int)).mean() for d, s in zip(decoded, stack)])
    assert error < 4, error
    zoomed = _frames(gif.encode(stack, fps=4, zoom=3))
    assert all(np.array_equal(z[::3, ::3], d) for z, d in zip(zoomed, decoded))


def test_lru_drops_the_least_recently_used_and_counts():
    cache = LRU(2)
    assert cache.get("a") is None
    assert cache.put("a", 1) == 1
    cache.put("b", 2)
    assert cache.get("a") == 1  # now "b" is the least recently used
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("c") == 3
    assert cache.get_or_make("d", lambda: 4) == 4 and cache.get_or_make("d", lambda: 5) == 4
    info = cache.info()
    assert (info.hits, info.misses, info.maxsize, info.currsize) == (3, 3, 2, 2)
    cache.clear()
    assert cache.get("d") is None and cache.info().currsize == 0 and cache.info().hits == 0


def test_lru_is_safe_across_threads():
    cache = LRU(50)

    def work(offset: int) -> None:
        for k in range(2000):
            cache.put((offset, k % 80), k)
            cache.get((offset, (k * 7) % 80))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    info = cache.info()
    assert info.currsize == 50 and info.hits + info.misses == 8000
