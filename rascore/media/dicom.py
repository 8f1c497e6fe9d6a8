"""DICOM through pydicom 3: header checks before any pixel is decoded, then uint8 RGB frames."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
import pydicom.pixels as px
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .deid import contains_identifier, identifying_words
from .errors import Limits, MediaError
from .frames import Decoded, minmax_to_uint8, to_rgb_frames

SUPPORTED_PHOTOMETRIC = frozenset(
    {
        "MONOCHROME1",
        "MONOCHROME2",
        "RGB",
        "YBR_FULL",
        "YBR_FULL_422",
        "YBR_RCT",
        "YBR_ICT",
        "YBR_PARTIAL_420",
        "PALETTE COLOR",
    }
)


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _transfer_syntax(ds: Dataset) -> UID:
    """The transfer syntax, filled in from the encoding read when a file has no file meta."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    tsyntax = meta.get("TransferSyntaxUID")
    if not tsyntax:
        implicit, little = ds.original_encoding
        if implicit:
            tsyntax = ImplicitVRLittleEndian
        else:
            tsyntax = ExplicitVRLittleEndian if little is not False else ExplicitVRBigEndian
        meta.TransferSyntaxUID = tsyntax
    return UID(str(tsyntax))


def read_dicom(data: bytes, name: str, limits: Limits = Limits()) -> Dataset:
    """Parse and validate a DICOM file from its header: pixel data present, decodable, within limits."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, EOFError) as exc:
        raise MediaError(name, f"truncated or corrupt DICOM file: {exc}") from None
    except Exception as exc:  # pydicom raises struct.error, ValueError, KeyError on garbage
        raise MediaError(name, f"truncated or corrupt DICOM file: {type(exc).__name__}: {exc}") from None
    if any("end of file" in str(w.message).lower() for w in caught):
        raise MediaError(name, "truncated file: the DICOM data ends before the pixel data is complete")
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise MediaError(name, "floating-point pixel data is not supported")
        sop = ds.get("SOPClassUID")
        what = f" (SOP class: {UID(str(sop)).name})" if sop else ""
        raise MediaError(name, f"DICOM file has no pixel data{what}")
    try:
        tsyntax = _transfer_syntax(ds)
    except Exception as exc:
        raise MediaError(name, f"corrupt DICOM file meta: {exc}") from None
    if tsyntax.is_compressed:
        try:
            decoder = px.get_decoder(tsyntax)
        except NotImplementedError:
            raise MediaError(name, f"unsupported transfer syntax: {tsyntax.name or tsyntax}") from None
        if not decoder.is_available:
            raise MediaError(
                name,
                f"unsupported transfer syntax: {tsyntax.name} ({tsyntax}) - no decoder for it is installed",
            )
    elif not tsyntax.is_transfer_syntax:
        raise MediaError(name, f"unsupported transfer syntax: {tsyntax}")
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    frames = int(ds.get("NumberOfFrames") or 1)
    limits.check(name, frames=frames, height=rows, width=cols)
    photometric = _text(ds.get("PhotometricInterpretation"))
    if photometric not in SUPPORTED_PHOTOMETRIC:
        raise MediaError(name, f"unsupported photometric interpretation {photometric or '(missing)'}")
    samples = int(ds.get("SamplesPerPixel") or 1)
    bits = int(ds.get("BitsAllocated") or 0)
    if samples not in (1, 3) or bits not in (1, 8, 16, 32):
        raise MediaError(name, f"unsupported pixel layout: {samples} samples of {bits} bits")
    if not tsyntax.is_compressed:
        expected = get_expected_length(ds)
        if len(ds.PixelData) < expected:
            raise MediaError(
                name, f"truncated file: pixel data has {len(ds.PixelData):,} of {expected:,} bytes"
            )
    return ds


def dicom_fps(ds: Dataset) -> float | None:
    """Frame rate of a multi-frame file: CineRate, else 1000/FrameTime, else RecommendedDisplayFrameRate."""
    if int(ds.get("NumberOfFrames") or 1) <= 1:
        return None
    for keyword, convert in (
        ("CineRate", float),
        ("FrameTime", lambda ms: 1000.0 / float(ms)),
        ("RecommendedDisplayFrameRate", float),
    ):
        value = ds.get(keyword)
        try:
            fps = convert(value) if value not in (None, "") else None
        except (TypeError, ValueError, ZeroDivisionError):
            fps = None
        if fps is not None and 0 < fps < 10_000:
            return fps
    vector = ds.get("FrameTimeVector")
    if vector:
        steps = [float(v) for v in list(vector)[1:] if float(v) > 0]
        if steps:
            return 1000.0 / (sum(steps) / len(steps))
    return None


def patient_key(ds: Dataset) -> str | None:
    """The raw identifier a pseudonym is made from: PatientID, else "name|birth date"; None if neither."""
    patient_id = _text(ds.get("PatientID"))
    if patient_id:
        return patient_id
    name = _text(ds.get("PatientName")).upper()
    birth = _text(ds.get("PatientBirthDate"))
    return f"{name}|{birth}" if (name or birth) else None


def dicom_meta(ds: Dataset) -> dict:
    """Non-identifying fields worth keeping (equipment model, geometry, encoding, laterality, body part).

    A text value that contains an identifying word of the file (see deid.identifying_words) is
    dropped, as the de-identified file drops it.
    """
    meta = _raw_meta(ds)
    words = identifying_words(ds)
    return {
        k: (None if isinstance(v, str) and k in _TEXT_META and contains_identifier(v, words) else v)
        for k, v in meta.items()
    }


_TEXT_META = ("manufacturer", "manufacturer_model", "image_laterality", "body_part")


def _raw_meta(ds: Dataset) -> dict:
    tsyntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    sop = ds.get("SOPClassUID")
    return {
        "modality": _text(ds.get("Modality")) or None,
        "manufacturer": _text(ds.get("Manufacturer")) or None,
        "manufacturer_model": _text(ds.get("ManufacturerModelName")) or None,
        "sop_class": UID(str(sop)).name if sop else None,
        "rows": int(ds.get("Rows") or 0),
        "cols": int(ds.get("Columns") or 0),
        "frames": int(ds.get("NumberOfFrames") or 1),
        "fps": dicom_fps(ds),
        "photometric": _text(ds.get("PhotometricInterpretation")),
        "bits_allocated": int(ds.get("BitsAllocated") or 0),
        "transfer_syntax": str(tsyntax),
        "transfer_syntax_name": tsyntax.name,
        "image_laterality": _text(ds.get("ImageLaterality") or ds.get("Laterality")) or None,
        "body_part": _text(ds.get("BodyPartExamined")) or None,
    }


def _first(value: object) -> float:
    """First value of a possibly multi-valued DS element."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = list(value)[0]  # type: ignore[arg-type]
    return float(value)  # type: ignore[arg-type]


def _window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 windowing onto 0-255."""
    x = values.astype(np.float32)
    if function == "SIGMOID":
        out = 255.0 / (1.0 + np.exp(-4.0 * (x - center) / max(width, 1e-6)))
    elif function == "LINEAR_EXACT":
        out = (x - center) / max(width, 1e-6) * 255.0 + 127.5
    else:
        width = max(width, 1.0)
        out = ((x - (center - 0.5)) / max(width - 1.0, 1e-6) + 0.5) * 255.0
    return np.rint(out).clip(0, 255).astype(np.uint8)


def _monochrome_to_uint8(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """Modality LUT, then the file's window or VOI LUT if any, else raw 8-bit or min-max; MONOCHROME1 inverted."""
    has_rescale = "RescaleSlope" in ds or "RescaleIntercept" in ds or "ModalityLUTSequence" in ds
    if has_rescale:
        values = px.apply_modality_lut(values, ds)
    if ds.get("WindowCenter") not in (None, "") and ds.get("WindowWidth") not in (None, ""):
        function = _text(ds.get("VOILUTFunction")).upper() or "LINEAR"
        out = _window(values, _first(ds.WindowCenter), _first(ds.WindowWidth), function)
    elif "VOILUTSequence" in ds:
        out = minmax_to_uint8(px.apply_voi_lut(values, ds))
    elif values.dtype == np.uint8:
        out = values
    elif values.dtype == np.bool_:
        out = values.astype(np.uint8) * np.uint8(255)
    else:
        out = minmax_to_uint8(values)
    if _text(ds.get("PhotometricInterpretation")) == "MONOCHROME1":
        out = np.uint8(255) - out
    return out


def _palette_to_uint8(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """Apply the palette LUT; 16-bit LUT entries are reduced to their high byte."""
    rgb = px.apply_color_lut(values, ds)
    if rgb.dtype == np.uint8:
        return rgb
    if rgb.size and int(rgb.max()) <= 255:  # 8-bit values stored in 16-bit words
        return rgb.astype(np.uint8)
    return (rgb >> 8).astype(np.uint8)


def decode_dicom(ds: Dataset, name: str) -> Decoded:
    """Decode a validated data set to (T, H, W, 3) uint8 frames with its frame rate and metadata."""
    frames = int(ds.get("NumberOfFrames") or 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = px.pixel_array(ds)
    except MediaError:
        raise
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "less than expected" in reason or "end of" in reason.lower() or "truncat" in reason.lower():
            raise MediaError(name, f"truncated file: {reason[:300]}") from None
        raise MediaError(name, f"cannot decode the pixel data: {reason[:300]}") from None
    photometric = _text(ds.get("PhotometricInterpretation"))
    samples = int(ds.get("SamplesPerPixel") or 1)
    if photometric == "PALETTE COLOR":
        values = _palette_to_uint8(values, ds)
    elif samples == 1:
        values = _monochrome_to_uint8(values, ds)
    elif values.dtype != np.uint8:
        bits = int(ds.get("BitsStored") or 8)
        values = values.astype(np.uint8) if bits <= 8 else minmax_to_uint8(values)
    rgb = to_rgb_frames(values, multi_frame=frames > 1)
    meta = dicom_meta(ds)
    return Decoded(
        frames=rgb, fps=meta["fps"], kind="dicom", format="dicom", meta=meta, patient_key=patient_key(ds)
    )
