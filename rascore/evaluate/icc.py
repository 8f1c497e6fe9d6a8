"""Intraclass correlation: the six Shrout-Fleiss forms with 95% CIs, through pingouin.

Keys follow Shrout & Fleiss (1979); pingouin 0.7 names them after McGraw & Wong (1996):
ICC1 = ICC(1,1) one-way random, single rater; ICC2 = ICC(A,1) two-way random, absolute agreement,
single rater; ICC3 = ICC(C,1) two-way mixed, consistency, single rater; ICC1k, ICC2k, ICC3k the
same for the mean of the k raters. Older pingouin names (ICC1, ICC2, ...) are accepted as well.
pingouin rounds its CI95 column to 2 decimals by default; the bounds here are unrounded.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from collections.abc import Iterator

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from rascore.evaluate.undefined import undefined

ICC_FORMS: tuple[str, ...] = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")
PINGOUIN_TYPES: dict[str, str] = {
    "ICC(1,1)": "ICC1",
    "ICC(A,1)": "ICC2",
    "ICC(C,1)": "ICC3",
    "ICC(1,k)": "ICC1k",
    "ICC(A,k)": "ICC2k",
    "ICC(C,k)": "ICC3k",
    **{form: form for form in ICC_FORMS},
}


_ROUNDING_LOCK = threading.Lock()


@contextmanager
def _unrounded_ci() -> Iterator[None]:
    """Switch off pingouin's default 2-decimal rounding of CI95 for one call, then restore it."""
    import pingouin

    key = "round.column.CI95"
    with _ROUNDING_LOCK:
        had, old = key in pingouin.options, pingouin.options.get(key)
        pingouin.options[key] = None
        try:
            yield
        finally:
            if had:
                pingouin.options[key] = old
            else:
                pingouin.options.pop(key, None)


def _nan_table(reason: str) -> dict[str, dict]:
    """All six forms NaN, each with the reason beside it."""
    undefined(reason, stacklevel=4)
    return {f: {"icc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "reason": reason} for f in ICC_FORMS}


def icc_table(ratings: ArrayLike) -> dict:
    """Six ICC forms of a targets x raters matrix: {"ICC1": {"icc", "ci_low", "ci_high"}, ...}.

    Rows (targets) with a missing rating are dropped (listwise) and counted in ``n_dropped``
    with a ``note``. Fewer than 2 raters or 2 complete targets, or ratings that are all equal,
    give NaN in every form with a ``reason`` beside it. Also returns ``n_targets`` and
    ``n_raters`` as used.
    """
    arr = np.asarray(ratings, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"ratings must be a 2-D targets x raters array, got shape {arr.shape}")
    complete = ~np.isnan(arr).any(axis=1)
    arr = arr[complete]
    n_dropped = int((~complete).sum())
    n_targets, n_raters = arr.shape
    meta: dict = {"n_targets": int(n_targets), "n_raters": int(n_raters), "n_dropped": n_dropped}
    if n_dropped:
        meta["note"] = f"{n_dropped} target(s) with missing ratings dropped"
    if n_raters < 2:
        return {**_nan_table(f"ICC needs at least 2 raters, got {n_raters}"), **meta}
    if n_targets < 2:
        return {**_nan_table(f"ICC needs at least 2 complete targets, got {n_targets}"), **meta}
    if np.ptp(arr) == 0:
        return {**_nan_table("all ratings are equal: ICC is 0/0"), **meta}
    import pingouin  # imported here: it is slow to import and only ICC needs it

    long = pd.DataFrame(
        {
            "target": np.repeat(np.arange(n_targets), n_raters),
            "rater": np.tile(np.arange(n_raters), n_targets),
            "rating": arr.ravel(),
        }
    )
    with warnings.catch_warnings(), _unrounded_ci():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.filterwarnings("ignore", module="pingouin")  # its pandas deprecation notices
        stats = pingouin.intraclass_corr(long, targets="target", raters="rater", ratings="rating")
    table: dict = {}
    ci_column = "CI95" if "CI95" in stats.columns else "CI95%"
    for _, row in stats.iterrows():
        form = PINGOUIN_TYPES[str(row["Type"])]
        low, high = (float(x) for x in row[ci_column])
        entry = {"icc": float(row["ICC"]), "ci_low": low, "ci_high": high}
        if np.isnan(entry["icc"]):
            entry["reason"] = "zero variance between and within targets: ICC is 0/0"
            undefined(f"{form}: {entry['reason']}")
        elif np.isnan(low) or np.isnan(high):
            entry["reason"] = (
                "no residual variance (raters agree exactly or differ by a "
                "constant): the F-based confidence interval is undefined"
            )
            undefined(f"{form}: {entry['reason']}")
        table[form] = entry
    return {**{f: table[f] for f in ICC_FORMS}, **meta}
