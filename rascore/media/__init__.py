"""Media layer: decode, validate, de-identify, store by sha256, cache decoded frames, and draw them
for display (``preview``: PNG stills, GIF clips through ``gif``, thumbnails).

Everything a caller needs is re-exported here; no database code lives in this package.
"""

from __future__ import annotations

from .cache import decode_frames, encode_frames
from .decode import decode_bytes, decode_file
from .deid import load_or_create_key, pseudonym
from .errors import Limits, MediaError
from .frames import Decoded
from .ingest import IngestResult, dicom_pseudonym, header_pseudonym, ingest_bytes, ingest_file
from .sniff import EXTENSIONS, sniff
from .storage import MediaStore

__all__ = [
    "Decoded",
    "EXTENSIONS",
    "IngestResult",
    "Limits",
    "MediaError",
    "MediaStore",
    "decode_bytes",
    "decode_file",
    "decode_frames",
    "dicom_pseudonym",
    "encode_frames",
    "header_pseudonym",
    "ingest_bytes",
    "ingest_file",
    "load_or_create_key",
    "pseudonym",
    "sniff",
]
