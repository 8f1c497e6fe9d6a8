"""Bad inputs: one clear reason each, checked before decoding, and nothing of them stored."""

from __future__ import annotations

import io
import pickle

import imageio.v3 as iio
import numpy as np
import pydicom
import pytest

from rascore.media import Limits, MediaError, decode_file, ingest_bytes, ingest_file
from tests.fixtures_media import (
    KEY,
    dicom_path,
    grey_png,
    listing,
    make_dicom,
    png_declaring,
    random_clip,
    save_dicom,
    store,  # noqa: F401
)


def assert_rejected(path, store, reason_part: str, limits: Limits = Limits()) -> MediaError:
    """Ingest must raise MediaError naming the file and leave the store byte-for-byte unchanged."""
    before = listing(store.media_dir, store.cache_dir)
    with pytest.raises(MediaError) as caught:
        ingest_file(path, store, KEY, limits)
    error = caught.value
    assert str(error) == f"{path.name}: {error.reason}"
    assert reason_part.lower() in error.reason.lower(), error.reason
    assert listing(store.media_dir, store.cache_dir) == before
    with pytest.raises(MediaError):  # decoding alone rejects it too
        decode_file(path, limits)
    return error


@pytest.fixture
def used_store(tmp_path, store):
    """A store that already holds one good item, so 'unchanged' means more than 'still empty'."""
    good = tmp_path / "good.png"
    good.write_bytes(grey_png(1))
    ingest_file(good, store, KEY)
    assert listing(store.media_dir, store.cache_dir)
    return store


def test_zero_byte_file(tmp_path, used_store):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert_rejected(path, used_store, "empty file")


def test_truncated_png(tmp_path, used_store):
    path = tmp_path / "cut.png"
    path.write_bytes(grey_png(2, (120, 160))[:2000])
    assert_rejected(path, used_store, "truncated")


def test_truncated_dicom_native_and_encapsulated(tmp_path, used_store):
    native = dicom_path("US1_UNCR.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(native[: len(native) // 2])
    assert_rejected(tmp_path / "cut.dcm", used_store, "truncated")
    jpeg = dicom_path("examples_ybr_color.dcm").read_bytes()
    (tmp_path / "cut_jpeg.dcm").write_bytes(jpeg[: len(jpeg) // 2])
    assert_rejected(tmp_path / "cut_jpeg.dcm", used_store, "truncated")


def test_html_saved_as_png(tmp_path, used_store):
    path = tmp_path / "scan.png"
    path.write_bytes(
        b"<!DOCTYPE html>\n<html><head><title>Login</title></head><body>Session expired</body></html>"
    )
    error = assert_rejected(path, used_store, "HTML")
    assert ".png" in error.reason


def test_text_saved_as_dicom(tmp_path, used_store):
    path = tmp_path / "notes.dcm"
    path.write_text("Right MCP2: synovitis grade 2, power Doppler grade 1.\n" * 10)
    assert_rejected(path, used_store, "text")


def test_unknown_binary(tmp_path, used_store):
    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert_rejected(path, used_store, "unknown file type")


def test_dicom_transfer_syntax_without_decoder(tmp_path, used_store):
    ds = pydicom.dcmread(dicom_path("US1_J2KR.dcm"))  # relabel a compressed file
    ds.file_meta.TransferSyntaxUID = pydicom.uid.HTJ2KLossless  # pydicom knows it, nothing decodes it
    error = assert_rejected(save_dicom(ds, tmp_path / "htj2k.dcm"), used_store, "unsupported transfer syntax")
    assert "no decoder for it is installed" in error.reason
    ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG4HP41  # video in DICOM: no pixel decoder at all
    error = assert_rejected(save_dicom(ds, tmp_path / "mpeg4.dcm"), used_store, "unsupported transfer syntax")
    assert "MPEG-4" in error.reason


def test_dicom_jpeg_ls_decodes(tmp_path):
    """JPEG-LS decodes through pyjpegls (installed with highdicom, pinned in requirements.txt)."""
    path = tmp_path / "jpegls.dcm"
    path.write_bytes(dicom_path("MR_small_jpeg_ls_lossless.dcm").read_bytes())
    decoded = decode_file(path)
    assert decoded.frames.shape[0] == 1 and decoded.frames.dtype == np.uint8


def test_png_decompression_bomb_from_header(tmp_path, used_store):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(100_000, 100_000))
    assert path.stat().st_size < 200
    assert_rejected(path, used_store, "decompression bomb")
    # below Pillow's own threshold, our limit still applies
    (tmp_path / "big.png").write_bytes(png_declaring(8_000, 8_000))
    assert_rejected(tmp_path / "big.png", used_store, "decompression bomb")


def test_dicom_and_video_bombs_from_header(tmp_path, used_store):
    ds = pydicom.dcmread(dicom_path("US1_UNCR.dcm"))
    ds.Rows, ds.Columns = 20_000, 20_000
    assert_rejected(save_dicom(ds, tmp_path / "huge.dcm"), used_store, "decompression bomb")
    clip = tmp_path / "c.mp4"
    iio.imwrite(clip, random_clip(4), plugin="FFMPEG", fps=10, macro_block_size=16)
    assert_rejected(clip, used_store, "decompression bomb", Limits(max_pixels=1000))


def test_more_frames_than_the_limit(tmp_path, used_store):
    limits = Limits(max_frames=4)
    iio.imwrite(tmp_path / "c.gif", random_clip(6), duration=50)
    assert_rejected(tmp_path / "c.gif", used_store, "too many frames", limits)
    iio.imwrite(tmp_path / "c.mp4", random_clip(8), plugin="FFMPEG", fps=10, macro_block_size=16)
    assert_rejected(tmp_path / "c.mp4", used_store, "too many frames", limits)
    (tmp_path / "cine.dcm").write_bytes(dicom_path("examples_ybr_color.dcm").read_bytes())
    error = assert_rejected(tmp_path / "cine.dcm", used_store, "too many frames", limits)
    assert "30" in error.reason


def test_file_over_the_byte_limit(tmp_path, used_store):
    path = tmp_path / "a.png"
    path.write_bytes(grey_png(3))
    assert_rejected(path, used_store, "too large", Limits(max_bytes=100))


def test_dicom_without_pixel_data(tmp_path, used_store):
    ds = pydicom.dcmread(dicom_path("US1_UNCR.dcm"))
    del ds.PixelData
    assert_rejected(save_dicom(ds, tmp_path / "nopix.dcm"), used_store, "no pixel data")


def test_corrupt_video(tmp_path, used_store):
    iio.imwrite(tmp_path / "c.mp4", random_clip(8), plugin="FFMPEG", fps=10, macro_block_size=16)
    data = (tmp_path / "c.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:64])
    assert_rejected(tmp_path / "cut.mp4", used_store, "video")


def test_upload_rejected_by_name_and_nothing_stored(used_store):
    before = listing(used_store.media_dir, used_store.cache_dir)
    with pytest.raises(MediaError) as caught:
        ingest_bytes(b"<html><body>oops</body></html>", "upload.jpg", used_store, KEY)
    assert str(caught.value).startswith("upload.jpg: ") and "HTML" in caught.value.reason
    assert listing(used_store.media_dir, used_store.cache_dir) == before


def test_storage_failure_rolls_back_the_media_file(tmp_path, used_store, monkeypatch):
    before = listing(used_store.media_dir, used_store.cache_dir)

    def disk_full(sha, frames):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(used_store, "write_cache", disk_full)
    path = tmp_path / "new.dcm"
    path.write_bytes(dicom_path("US1_UNCR.dcm").read_bytes())
    with pytest.raises(MediaError, match="could not be stored"):
        ingest_file(path, used_store, KEY)
    assert listing(used_store.media_dir, used_store.cache_dir) == before


def test_media_error_is_picklable_and_named():
    error = MediaError("/some/folder/scan.dcm", "truncated file")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == "scan.dcm: truncated file" and again.reason == "truncated file"
    assert again.path == "/some/folder/scan.dcm"


def test_raw_dicom_without_preamble_is_accepted(tmp_path):
    ds = make_dicom(np.full((8, 8), 9, np.uint8), "MONOCHROME2")
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.preamble = None
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False, implicit_vr=True, little_endian=True)
    raw = buffer.getvalue()
    assert raw[128:132] != b"DICM"
    (tmp_path / "raw.dcm").write_bytes(raw)
    assert decode_file(tmp_path / "raw.dcm").frames.shape == (1, 8, 8, 3)
