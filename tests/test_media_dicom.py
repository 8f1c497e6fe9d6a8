"""DICOM decoding: the real ultrasound test files and each photometric/bit-depth/frame-rate path."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import convert_color_space

from rascore.media import decode_file
from tests.fixtures_media import REAL_DICOMS, dicom_path, make_dicom, save_dicom


@pytest.mark.parametrize("name", sorted(REAL_DICOMS))
def test_real_dicom_decodes_to_frames(name):
    decoded = decode_file(dicom_path(name))
    frames, rows, cols = REAL_DICOMS[name]
    assert decoded.frames.shape == (frames, rows, cols, 3)
    assert decoded.frames.dtype == np.uint8 and decoded.frames.flags.c_contiguous
    assert decoded.kind == "dicom" and decoded.format == "dicom"
    assert decoded.frames.std() > 5  # an image, not a blank
    assert decoded.meta["modality"] == "US"
    assert (decoded.meta["rows"], decoded.meta["cols"], decoded.meta["frames"]) == (rows, cols, frames)


def hot_pixels(rgb: np.ndarray) -> int:
    """Orange-to-yellow power Doppler pixels: red high, blue low, green in between."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return int(((r > 150) & (r - b > 80) & (g > 40) & (r >= g)).sum())


def test_power_doppler_colours_survive_and_lossless_codecs_agree():
    uncompressed = decode_file(dicom_path("US1_UNCR.dcm")).frames
    assert hot_pixels(uncompressed[0]) > 5000
    grey = (uncompressed[..., 0] == uncompressed[..., 1]) & (uncompressed[..., 1] == uncompressed[..., 2])
    assert 0.8 < grey.mean() < 0.99  # greyscale B-mode with a coloured Doppler box
    # JPEG 2000 lossless (YBR_RCT) must decode to exactly the same RGB pixels
    assert np.array_equal(decode_file(dicom_path("US1_J2KR.dcm")).frames, uncompressed)
    assert np.array_equal(decode_file(dicom_path("examples_jpeg2k.dcm")).frames, uncompressed)
    assert hot_pixels(decode_file(dicom_path("examples_rgb_color.dcm")).frames[0]) > 1000
    # RLE lossless palette equals the uncompressed palette file
    assert np.array_equal(
        decode_file(dicom_path("OBXXXX1A_rle_2frame.dcm")).frames,
        decode_file(dicom_path("OBXXXX1A_2frame.dcm")).frames,
    )


def test_jpeg_ybr_cine_keeps_frame_rate_and_grey_look():
    decoded = decode_file(dicom_path("examples_ybr_color.dcm"))
    assert decoded.fps == pytest.approx(30.0, abs=0.01)  # FrameTime 33.333 ms
    assert decoded.meta["fps"] == decoded.fps
    rgb = decoded.frames.astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).mean() < 2  # mostly grey B-mode after YBR -> RGB
    assert not np.array_equal(decoded.frames[0], decoded.frames[-1])


def test_sixteen_bit_palette_uses_the_lut():
    ds = pydicom.dcmread(dicom_path("gdcm-US-ALOKA-16.dcm"))
    frames = decode_file(dicom_path("gdcm-US-ALOKA-16.dcm")).frames
    expected = (pydicom.pixels.apply_color_lut(ds.pixel_array, ds) >> 8).astype(np.uint8)
    assert np.array_equal(frames[0], expected)
    assert len(np.unique(frames)) > 30


def test_monochrome1_is_inverted(tmp_path):
    pixels = np.arange(64 * 80, dtype=np.uint32).reshape(64, 80).astype(np.uint8)
    mono2 = decode_file(save_dicom(make_dicom(pixels, "MONOCHROME2"), tmp_path / "m2.dcm")).frames
    mono1 = decode_file(save_dicom(make_dicom(pixels, "MONOCHROME1"), tmp_path / "m1.dcm")).frames
    assert np.array_equal(mono2[0, ..., 0], pixels)  # 8-bit greyscale kept as is
    assert np.array_equal(mono1, 255 - mono2)
    assert np.array_equal(mono2[..., 0], mono2[..., 2])  # grey -> three equal channels


def test_sixteen_bit_greyscale_window_else_min_max(tmp_path):
    pixels = np.linspace(1000, 3000, 32 * 40).reshape(32, 40).astype(np.uint16)
    stretched = decode_file(save_dicom(make_dicom(pixels, "MONOCHROME2"), tmp_path / "a.dcm")).frames
    assert stretched.min() == 0 and stretched.max() == 255
    windowed = decode_file(
        save_dicom(make_dicom(pixels, "MONOCHROME2", WindowCenter=2000, WindowWidth=1000), tmp_path / "b.dcm")
    ).frames[0, ..., 0]
    assert (windowed[pixels <= 1490] == 0).all() and (windowed[pixels >= 2510] == 255).all()
    middle = windowed[(pixels > 1995) & (pixels < 2005)]
    assert np.all(np.abs(middle.astype(int) - 128) <= 3)


def test_uncompressed_ybr_full_converted_to_rgb(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    decoded = decode_file(save_dicom(make_dicom(ybr, "YBR_FULL", NumberOfFrames=2), tmp_path / "y.dcm"))
    assert decoded.frames.shape == (2, 16, 24, 3)
    assert np.abs(decoded.frames.astype(int) - rgb).max() <= 3


@pytest.mark.parametrize(
    ("attributes", "fps"),
    [
        ({"CineRate": 25, "FrameTime": 100.0, "RecommendedDisplayFrameRate": 15}, 25.0),
        ({"FrameTime": 100.0, "RecommendedDisplayFrameRate": 15}, 10.0),
        ({"RecommendedDisplayFrameRate": 15}, 15.0),
        ({}, None),
    ],
)
def test_dicom_frame_rate_sources(tmp_path, attributes, fps):
    pixels = np.zeros((3, 8, 8), np.uint8)
    pixels[1] = 100
    ds = make_dicom(pixels, "MONOCHROME2", NumberOfFrames=3, **attributes)
    assert decode_file(save_dicom(ds, tmp_path / "c.dcm")).fps == fps
