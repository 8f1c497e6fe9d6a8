"""Atomic file writes: a temporary file beside the target, flushed (and fsynced), then
``os.replace``d into place. A crash or an error leaves the old file or the whole new one, never
half a file, and no temporary file behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(
    path: str | Path,
    content: bytes | Callable[[BinaryIO], object],
    *,
    fsync: bool = True,
    prefix: str | None = None,
    suffix: str = ".tmp",
) -> Path:
    """Write ``content`` (bytes, or a function given the open binary file) to ``path`` atomically.

    The temporary name starts with ``prefix`` (default ``.<name>.``) so that folder scans can
    skip it. Returns ``path``.
    """
    path = Path(path)
    prefix = prefix if prefix is not None else f".{path.name}."
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    except FileNotFoundError:  # a concurrent clean-up removed the empty folder: once more
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
