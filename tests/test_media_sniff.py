"""File type from magic bytes, never from the extension."""

from __future__ import annotations

import imageio.v3 as iio
import pytest
from PIL import Image

from rascore.media import MediaError, sniff
from tests.fixtures_media import dicom_path, random_clip

FRAME = random_clip(1)[0]


@pytest.mark.parametrize(
    ("extension", "fmt"),
    [
        (".png", "png"),
        (".jpg", "jpeg"),
        (".tif", "tiff"),
        (".bmp", "bmp"),
        (".gif", "gif"),
    ],
)
def test_image_signatures(tmp_path, extension, fmt):
    path = tmp_path / f"x{extension}"
    Image.fromarray(FRAME).save(path)
    misnamed = tmp_path / "x.dat"
    misnamed.write_bytes(path.read_bytes())
    assert sniff(path) == fmt and sniff(misnamed) == fmt and sniff(path.read_bytes()) == fmt


@pytest.mark.parametrize(
    ("extension", "fmt", "codec"),
    [
        (".mp4", "mp4", "libx264"),
        (".mov", "mov", "libx264"),
        (".avi", "avi", "mjpeg"),
    ],
)
def test_video_signatures(tmp_path, extension, fmt, codec):
    path = tmp_path / f"v{extension}"
    iio.imwrite(path, random_clip(2), plugin="FFMPEG", fps=5, codec=codec, macro_block_size=16)
    assert sniff(path) == fmt


def test_dicom_even_with_a_tiff_header_in_its_preamble():
    data = dicom_path("US1_UNCR.dcm").read_bytes()
    assert data[:4] == b"II*\x00"  # a dual-personality DICOM/TIFF file
    assert sniff(data) == "dicom"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"%PDF-1.7\n...", "PDF"),
        (b"PK\x03\x04" + bytes(40), "ZIP"),
        (b"\x00\x00\x00\x18ftypheic" + bytes(40), "HEIF"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(40), "WebP"),
        (b"<html><body>x</body></html>", "HTML"),
        (b"plain words\n" * 5, "text"),
        (bytes(range(256)) * 2, "unknown file type"),
    ],
)
def test_unsupported_inputs_have_a_reason(data, reason):
    with pytest.raises(MediaError) as caught:
        sniff(data, "upload.png")
    assert reason.lower() in caught.value.reason.lower()
    assert str(caught.value).startswith("upload.png: ")


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="file not found"):
        sniff(tmp_path / "nope.png")
