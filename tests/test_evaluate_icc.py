"""ICC table: the six forms equal pingouin's, mapped by Type; missing rows; the NaN paths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin
import pytest

from rascore.evaluate import ICC_FORMS, UndefinedMetricWarning, icc_table


def wine_matrix() -> np.ndarray:
    """pingouin's documented example: 8 wines scored by 4 judges."""
    data = pingouin.read_dataset("icc")
    return data.pivot_table(index="Wine", columns="Judge", values="Scores").to_numpy()


def test_documented_wine_example():
    """pingouin's docstring: ICC(1,1)=0.728 [0.43, 0.93], ICC(C,k)=0.915 [0.75, 0.98]."""
    table = icc_table(wine_matrix())
    assert table["ICC1"]["icc"] == pytest.approx(0.728, abs=5e-4)
    assert table["ICC2"]["icc"] == pytest.approx(0.728, abs=5e-4)
    assert table["ICC3"]["icc"] == pytest.approx(0.729, abs=5e-4)
    assert table["ICC1k"]["icc"] == pytest.approx(0.914, abs=5e-4)
    assert table["ICC3k"]["icc"] == pytest.approx(0.915, abs=5e-4)
    assert table["ICC1"]["ci_low"] == pytest.approx(0.43, abs=5e-3)
    assert table["ICC3k"]["ci_high"] == pytest.approx(0.98, abs=5e-3)
    assert (table["n_targets"], table["n_raters"], table["n_dropped"]) == (8, 4, 0)


@pytest.mark.filterwarnings("ignore::Warning:pingouin")
@pytest.mark.parametrize("seed", [0, 1])
def test_six_forms_equal_pingouin_by_type(seed):
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 1, 25)
    ratings = truth[:, None] + rng.normal(0, 0.7, (25, 5)) + rng.normal(0, 0.3, 5)
    table = icc_table(ratings)
    long = pd.DataFrame(
        {"t": np.repeat(np.arange(25), 5), "r": np.tile(np.arange(5), 25), "x": ratings.ravel()}
    )
    ref = pingouin.intraclass_corr(long, "t", "r", "x").set_index("Type")
    names = {
        "ICC1": "ICC(1,1)",
        "ICC2": "ICC(A,1)",
        "ICC3": "ICC(C,1)",
        "ICC1k": "ICC(1,k)",
        "ICC2k": "ICC(A,k)",
        "ICC3k": "ICC(C,k)",
    }
    for form in ICC_FORMS:
        assert table[form]["icc"] == pytest.approx(ref.loc[names[form], "ICC"], abs=1e-12)
        low, high = ref.loc[names[form], "CI95"]
        assert table[form]["ci_low"] == pytest.approx(low, abs=5e-3)  # pingouin rounds to 2 dp
        assert table[form]["ci_high"] == pytest.approx(high, abs=5e-3)
        assert table[form]["ci_low"] <= table[form]["icc"] <= table[form]["ci_high"]
    assert pingouin.options["round.column.CI95"] == 2  # restored after our call


def test_rows_with_missing_ratings_are_dropped_with_a_note():
    ratings = wine_matrix()
    with_gap = np.vstack([ratings, [np.nan, 5, 6, 7]])
    table = icc_table(with_gap)
    assert table["n_dropped"] == 1 and "1 target" in table["note"]
    assert table["ICC2"]["icc"] == pytest.approx(icc_table(ratings)["ICC2"]["icc"])


@pytest.mark.parametrize(
    "ratings, match",
    [
        (np.arange(6.0).reshape(6, 1), "at least 2 raters"),
        (np.array([[1.0, 2.0]]), "at least 2 complete targets"),
        (np.full((5, 3), 2.0), "all ratings are equal"),
        (np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, 3.0]]), "at least 2 complete targets"),
    ],
)
def test_undefined_icc_is_nan_with_reason(ratings, match):
    with pytest.warns(UndefinedMetricWarning, match=match):
        table = icc_table(ratings)
    for form in ICC_FORMS:
        assert np.isnan(table[form]["icc"]) and np.isnan(table[form]["ci_low"])
        assert match in table[form]["reason"]


def test_one_dimensional_input_raises():
    with pytest.raises(ValueError, match="2-D"):
        icc_table([1, 2, 3])


def test_perfect_agreement_icc_one_with_undefined_ci_reason():
    grades = np.array([0, 1, 2, 3, 1, 2, 0, 3], dtype=float)
    with pytest.warns(UndefinedMetricWarning, match="confidence interval is undefined"):
        table = icc_table(np.column_stack([grades, grades]))
    assert table["ICC2"]["icc"] == pytest.approx(1.0)
    assert np.isnan(table["ICC2"]["ci_low"]) and "residual" in table["ICC2"]["reason"]
