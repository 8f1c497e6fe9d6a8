"""Reader study: per-rater tables equal the underlying metrics, summary by level, model wins."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from rascore.evaluate import (
    UndefinedMetricWarning,
    accuracy,
    icc_table,
    reader_study,
    sensitivity_specificity,
    weighted_kappa,
)


def study(seed: int = 0, n: int = 120):
    """A reference of n images, two junior and two senior readers, a good and a poor model."""
    rng = np.random.default_rng(seed)
    reference = {f"img-{i}": int(g) for i, g in enumerate(rng.integers(0, 4, n))}

    def noisy(p_wrong: float, keep: float = 1.0) -> dict:
        out = {}
        for item, grade in reference.items():
            if rng.random() < keep:
                step = rng.choice([-1, 0, 1], p=[p_wrong / 2, 1 - p_wrong, p_wrong / 2])
                out[item] = int(np.clip(grade + step, 0, 3))
        return out

    reads = {"junior-1": noisy(0.6), "junior-2": noisy(0.5, keep=0.7),
             "senior-1": noisy(0.2), "senior-2": noisy(0.25)}
    levels = {"junior-1": "junior", "junior-2": "junior", "senior-1": "senior",
              "senior-2": "senior"}
    models = {"DPD": noisy(0.1), "SGS": noisy(0.7)}
    return reference, reads, levels, models


def test_per_rater_values_equal_the_metrics_on_shared_items():
    reference, reads, levels, models = study()
    out = reader_study(reference, reads, levels, models, n_boot=200)
    assert out["icc_form"] == "ICC2" and out["n_reference"] == 120
    for rater, grades in reads.items():
        items = [i for i in reference if i in grades]
        ref = [reference[i] for i in items]
        got = [grades[i] for i in items]
        row = out["raters"][rater]
        assert row["n"] == len(items) and row["level"] == levels[rater]
        assert row["accuracy"] == pytest.approx(accuracy(ref, got))
        assert row["kappa_linear"] == pytest.approx(weighted_kappa(ref, got, "linear"))
        assert row["kappa_quadratic"] == pytest.approx(weighted_kappa(ref, got, "quadratic"))
        icc = icc_table(np.column_stack([ref, got]))["ICC2"]
        assert (row["icc"], row["icc_ci_low"], row["icc_ci_high"]) == pytest.approx(
            (icc["icc"], icc["ci_low"], icc["ci_high"]))
        assert row["per_grade"] == sensitivity_specificity(ref, got)
        assert row["reasons"] == {}
    assert out["raters"]["junior-2"]["n"] < 120  # read a subset


def test_summary_by_level_is_mean_and_range():
    reference, reads, levels, models = study(1)
    out = reader_study(reference, reads, levels, models, n_boot=100)
    assert list(out["by_level"]) == ["junior", "senior"]
    for level, entry in out["by_level"].items():
        members = [r for r in reads if levels[r] == level]
        assert entry["raters"] == members and entry["n_raters"] == 2
        values = [out["raters"][r]["kappa_quadratic"] for r in members]
        assert entry["kappa_quadratic"] == pytest.approx(
            {"mean": np.mean(values), "min": min(values), "max": max(values), "n": 2})
    by_level = out["by_level"]
    assert by_level["senior"]["accuracy"]["mean"] > by_level["junior"]["accuracy"]["mean"]


def test_models_beat_readers_by_quadratic_kappa_on_shared_items():
    reference, reads, levels, models = study(2, n=200)
    out = reader_study(reference, reads, levels, models, n_boot=300)
    good, poor = out["models"]["DPD"], out["models"]["SGS"]
    assert set(good["beats"]) == set(reads)
    assert "senior-1" not in poor["beats"]
    for rater, versus in good["vs_readers"].items():
        items = [i for i in reference if i in reads[rater] and i in models["DPD"]]
        ref = [reference[i] for i in items]
        assert versus["n"] == len(items)
        assert versus["kappa_model"] == pytest.approx(
            weighted_kappa(ref, [models["DPD"][i] for i in items], "quadratic"))
        assert versus["kappa_reader"] == pytest.approx(
            weighted_kappa(ref, [reads[rater][i] for i in items], "quadratic"))
        assert versus["beats"] == (versus["diff"] > 0)
        assert 0 < versus["p"] <= 1
    assert good["vs_readers"]["junior-1"]["p"] < 0.01


def test_other_icc_form_and_unspecified_level():
    reference, reads, levels, models = study(3)
    out = reader_study(reference, reads, {"junior-1": "junior"}, {}, icc_form="ICC3", n_boot=50)
    assert out["icc_form"] == "ICC3" and out["models"] == {}
    assert out["raters"]["senior-1"]["level"] == "unspecified"
    ref = [reference[i] for i in reference]
    got = [reads["senior-1"][i] for i in reference]
    assert out["raters"]["senior-1"]["icc"] == pytest.approx(
        icc_table(np.column_stack([ref, got]))["ICC3"]["icc"])
    with pytest.raises(ValueError, match="icc_form"):
        reader_study(reference, reads, levels, models, icc_form="ICC9")


def test_undefined_values_carry_reasons_and_unreferenced_items_are_counted():
    reference = {"a": 1, "b": 1, "c": 1}
    reads = {"reader": {"a": 1, "b": 1, "c": 1, "z": 2}, "nobody": {}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        out = reader_study(reference, reads, {}, {"m": {"a": 1}}, n_boot=20)
    row = out["raters"]["reader"]
    assert row["n"] == 3 and row["n_unreferenced"] == 1 and row["accuracy"] == 1.0
    assert np.isnan(row["kappa_quadratic"]) and "kappa_quadratic" in row["reasons"]
    assert np.isnan(row["icc"]) and "equal" in row["reasons"]["icc"]
    assert "sensitivity_0" in row["reasons"]
    empty = out["raters"]["nobody"]
    assert empty["n"] == 0 and np.isnan(empty["accuracy"]) and "accuracy" in empty["reasons"]
    assert out["models"]["m"]["beats"] == []
