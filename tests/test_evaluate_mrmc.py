"""OR MRMC analysis (``rascore.evaluate.mrmc``) against the University of Iowa OR-DBM MRMC 2.51
output on the Van Dyke and FED data (tests/data/mrmc/README.md), to the printed digits; the
vectorised jackknife against a loop that recomputes every AUC; input errors."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from rascore.evaluate.mrmc import MRMCInputError, jackknife_aucs, mrmc_analysis
from rascore.evaluate.undefined import UndefinedMetricWarning, reason_of

DATA = Path(__file__).parent / "data" / "mrmc"


def printed(actual: float, text: str) -> None:
    """``actual`` rounds to the published ``text``: within half a unit of its last digit.

    Plus 1e-10 for values on a rounding boundary: FED arm 5's single-arm RRRC lower limit is
    0.74706746498 here, 2.5e-11 below the boundary of the printed 0.74706747, a difference that
    t-quantile codes do not agree on (the smallest half unit tested is 5e-9, 50 times the slack).
    """
    decimals = len(text.split(".")[1]) if "." in text else 0
    tolerance = 0.5 * 10.0**-decimals + 1e-10
    assert abs(actual - float(text)) <= tolerance, f"{actual!r} does not print as {text}"


def rows(table: str) -> list[list[str]]:
    """A block of the published output as lists of fields (parentheses and commas dropped)."""
    clean = table.replace("(", " ").replace(")", " ").replace(",", " ")
    return [line.split() for line in clean.strip().splitlines()]


@pytest.fixture(scope="module")
def vandyke():
    frame = pd.read_csv(DATA / "vandyke.csv")
    return frame, mrmc_analysis(frame)


@pytest.fixture(scope="module")
def fed():
    frame = pd.read_csv(DATA / "fed.csv")
    return frame, mrmc_analysis(frame)


# ------------------------------------------------------------------ Van Dyke: 2 arms, 5 readers

VD_READER_AUC = """
1 0.91964573 0.94782609
2 0.85877617 0.90531401
3 0.90386473 0.92173913
4 0.97310789 0.99935588
5 0.82979066 0.92995169
"""


def test_vandyke_counts_match_the_output_header(vandyke):
    """'2 treatments, 5 readers, 114 cases (69 normal, 45 abnormal)'."""
    _, result = vandyke
    assert (len(result.arms), len(result.readers), result.n_cases) == (2, 5, 114)
    assert (result.n_negative, result.n_positive) == (69, 45)


def test_vandyke_aucs_anova_and_covariances(vandyke):
    _, r = vandyke
    for j, (_, a, b) in enumerate(rows(VD_READER_AUC)):
        printed(r.reader_auc[0, j], a)
        printed(r.reader_auc[1, j], b)
    printed(r.auc["0"], "0.89703704")
    printed(r.auc["1"], "0.94083736")
    printed(r.ms_t, "0.00479617")
    printed(r.ms_r, "0.00383620")
    printed(r.ms_tr, "0.00055103")
    printed(r.cov1, "0.00034661")
    printed(r.cov2, "0.00034407")
    printed(r.cov3, "0.00023903")
    printed(r.var, "0.00080229")
    printed(r.cov1 / r.var, "0.43203138")
    printed(r.per_arm["0"]["ms_r"], "0.00308263")
    printed(r.per_arm["1"]["ms_r"], "0.00130460")


def test_vandyke_random_readers_random_cases(vandyke):
    _, r = vandyke
    a = r.rrrc
    printed(a["F"], "4.46")
    printed(a["ddf"], "15.26")
    printed(a["p"], "0.0517")
    printed(a["error_term"], "0.00107626")
    printed(a["diff"], "-0.04380")
    printed(a["stderr"], "0.02075")
    printed(a["comparisons"][0]["t"], "-2.11")
    printed(a["ci_low"], "-0.08796")
    printed(a["ci_high"], "0.00036")
    single = """
    0 0.89703704 0.03317360 12.74 (0.82522360 , 0.96885048) 0.00048396
    1 0.94083736 0.02156637 12.71 (0.89413783 , 0.98753689) 0.00020419
    """
    for arm, auc, se, df, low, high, cov2 in rows(single):
        s = a["single"][arm]
        for value, text in zip(
            (s["auc"], s["stderr"], s["df"], s["ci_low"], s["ci_high"]), (auc, se, df, low, high)
        ):
            printed(value, text)
        printed(r.per_arm[arm]["cov2"], cov2)


def test_vandyke_fixed_readers_random_cases(vandyke):
    _, r = vandyke
    a = r.frrc
    printed(a["chi2"], "5.47595")
    printed(a["p"], "0.0193")
    assert a["df"] == 1
    printed(a["stderr"], "0.01872")
    printed(a["comparisons"][0]["z"], "-2.34")
    printed(a["ci_low"], "-0.08049")
    printed(a["ci_high"], "-0.00711")
    single = """
    0 0.02428971 (0.84943008 , 0.94464399) 0.00101410
    1 0.01677632 (0.90795637 , 0.97371835) 0.00059047
    """
    for arm, se, low, high, var in rows(single):
        s = a["single"][arm]
        printed(s["stderr"], se)
        printed(s["ci_low"], low)
        printed(s["ci_high"], high)
        printed(r.per_arm[arm]["var"], var)
    per_reader = """
    0 -0.02818 0.02551 -1.10 0.2693 (-0.07818 ,  0.02182) 0.00069890 0.00037347
    1 -0.04654 0.02630 -1.77 0.0768 (-0.09809 ,  0.00501) 0.00110605 0.00076016
    2 -0.01787 0.03121 -0.57 0.5668 (-0.07904 ,  0.04330) 0.00084234 0.00035532
    3 -0.02625 0.01729 -1.52 0.1290 (-0.06014 ,  0.00764) 0.00015058 0.00000108
    4 -0.10016 0.04406 -2.27 0.0230 (-0.18651 , -0.01381) 0.00121357 0.00024304
    """
    for reader, diff, se, z, p, low, high, var, cov1 in rows(per_reader):
        (c,) = a["per_reader"][reader]
        for key, text in zip(("diff", "stderr", "z", "p", "ci_low", "ci_high"), (diff, se, z, p, low, high)):
            printed(c[key], text)
        printed(r.per_reader[reader]["var"], var)
        printed(r.per_reader[reader]["cov1"], cov1)


def test_vandyke_random_readers_fixed_cases(vandyke):
    _, r = vandyke
    a = r.rrfc
    printed(a["F"], "8.70")
    printed(a["p"], "0.0420")
    assert (a["df1"], a["df2"]) == (1, 4)
    printed(a["stderr"], "0.01485")
    printed(a["comparisons"][0]["t"], "-2.95")
    printed(a["ci_low"], "-0.08502")
    printed(a["ci_high"], "-0.00258")
    single = """
    0 0.02482994 (0.82809808 , 0.96597599)
    1 0.01615303 (0.89598936 , 0.98568536)
    """
    for arm, se, low, high in rows(single):
        s = a["single"][arm]
        printed(s["stderr"], se)
        printed(s["ci_low"], low)
        printed(s["ci_high"], high)
        assert s["df"] == 4


# ------------------------------------------------------------------ FED: 5 arms, 4 readers

FED_READER_AUC = """
1 0.90425000 0.86425000 0.81295000 0.90235000 0.84140000
3 0.79820000 0.84470000 0.81635000 0.83150000 0.77300000
4 0.81175000 0.82050000 0.75275000 0.78865000 0.77115000
5 0.86645000 0.87160000 0.85730000 0.87980000 0.84800000
"""

FED_RRRC = """
1 - 2 -0.00510 0.01654 16.80 -0.31 0.7616 (-0.04002 ,  0.02982)
1 - 3  0.03533 0.01654 16.80  2.14 0.0477 ( 0.00040 ,  0.07025)
1 - 4 -0.00541 0.01654 16.80 -0.33 0.7475 (-0.04033 ,  0.02951)
1 - 5  0.03678 0.01654 16.80  2.22 0.0402 ( 0.00185 ,  0.07170)
2 - 3  0.04042 0.01654 16.80  2.44 0.0258 ( 0.00550 ,  0.07535)
2 - 4 -0.00031 0.01654 16.80 -0.02 0.9851 (-0.03523 ,  0.03461)
2 - 5  0.04187 0.01654 16.80  2.53 0.0216 ( 0.00695 ,  0.07680)
3 - 4 -0.04074 0.01654 16.80 -2.46 0.0249 (-0.07566 , -0.00582)
3 - 5  0.00145 0.01654 16.80  0.09 0.9312 (-0.03347 ,  0.03637)
4 - 5  0.04219 0.01654 16.80  2.55 0.0208 ( 0.00727 ,  0.07711)
"""

FED_FRRC = """
1 - 2 -0.00510 0.01670 -0.31 0.7601 (-0.03783 ,  0.02763)
1 - 3  0.03533 0.01670  2.12 0.0344 ( 0.00259 ,  0.06806)
1 - 4 -0.00541 0.01670 -0.32 0.7459 (-0.03815 ,  0.02732)
1 - 5  0.03678 0.01670  2.20 0.0277 ( 0.00404 ,  0.06951)
2 - 3  0.04042 0.01670  2.42 0.0155 ( 0.00769 ,  0.07316)
2 - 4 -0.00031 0.01670 -0.02 0.9851 (-0.03305 ,  0.03242)
2 - 5  0.04187 0.01670  2.51 0.0122 ( 0.00914 ,  0.07461)
3 - 4 -0.04074 0.01670 -2.44 0.0147 (-0.07347 , -0.00800)
3 - 5  0.00145 0.01670  0.09 0.9308 (-0.03128 ,  0.03418)
4 - 5  0.04219 0.01670  2.53 0.0115 ( 0.00945 ,  0.07492)
"""

FED_RRFC = """
1 - 2 -0.00510 0.01520 12 -0.34 0.7431 (-0.03822 ,  0.02802)
1 - 3  0.03533 0.01520 12  2.32 0.0385 ( 0.00220 ,  0.06845)
1 - 4 -0.00541 0.01520 12 -0.36 0.7280 (-0.03854 ,  0.02771)
1 - 5  0.03678 0.01520 12  2.42 0.0324 ( 0.00365 ,  0.06990)
2 - 3  0.04042 0.01520 12  2.66 0.0208 ( 0.00730 ,  0.07355)
2 - 4 -0.00031 0.01520 12 -0.02 0.9839 (-0.03344 ,  0.03281)
2 - 5  0.04187 0.01520 12  2.75 0.0175 ( 0.00875 ,  0.07500)
3 - 4 -0.04074 0.01520 12 -2.68 0.0200 (-0.07386 , -0.00761)
3 - 5  0.00145 0.01520 12  0.10 0.9256 (-0.03167 ,  0.03457)
4 - 5  0.04219 0.01520 12  2.78 0.0168 ( 0.00906 ,  0.07531)
"""


def check_pairs(analysis: dict, table: str, keys: tuple[str, ...]) -> None:
    """Every published pair row (arm a, '-', arm b, then ``keys``) against ``comparisons``."""
    published = rows(table)
    assert len(analysis["comparisons"]) == len(published) == 10
    for row, fields in zip(analysis["comparisons"], published):
        assert (row["a"], row["b"]) == (fields[0], fields[2])
        for key, text in zip(keys, fields[3:]):
            printed(row[key], text)
        name = f"{row['a']} - {row['b']}"
        assert analysis["diff"][name] == row["diff"]
        assert (analysis["ci_low"][name], analysis["ci_high"][name]) == (row["ci_low"], row["ci_high"])


def test_fed_counts_aucs_and_covariances(fed):
    """'5 treatments, 4 readers, 200 cases (100 normal, 100 abnormal)'."""
    _, r = fed
    assert r.arms == ("1", "2", "3", "4", "5") and r.readers == ("1", "3", "4", "5")
    assert (r.n_cases, r.n_negative, r.n_positive) == (200, 100, 100)
    for j, (_, *aucs) in enumerate(rows(FED_READER_AUC)):
        for i, text in enumerate(aucs):
            printed(r.reader_auc[i, j], text)
    for arm, text in zip(r.arms, ("0.84516250", "0.85026250", "0.80983750", "0.85057500", "0.80838750")):
        printed(r.auc[arm], text)
    printed(r.ms_t, "0.00189696")
    printed(r.ms_r, "0.00729418")
    printed(r.ms_tr, "0.00046221")
    printed(r.cov1, "0.00029480")
    printed(r.cov2, "0.00023331")
    printed(r.cov3, "0.00021213")
    printed(r.var, "0.00078912")
    for reader, var, cov1 in rows("""
        1  0.00068948  0.00021527
        3  0.00082356  0.00034558
        4  0.00100854  0.00035359
        5  0.00063489  0.00026476
    """):
        printed(r.per_reader[reader]["var"], var)
        printed(r.per_reader[reader]["cov1"], cov1)


def test_fed_three_analyses_every_pair(fed):
    _, r = fed
    printed(r.rrrc["F"], "3.47")
    printed(r.rrrc["ddf"], "16.80")
    printed(r.rrrc["p"], "0.0305")
    printed(r.rrrc["error_term"], "0.00054695")
    check_pairs(r.rrrc, FED_RRRC, ("diff", "stderr", "df", "t", "p", "ci_low", "ci_high"))
    printed(r.frrc["chi2"], "13.60126")
    printed(r.frrc["p"], "0.0087")
    assert r.frrc["df"] == 4
    check_pairs(r.frrc, FED_FRRC, ("diff", "stderr", "z", "p", "ci_low", "ci_high"))
    printed(r.rrfc["F"], "4.10")
    printed(r.rrfc["p"], "0.0253")
    assert (r.rrfc["df1"], r.rrfc["df2"]) == (4, 12)
    check_pairs(r.rrfc, FED_RRFC, ("diff", "stderr", "df", "t", "p", "ci_low", "ci_high"))


def test_fed_single_arm_intervals(fed):
    _, r = fed
    rrrc = """
    1 0.02857824  5.46 (0.77351391 , 0.91681109) 0.00021119
    2 0.01992816 27.72 (0.80942311 , 0.89110189) 0.00026649
    3 0.02664789  7.04 (0.74689261 , 0.87278239) 0.00024646
    4 0.02940870  5.40 (0.77664342 , 0.92450658) 0.00022043
    5 0.02575835  6.78 (0.74706747 , 0.86970753) 0.00022200
    """
    for arm, se, df, low, high, cov2 in rows(rrrc):
        s = r.rrrc["single"][arm]
        for value, text in zip((s["stderr"], s["df"], s["ci_low"], s["ci_high"]), (se, df, low, high)):
            printed(value, text)
        printed(r.per_arm[arm]["cov2"], cov2)
    frrc = """
    1 0.01833087 (0.80923466 , 0.88109034) 0.00071053
    2 0.01968838 (0.81167398 , 0.88885102) 0.00075106
    3 0.02009512 (0.77045178 , 0.84922322) 0.00087587
    4 0.01862661 (0.81406752 , 0.88708248) 0.00072652
    5 0.01967001 (0.76983500 , 0.84694000) 0.00088163
    """
    for arm, se, low, high, var in rows(frrc):
        s = r.frrc["single"][arm]
        for value, text in zip((s["stderr"], s["ci_low"], s["ci_high"]), (se, low, high)):
            printed(value, text)
        printed(r.per_arm[arm]["var"], var)
    rrfc = """
    1 0.00242212 0.02460752 (0.76685038 , 0.92347462)
    2 0.00052256 0.01142981 (0.81388774 , 0.88663726)
    3 0.00185459 0.02153248 (0.74131154 , 0.87836346)
    4 0.00257777 0.02538588 (0.76978581 , 0.93136419)
    5 0.00176596 0.02101167 (0.74151900 , 0.87525600)
    """
    for arm, ms_r, se, low, high in rows(rrfc):
        s = r.rrfc["single"][arm]
        printed(r.per_arm[arm]["ms_r"], ms_r)
        for value, text in zip((s["stderr"], s["ci_low"], s["ci_high"]), (se, low, high)):
            printed(value, text)


def test_fed_single_reader_comparisons(fed):
    """Analysis 2(d), reader 1 (the first reader, labelled 1 in the data)."""
    _, r = fed
    published = """
    1 - 2  0.04000 0.03080  1.30 0.1940 (-0.02036 ,  0.10036)
    1 - 3  0.09130 0.03080  2.96 0.0030 ( 0.03094 ,  0.15166)
    3 - 4 -0.08940 0.03080 -2.90 0.0037 (-0.14976 , -0.02904)
    4 - 5  0.06095 0.03080  1.98 0.0478 ( 0.00059 ,  0.12131)
    """
    by_pair = {(c["a"], c["b"]): c for c in r.frrc["per_reader"]["1"]}
    for a, _, b, *fields in rows(published):
        row = by_pair[(a, b)]
        for key, text in zip(("diff", "stderr", "z", "p", "ci_low", "ci_high"), fields):
            printed(row[key], text)


# ------------------------------------------------------------------ the method itself


def simulated(n_readers=3, n_arms=2, n_cases=40, seed=0, ties=False) -> pd.DataFrame:
    """A small fully crossed study with correlated scores."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n_cases) < 0.4
    truth[:2], truth[2:4] = True, False
    case_effect = rng.normal(0, 1, n_cases) + 1.2 * truth
    rows_ = []
    for arm in range(n_arms):
        for reader in range(n_readers):
            score = case_effect + 0.3 * arm * truth + rng.normal(0, 0.8, n_cases)
            if ties:
                score = np.digitize(score, [-0.5, 0.3, 1.0, 1.8])
            for c in range(n_cases):
                rows_.append(
                    {
                        "reader": f"R{reader}",
                        "case": f"c{c}",
                        "truth": int(truth[c]),
                        "arm": f"A{arm}",
                        "score": score[c],
                    }
                )
    return pd.DataFrame(rows_)


@pytest.mark.parametrize("ties", [False, True])
def test_vectorised_jackknife_equals_recomputing_every_auc(ties):
    frame = simulated(ties=ties)
    sub = frame[(frame.arm == "A1") & (frame.reader == "R2")]
    scores, truth = sub["score"].to_numpy(), sub["truth"].to_numpy().astype(bool)
    auc, jack = jackknife_aucs(scores[None, :], truth)
    assert auc[0] == pytest.approx(roc_auc_score(truth, scores), abs=1e-13)
    keep = ~np.eye(truth.size, dtype=bool)
    loop = [roc_auc_score(truth[keep[k]], scores[keep[k]]) for k in range(truth.size)]
    np.testing.assert_allclose(jack[0], loop, rtol=0, atol=1e-13)


def test_covariances_equal_the_jackknife_written_out():
    """Var, Cov1, Cov2, Cov3 against an explicit loop over cases and cell pairs."""
    frame = simulated(n_readers=3, n_arms=3, n_cases=30, seed=4)
    result = mrmc_analysis(frame)
    arms, readers = result.arms, result.readers
    cases = list(dict.fromkeys(frame["case"]))
    k = len(cases)
    theta = {}
    for (arm, reader), g in frame.groupby(["arm", "reader"]):
        g = g.set_index("case").loc[cases]
        theta[arm, reader] = np.array([roc_auc_score(g["truth"].drop(c), g["score"].drop(c)) for c in cases])
    sums = {"var": [], "cov1": [], "cov2": [], "cov3": []}
    for (a1, r1), x in theta.items():
        for (a2, r2), y in theta.items():
            c = (k - 1) / k * np.sum((x - x.mean()) * (y - y.mean()))
            kind = {(True, True): "var", (False, True): "cov1", (True, False): "cov2", (False, False): "cov3"}
            sums[kind[a1 == a2, r1 == r2]].append(c)
    for key, values in sums.items():
        assert getattr(result, key) == pytest.approx(np.mean(values), abs=1e-15), key
    assert len(arms) == 3 and len(readers) == 3


def test_row_order_does_not_change_figures_and_arm_order_sets_the_sign():
    frame = simulated(seed=2)
    base = mrmc_analysis(frame)
    shuffled = mrmc_analysis(frame.sample(frac=1.0, random_state=3))
    first = shuffled.arms[0]
    assert shuffled.rrrc["diff"] == pytest.approx(shuffled.auc[first] - shuffled.auc[shuffled.arms[1]])
    assert shuffled.rrrc["p"] == pytest.approx(base.rrrc["p"], abs=1e-12)
    assert shuffled.var == pytest.approx(base.var, abs=1e-15)
    flipped = mrmc_analysis(pd.concat([frame[frame.arm == "A1"], frame[frame.arm == "A0"]]))
    assert flipped.arms == ("A1", "A0")
    assert flipped.rrrc["diff"] == pytest.approx(-base.rrrc["diff"], abs=1e-15)
    assert base.rrrc["diff"] == pytest.approx(base.auc["A0"] - base.auc["A1"], abs=1e-15)
    assert flipped.frrc["p"] == pytest.approx(base.frrc["p"], abs=1e-12)


def test_json_has_the_documented_keys(vandyke, fed):
    data = json.loads(vandyke[1].to_json())
    required = {"auc", "reader_auc", "var", "cov1", "cov2", "cov3", "ms_t", "ms_tr", "rrrc", "frrc", "rrfc"}
    assert required <= set(data)
    assert {"F", "ddf", "p", "diff", "ci_low", "ci_high"} <= set(data["rrrc"])
    assert {"chi2", "p"} <= set(data["frrc"]) and {"F", "p"} <= set(data["rrfc"])
    assert isinstance(data["rrrc"]["diff"], float)
    assert set(data["reader_auc"]["1"]) == {"0", "1", "2", "3", "4"}
    many = json.loads(fed[1].to_json())
    assert list(many["rrrc"]["diff"])[:2] == ["1 - 2", "1 - 3"] and len(many["rrrc"]["ci_low"]) == 10


def test_one_reader_keeps_the_fixed_reader_analysis_and_says_why_the_rest_is_undefined():
    frame = simulated(n_readers=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = mrmc_analysis(frame)
    assert any(issubclass(w.category, UndefinedMetricWarning) for w in caught)
    for analysis in (result.rrrc, result.rrfc):
        assert math.isnan(analysis["p"]) and "at least 2 readers" in analysis["reason"]
    assert "at least 2 readers" in reason_of(result.cov2)
    assert 0 < result.frrc["p"] < 1 and "reason" not in result.frrc
    data = json.loads(result.to_json())
    assert data["rrrc"]["F"] is None and "MS(T*R)" in data["rrrc"]["reason"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f[~((f.reader == "R1") & (f.arm == "A1"))], "reader R1 has no readings in arm A1"),
        (
            lambda f: f[~((f.reader == "R1") & (f.arm == "A1") & (f.case == "c5"))],
            "reader R1 lacks 1 of the 40 cases in arm A1",
        ),
        (lambda f: pd.concat([f, f.iloc[[3]]]), "read case c3 in arm A0 2 times"),
        (lambda f: f.assign(truth=f.truth.where(f.case != "c7")), "case c7 has no truth"),
        (lambda f: f.assign(truth=f.truth.where(f.case != "c7", 2)), "truth must be 0 or 1, case c7 has 2"),
        (
            lambda f: f.assign(truth=np.where((f.case == "c7") & (f.arm == "A1"), 1 - f.truth, f.truth)),
            "case c7 has truth 0 in some rows and 1 in others",
        ),
        (lambda f: f[f.arm == "A0"], "only one arm (A0)"),
        (
            lambda f: f.assign(score=f.score.astype(object).where(f.index != 5, "high")),
            "score is not numeric (row 6: 'high')",
        ),
        (lambda f: f.assign(score=f.score.where(f.index != 5)), "row 6 (reader R0, case c5) has no score"),
        (lambda f: f.assign(truth=0), "no case has truth 1 (positive)"),
        (lambda f: f.assign(truth=1), "no case has truth 0 (negative)"),
        (lambda f: f.assign(truth=(f.case == "c0").astype(int)), "only one case (c0) has truth 1"),
        (lambda f: f.drop(columns=["arm"]), "missing column(s) arm"),
        (lambda f: f.iloc[:0], "the table has no rows"),
    ],
)
def test_input_errors_name_the_problem_in_one_line(change, message):
    with pytest.raises(MRMCInputError) as caught:
        mrmc_analysis(change(simulated()))
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert isinstance(caught.value, ValueError)


def test_mapping_of_arrays_is_accepted():
    frame = simulated(seed=5)
    from_mapping = mrmc_analysis({c: frame[c].to_numpy() for c in frame.columns})
    assert from_mapping.rrrc["F"] == pytest.approx(mrmc_analysis(frame).rrrc["F"], abs=1e-12)


def test_identical_readers_give_an_infinite_ddf_and_the_normal_limit():
    """MS(T*R) = 0 with case variance left: ddf is infinite, p is the chi-square limit; the
    fixed-case F (MS(T) / MS(T*R)) is undefined and says why."""
    one = simulated(n_readers=1, seed=6)
    frame = pd.concat([one.assign(reader=name) for name in ("R0", "R1", "R2")], ignore_index=True)
    with pytest.warns(UndefinedMetricWarning, match=r"MS\(T\*R\) is 0"):
        result = mrmc_analysis(frame)
    assert result.ms_tr == pytest.approx(0.0, abs=1e-15)
    assert math.isnan(result.rrfc["F"]) and "MS(T*R) is 0" in result.rrfc["reason"]
    rrrc = result.rrrc
    assert math.isinf(rrrc["ddf"]) and "ddf is infinite" in rrrc["note"]
    from scipy import stats

    assert rrrc["p"] == pytest.approx(stats.chi2.sf(rrrc["F"], 1), rel=1e-12)
    assert json.loads(result.to_json())["rrrc"]["ddf"] is None
