"""Decode any supported scan (image, clip or DICOM) to uint8 frames, checking it first."""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path

from .dicom import decode_dicom, read_dicom
from .errors import Limits, MediaError
from .frames import Decoded
from .images import decode_image
from .sniff import IMAGE_FORMATS, VIDEO_FORMATS, sniff
from .video import decode_video


def check_size(size: int, name: str, limits: Limits) -> None:
    """Reject empty files and files over the byte limit before reading them."""
    if size == 0:
        raise MediaError(name, "empty file (0 bytes)")
    if size > limits.max_bytes:
        raise MediaError(name, f"file too large: {size:,} bytes, over the limit of {limits.max_bytes:,}")


def decode_bytes(data: bytes, name: str, limits: Limits = Limits()) -> Decoded:
    """Sniff, validate and decode a file held in memory; ``name`` is used in error messages only."""
    check_size(len(data), name, limits)
    fmt = sniff(data, name)
    if fmt == "dicom":
        return decode_dicom(read_dicom(data, name, limits), name)
    if fmt in VIDEO_FORMATS:
        return decode_video(data, fmt, name, limits)
    if fmt in IMAGE_FORMATS:
        return decode_image(data, fmt, name, limits)
    raise MediaError(name, f"unsupported file type: {fmt}")  # pragma: no cover - sniff returns known formats


def checked_path(path: str | PathLike[str], limits: Limits) -> Path:
    """A path that exists, is a file and is within the size limit; else MediaError."""
    path = Path(path)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise MediaError(path, "file not found") from None
    if path.is_dir():
        raise MediaError(path, "is a folder, not a file")
    check_size(size, str(path), limits)
    return path


def decode_file(path: str | PathLike[str], limits: Limits = Limits()) -> Decoded:
    """Decode a file without storing it (for `rascore predict FILE`); raises MediaError if it is bad."""
    path = checked_path(path, limits)
    fmt = sniff(path)
    if fmt in VIDEO_FORMATS:  # ffmpeg reads the file itself: no copy in memory
        return decode_video(path, fmt, str(path), limits)
    return decode_bytes(path.read_bytes(), str(path), limits)
