"""`rascore demo --size small`: a ready project with items, readers, grades, reference and accounts,
a calibration set with every simulated reader's reads, and a closed reader study with a simulated
aid (the small size has 16 SPD test items: enough for the study's structure; the aid's effect is
tested on the paper cohort's reads without rendering, tests/test_synth_study_reads.py)."""

from __future__ import annotations

import collections
import json
import re
import sqlite3
import subprocess

import numpy as np
import pytest

from tests.conftest import BIN, cli_env


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo") / "project"
    done = subprocess.run(
        # the widened simulator (not the demo's default) goes through the whole import here
        [str(BIN / "rascore"), "demo", "--size", "small", "--seed", "3", "--variation", "wide", "--quiet"],
        capture_output=True,
        text=True,
        env=cli_env(data),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return data, done.stdout


def test_sizes_cohorts_and_modalities(demo):
    from rascore.synth import SIZES

    data, _ = demo
    conn = sqlite3.connect(data / "rascore.db")
    per_cohort = dict(conn.execute("SELECT cohort, count(*) FROM items GROUP BY cohort"))
    assert per_cohort == SIZES["small"]
    for cohort, _n in SIZES["small"].items():
        per_mod = [
            c
            for (c,) in conn.execute(
                "SELECT count(*) FROM items WHERE cohort = ? GROUP BY modality", (cohort,)
            )
        ]
        assert len(per_mod) == 4 and max(per_mod) - min(per_mod) <= 1
    # the second test cohort comes from another scanner profile
    profiles = dict(
        conn.execute("SELECT cohort, group_concat(DISTINCT scanner_profile) FROM items GROUP BY cohort")
    )
    assert profiles["train"] == profiles["test1"] != profiles["test2"]
    # the third, unseen, from a profile no training item comes from
    assert len({profiles["train"], profiles["test2"], profiles["test3"]}) == 3
    # dynamic items are clips of several frames at a frame rate, static ones single frames
    assert (
        conn.execute(
            "SELECT count(*) FROM items WHERE dynamic = 1 AND (frames < 8 OR fps IS NULL)"
        ).fetchone()[0]
        == 0
    )
    assert conn.execute("SELECT count(*) FROM items WHERE dynamic = 0 AND frames != 1").fetchone()[0] == 0
    # no patient is in two cohorts, and patients have several joints
    assert (
        conn.execute(
            "SELECT count(*) FROM (SELECT patient FROM items GROUP BY patient"
            " HAVING count(DISTINCT cohort) > 1)"
        ).fetchone()[0]
        == 0
    )
    assert (
        conn.execute(
            "SELECT max(n) FROM (SELECT count(DISTINCT joint || side) AS n FROM items GROUP BY patient)"
        ).fetchone()[0]
        >= 2
    )


def test_readers_grades_and_reference(demo):
    from rascore.synth import SIZES

    data, _ = demo
    conn = sqlite3.connect(data / "rascore.db")
    levels = dict(
        conn.execute("SELECT level, count(*) FROM users WHERE password_hash IS NULL GROUP BY level")
    )
    assert levels == {"expert": 2, "senior": 4, "intermediate": 4, "junior": 4}
    n_items = sum(SIZES["small"].values())
    n_test = SIZES["small"]["test1"] + SIZES["small"]["test2"]
    assert conn.execute("SELECT count(*) FROM annotations").fetchone()[0] == 2 * n_items + 12 * n_test
    methods = dict(conn.execute("SELECT method, count(*) FROM current_reference GROUP BY method"))
    assert (
        sum(methods.values()) == n_items and methods.get("agreement", 0) > methods.get("adjudication", 0) > 0
    )
    # PD items carry PD grades and a derived combined score; greyscale items none
    assert (
        conn.execute(
            "SELECT count(*) FROM annotations a JOIN items i ON i.id = a.item_id"
            " WHERE i.modality IN ('SGS','DGS') AND a.pd IS NOT NULL"
        ).fetchone()[0]
        == 0
    )
    assert (
        conn.execute(
            "SELECT count(*) FROM annotations a JOIN items i ON i.id = a.item_id"
            " WHERE i.modality IN ('SPD','DPD') AND a.pd IS NULL"
        ).fetchone()[0]
        == 0
    )
    # readers' errors grow with inexperience: agreement with the reference by level
    rows = conn.execute(
        "SELECT u.level, avg(a.combined = r.combined) FROM latest_annotations a JOIN users u ON u.id = a.user_id"
        " JOIN current_reference r ON r.item_id = a.item_id JOIN items i ON i.id = a.item_id"
        " WHERE i.cohort != 'train' GROUP BY u.level"
    ).fetchall()
    acc = dict(rows)
    assert acc["expert"] > acc["senior"] > acc["junior"]


def test_truth_masks_and_cache(demo, monkeypatch):
    from rascore.project import open_project

    data, _ = demo
    for key, value in cli_env(data).items():
        if key.startswith("RASCORE_"):
            monkeypatch.setenv(key, value)
    conn = sqlite3.connect(data / "rascore.db")
    rows = conn.execute(
        "SELECT i.media_sha256, i.frames, g.mask_path, g.sh, g.pd FROM items i"
        " JOIN ground_truth g ON g.item_id = i.id"
    ).fetchall()
    assert len(rows) == conn.execute("SELECT count(*) FROM items").fetchone()[0]
    project = open_project()
    sizes = set()
    for sha, frames, mask_path, sh, _pd in rows[:12]:
        arr = project.media.load_cache(sha)
        masks = np.load(data / mask_path)
        # widened acquisitions: each item at its own frame size, its masks at the same size
        assert arr.shape == (frames, *masks["synovium"].shape[-2:], 3) and arr.dtype == np.uint8
        assert 160 <= arr.shape[1] <= 288 and 200 <= arr.shape[2] <= 560
        sizes.add(arr.shape[1:3])
        assert bool(masks["synovium"].any()) == (sh > 0)
    assert len(sizes) > 6


def test_demo_accounts_printed_once_and_sign_in(demo):
    from rascore.auth import authenticate
    from rascore.store import Store

    data, stdout = demo
    accounts = dict(re.findall(r"^\s+(demo-\w+)\s+(\S+)$", stdout, re.M))
    assert set(accounts) == {"demo-admin", "demo-expert", "demo-reader"}
    store = Store(data / "rascore.db")
    for name, password in accounts.items():
        assert authenticate(store, name, password)["name"] == name
    again = subprocess.run(
        [str(BIN / "rascore"), "demo", "--size", "small", "--quiet"],
        capture_output=True,
        text=True,
        env=cli_env(data),
        timeout=60,
    )
    assert again.returncode == 2 and "already holds the demo" in again.stderr
    absent = subprocess.run(
        [str(BIN / "rascore"), "demo", "--if-absent"],
        capture_output=True,
        text=True,
        env=cli_env(data),
        timeout=60,
    )
    assert absent.returncode == 0 and "demo-admin" not in absent.stdout


def test_four_models_queued_for_the_worker(demo):
    data, stdout = demo
    conn = sqlite3.connect(data / "rascore.db")
    jobs = conn.execute("SELECT kind, modality, status FROM jobs ORDER BY id").fetchall()
    assert jobs == [("train", m, "queued") for m in ("SGS", "DGS", "SPD", "DPD")]
    assert "queued training of the four models" in stdout


def test_a_closed_reader_study_with_both_arms_for_every_reader_and_case(demo):
    from rascore.services.demo_study import STUDY_NAME
    from rascore.synth import SIZES

    data, stdout = demo
    conn = sqlite3.connect(data / "rascore.db")
    conn.row_factory = sqlite3.Row
    (study,) = conn.execute("SELECT * FROM studies").fetchall()
    assert (study["name"], study["design"], study["status"], study["grade"]) == (
        STUDY_NAME,
        "sequential",
        "closed",
        "EOSS",
    )
    assert study["created_at"] < study["opened_at"] < study["closed_at"]
    cases = conn.execute(
        "SELECT i.id, i.modality, i.cohort FROM study_cases c JOIN items i ON i.id = c.item_id"
    ).fetchall()
    n_spd_test = (SIZES["small"]["test1"] + SIZES["small"]["test2"]) // 4  # the study's test cohorts
    assert len(cases) == n_spd_test and {(c["modality"], c["cohort"] != "train") for c in cases} == {
        ("SPD", True)
    }
    readers = conn.execute(
        "SELECT u.name, u.level, r.experience, u.password_hash FROM study_readers r JOIN users u ON u.id = r.user_id"
    ).fetchall()
    assert len(readers) == 12 and all(r["level"] == r["experience"] for r in readers)
    assert all(r["password_hash"] is None for r in readers)  # simulated readers cannot sign in
    reads = conn.execute("SELECT * FROM study_reads ORDER BY user_id, id").fetchall()
    assert len(reads) == 12 * len(cases) * 2 and {r["session"] for r in reads} == {1}
    pairs = collections.Counter((r["user_id"], r["item_id"], r["arm"]) for r in reads)
    assert set(pairs.values()) == {1} and len({(u, i) for u, i, _ in pairs}) == 12 * len(cases)
    for first, second in zip(reads[::2], reads[1::2]):  # the aided read of a case right after its unaided
        assert (first["item_id"], first["arm"], second["arm"]) == (second["item_id"], "unaided", "aided")
        assert first["saved_at"] <= second["started_at"]
    assert all(study["opened_at"] < r["started_at"] < r["saved_at"] < study["closed_at"] for r in reads)
    assert all(r["duration_ms"] > 0 for r in reads)
    # readers' grades change with the aid on some cases, not all
    changed = conn.execute(
        "SELECT avg(a.combined != u.combined) FROM study_reads a JOIN study_reads u ON u.user_id = a.user_id"
        " AND u.item_id = a.item_id AND u.arm = 'unaided' WHERE a.arm = 'aided'"
    ).fetchone()[0]
    assert 0 < changed < 0.5
    assert "reader study 'Demo study: SPD, sequential' (closed)" in stdout
    n_items, n_test = sum(SIZES["small"].values()), SIZES["small"]["test1"] + SIZES["small"]["test2"]
    annotations = conn.execute("SELECT count(*) FROM annotations").fetchone()[0]
    assert annotations == 2 * n_items + 12 * n_test  # study reads are not annotations


def test_the_study_shows_a_simulated_aid_snapshot_on_every_case(demo):
    data, _ = demo
    conn = sqlite3.connect(data / "rascore.db")
    aids = conn.execute(
        "SELECT item_id, source, model_version_id, grade, probs_json FROM study_aids"
    ).fetchall()
    cases = {i for (i,) in conn.execute("SELECT item_id FROM study_cases")}
    assert {a[0] for a in aids} == cases and {a[1:3] for a in aids} == {("simulated", None)}
    for _, _, _, grade, probs_json in aids:
        probs = json.loads(probs_json)
        assert len(probs) == 4 and abs(sum(probs) - 1) < 1e-6 and int(np.argmax(probs)) == grade
    agree = conn.execute(
        "SELECT avg(a.grade = r.combined) FROM study_aids a JOIN current_reference r ON r.item_id = a.item_id"
    ).fetchone()[0]
    assert 0.5 < agree < 1.0  # a suggestion that is mostly right, not a copy of the reference


def test_calibration_reads_of_every_reader_on_items_that_are_not_study_cases(demo):
    from rascore.services.demo_study import CALIBRATION_NAME, TARGET_KAPPA, WINDOW

    data, stdout = demo
    conn = sqlite3.connect(data / "rascore.db")
    (calib,) = conn.execute("SELECT id, name, grade, target_kappa, window_n FROM calibration_sets").fetchall()
    assert calib[1:] == (CALIBRATION_NAME, "EOSS", TARGET_KAPPA, WINDOW)
    items = conn.execute(
        "SELECT i.id, i.modality, i.cohort FROM calibration_items c JOIN items i ON i.id = c.item_id"
    ).fetchall()
    assert len(items) == 20 and {(m, c) for _, m, c in items} == {("SPD", "train")}
    assert not {i for i, _, _ in items} & {i for (i,) in conn.execute("SELECT item_id FROM study_cases")}
    per_reader = dict(
        conn.execute(
            "SELECT u.name, count(*) FROM calibration_reads d JOIN users u ON u.id = d.user_id GROUP BY u.name"
        )
    )
    assert len(per_reader) == 12 and all(WINDOW <= n <= 20 for n in per_reader.values())
    # all calibration happened before the study opened
    assert conn.execute(
        "SELECT max(d.saved_at) < (SELECT opened_at FROM studies) FROM calibration_reads d"
    ).fetchone()[0]
    passed = re.search(r"\((\d+) items\): (\d+) of 12 readers passed", stdout)
    assert passed and passed.group(1) == "20"


def test_the_demo_study_can_be_left_out():
    done = subprocess.run(
        [str(BIN / "rascore"), "demo", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "--no-study" in done.stdout
