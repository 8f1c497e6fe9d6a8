"""``rascore export gloess`` on a small real project (tests/fixtures_dashboard.py: readers, the
reference standard, an active SPD and DPD model with stored predictions), checked against GLOESS
recomputed here from the store's own rows with ``rascore.scale``."""

from __future__ import annotations

import csv
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from rascore import scale
from rascore.cli import main
from rascore.evaluate.gloess import patient_agreement, patient_scores
from rascore.store import accounts
from tests.fixtures_dashboard import build_results_project

COLUMNS = ["patient", "cohort", "modality", "rater", "gloess", "n_joints"]


@pytest.fixture
def results(project_env):
    """The results project in the folder the command line opens, junior-1 unable to grade one
    SPD item of test1 (a not-assessable grade superseding its earlier one)."""
    project = build_results_project(project_env)
    store = project.store
    item = store.items("SPD", "test1")[0]
    reader = accounts.user(store, "junior-1")["id"]
    store.add_annotation(item["id"], reader, None, not_assessable=True, reason="artefact")
    project.not_assessed = (item["patient"], "SPD", "junior-1")  # type: ignore[attr-defined]
    return project


def exported(tmp_path, capsys, *extra: str) -> list[dict]:
    out = tmp_path / "gloess.csv"
    assert main(["export", "gloess", "--out", str(out), *extra]) == 0
    capsys.readouterr()
    with open(out, newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def by_key(rows: list[dict]) -> dict[tuple, tuple[int, int]]:
    return {
        (r["patient"], r["cohort"], r["modality"], r["rater"]): (int(r["gloess"]), int(r["n_joints"]))
        for r in rows
    }


def test_reference_gloess_equals_the_sum_of_the_reference_combined_grades(results, tmp_path, capsys):
    got = by_key(exported(tmp_path, capsys))
    expected: dict[tuple, list[int]] = defaultdict(list)
    for code in ("SPD", "DPD"):
        for ref in results.store.references(code):
            expected[(ref["patient"], ref["cohort"], code, "reference")].append(
                scale.combined(ref["sh"], ref["pd"])
            )
    assert len(expected) == 2 * 3 * 12  # two modalities, three cohorts, 12 patients each
    for key, grades in expected.items():
        assert got[key] == (sum(grades), len(grades)), key
    assert {k for k in got if k[3] == "reference"} == set(expected)
    # test1's case 0 has SH 1 with PD 3: its combined EOSS 3, not SH, is what the sum holds
    assert got[("pt-test1-0", "test1", "SPD", "reference")][0] == 3 + 1


def test_readers_and_models_are_raters_with_their_own_sums(results, tmp_path, capsys):
    got = by_key(exported(tmp_path, capsys))
    store = results.store
    patient_of = {i["id"]: i["patient"] for code in ("SPD", "DPD") for i in store.items(code)}
    readers: dict[tuple, int] = defaultdict(int)
    for a in store.latest_annotations():
        if a["item_id"] in patient_of and not a["not_assessable"]:
            item = store.item(a["item_id"])
            readers[(item["patient"], item["cohort"], item["modality"], a["reader"])] += scale.combined(
                a["sh"], a["pd"]
            )
    assert {k: got[k][0] for k in readers} == dict(readers)
    patient, modality, reader = results.not_assessed
    assert got[(patient, "test1", modality, reader)][1] == 1  # one of the patient's two joints
    models: dict[tuple, int] = defaultdict(int)
    for (code, cohort, version), (ids, _, probs) in results.fixture["arrays"].items():
        if code in ("SPD", "DPD"):
            for item, p in zip(ids, probs):
                models[(patient_of[int(item)], cohort, code, f"model:{code} v{version}")] += int(np.argmax(p))
    assert {k: got[k][0] for k in models} == dict(models)
    raters = {k[3] for k in got}
    assert raters == {
        "reference",
        "junior-1",
        "junior-2",
        "senior-1",
        "expert-a",
        "model:SPD v1",
        "model:DPD v1",
    }
    assert not any(k[2] in ("SGS", "DGS") for k in got)


@pytest.mark.filterwarnings("ignore::rascore.evaluate.UndefinedMetricWarning")  # the expert's exact ICC
def test_cohort_filter_parquet_and_agreement_on_the_export(results, tmp_path, capsys):
    only = exported(tmp_path, capsys, "--cohort", "TEST1")
    assert {r["cohort"] for r in only} == {"test1"} and len(only) == 2 * 12 * 6
    out = tmp_path / "gloess.parquet"
    assert main(["export", "gloess", "--out", str(out), "--cohort", "test1"]) == 0
    frame = pd.read_parquet(out)
    assert list(frame.columns) == COLUMNS and str(frame["gloess"].dtype) == "Int64"
    assert by_key(frame.astype({"gloess": int, "n_joints": int}).to_dict("records")) == by_key(only)
    # the noise-free expert agrees exactly; junior-1's patient with a joint not assessed is left out
    from rascore.export import rater_rows

    agreement = {
        (a.modality, a.rater): a
        for a in patient_agreement(patient_scores(rater_rows(results.store, "test1")))
    }
    expert = agreement[("SPD", "expert-a")]
    assert expert.n_patients == 12 and expert.bland_altman.mean_diff == 0 and expert.icc == pytest.approx(1)
    junior = agreement[("SPD", "junior-1")]
    assert (junior.n_patients, junior.n_missing_joints) == (11, 1)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cohort", "test9"], "unknown cohort 'test9'"),
        (["--format", "parquet"], "Parquet needs --out FILE"),
    ],
)
def test_bad_input_is_one_line(results, capsys, args, message):
    assert main(["export", "gloess", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_folder_as_out_and_a_reader_named_reference_are_one_line(results, tmp_path, capsys):
    assert main(["export", "gloess", "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    store = results.store
    reader = accounts.add_user(store, "Reference", "reader", "junior")
    store.add_annotation(store.items("SPD", "test2")[0]["id"], reader, 2, 1)
    assert main(["export", "gloess"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be told apart" in err[0]
