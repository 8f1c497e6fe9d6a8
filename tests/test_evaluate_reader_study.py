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

    reads = {
        "junior-1": noisy(0.6),
        "junior-2": noisy(0.5, keep=0.7),
        "senior-1": noisy(0.2),
        "senior-2": noisy(0.25),
    }
    levels = {"junior-1": "junior", "junior-2": "junior", "senior-1": "senior", "senior-2": "senior"}
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
            (icc["icc"], icc["ci_low"], icc["ci_high"])
        )
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
            {"mean": np.mean(values), "min": min(values), "max": max(values), "n": 2}
        )
    by_level = out["by_level"]
    assert by_level["senior"]["accuracy"]["mean"] > by_level["junior"]["accuracy"]["mean"]


def holm(pvalues: list[float]) -> list[float]:
    """Holm's adjusted p-values, written out here as an independent check."""
    order = np.argsort(pvalues)
    out, running = [0.0] * len(pvalues), 0.0
    for rank, index in enumerate(order):
        running = max(running, (len(pvalues) - rank) * pvalues[index])
        out[index] = min(1.0, running)
    return out


def test_models_beat_readers_only_when_the_holm_adjusted_interval_excludes_zero():
    reference, reads, levels, models = study(2, n=200)
    out = reader_study(reference, reads, levels, models, n_boot=300)
    good, poor = out["models"]["DPD"], out["models"]["SGS"]
    assert "junior-1" in good["beats"] and "senior-1" not in poor["beats"]
    for model in ("DPD", "SGS"):
        versus = out["models"][model]["vs_readers"]
        assert [c["p_holm"] for c in versus.values()] == pytest.approx(
            holm([c["p"] for c in versus.values()])
        )
        for rater, c in versus.items():
            items = [i for i in reference if i in reads[rater] and i in models[model]]
            ref = [reference[i] for i in items]
            assert c["n"] == len(items) and c["family"] == 4 and c["cluster"] == "item"
            assert c["kappa_model"] == pytest.approx(
                weighted_kappa(ref, [models[model][i] for i in items], "quadratic")
            )
            assert c["kappa_reader"] == pytest.approx(
                weighted_kappa(ref, [reads[rater][i] for i in items], "quadratic")
            )
            shown = c["p_holm"] < 0.05
            excludes = c["ci_low_holm"] > 0 or c["ci_high_holm"] < 0
            assert shown == excludes
            assert c["verdict"] == (
                ("model better" if c["ci_low_holm"] > 0 else "reader better")
                if shown
                else "no difference shown"
            )
            assert c["beats"] == (c["verdict"] == "model better") == (rater in out["models"][model]["beats"])
            assert 0.95 <= c["level"] < 1 and 0 <= c["p"] <= c["p_holm"] <= 1
            assert c["ci_low_holm"] <= c["ci_low"] and c["ci_high_holm"] >= c["ci_high"]
    assert good["vs_readers"]["junior-1"]["p_holm"] < 0.01
    assert poor["vs_readers"]["senior-1"]["verdict"] == "reader better"


def test_a_positive_difference_that_is_not_shown_is_no_difference_shown():
    rng = np.random.default_rng(5)
    reference = {f"img-{i}": int(g) for i, g in enumerate(rng.integers(0, 4, 60))}
    model = dict(reference)
    for item in list(reference)[:12]:  # both wrong on the same 12 items
        model[item] = (reference[item] + 1) % 4
    reader = dict(model)
    reader["img-20"] = (reference["img-20"] + 1) % 4  # the reader wrong on one more
    out = reader_study(reference, {"r": reader}, {}, {"m": model}, n_boot=500)
    c = out["models"]["m"]["vs_readers"]["r"]
    assert c["diff"] > 0  # the point difference favours the model ...
    assert c["verdict"] == "no difference shown" and out["models"]["m"]["beats"] == []
    assert c["ci_low_holm"] <= 0 <= c["ci_high_holm"] and c["p_holm"] >= 0.05  # ... not shown


def borderline(seed: int = 2, n: int = 80):
    """A reference, a model wrong on 8 items and a reader wrong on 18 (one grade off)."""
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 4, n)

    def off(k: int) -> np.ndarray:
        grades = ref.copy()
        index = rng.choice(n, k, replace=False)
        grades[index] = np.where(ref[index] == 0, 1, ref[index] - 1)
        return grades

    model, reader = off(8), off(18)
    items = [f"img-{i}" for i in range(n)]
    return (
        dict(zip(items, ref.tolist())),
        dict(zip(items, model.tolist())),
        dict(zip(items, reader.tolist())),
    )


def test_holm_adjustment_turns_a_borderline_win_into_no_difference_shown():
    reference, model, reader = borderline()
    alone = reader_study(reference, {"r1": reader}, {}, {"m": model}, n_boot=1000)
    c = alone["models"]["m"]["vs_readers"]["r1"]
    assert 0.025 <= c["p"] < 0.05  # the premise: significant alone, not after doubling
    assert c["verdict"] == "model better" and c["p_holm"] == c["p"] and c["level"] == 0.95
    assert c["ci_low_holm"] > 0
    # the same reader's grades under a second name: two comparisons, each p doubled by Holm
    pair = reader_study(reference, {"r1": reader, "r2": dict(reader)}, {}, {"m": model}, n_boot=1000)
    for name in ("r1", "r2"):
        c2 = pair["models"]["m"]["vs_readers"][name]
        assert c2["p"] == c["p"] and c2["p_holm"] == pytest.approx(2 * c["p"])
        assert c2["verdict"] == "no difference shown" and c2["level"] == pytest.approx(0.975)
        assert c2["ci_low_holm"] <= 0 <= c2["ci_high_holm"]
    assert pair["models"]["m"]["beats"] == []


def test_comparisons_resample_patients_when_given():
    reference, model, reader = borderline()
    patients = {item: f"pt-{k // 4}" for k, item in enumerate(reference)}  # 4 images a patient
    out = reader_study(reference, {"r1": reader}, {}, {"m": model}, n_boot=1000, patients=patients)
    plain = reader_study(reference, {"r1": reader}, {}, {"m": model}, n_boot=1000)
    assert (out["cluster"], out["n_clusters"], out["n_without_patient"]) == ("patient", 20, 0)
    c, d = out["models"]["m"]["vs_readers"]["r1"], plain["models"]["m"]["vs_readers"]["r1"]
    assert (c["cluster"], c["n_clusters"]) == ("patient", 20) and d["cluster"] == "item"
    assert c["diff"] == d["diff"] and c["p"] != d["p"]


def test_other_icc_form_and_unspecified_level():
    reference, reads, levels, models = study(3)
    out = reader_study(reference, reads, {"junior-1": "junior"}, {}, icc_form="ICC3", n_boot=50)
    assert out["icc_form"] == "ICC3" and out["models"] == {}
    assert out["raters"]["senior-1"]["level"] == "unspecified"
    ref = [reference[i] for i in reference]
    got = [reads["senior-1"][i] for i in reference]
    assert out["raters"]["senior-1"]["icc"] == pytest.approx(
        icc_table(np.column_stack([ref, got]))["ICC3"]["icc"]
    )
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
