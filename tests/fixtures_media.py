"""Helpers and fixtures for the media tests: real DICOM paths, crafted bad files, store listings."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

from rascore.media import MediaStore

#: real ultrasound files shipped with pydicom / pydicom-data: name -> (frames, rows, cols)
REAL_DICOMS: dict[str, tuple[int, int, int]] = {
    "examples_rgb_color.dcm": (1, 240, 320),
    "examples_ybr_color.dcm": (30, 240, 320),
    "examples_jpeg2k.dcm": (1, 480, 640),
    "examples_palette.dcm": (1, 350, 800),
    "US1_UNCR.dcm": (1, 480, 640),
    "US1_J2KR.dcm": (1, 480, 640),
    "OBXXXX1A_2frame.dcm": (2, 600, 800),
    "OBXXXX1A_rle_2frame.dcm": (2, 600, 800),
    "gdcm-US-ALOKA-16.dcm": (1, 480, 640),
}
KEY = bytes(range(32))


def dicom_path(name: str) -> Path:
    """Path of a pydicom / pydicom-data test file (fails loudly if the package lacks it)."""
    path = get_testdata_file(name)
    assert path, f"{name} must come with pydicom or pydicom-data"
    return Path(path)


def listing(*folders: Path) -> list[tuple[str, str]]:
    """Every file under the folders with the sha256 of its bytes (byte-for-byte comparison)."""
    out = []
    for folder in folders:
        if folder.exists():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    out.append((str(path), hashlib.sha256(path.read_bytes()).hexdigest()))
                else:
                    out.append((str(path), "dir"))
    return out


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height pixels (a decompression bomb when large)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + png_chunk(b"IEND", b"")
    )


def grey_png(seed: int = 0, shape: tuple[int, int] = (48, 64)) -> bytes:
    rng = np.random.default_rng(seed)
    return iio.imwrite("<bytes>", rng.integers(0, 256, shape, dtype=np.uint8), extension=".png")


def random_clip(frames: int, seed: int = 0, height: int = 48, width: int = 64) -> np.ndarray:
    """Smooth moving colour pattern (codec friendly, so lossy round trips stay close)."""
    t, y, x = np.meshgrid(np.arange(frames), np.arange(height), np.arange(width), indexing="ij")
    base = 128 + 60 * np.sin(x / 7.0 + t * 0.6 + seed) * np.cos(y / 9.0)
    clip = np.stack([base, np.roll(base, 5, axis=2), 255 - base], axis=-1)
    return np.clip(clip, 0, 255).astype(np.uint8)


def make_dicom(pixels: np.ndarray, photometric: str, **attributes) -> Dataset:
    """A small valid ultrasound DICOM around ``pixels`` ((T,) H, W (, 3)), with extra attributes."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = UltrasoundImageStorage
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[photometric, str(pixels.shape)])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["series"])
    ds.Modality = "US"
    ds.PatientName = "Test^Synthetic"
    ds.PatientID = "synthetic-0001"
    bits = 16 if pixels.dtype == np.uint16 else 8
    ds.set_pixel_data(pixels, photometric, bits)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def save_dicom(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def identifying_values(path: Path) -> set[str]:
    """Identifying values of an original file and their words (>= 4 chars), read before ingest."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    keywords = (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientAddress",
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "ReferringPhysicianName",
        "PerformingPhysicianName",
        "NameOfPhysiciansReadingStudy",
        "OperatorsName",
        "AccessionNumber",
        "StudyID",
        "StationName",
        "DeviceSerialNumber",
        "OtherPatientIDs",
        "PatientTelephoneNumbers",
        "StudyDate",
        "SOPInstanceUID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
    )
    values: set[str] = set()
    for keyword in keywords:
        value = str(ds.get(keyword) or "").strip()
        for part in {value, *value.replace("^", " ").split()}:
            if len(part) >= 4:
                values.add(part)
    return values


@pytest.fixture
def store(tmp_path) -> MediaStore:
    """An empty store in a fresh folder."""
    return MediaStore(tmp_path / "data" / "media", tmp_path / "data" / "cache")
