"""The one error type of the media layer: a file name and one reason a user can act on."""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path


class MediaError(Exception):
    """A file that cannot be taken in, with the reason; str() is "<file name>: <reason>"."""

    def __init__(self, path: str | PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{Path(self.path).name}: {reason}")

    def __reduce__(self):  # keep it picklable across worker processes
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class Limits:
    """Ceilings checked from headers before pixels are decoded (decompression bombs, huge clips)."""

    max_bytes: int = 2_000_000_000
    max_pixels: int = 40_000_000
    max_frames: int = 2000
    max_decoded_bytes: int = 4_000_000_000

    def check(self, name: str, *, frames: int, height: int, width: int) -> None:
        """Raise MediaError when a header declares more than these limits allow."""
        if height <= 0 or width <= 0:
            raise MediaError(name, f"invalid image size {width} x {height} in the header")
        pixels = height * width
        if pixels > self.max_pixels:
            raise MediaError(
                name,
                f"decompression bomb: the header declares {width} x {height} = {pixels:,} pixels "
                f"per frame, over the limit of {self.max_pixels:,}",
            )
        if frames > self.max_frames:
            raise MediaError(name, f"too many frames: {frames:,}, over the limit of {self.max_frames:,}")
        decoded = frames * pixels * 3
        if decoded > self.max_decoded_bytes:
            raise MediaError(
                name,
                f"too large once decoded: {decoded:,} bytes, over the limit of {self.max_decoded_bytes:,}",
            )
