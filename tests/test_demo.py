"""`rascore demo --size small`: a ready project with items, readers, grades, reference and accounts."""

from __future__ import annotations

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
        [str(BIN / "rascore"), "demo", "--size", "small", "--seed", "3", "--quiet"],
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
    for sha, frames, mask_path, sh, _pd in rows[:12]:
        arr = project.media.load_cache(sha)
        assert arr.shape == (frames, 192, 256, 3) and arr.dtype == np.uint8
        masks = np.load(data / mask_path)
        assert masks["synovium"].shape[-2:] == (192, 256)
        assert bool(masks["synovium"].any()) == (sh > 0)


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
