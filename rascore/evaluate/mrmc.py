"""Multi-reader multi-case (MRMC) ROC analysis: Obuchowski-Rockette with Hillis's degrees of freedom.

The method of the University of Iowa's OR-DBM MRMC software (trapezoidal AUC, covariances by
jackknifing cases), checked against its published output on the Van Dyke and the Zanca (FED) data
to the printed digits (tests/test_evaluate_mrmc.py). References: Obuchowski NA, Rockette HE,
Commun Stat Simul Comput 1995;24:285-308; Hillis SL et al., Stat Med 2005;24:1579-1607; Hillis SL,
Stat Med 2007;26:596-619.

With t arms, r readers and K cases (fully crossed, ``rascore.evaluate.mrmc_input``):

* theta[i, j], the figure of merit of reader j in arm i, is the empirical AUC (Mann-Whitney,
  ties 1/2). theta_(k)[i, j] is the same with case k left out. It is read for every case at once
  from DeLong's placement values: leaving out positive p gives (m A - V10_p) / (m - 1), leaving
  out negative q gives (n A - V01_q) / (n - 1), m and n the numbers of positive and negative
  cases; no AUC is recomputed.
* The error covariance of two reader-arm AUCs is the jackknife (K - 1) / K sum_k (theta_(k) -
  mean_k theta_(k)) (theta'_(k) - mean_k theta'_(k)). Averaged over pairs: Var (same reader, same
  arm), Cov1 (same reader, different arms), Cov2 (different readers, same arm), Cov3 (different
  readers, different arms).
* MS(T), MS(R) and MS(T*R) are the mean squares of the arm x reader ANOVA of theta.
* Random readers and random cases (RRRC): F = MS(T) / [MS(T*R) + r max(Cov2 - Cov3, 0)] on
  t - 1 and ddf_H = [MS(T*R) + r max(Cov2 - Cov3, 0)]^2 / {MS(T*R)^2 / [(t-1)(r-1)]} degrees of
  freedom; each arm difference has stderr sqrt{2/r [MS(T*R) + r max(Cov2 - Cov3, 0)]} and a
  t(ddf_H) interval. One arm alone: stderr sqrt{[MS(R)_i + r max(Cov2_i, 0)] / r},
  ddf_H_single = [MS(R)_i + r max(Cov2_i, 0)]^2 / [MS(R)_i^2 / (r - 1)].
* Fixed readers, random cases (FRRC): X2 = (t-1) MS(T) / [Var - Cov1 + (r-1) max(Cov2 - Cov3, 0)]
  on t - 1 df; differences with stderr sqrt{2/r [Var - Cov1 + (r-1) max(Cov2 - Cov3, 0)]} and
  normal intervals; per arm sqrt{[Var_i + (r-1) max(Cov2_i, 0)] / r}; per reader sqrt[2 (Var_j -
  Cov1_j)].
* Random readers, fixed cases (RRFC): F = MS(T) / MS(T*R) on t - 1 and (t-1)(r-1) df;
  differences with stderr sqrt[2/r MS(T*R)], per arm sqrt[MS(R)_i / r] on r - 1 df.

Arms, readers and cases keep the order in which they first appear in the table. A difference
"A - B" is the earlier arm minus the later one (the Iowa software's "1 - 2"). With one reader the
random-reader analyses and Cov2, Cov3 are NaN with the reason (``rascore.evaluate.undefined``);
the fixed-reader analysis is still made.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from rascore.evaluate.delong import structural_components
from rascore.evaluate.mrmc_input import MRMCData, MRMCInputError, mrmc_data
from rascore.evaluate.undefined import undefined

__all__ = ["MRMCInputError", "MRMCResult", "jackknife_aucs", "mrmc_analysis", "or_covariances"]

ONE_READER = (
    "one reader: random-reader analyses need at least 2 readers, since the reader x arm mean "
    "square MS(T*R) has (t-1)(r-1) = 0 degrees of freedom and no reader pair gives Cov2 or Cov3"
)
NAN = float("nan")


def jackknife_aucs(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (p,) of p score vectors (p, K) on the same cases, and their leave-one-case-out
    AUCs (p, K), column k without case k. Needs at least 2 positive and 2 negative cases."""
    positive = np.asarray(truth, dtype=bool)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    m, n = int(positive.sum()), int((~positive).sum())
    v10, v01 = structural_components(positive, s)
    auc = v10.mean(axis=1)
    jack = np.empty_like(s)
    jack[:, positive] = (m * auc[:, None] - v10) / (m - 1)
    jack[:, ~positive] = (n * auc[:, None] - v01) / (n - 1)
    return auc, jack


def _pair_mean(cov: np.ndarray, same_arm: bool, same_reader: bool) -> float:
    """Mean of cov[i, j, i', j'] over the pairs of cells of the given kind (NaN if none)."""
    t, r = cov.shape[:2]
    arm = np.eye(t, dtype=bool) if same_arm else ~np.eye(t, dtype=bool)
    reader = np.eye(r, dtype=bool) if same_reader else ~np.eye(r, dtype=bool)
    mask = arm[:, None, :, None] & reader[None, :, None, :]
    return float(cov[mask].mean()) if mask.any() else NAN


def or_covariances(jack: np.ndarray) -> np.ndarray:
    """Jackknife covariance (t, r, t, r) of the AUCs from their leave-one-out values (t, r, K)."""
    t, r, k = jack.shape
    centred = (jack - jack.mean(axis=2, keepdims=True)).reshape(t * r, k)
    return ((k - 1) / k * (centred @ centred.T)).reshape(t, r, t, r)


@dataclass(frozen=True)
class MRMCResult:
    """Everything one OR analysis computes; ``to_dict`` / ``to_json`` give the documented JSON."""

    arms: tuple[str, ...]
    readers: tuple[str, ...]
    n_cases: int
    n_positive: int
    n_negative: int
    reader_auc: np.ndarray  # (t, r)
    var: float
    cov1: float
    cov2: float
    cov3: float
    ms_t: float
    ms_r: float
    ms_tr: float
    rrrc: dict
    frrc: dict
    rrfc: dict
    per_arm: dict = field(default_factory=dict)  # arm -> var, cov2, ms_r
    per_reader: dict = field(default_factory=dict)  # reader -> var, cov1

    @property
    def auc(self) -> dict[str, float]:
        """Mean AUC over readers, per arm."""
        return {a: float(v) for a, v in zip(self.arms, self.reader_auc.mean(axis=1))}

    def to_dict(self) -> dict:
        """The JSON figures as a dict (NaN kept as NaN)."""
        return {
            "arms": list(self.arms),
            "readers": list(self.readers),
            "n_cases": self.n_cases,
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "auc": self.auc,
            "reader_auc": {
                a: {rd: float(self.reader_auc[i, j]) for j, rd in enumerate(self.readers)}
                for i, a in enumerate(self.arms)
            },
            "var": self.var,
            "cov1": self.cov1,
            "cov2": self.cov2,
            "cov3": self.cov3,
            "ms_t": self.ms_t,
            "ms_r": self.ms_r,
            "ms_tr": self.ms_tr,
            "rrrc": self.rrrc,
            "frrc": self.frrc,
            "rrfc": self.rrfc,
            "per_arm": self.per_arm,
            "per_reader": self.per_reader,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text; an undefined number is ``null`` with a ``"reason"`` beside it."""
        return json.dumps(_clean(self.to_dict()), indent=indent, allow_nan=False)


def _clean(value: Any) -> Any:
    """NaN and infinities as None, numpy scalars as Python numbers, keys as strings."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _f_p(f: float, df1: float, df2: float) -> float:
    """Upper tail of F(df1, df2); df2 infinite is the chi-square limit."""
    if math.isinf(df2):
        return float(stats.chi2.sf(f * df1, df1))
    return float(stats.f.sf(f, df1, df2))


def _interval(estimate: float, se: float, df: float | None, alpha: float) -> dict:
    """Test of estimate = 0 and its 1 - alpha interval: t(df), or normal when df is None."""
    if not se > 0:
        reason = "zero standard error: no test or interval"
        return {"stderr": se, "stat": NAN, "p": NAN, "ci_low": NAN, "ci_high": NAN, "reason": reason}
    dist = stats.norm if df is None else stats.t(df)
    stat = estimate / se
    q = float(dist.ppf(1 - alpha / 2))
    return {
        "stderr": se,
        "stat": stat,
        "p": float(2 * dist.sf(abs(stat))),
        "ci_low": estimate - q * se,
        "ci_high": estimate + q * se,
    }


def _single(auc: float, se: float, df: float | None, alpha: float) -> dict:
    """One arm's mean AUC with its stderr and 1 - alpha interval (t(df), or normal)."""
    test = _interval(float(auc), se, df, alpha)
    del test["stat"], test["p"]
    return {"auc": float(auc), **({} if df is None else {"df": df}), **test}


def _hillis_df(error: float, ms: float, df_ms: int) -> float:
    """Satterthwaite-type df of error = ms + covariance term, ms on df_ms df (inf when ms is 0)."""
    return error**2 / (ms**2 / df_ms) if ms > 0 else math.inf


def _comparisons(
    arms: tuple[str, ...], means: np.ndarray, se: float, df: float | None, alpha: float, stat: str
) -> list[dict]:
    """Every pair of arms (earlier minus later) with its test and interval."""
    rows = []
    for i, j in itertools.combinations(range(len(arms)), 2):
        diff = float(means[i] - means[j])
        test = _interval(diff, se, df, alpha)
        row = {"a": arms[i], "b": arms[j], "diff": diff, "stderr": se, **({} if df is None else {"df": df})}
        row[stat] = test.pop("stat")
        rows.append({**row, **test})
    return rows


def _summary(rows: list[dict], n_arms: int) -> dict:
    """diff / ci_low / ci_high: numbers with two arms, dicts keyed "A - B" with more."""
    if n_arms == 2:
        return {k: rows[0][k] for k in ("diff", "ci_low", "ci_high")}
    return {k: {f"{row['a']} - {row['b']}": row[k] for row in rows} for k in ("diff", "ci_low", "ci_high")}


def _undefined_analysis(keys: tuple[str, ...], reason: str) -> dict:
    """An analysis whose every figure is NaN, with the reason."""
    undefined(reason)
    return {**{k: NAN for k in keys}, "diff": NAN, "ci_low": NAN, "ci_high": NAN, "reason": reason}


def _rrrc(d: dict, alpha: float) -> dict:
    """Random readers, random cases: OR F test with Hillis's ddf."""
    t, r = d["t"], d["r"]
    if r < 2:
        return _undefined_analysis(("F", "df1", "ddf", "p"), ONE_READER)
    error = d["ms_tr"] + r * max(d["cov2"] - d["cov3"], 0.0)
    if not error > 0:
        return _undefined_analysis(
            ("F", "df1", "ddf", "p"),
            "the error term MS(T*R) + r max(Cov2 - Cov3, 0) is 0: every reader's AUCs differ "
            "between arms by the same amount and cases add no variance",
        )
    ddf = _hillis_df(error, d["ms_tr"], (t - 1) * (r - 1))
    f = d["ms_t"] / error
    rows = _comparisons(d["arms"], d["means"], math.sqrt(2.0 / r * error), ddf, alpha, "t")
    single = {}
    for i, arm in enumerate(d["arms"]):
        ms_r, cov2 = d["ms_r_arm"][i], d["cov2_arm"][i]
        err_i = ms_r + r * max(cov2, 0.0)
        df_i = _hillis_df(err_i, ms_r, r - 1)
        single[arm] = _single(d["means"][i], math.sqrt(err_i / r), df_i, alpha)
    out = {
        "F": f,
        "df1": t - 1,
        "ddf": ddf,
        "p": _f_p(f, t - 1, ddf),
        **_summary(rows, t),
        "error_term": error,
        "stderr": rows[0]["stderr"],
        "comparisons": rows,
        "single": single,
    }
    if math.isinf(ddf):
        out["note"] = "MS(T*R) is 0, so ddf is infinite (JSON null): F and t take their normal limits"
    return out


def _frrc(d: dict, alpha: float) -> dict:
    """Fixed readers, random cases: chi-square test and normal intervals."""
    t, r = d["t"], d["r"]
    reader_term = (r - 1) * max(d["cov2"] - d["cov3"], 0.0) if r > 1 else 0.0
    error = d["var"] - d["cov1"] + reader_term
    if not error > 0:
        return _undefined_analysis(
            ("chi2", "df", "p"),
            "the error term Var - Cov1 + (r-1) max(Cov2 - Cov3, 0) is 0: leaving a case out "
            "never moves the AUC differences between arms (perfect or identical readings)",
        )
    chi2 = (t - 1) * d["ms_t"] / error
    rows = _comparisons(d["arms"], d["means"], math.sqrt(2.0 / r * error), None, alpha, "z")
    single = {}
    for i, arm in enumerate(d["arms"]):
        cov2 = max(d["cov2_arm"][i], 0.0) if r > 1 else 0.0
        se = math.sqrt((d["var_arm"][i] + (r - 1) * cov2) / r)
        single[arm] = _single(d["means"][i], se, None, alpha)
    per_reader = {}
    for j, reader in enumerate(d["readers"]):
        se = math.sqrt(max(2.0 * (d["var_reader"][j] - d["cov1_reader"][j]), 0.0))
        per_reader[reader] = _comparisons(d["arms"], d["auc"][:, j], se, None, alpha, "z")
    return {
        "chi2": chi2,
        "df": t - 1,
        "p": float(stats.chi2.sf(chi2, t - 1)),
        **_summary(rows, t),
        "error_term": error,
        "stderr": rows[0]["stderr"],
        "comparisons": rows,
        "single": single,
        "per_reader": per_reader,
    }


def _rrfc(d: dict, alpha: float) -> dict:
    """Random readers, fixed cases: the arm x reader ANOVA F test."""
    t, r = d["t"], d["r"]
    if r < 2:
        return _undefined_analysis(("F", "df1", "df2", "p"), ONE_READER)
    if not d["ms_tr"] > 0:
        return _undefined_analysis(
            ("F", "df1", "df2", "p"),
            "MS(T*R) is 0: every reader's AUCs differ between arms by the same amount",
        )
    df2 = (t - 1) * (r - 1)
    f = d["ms_t"] / d["ms_tr"]
    rows = _comparisons(d["arms"], d["means"], math.sqrt(2.0 / r * d["ms_tr"]), df2, alpha, "t")
    single = {}
    for i, arm in enumerate(d["arms"]):
        se = math.sqrt(d["ms_r_arm"][i] / r)
        single[arm] = _single(d["means"][i], se, r - 1, alpha)
    return {
        "F": f,
        "df1": t - 1,
        "df2": df2,
        "p": _f_p(f, t - 1, df2),
        **_summary(rows, t),
        "stderr": rows[0]["stderr"],
        "comparisons": rows,
        "single": single,
    }


def _anova(auc: np.ndarray) -> tuple[float, float, float]:
    """MS(T), MS(R), MS(T*R) of the arm x reader table of AUCs (NaN where df is 0)."""
    t, r = auc.shape
    grand = auc.mean()
    arm_means, reader_means = auc.mean(axis=1), auc.mean(axis=0)
    ms_t = r * float(((arm_means - grand) ** 2).sum()) / (t - 1)
    ms_r = t * float(((reader_means - grand) ** 2).sum()) / (r - 1) if r > 1 else NAN
    resid = auc - arm_means[:, None] - reader_means[None, :] + grand
    ms_tr = float((resid**2).sum()) / ((t - 1) * (r - 1)) if r > 1 else NAN
    return ms_t, ms_r, ms_tr


def mrmc_analysis(table: Any, alpha: float = 0.05) -> MRMCResult:
    """The Obuchowski-Rockette MRMC analysis of a long reading table (see the module docstring).

    ``table``: DataFrame or mapping with columns reader, case, truth (0/1), arm, score, fully
    crossed. Raises ``MRMCInputError`` (a ValueError) with one line naming an input problem.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    data: MRMCData = table if isinstance(table, MRMCData) else mrmc_data(table)
    t, r, k = data.scores.shape
    auc, jack = jackknife_aucs(data.scores.reshape(t * r, k), data.truth)
    auc, jack = auc.reshape(t, r), jack.reshape(t, r, k)
    cov = or_covariances(jack)
    ms_t, ms_r, ms_tr = _anova(auc)
    var, cov1 = _pair_mean(cov, True, True), _pair_mean(cov, False, True)
    if r > 1:
        cov2, cov3 = _pair_mean(cov, True, False), _pair_mean(cov, False, False)
    else:
        cov2 = cov3 = undefined(ONE_READER)
    diag_arm = [cov[i, :, i, :] for i in range(t)]
    diag_reader = [cov[:, j, :, j] for j in range(r)]
    d = {
        "t": t,
        "r": r,
        "arms": data.arms,
        "readers": data.readers,
        "auc": auc,
        "means": auc.mean(axis=1),
        "ms_t": ms_t,
        "ms_tr": ms_tr,
        "var": var,
        "cov1": cov1,
        "cov2": cov2,
        "cov3": cov3,
        "var_arm": [float(np.diag(c).mean()) for c in diag_arm],
        "cov2_arm": [float(c[~np.eye(r, dtype=bool)].mean()) if r > 1 else NAN for c in diag_arm],
        "ms_r_arm": [float(np.var(auc[i], ddof=1)) if r > 1 else NAN for i in range(t)],
        "var_reader": [float(np.diag(c).mean()) for c in diag_reader],
        "cov1_reader": [float(c[~np.eye(t, dtype=bool)].mean()) for c in diag_reader],
    }
    per_arm = {
        a: {"var": d["var_arm"][i], "cov2": d["cov2_arm"][i], "ms_r": d["ms_r_arm"][i]}
        for i, a in enumerate(data.arms)
    }
    per_reader = {
        rd: {"var": d["var_reader"][j], "cov1": d["cov1_reader"][j]} for j, rd in enumerate(data.readers)
    }
    return MRMCResult(
        arms=data.arms,
        readers=data.readers,
        n_cases=k,
        n_positive=data.n_positive,
        n_negative=data.n_negative,
        reader_auc=auc,
        var=var,
        cov1=cov1,
        cov2=cov2,
        cov3=cov3,
        ms_t=ms_t,
        ms_r=ms_r,
        ms_tr=ms_tr,
        rrrc=_rrrc(d, alpha),
        frrc=_frrc(d, alpha),
        rrfc=_rrfc(d, alpha),
        per_arm=per_arm,
        per_reader=per_reader,
    )
