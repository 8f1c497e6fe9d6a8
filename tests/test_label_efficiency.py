"""The label-efficiency bench's mechanics at toy sizes (bench/bench_label_efficiency.py --quick),
the queue order it borrows (rascore.store.labelling.uncertainty_order), and the Train page's
loader of its results (rascore.services.training.label_efficiency).

The figures themselves come from the full bench (its command is in docs/PRETRAINING.md);
here only that every arm and size is trained, scored on the held-out foreign set and summarised.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from rascore.store.labelling import uncertainty_order
from rascore.store.migrations import CONFIDENCE_SQL

ROOT = Path(__file__).resolve().parents[1]


def test_uncertainty_order_is_the_queue_order():
    probs = {7: [0.9, 0.1, 0, 0], 3: [0.4, 0.3, 0.2, 0.1], 5: [0.4, 0.4, 0.1, 0.1], 1: [0.25] * 4}
    assert uncertainty_order(probs) == [1, 3, 5, 7]  # least confident first, ties by id
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE p (item_id INTEGER, probs_json TEXT)")
    conn.executemany("INSERT INTO p VALUES (?, ?)", [(k, json.dumps(v)) for k, v in probs.items()])
    rows = conn.execute(f"SELECT item_id FROM p ORDER BY {CONFIDENCE_SQL}, item_id").fetchall()
    assert [r[0] for r in rows] == uncertainty_order(probs)


def test_quick_bench_trains_every_arm_and_size(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import bench_label_efficiency as bench
    finally:
        sys.path.remove(str(ROOT / "bench"))
    with pytest.raises(SystemExit, match="--quick writes nowhere"):
        bench.main(["--quick"])
    out = tmp_path / "le.json"
    assert bench.main(["--quick", "--out", str(out), "--png", "-"]) == 0
    result = json.loads(out.read_text())
    assert {(r["arm"], r["size"]) for r in result["rows"]} == {(a, n) for a in bench.ARMS for n in (20, 28)}
    for row in result["rows"]:
        assert 0 <= row["macro_auc"] <= 1 and sum(row["labelled_grades"]) == row["size"]
        assert row["n_train"] + row["n_val"] == row["size"]
    zero = result["simulator_model"]["foreign_test_without_fine_tuning"]["macro_auc"]
    assert 0 <= zero <= 1
    assert len(result["summary"]) == 6 and all(s["seeds"] == 1 for s in result["summary"])
    from rascore.services import training

    shown = training.label_efficiency({"id": 1, "role": "admin"}, "SGS", out)
    assert shown["summary"] == result["summary"] and "--quick" in shown["command"]


def test_page_loader_without_or_with_a_broken_file(tmp_path):
    from rascore.services import training

    admin = {"id": 1, "role": "admin"}
    assert training.label_efficiency(admin, "SGS", tmp_path / "absent.json") is None
    assert training.label_efficiency(admin, "DGS") is None  # no clips in the foreign cohort
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(training.TrainingError, match="broken.json could not be read"):
        training.label_efficiency(admin, "SGS", broken)


def test_merge_joins_runs_and_recomputes_the_summary(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import bench_label_efficiency as bench
    finally:
        sys.path.remove(str(ROOT / "bench"))

    def part(name, rows, modality="SGS"):
        path = tmp_path / f"{name}.json"
        keys = {"modality": modality, "test_items": 200, "pool_items": 400, "sizes": [], "command": name}
        path.write_text(json.dumps({**keys, "rows": rows, "seconds": 1.0}))
        return path

    def row(arm, size, seed, auc):
        return {"arm": arm, "size": size, "seed": seed, "macro_auc": auc, "accuracy": 0.5}

    a = part("a", [row("scratch", 50, 0, 0.6), row("simulator", 50, 0, 0.8)])
    b = part("b", [row("scratch", 50, 0, 0.7), row("scratch", 50, 1, 0.9)])
    merged = bench.merge([a, b])
    assert merged["command"] == "a ; b" and merged["seeds"] == [0, 1] and merged["sizes"] == [50]
    scratch = next(s for s in merged["summary"] if s["arm"] == "scratch")
    assert scratch["seeds"] == 2 and scratch["macro_auc_mean"] == pytest.approx(
        0.8
    )  # b's seed 0 replaced a's
    with pytest.raises(SystemExit, match="differ in modality"):
        bench.merge([a, part("c", [], "SPD")])
