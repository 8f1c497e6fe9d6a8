"""A reading study with and without AI aid: the figures reported beside the MRMC analysis.

Input is the study's long reading table (``reader, case, truth, arm, score``; ``rascore.
evaluate.mrmc_input``) or arrays laid out from it: ``reference`` (K,) the reference grade 0-3 of
each case, ``scores`` (arms, readers, K) each reader's grade 0-3 in each arm, ``patients`` (K,)
each case's patient id. The arms are named by the caller (``aided``, ``unaided``); every
difference is aided minus unaided.

* ``arm_difference``: the Obuchowski-Rockette analysis (``rascore.evaluate.mrmc``) of the two
  arms with the aided rows put first, so that mrmc's "A - B" (the arm met first minus the
  later) is aided - unaided whatever order the reads were taken in; it reports each arm's mean
  AUC over readers, the difference, and the random-reader random-case (RRRC) 95% interval and
  p (Hillis's ddf). With one reader the difference is given and the RRRC part is NaN with
  mrmc's reason; an input the analysis refuses (a single arm, fewer than 2 positive or
  negative cases...) leaves everything NaN with the refusal as the reason. ``by_level`` runs
  it on the readers of each experience level.
* ``cumulative_auc``: the AUC of a reader's ordinal grade for "grade g or higher" against
  "lower than g" (g = 1, 2, 3), the grade itself the rating. A hard grade has no score for
  "exactly g" that rises with the chance of g, so the per-grade AUC of a rating is taken at
  the cumulative splits, as ordinal ROC analysis does; the split at the study's threshold is
  the MRMC figure of merit itself. A split without a positive or a negative case is NaN.
* ``kappa_figures``: quadratic weighted kappa of each reader's grades against the reference
  grades, per arm, each with a 95% percentile interval of a patient bootstrap (patients drawn
  with replacement, all their cases kept; ``rascore.evaluate.agreement.kappa_replicates``).
  Every reader and arm is scored on the same resamples, so the mean over readers per arm and
  the aided - unaided differences (per reader and of the means) get paired intervals and a
  bootstrap p (``bootstrap_p``). A resample in which a kappa is undefined is left out of what
  needs it and counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from rascore.evaluate.agreement import bootstrap_p, kappa_replicates, percentile_interval
from rascore.evaluate.delong import structural_components
from rascore.evaluate.inputs import as_grades
from rascore.evaluate.mrmc import MRMCInputError, MRMCResult, mrmc_analysis
from rascore.evaluate.mrmc_input import COLUMNS
from rascore.evaluate.undefined import undefined

SPLITS: tuple[int, ...] = (1, 2, 3)  # grade g or higher against lower
NAN = float("nan")


@dataclass(frozen=True)
class ArmDifference:
    """Mean AUC over readers in each arm, aided - unaided, and its RRRC 95% interval and p."""

    label: str
    readers: tuple[str, ...]
    auc_aided: float
    auc_unaided: float
    diff: float
    ci_low: float
    ci_high: float
    p: float
    ddf: float
    reason: str | None = None

    def to_dict(self) -> dict:
        """Plain types (readers as a list)."""
        return {**asdict(self), "readers": list(self.readers)}


def _nan_difference(label: str, readers: Sequence[str], reason: str) -> ArmDifference:
    nan = undefined(reason, stacklevel=4)
    return ArmDifference(label, tuple(readers), nan, nan, nan, nan, nan, nan, nan, reason)


def arm_difference(
    table: pd.DataFrame,
    label: str = "all readers",
    aided: str = "aided",
    unaided: str = "unaided",
    alpha: float = 0.05,
) -> tuple[ArmDifference, MRMCResult | None]:
    """The MRMC analysis of ``table`` (long form, ``COLUMNS``) as aided - unaided, and the full
    result (None when the analysis refused the table; the reason says why)."""
    frame = table[table["arm"].isin([aided, unaided])]
    frame = frame.iloc[np.argsort((frame["arm"] != aided).to_numpy(), kind="stable")]
    readers = tuple(dict.fromkeys(frame["reader"].astype(str)))
    try:
        result = mrmc_analysis(frame[list(COLUMNS)].reset_index(drop=True), alpha)
    except MRMCInputError as exc:
        return _nan_difference(label, readers, f"the MRMC analysis refused the reads: {exc}"), None
    if result.arms != (aided, unaided):  # aided rows come first, so this cannot happen
        raise ValueError(f"arms {result.arms} are not ({aided}, {unaided})")
    auc = result.auc
    rrrc = result.rrrc
    return (
        ArmDifference(
            label,
            result.readers,
            auc[aided],
            auc[unaided],
            auc[aided] - auc[unaided],
            float(rrrc["ci_low"]),
            float(rrrc["ci_high"]),
            float(rrrc["p"]),
            float(rrrc.get("ddf", NAN)),
            rrrc.get("reason"),
        ),
        result,
    )


def by_level(
    table: pd.DataFrame,
    levels: Mapping[str, str],
    order: Sequence[str],
    aided: str = "aided",
    unaided: str = "unaided",
    alpha: float = 0.05,
) -> list[ArmDifference]:
    """``arm_difference`` on the readers of each level in ``order`` (``levels``: reader ->
    level); a level without a reader is NaN with that reason."""
    readers = list(dict.fromkeys(table["reader"].astype(str)))
    out = []
    for level in order:
        mine = [r for r in readers if levels.get(r) == level]
        if not mine:
            out.append(_nan_difference(level, (), f"no {level} reader in the analysis"))
            continue
        part = table[table["reader"].astype(str).isin(mine)]
        out.append(arm_difference(part, level, aided, unaided, alpha)[0])
    return out


@dataclass(frozen=True)
class SplitAUC:
    """AUCs of several ratings at one cumulative split (grade >= ``split`` against lower)."""

    split: int
    auc: np.ndarray  # one per rating; NaN where undefined
    n_pos: int
    n_neg: int
    reason: str | None = None


def cumulative_auc(
    reference: ArrayLike, ratings: ArrayLike, splits: Sequence[int] = SPLITS
) -> dict[int, SplitAUC]:
    """Empirical AUC (ties count one half) of each rating row (p, K) for reference >= g against
    < g, per split g; a split without a positive or a negative case is NaN with the reason."""
    ref = as_grades(reference, "reference")
    rows = np.atleast_2d(np.asarray(ratings, dtype=float))
    if rows.shape[1] != ref.size:
        raise ValueError(f"ratings have {rows.shape[1]} cases but the reference has {ref.size}")
    out: dict[int, SplitAUC] = {}
    for g in splits:
        positive = ref >= g
        m, n = int(positive.sum()), int((~positive).sum())
        if m == 0 or n == 0:
            reason = (
                f"no case graded {g} or higher" if m == 0 else f"every case is graded {g} or higher"
            ) + f": the AUC of grade >= {g} is undefined"
            undefined(reason)
            out[g] = SplitAUC(g, np.full(rows.shape[0], np.nan), m, n, reason)
            continue
        v10, _ = structural_components(positive, rows)
        out[g] = SplitAUC(g, v10.mean(axis=1), m, n)
    return out


def _interval(reps: np.ndarray, n_boot: int, alpha: float, with_p: bool = False) -> tuple[dict, str | None]:
    """(interval of the defined replicates, with the resamples used and left out, and the
    bootstrap p when asked; why the interval is undefined, or None)."""
    valid = reps[~np.isnan(reps)]
    out = {"ci_low": NAN, "ci_high": NAN, **({"p": NAN} if with_p else {})}
    out.update(n_boot_used=int(valid.size), n_boot_excluded=int(n_boot - valid.size))
    if n_boot == 0:
        return out, "n_boot is 0: no interval"
    if valid.size == 0:
        reason = "kappa undefined in every resample: no interval"
        undefined(reason, stacklevel=4)
        return out, reason
    out["ci_low"], out["ci_high"] = percentile_interval(valid, alpha)
    if with_p:
        out["p"] = bootstrap_p(valid)
    return out, None


def _row(
    point: float,
    reps: np.ndarray,
    n_boot: int,
    alpha: float,
    why: str | None = None,
    name: str = "kappa",
    **keys,
) -> dict:
    """One table row: the keys, the point value under ``name``, its interval (and the bootstrap
    p for a difference) and the first reason that applies (the point's own, ``why``, then the
    interval's)."""
    summary, interval_reason = _interval(reps, n_boot, alpha, with_p=name == "diff")
    reason = getattr(point, "reason", None) or why or interval_reason
    return {**keys, name: point, **summary, "reason": reason}


def _mean_of(values: Sequence[float], names: Sequence[str], what: str) -> tuple[float, str | None]:
    """Mean of the values, or NaN naming the first reader whose value is undefined."""
    for value, name in zip(values, names):
        if np.isnan(value):
            reason = f"the {what} of {name} is undefined"
            return undefined(reason, stacklevel=4), reason
    return float(np.mean(values)), None


@dataclass
class KappaFigures:
    """Weighted kappa against the reference per reader and arm, per arm (mean over readers),
    and aided - unaided per reader and of the means, each with a patient-bootstrap interval."""

    cells: pd.DataFrame  # reader, arm, kappa, ci_low, ci_high, n_boot_used, n_boot_excluded, reason
    arms: pd.DataFrame  # arm, readers, kappa (the mean), ci_low, ci_high, ..., reason
    diffs: pd.DataFrame  # reader (the mean of the readers last, as "mean"), diff, ci, p, ..., reason
    cluster: str
    n_clusters: int
    n_boot: int


def kappa_figures(
    reference: ArrayLike,
    scores: ArrayLike,
    arms: Sequence[str],
    readers: Sequence[str],
    patients: Sequence[object] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    weights: str = "quadratic",
    alpha: float = 0.05,
) -> KappaFigures:
    """Kappa figures of ``scores`` (2 arms, readers, K) against ``reference`` (K,); the
    differences are ``arms[0]`` minus ``arms[1]``."""
    grid = np.asarray(scores)
    if len(arms) != 2 or grid.ndim != 3 or grid.shape[:2] != (2, len(readers)) or not len(readers):
        raise ValueError(f"scores of shape {grid.shape} are not 2 arms x {len(readers)} readers x cases")
    r = len(readers)
    found = kappa_replicates(
        reference, [grid[i, j] for i in range(2) for j in range(r)], weights, n_boot, seed, patients
    )
    points = [found.kappas[:r], found.kappas[r:]]
    kappa = np.array(found.kappas, dtype=float).reshape(2, r)
    reps = found.replicates.reshape(2, r, n_boot)
    cells = [
        _row(points[i][j], reps[i, j], n_boot, alpha, reader=reader, arm=arm)
        for i, arm in enumerate(arms)
        for j, reader in enumerate(readers)
    ]
    per_arm = []
    for i, arm in enumerate(arms):
        mean, why = _mean_of(points[i], readers, "kappa")
        per_arm.append(_row(mean, reps[i].mean(axis=0), n_boot, alpha, why, arm=arm, readers=r))
    diffs = []
    for j, reader in enumerate(readers):
        point = float(kappa[0, j] - kappa[1, j])
        why = f"the kappa of {reader} is undefined in an arm" if np.isnan(point) else None
        diffs.append(_row(point, reps[0, j] - reps[1, j], n_boot, alpha, why, "diff", reader=reader))
    mean, why = _mean_of(list(kappa[0] - kappa[1]), readers, "kappa difference")
    diffs.append(_row(mean, (reps[0] - reps[1]).mean(axis=0), n_boot, alpha, why, "diff", reader="mean"))
    return KappaFigures(
        pd.DataFrame(cells),
        pd.DataFrame(per_arm),
        pd.DataFrame(diffs),
        found.cluster,
        found.n_clusters,
        n_boot,
    )


def single_kappa(
    reference: ArrayLike,
    grades: ArrayLike,
    patients: Sequence[object] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    weights: str = "quadratic",
    alpha: float = 0.05,
) -> dict:
    """One grading's weighted kappa against the reference with its patient-bootstrap interval:
    kappa, ci_low, ci_high, n_boot_used, n_boot_excluded, reason, n, cluster, n_clusters."""
    found = kappa_replicates(reference, [grades], weights, n_boot, seed, patients)
    row = _row(found.kappas[0], found.replicates[0], n_boot, alpha)
    return {
        **row,
        "n": int(np.asarray(grades).size),
        "cluster": found.cluster,
        "n_clusters": found.n_clusters,
    }
