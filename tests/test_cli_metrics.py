"""``rascore metrics`` and ``rascore icc`` on CSVs in tmp_path: documented keys, library values,
one-line errors with exit code 2."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from rascore.cli import main
from rascore.evaluate import delong_per_grade, icc_table, per_grade_auc_models, weighted_kappa


def predictions(n: int = 150, seed: int = 0, models=("SGS", "DPD"), grades=(0, 1, 2, 3)):
    """Long table of per-grade probabilities for several models on the same cases."""
    rng = np.random.default_rng(seed)
    y = rng.choice(grades, n)
    rows = []
    for k, model in enumerate(models):
        logits = rng.normal(0, 1.0 + k, (n, 4))
        logits[np.arange(n), y] += 1.5
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        for i in range(n):
            rows.append(
                {
                    "model": model,
                    "case": f"c{i:03d}",
                    "y_true": int(y[i]),
                    **{f"p{g}": p[i, g] for g in range(4)},
                }
            )
    return pd.DataFrame(rows)


def run_json(capsys, argv):
    code = main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_metrics_json_keys_and_values_equal_the_library(tmp_path, capsys):
    frame = predictions()
    path = tmp_path / "preds.csv"
    frame.to_csv(path, index=False)
    report = run_json(capsys, ["metrics", str(path), "--json", "--n-boot", "200", "--seed", "3"])
    assert set(report) == {"cluster", "n_clusters", "resampled", "models", "delong"}
    assert (report["cluster"], report["n_clusters"]) == ("item", 150)
    assert list(report["models"]) == ["SGS", "DPD"]
    y = frame[frame.model == "SGS"]["y_true"].to_numpy()
    columns = ["p0", "p1", "p2", "p3"]
    probs = {m: frame[frame.model == m][columns].to_numpy() for m in ("SGS", "DPD")}
    library = per_grade_auc_models(y, probs, n_boot=200, seed=3)
    for name, model in report["models"].items():
        assert {"n", "per_grade", "macro_auc", "accuracy", "kappa_linear", "kappa_quadratic"} <= set(model)
        assert model["n"] == 150 and list(model["per_grade"]) == ["0", "1", "2", "3"]
        for grade, entry in model["per_grade"].items():
            expected = library[name][int(grade)]
            assert {"auc", "ci_low", "ci_high"} <= set(entry)
            assert (entry["auc"], entry["ci_low"], entry["ci_high"]) == pytest.approx(
                (expected.auc, expected.ci_low, expected.ci_high), abs=1e-12
            )
        predicted = probs[name].argmax(axis=1)
        assert model["accuracy"] == pytest.approx(np.mean(predicted == y))
        assert model["kappa_linear"] == pytest.approx(weighted_kappa(y, predicted, "linear"))
        assert model["kappa_quadratic"] == pytest.approx(weighted_kappa(y, predicted, "quadratic"))
        assert model["macro_auc"] == pytest.approx(np.mean([r.auc for r in library[name].values()]))
    expected_rows = delong_per_grade(y, probs["SGS"], probs["DPD"])
    assert len(report["delong"]) == 5 and report["delong"][4]["grade"] == "macro"
    assert report["delong"][4]["grades"] == [0, 1, 2, 3]
    for row, expected in zip(report["delong"], expected_rows):
        assert {"a", "b", "grade", "z", "p", "method", "diff_ci_low", "diff_ci_high"} <= set(row)
        assert row["method"] == "delong"
        assert (row["a"], row["b"], row["grade"]) == ("SGS", "DPD", expected["grade"])
        assert (row["z"], row["p"]) == pytest.approx((expected["z"], expected["p"]))


def with_patients(frame: pd.DataFrame, per: int = 3) -> pd.DataFrame:
    """The predictions with a patient column: cases c000-c002 are patient P000, and so on."""
    out = frame.copy()
    out["patient"] = [f"P{int(c[1:]) // per:03d}" for c in out["case"]]
    return out


def test_patient_column_clusters_intervals_and_tests(tmp_path, capsys):
    """With a patient column: patient bootstrap CIs equal the library's, Obuchowski's p per grade
    and for the macro average, excluded resamples per grade, one line saying what was resampled."""
    from rascore.evaluate.obuchowski import paired_auc_per_grade, paired_macro_test

    frame = with_patients(predictions())
    path = tmp_path / "patients.csv"
    frame.to_csv(path, index=False)
    report = run_json(capsys, ["metrics", str(path), "--json", "--n-boot", "100", "--seed", "2"])
    assert (report["cluster"], report["n_clusters"]) == ("patient", 50)
    sgs = frame[frame.model == "SGS"]
    y, patients = sgs["y_true"].to_numpy(), list(sgs["patient"])
    columns = ["p0", "p1", "p2", "p3"]
    probs = {m: frame[frame.model == m][columns].to_numpy() for m in ("SGS", "DPD")}
    library = per_grade_auc_models(y, probs, n_boot=100, seed=2, patients=patients)
    for grade, entry in report["models"]["DPD"]["per_grade"].items():
        expected = library["DPD"][int(grade)]
        assert (entry["ci_low"], entry["ci_high"]) == pytest.approx(
            (expected.ci_low, expected.ci_high), abs=1e-12
        )
        assert entry["n_excluded"] == expected.n_boot_excluded
    rows = report["delong"]
    assert {r["method"] for r in rows} == {"obuchowski"}
    clustered = paired_auc_per_grade(y, probs["SGS"], probs["DPD"], patients)
    for row, expected in zip(rows, clustered):
        assert row["p"] == pytest.approx(expected["p"], abs=1e-12)
    macro = paired_macro_test(y, probs["SGS"], probs["DPD"], patients)
    assert rows[4]["grade"] == "macro" and rows[4]["p"] == pytest.approx(macro["p"], abs=1e-12)
    assert rows[0]["p"] != pytest.approx(delong_per_grade(y, probs["SGS"], probs["DPD"])[0]["p"])
    assert main(["metrics", str(path), "--n-boot", "30"]) == 0
    table = capsys.readouterr().out
    assert "Intervals resample patients: 50 patients, 150 items" in table
    assert "Obuchowski" in table and "macro" in table


def test_patient_must_agree_across_models(tmp_path, capsys):
    frame = with_patients(predictions(n=30))
    frame.loc[(frame.model == "DPD") & (frame.case == "c004"), "patient"] = "P999"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    assert main(["metrics", str(path), "--json", "--n-boot", "10"]) == 2
    assert "different patients" in capsys.readouterr().err


def test_case_column_aligns_shuffled_models(tmp_path, capsys):
    frame = predictions(seed=1)
    shuffled = pd.concat(
        [frame[frame.model == "SGS"], frame[frame.model == "DPD"].sample(frac=1.0, random_state=0)]
    )
    frame.to_csv(tmp_path / "a.csv", index=False)
    shuffled.to_csv(tmp_path / "b.csv", index=False)
    first = run_json(capsys, ["metrics", str(tmp_path / "a.csv"), "--json", "--n-boot", "50"])
    second = run_json(capsys, ["metrics", str(tmp_path / "b.csv"), "--json", "--n-boot", "50"])
    assert first == second


def test_single_model_file_and_undefined_grade_written_as_null_with_reason(tmp_path, capsys):
    frame = predictions(models=("x",), grades=(0, 1, 2)).drop(columns=["model", "case"])
    path = tmp_path / "one.csv"
    frame.to_csv(path, index=False)
    text_code = main(["metrics", str(path), "--n-boot", "20"])
    table = capsys.readouterr().out
    assert text_code == 0 and "model model" in table and "n/a" in table
    report = run_json(capsys, ["metrics", str(path), "--json", "--n-boot", "20"])
    assert list(report["models"]) == ["model"] and report["delong"] == []
    grade3 = report["models"]["model"]["per_grade"]["3"]
    assert grade3["auc"] is None and grade3["ci_low"] is None and "grade 3" in grade3["reason"]
    assert report["models"]["model"]["per_grade"]["0"]["auc"] is not None
    assert "reason" not in report["models"]["model"]["per_grade"]["0"]


def test_readable_table_lists_models_and_delong(tmp_path, capsys):
    path = tmp_path / "preds.csv"
    predictions().to_csv(path, index=False)
    assert main(["metrics", str(path), "--n-boot", "30"]) == 0
    out = capsys.readouterr().out
    assert "model SGS" in out and "model DPD" in out and "DeLong" in out and "95% CI" in out


@pytest.mark.parametrize(
    "content, message",
    [
        ("y_true,p0,p1,p2\n1,0.1,0.2,0.7\n", "missing column(s) p3"),
        ("y_true,p0,p1,p2,p3\n1,0.1,abc,0.7,0.1\n", "column p1 is not numeric (line 2: 'abc')"),
        ("y_true,p0,p1,p2,p3\n5,0.1,0.1,0.7,0.1\n", "y_true must be a grade 0-3 (line 2: 5)"),
        ("y_true,p0,p1,p2,p3\n1.5,0.1,0.1,0.7,0.1\n", "y_true must be a grade 0-3"),
        ("y_true,p0,p1,p2,p3\n1,0.1,0.1,0.7,0.1\n2,,0.1,0.7,0.1\n", "line 3 has no value in column p0"),
        ("y_true,p0,p1,p2,p3\n", "no data rows"),
        ("", "the file is empty"),
        (
            "model,y_true,p0,p1,p2,p3\na,1,.1,.2,.3,.4\na,2,.1,.2,.3,.4\nb,1,.1,.2,.3,.4\n",
            "model b has 1 rows but model a has 2",
        ),
        ("model,y_true,p0,p1,p2,p3\na,1,.1,.2,.3,.4\nb,2,.1,.2,.3,.4\n", "disagree on y_true"),
        (
            "model,case,y_true,p0,p1,p2,p3\na,x,1,.1,.2,.3,.4\nb,y,1,.1,.2,.3,.4\n",
            "model b does not have the same cases",
        ),
    ],
)
def test_bad_metrics_csv_is_one_line_on_stderr_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["metrics", str(path), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(path) in err and message in err


def test_missing_file_exit_2(tmp_path, capsys):
    assert main(["metrics", str(tmp_path / "none.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_icc_json_equals_library_with_target_ids(tmp_path, capsys):
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 30)
    ratings = np.column_stack([np.clip(truth + rng.integers(-1, 2, 30), 0, 3) for _ in range(3)])
    frame = pd.DataFrame(ratings, columns=["expert-a", "junior-1", "junior-2"])
    frame.insert(0, "image", [f"img-{i}" for i in range(30)])
    path = tmp_path / "ratings.csv"
    frame.to_csv(path, index=False)
    report = run_json(capsys, ["icc", str(path), "--json"])
    expected = icc_table(ratings.astype(float))
    for form in ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"):
        assert set(report[form]) == {"icc", "ci_low", "ci_high"}
        got, want = report[form], expected[form]
        assert (got["icc"], got["ci_low"], got["ci_high"]) == pytest.approx(
            (want["icc"], want["ci_low"], want["ci_high"])
        )
    assert report["n_raters"] == 3 and report["n_targets"] == 30
    assert main(["icc", str(path)]) == 0
    table = capsys.readouterr().out
    assert "ICC2k" in table and "expert-a" in table


def test_icc_single_rater_is_null_with_reason_and_bad_cell_is_error(tmp_path, capsys):
    one = tmp_path / "one.csv"
    one.write_text("target,reader\na,1\nb,2\nc,3\n")
    report = run_json(capsys, ["icc", str(one), "--json"])
    assert report["ICC2"]["icc"] is None and "2 raters" in report["ICC2"]["reason"]
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("r1,r2\n1,1\n2,\n3,3\n2,1\n")
    report = run_json(capsys, ["icc", str(gaps), "--json"])
    assert report["n_dropped"] == 1 and math.isfinite(report["ICC1"]["icc"])
    bad = tmp_path / "bad.csv"
    bad.write_text("id,r1,r2\na,1,1\nb,2,x\n")
    assert main(["icc", str(bad)]) == 2
    assert "column r2 is not numeric" in capsys.readouterr().err
