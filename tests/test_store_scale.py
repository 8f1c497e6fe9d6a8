"""The store's hot queries use indexes at scale (plans, not timings, so the test is stable).

A smaller copy of bench/bench_store_scale.py: 20,000 items and about 200,000 annotations, built
with executemany in one transaction, then every SQL statement that the Label page's next-item
claim, a grade write and the reference lookups run is captured and its EXPLAIN QUERY PLAN checked:
no full scan of annotations, items, reference_labels, predictions or reservations.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from rascore.store import accounts

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_store_scale", ROOT / "bench" / "bench_store_scale.py")
scale_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scale_bench)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    from rascore.store import Store

    path = tmp_path_factory.mktemp("scale") / "rascore.db"
    started = time.perf_counter()
    counts = scale_bench.build(path, items=20_000, grades_per_item=10)
    assert time.perf_counter() - started < 60  # about 5-10 s on 2 cores
    assert counts["items"] == 20_000 and counts["annotations"] >= 200_000
    store = Store(path)
    yield store
    store.close()


@pytest.fixture(scope="module")
def plans(big_store):
    reader = accounts.user(big_store, "reader01")
    admin = accounts.user(big_store, "admin1")
    return scale_bench.collect_plans(big_store, reader, admin)


LABEL_PATHS = (
    "next item (first, resume)",
    "next item (after position)",
    "annotation write (submit)",
    "reference lookups",
)


@pytest.mark.parametrize("path", LABEL_PATHS)
def test_label_paths_never_scan_a_big_table(plans, path):
    rows = plans[path]
    assert rows, f"no statement captured for {path}"
    assert scale_bench.full_scans({path: rows}) == []


def test_queue_walks_the_confidence_index_and_checks_grades_by_index(plans):
    lines = [line for _, plan in plans["next item (after position)"] for line in plan]
    assert any("predictions_confidence" in line for line in lines)
    assert any("annotations_user" in line for line in lines)


def test_grade_write_finds_the_previous_grade_by_index(plans):
    lines = [line for _, plan in plans["annotation write (submit)"] for line in plan]
    assert not any(line.startswith("SCAN annotations") for line in lines)
    assert any("annotations_user" in line for line in lines)


def test_dashboard_section_loads_use_indexes(plans):
    """Per-section queries (reference rows, prediction rows, section fingerprint) search by index;
    only the global fingerprint's count(*) reads a whole (covering) index."""
    rows = [
        (sql, plan)
        for sql, plan in plans["dashboard fingerprints and loads"]
        if not sql.lstrip().startswith("SELECT (SELECT max(id) FROM reference_labels)")
    ]
    assert rows
    assert scale_bench.full_scans({"dashboard": rows}) == []


def test_full_scan_detector_sees_a_scan(big_store):
    sql = "SELECT count(*) FROM annotations a WHERE a.seconds > 1"
    found = scale_bench.full_scans({"probe": [(sql, scale_bench.plan(big_store.conn, sql))]})
    assert found
