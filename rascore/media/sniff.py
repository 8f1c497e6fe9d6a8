"""Tell a file's real type from its first bytes (magic numbers), never from its extension."""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path

from .errors import MediaError

HEAD_BYTES = 1024

#: format -> extension used for the stored file
EXTENSIONS: dict[str, str] = {
    "png": ".png",
    "jpeg": ".jpg",
    "tiff": ".tif",
    "bmp": ".bmp",
    "gif": ".gif",
    "mp4": ".mp4",
    "mov": ".mov",
    "avi": ".avi",
    "dicom": ".dcm",
}
IMAGE_FORMATS = frozenset({"png", "jpeg", "tiff", "bmp", "gif"})
VIDEO_FORMATS = frozenset({"mp4", "mov", "avi"})

_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_DICOM_VRS = {
    b"AE",
    b"AS",
    b"AT",
    b"CS",
    b"DA",
    b"DS",
    b"DT",
    b"FL",
    b"FD",
    b"IS",
    b"LO",
    b"LT",
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"PN",
    b"SH",
    b"SL",
    b"SQ",
    b"SS",
    b"ST",
    b"SV",
    b"TM",
    b"UC",
    b"UI",
    b"UL",
    b"UN",
    b"UR",
    b"US",
    b"UT",
    b"UV",
}
_KNOWN_UNSUPPORTED: list[tuple[bytes, str]] = [
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (unpack it and take in the files inside)"),
    (b"\x1f\x8b", "a gzip archive (unpack it first)"),
    (b"\x1a\x45\xdf\xa3", "a Matroska/WebM video, which is not supported (convert it to MP4)"),
    (b"\x00\x00\x01\xba", "an MPEG program stream, which is not supported (convert it to MP4)"),
    (b"\x93NUMPY", "a NumPy array file, not a scan"),
]


def _head(source: bytes | bytearray | memoryview | str | PathLike[str], name: str) -> bytes:
    """First bytes of a file or buffer; raises MediaError for an empty one."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:HEAD_BYTES])
    else:
        try:
            with open(source, "rb") as fh:
                head = fh.read(HEAD_BYTES)
        except FileNotFoundError:
            raise MediaError(name, "file not found") from None
        except IsADirectoryError:
            raise MediaError(name, "is a folder, not a file") from None
        except OSError as exc:
            raise MediaError(name, f"cannot be read: {exc.strerror or exc}") from None
    if not head:
        raise MediaError(name, "empty file (0 bytes)")
    return head


def _looks_like_raw_dicom(head: bytes) -> bool:
    """A DICOM data set without the 128-byte preamble: starts with a group 0002 or 0008 tag."""
    if len(head) < 8 or head[:2] not in (b"\x02\x00", b"\x08\x00"):
        return False
    if head[4:6] in _DICOM_VRS:  # explicit VR little endian
        return True
    length = int.from_bytes(head[4:8], "little")  # implicit VR: a plausible element length
    return length < 1024


def _text_kind(head: bytes) -> str | None:
    """'HTML' or 'text' when the bytes are readable text, else None."""
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = head[:-3].decode("utf-8")  # the head may cut a multi-byte character
        except UnicodeDecodeError:
            return None
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if lowered.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in lowered:
        return "HTML (a web page)"
    if lowered.startswith("<?xml") or lowered.startswith("<svg"):
        return "XML/SVG text"
    printable = sum(ch.isprintable() or ch in "\t\r\n" for ch in text)
    return "text" if printable >= 0.95 * max(len(text), 1) else None


def _display_name(source: object, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "upload"
    return os.fspath(source)  # type: ignore[arg-type]


def sniff(source: bytes | bytearray | memoryview | str | PathLike[str], name: str | None = None) -> str:
    """Return the file's format ("png", "jpeg", ..., "dicom") from its magic bytes, or raise MediaError.

    ``name`` is only used in error messages (and for the extension hint in them).
    """
    name = _display_name(source, name)
    head = _head(source, name)
    # first: a DICOM preamble may itself hold a TIFF header (dual-personality files)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] in (b"II+\x00", b"MM\x00+"):
        raise MediaError(name, "BigTIFF files are not supported (save it as a standard TIFF)")
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        raise MediaError(name, "WebP images are not supported (save it as PNG)")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "mov"
        if brand in _HEIF_BRANDS:
            raise MediaError(
                name,
                f"HEIF/AVIF images ({brand.decode('latin-1').strip()}) are not supported (save it as PNG or JPEG)",
            )
        return "mp4"
    if head[4:8] in _QUICKTIME_ATOMS:
        return "mov"
    if _looks_like_raw_dicom(head):
        return "dicom"
    for magic, what in _KNOWN_UNSUPPORTED:
        if head.startswith(magic):
            raise MediaError(name, f"unsupported file type: {what}")
    ext = Path(name).suffix.lower()
    hint = f" despite its {ext} extension" if ext else ""
    kind = _text_kind(head)
    if kind is not None:
        raise MediaError(name, f"the content is {kind}, not an image, video or DICOM file{hint}")
    raise MediaError(name, "unknown file type: no image, video or DICOM signature found")
