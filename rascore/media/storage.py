"""Content-addressed media store (sha256 of the stored bytes names the file) and its frame cache."""

from __future__ import annotations

import hashlib
import re
from os import PathLike
from pathlib import Path

import numpy as np

from .cache import CACHE_EXT, decode_frames, encode_frames, read_header
from rascore.atomic import write_atomic

_SHA = re.compile(r"^[0-9a-f]{64}$")
_TEMP_PREFIX = ".tmp-"


def _check_sha(sha: str) -> str:
    if not isinstance(sha, str) or not _SHA.match(sha):
        raise ValueError(f"not a sha256 hex digest: {sha!r}")
    return sha


def atomic_write(path: Path, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` atomically (rascore.atomic), under a temporary name folder scans skip."""
    write_atomic(path, data, fsync=fsync, prefix=_TEMP_PREFIX, suffix=".part")


class MediaStore:
    """Files under media_dir/ab/<sha256><ext>, decoded frames under cache_dir/ab/<sha256>.rasf.

    ``fsync=False`` skips flushing each file to disk (faster bulk generation of demo data;
    writes stay atomic, only durability across a power cut is lost).
    """

    def __init__(
        self, media_dir: str | PathLike[str], cache_dir: str | PathLike[str], fsync: bool = True
    ) -> None:
        self.media_dir = Path(media_dir)
        self.cache_dir = Path(cache_dir)
        self.fsync = fsync

    @staticmethod
    def sha256(data: bytes) -> str:
        """Hex sha256 of bytes: the name a file gets in the store."""
        return hashlib.sha256(data).hexdigest()

    def media_path(self, sha: str, ext: str | None = None) -> Path:
        """Path of the stored file; with ``ext`` the path it has or would have, else the existing one.

        Raises FileNotFoundError when no extension is given and nothing with that sha is stored.
        """
        _check_sha(sha)
        folder = self.media_dir / sha[:2]
        if ext is not None:
            return folder / f"{sha}{_normal_ext(ext)}"
        for candidate in sorted(folder.glob(f"{sha}.*")) if folder.is_dir() else []:
            if not candidate.name.startswith(_TEMP_PREFIX):
                return candidate
        raise FileNotFoundError(f"no stored media file with sha256 {sha}")

    def has(self, sha: str) -> bool:
        """True when a media file with this sha256 is stored."""
        try:
            self.media_path(sha)
        except FileNotFoundError:
            return False
        return True

    def put_bytes(self, data: bytes, ext: str) -> tuple[str, bool]:
        """Store bytes once under their sha256; returns (sha256, is_new). A duplicate is not rewritten."""
        sha = self.sha256(data)
        if self.has(sha):
            return sha, False
        atomic_write(self.media_path(sha, ext), data, self.fsync)
        return sha, True

    def read_bytes(self, sha: str) -> bytes:
        """The stored file's bytes."""
        return self.media_path(sha).read_bytes()

    def cache_path(self, sha: str) -> Path:
        """Where the decoded frames of ``sha`` are cached."""
        _check_sha(sha)
        return self.cache_dir / sha[:2] / f"{sha}{CACHE_EXT}"

    def has_cache(self, sha: str) -> bool:
        """True when decoded frames of ``sha`` are cached."""
        return self.cache_path(sha).is_file()

    def write_cache(self, sha: str, frames: np.ndarray) -> Path:
        """Cache decoded (T, H, W, 3) uint8 frames losslessly; atomic; returns the cache path."""
        path = self.cache_path(sha)
        atomic_write(path, encode_frames(frames), self.fsync)
        return path

    def load_cache(self, sha: str) -> np.ndarray:
        """The cached (T, H, W, 3) uint8 frames (FileNotFoundError when not cached)."""
        return decode_frames(self.cache_path(sha).read_bytes())

    def cache_shape(self, sha: str) -> tuple[int, int, int]:
        """(frames, height, width) of the cached frames, read from the header only."""
        with open(self.cache_path(sha), "rb") as fh:
            return read_header(fh.read(64))

    def discard(self, sha: str) -> None:
        """Delete the stored file and cached frames of ``sha`` (missing ones are ignored)."""
        try:
            self.media_path(sha).unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        self.cache_path(sha).unlink(missing_ok=True)


def _normal_ext(ext: str) -> str:
    ext = ext if ext.startswith(".") else f".{ext}"
    if not re.fullmatch(r"\.[A-Za-z0-9]{1,8}", ext):
        raise ValueError(f"bad file extension {ext!r}")
    return ext.lower()
