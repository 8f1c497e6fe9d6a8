"""Validation of metric inputs: grades 0-3 and per-grade probability matrices, as numpy arrays."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from rascore.scale import GRADES

N_GRADES = len(GRADES)


def as_grades(values: ArrayLike, name: str = "y_true") -> np.ndarray:
    """Return ``values`` as a 1-D int array of EOSS grades, or raise ValueError naming ``name``."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iub":
        as_float = arr.astype(float)
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            raise ValueError(f"{name} must hold integer grades 0-3")
        arr = as_float
    out = arr.astype(np.int64)
    bad = (out < GRADES[0]) | (out > GRADES[-1])
    if np.any(bad):
        raise ValueError(f"{name} must hold grades 0-3, found {sorted(set(out[bad].tolist()))[:5]}")
    return out


def as_probs(values: ArrayLike, n: int | None = None, name: str = "probs") -> np.ndarray:
    """Return ``values`` as a finite (n, 4) float array of per-grade scores, or raise ValueError."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != N_GRADES:
        raise ValueError(f"{name} must have shape (n, {N_GRADES}), got {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but y_true has {n}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def as_binary(values: ArrayLike, name: str = "y_true") -> np.ndarray:
    """Return ``values`` as a 1-D bool array (1/True = positive), or raise ValueError."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    uniq = set(np.unique(arr).tolist())
    if not uniq <= {0, 1}:
        raise ValueError(f"{name} must be binary 0/1, found {sorted(uniq)[:5]}")
    return arr.astype(bool)


def as_scores(values: ArrayLike, n: int, name: str = "scores") -> np.ndarray:
    """Return ``values`` as a finite 1-D float array of length ``n``, or raise ValueError."""
    arr = np.asarray(values, dtype=float)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr
