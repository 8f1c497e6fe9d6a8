"""``rascore mrmc`` in-process: JSON equal to the library, a readable table, and every bad input
as one line ``rascore mrmc: ...`` on stderr with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rascore.cli import main
from rascore.evaluate.mrmc import mrmc_analysis

VANDYKE = Path(__file__).parent / "data" / "mrmc" / "vandyke.csv"


def small_study() -> pd.DataFrame:
    """2 arms x 2 readers x 6 cases (3 positive), integer ratings with ties."""
    ratings = {
        ("A", "r1"): [1, 2, 4, 3, 4, 5],
        ("A", "r2"): [2, 1, 3, 3, 5, 4],
        ("B", "r1"): [1, 3, 2, 2, 5, 5],
        ("B", "r2"): [1, 2, 2, 5, 4, 5],
    }
    rows = []
    for (arm, reader), scores in ratings.items():
        for c, score in enumerate(scores):
            rows.append({"reader": reader, "case": f"c{c}", "truth": int(c >= 3), "arm": arm, "score": score})
    return pd.DataFrame(rows)


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "study.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def test_json_equals_the_library_on_the_van_dyke_data(capsys):
    assert main(["mrmc", str(VANDYKE), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    frame = pd.read_csv(VANDYKE, dtype={"reader": str, "case": str, "arm": str})
    assert data == json.loads(mrmc_analysis(frame).to_json())
    assert {
        "auc",
        "reader_auc",
        "var",
        "cov1",
        "cov2",
        "cov3",
        "ms_t",
        "ms_tr",
        "rrrc",
        "frrc",
        "rrfc",
    } <= set(data)
    assert round(data["rrrc"]["F"], 2) == 4.46 and round(data["rrrc"]["ddf"], 2) == 15.26


def test_readable_table_has_reader_aucs_arm_means_and_the_three_analyses(capsys):
    assert main(["mrmc", str(VANDYKE)]) == 0
    out = capsys.readouterr().out
    assert "2 arms, 5 readers, 114 cases (45 positive, 69 negative)" in out
    assert "0.9196" in out and "0.9994" in out  # reader 0 arm 0, reader 3 arm 1
    assert "Random readers, random cases: F(1, 15.26) = 4.46, p = 0.0517" in out
    assert "Fixed readers, random cases: X2(1) = 5.476, p = 0.0193" in out
    assert "Random readers, fixed cases: F(1, 4) = 8.70, p = 0.0420" in out
    assert "-0.0880 to 0.0004" in out


def test_labels_that_look_numeric_are_kept_as_written(tmp_path, capsys):
    frame = small_study()
    frame["reader"] = frame["reader"].map({"r1": "007", "r2": "7"})
    assert main(["mrmc", write(tmp_path, frame), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["readers"] == ["007", "7"]


def test_one_reader_prints_why_the_random_reader_analyses_are_undefined(tmp_path, capsys):
    frame = small_study()
    assert main(["mrmc", write(tmp_path, frame[frame.reader == "r1"])]) == 0
    out = capsys.readouterr().out
    assert (
        "Random readers, random cases: undefined (one reader: random-reader analyses need at least 2" in out
    )
    assert "Fixed readers, random cases: X2(1) =" in out


def drop_reader_arm(f):
    return f[~((f.reader == "r2") & (f.arm == "B"))]


def truth_missing(f):
    return f.assign(truth=f.truth.astype(object).where(f.case != "c4", ""))


def single_arm(f):
    return f[f.arm == "A"]


def non_numeric_score(f):
    return f.assign(score=f.score.astype(object).where(f.index != 7, "high"))


@pytest.mark.parametrize(
    "change, message",
    [
        (
            drop_reader_arm,
            "reader r2 has no readings in arm B: every reader must read every case in every arm",
        ),
        (lambda f: f.drop(index=[20]), "reader r2 lacks 1 of the 6 cases in arm B (first: case c2)"),
        (truth_missing, "case c4 has no truth (line 6)"),
        (
            lambda f: f.assign(truth=f.truth.where(f.case != "c4", 3)),
            "truth must be 0 or 1, case c4 has 3 (line 6)",
        ),
        (single_arm, "only one arm (A): the analysis compares arms, so it needs at least 2"),
        (non_numeric_score, "score is not numeric (line 9: 'high')"),
        (
            lambda f: f.drop(columns=["truth"]),
            "missing column(s) truth (need reader, case, truth, arm, score)",
        ),
        (lambda f: f.assign(truth=0), "no case has truth 1 (positive)"),
    ],
)
def test_bad_input_is_one_line_on_stderr_exit_2(tmp_path, capsys, change, message):
    path = write(tmp_path, change(small_study()))
    assert main(["mrmc", path]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"rascore mrmc: {path}: {message}\n" or (
        captured.err.startswith(f"rascore mrmc: {path}: ") and message in captured.err
    )
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_missing_and_empty_files(tmp_path, capsys):
    missing = tmp_path / "nope.csv"
    assert main(["mrmc", str(missing)]) == 2
    assert capsys.readouterr().err == f"rascore mrmc: {missing}: no such file\n"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert main(["mrmc", str(empty)]) == 2
    assert capsys.readouterr().err == f"rascore mrmc: {empty}: the file is empty\n"


def test_output_into_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    """``rascore mrmc FILE | head -1``: the reader of the output goes away; no traceback."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    pipe = open(write_end, "w", buffering=1)  # noqa: SIM115 (closed below)
    monkeypatch.setattr("sys.stdout", pipe)
    try:
        code = main(["mrmc", str(VANDYKE)])
    finally:
        monkeypatch.undo()
        pipe.close()
    assert code == 141
    assert capsys.readouterr().err == ""
