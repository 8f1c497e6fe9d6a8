"""Images and clips of every supported format round-trip through decode_file and ingest."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from rascore.media import decode_file, ingest_file, sniff
from tests.fixtures_media import KEY, random_clip, store  # noqa: F401 - fixture

RNG = np.random.default_rng(7)
GREY = RNG.integers(0, 256, (40, 56), dtype=np.uint8)
COLOUR = RNG.integers(0, 256, (40, 56, 3), dtype=np.uint8)


@pytest.mark.parametrize(("ext", "fmt"), [(".png", "png"), (".tif", "tiff"), (".bmp", "bmp")])
def test_lossless_stills_round_trip(tmp_path, ext, fmt):
    for array in (GREY, COLOUR):
        path = tmp_path / f"still{ext}"
        iio.imwrite(path, array, plugin="pillow")
        decoded = decode_file(path)
        assert (decoded.kind, decoded.format, decoded.fps) == ("image", fmt, None)
        expected = np.repeat(array[..., None], 3, -1) if array.ndim == 2 else array
        assert decoded.frames.dtype == np.uint8
        assert np.array_equal(decoded.frames, expected[None])


def test_jpeg_and_alpha_and_sixteen_bit(tmp_path):
    smooth = random_clip(1)[0]
    iio.imwrite(tmp_path / "a.jpg", smooth, quality=95)
    decoded = decode_file(tmp_path / "a.jpg")
    assert decoded.format == "jpeg" and decoded.frames.shape == (1, 48, 64, 3)
    assert np.abs(decoded.frames[0].astype(int) - smooth).mean() < 4
    rgba = np.concatenate([COLOUR, np.full((40, 56, 1), 7, np.uint8)], axis=-1)
    iio.imwrite(tmp_path / "rgba.png", rgba)
    assert np.array_equal(decode_file(tmp_path / "rgba.png").frames[0], COLOUR)  # alpha dropped
    wide = np.linspace(100, 40000, 40 * 56).reshape(40, 56).astype(np.uint16)
    iio.imwrite(tmp_path / "wide.png", wide)
    frames = decode_file(tmp_path / "wide.png").frames
    assert frames.min() == 0 and frames.max() == 255 and frames[0, 0, 0, 0] == 0


def test_extension_is_not_trusted(tmp_path):
    path = tmp_path / "really_a_png.jpg"
    iio.imwrite(path, COLOUR, extension=".png")
    assert sniff(path) == "png"
    assert np.array_equal(decode_file(path).frames[0], COLOUR)


def test_gif_keeps_frames_and_rate(tmp_path):
    clip = random_clip(6)
    iio.imwrite(tmp_path / "c.gif", clip, duration=80, loop=0)  # 80 ms a frame
    decoded = decode_file(tmp_path / "c.gif")
    assert (decoded.kind, decoded.format) == ("clip", "gif")
    assert decoded.frames.shape == (6, 48, 64, 3)
    assert decoded.fps == pytest.approx(12.5)
    assert np.abs(decoded.frames.astype(int) - clip).mean() < 12  # palette quantisation


def test_multipage_tiff_is_a_clip(tmp_path):
    clip = random_clip(4)
    pages = [Image.fromarray(frame) for frame in clip]
    pages[0].save(tmp_path / "m.tiff", save_all=True, append_images=pages[1:])
    decoded = decode_file(tmp_path / "m.tiff")
    assert (decoded.kind, decoded.format, decoded.fps) == ("clip", "tiff", None)
    assert np.array_equal(decoded.frames, clip)


@pytest.mark.parametrize(
    ("ext", "fmt", "kwargs"),
    [
        (".mp4", "mp4", {"codec": "libx264", "fps": 12.5}),
        (".avi", "avi", {"codec": "mjpeg", "fps": 10, "quality": 9}),
        (".mov", "mov", {"codec": "libx264", "fps": 24}),
    ],
)
def test_video_keeps_frames_and_rate(tmp_path, ext, fmt, kwargs):
    clip = random_clip(10)
    path = tmp_path / f"clip{ext}"
    iio.imwrite(path, clip, plugin="FFMPEG", macro_block_size=16, **kwargs)
    decoded = decode_file(path)
    assert (decoded.kind, decoded.format) == ("clip", fmt)
    assert decoded.frames.shape == (10, 48, 64, 3)
    assert decoded.fps == pytest.approx(kwargs["fps"], rel=0.01)
    assert np.abs(decoded.frames.astype(int) - clip).mean() < 10  # lossy codec tolerance


def test_non_dicom_ingest_stores_original_bytes_without_its_name(tmp_path, store):
    path = tmp_path / "patient-smith-right-mcp2.png"
    iio.imwrite(path, COLOUR)
    result = ingest_file(path, store, KEY)
    assert (result.kind, result.format, result.frames, result.height, result.width) == (
        "image",
        "png",
        1,
        40,
        56,
    )
    assert result.pseudonym is None
    stored = store.media_path(result.sha256)
    assert stored.read_bytes() == path.read_bytes()
    assert stored.name == f"{result.sha256}.png" and stored.parent.name == result.sha256[:2]
    names = " ".join(str(p.relative_to(store.media_dir.parent)) for p in store.media_dir.parent.rglob("*"))
    assert result.sha256 in names
    assert "smith" not in names and "patient" not in names
    assert np.array_equal(store.load_cache(result.sha256)[0], COLOUR)
