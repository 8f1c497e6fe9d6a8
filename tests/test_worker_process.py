"""Retraining through the queue with the real training job: promotion, failure reasons, kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from rascore.jobs import Worker
from rascore.store import jobs as job_sql
from rascore.store import registry
from tests.conftest import BIN, cli_env
from tests.test_train import build_tiny

TINY_JOB = {
    "epochs": 2,
    "size": [32, 40],
    "net_width": 4,
    "batch_size": 8,
    "weights": "none",
    "preset": "fast",
}


def version_dirs(project) -> list[str]:
    root = project.settings.models_dir / "SGS"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_submit_run_promote_then_fail_with_reason(project):
    build_tiny(project, "SGS")
    first = job_sql.submit(project.store, "train", "SGS", TINY_JOB)
    row = Worker(project).run_once()
    assert row["id"] == first and row["status"] == "succeeded", row["error"]
    active = registry.active_version(project.store, "SGS")
    assert active["version"] == 1 and row["model_version_id"] == active["id"]
    assert [h["epoch"] for h in row["progress"]["history"]] == [1, 2]
    assert row["progress"]["done"] and "registered SGS v1" in row["log_tail"]
    # a job that cannot run says why, and changes nothing
    missing = job_sql.submit(project.store, "train", "DPD", TINY_JOB)
    row = Worker(project).run_once()
    assert row["id"] == missing and row["status"] == "failed"
    assert "DPD has 0 training items with a reference label" in row["error"]
    assert "import reference labels" in row["error"]
    job_sql.submit(project.store, "train", "SGS", {"epochs": 1, "learning_rate": 5})
    row = Worker(project).run_once()
    assert row["status"] == "failed" and "unknown training parameter(s): learning_rate" in row["error"]
    assert registry.active_version(project.store, "SGS")["version"] == 1


def test_kill_9_mid_training_leaves_active_model_and_recovers(project):
    build_tiny(project, "SGS")
    job_sql.submit(project.store, "train", "SGS", TINY_JOB)
    Worker(project).run_once()
    before = version_dirs(project)
    assert before == ["v1"]
    long_job = job_sql.submit(project.store, "train", "SGS", {**TINY_JOB, "epochs": 500, "patience": 500})
    env = cli_env(project.settings.data_dir)
    worker = subprocess.Popen(
        [str(BIN / "rascore"), "worker", "--poll", "0.2", "--heartbeat", "0.5"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            row = job_sql.get(project.store, long_job)
            if row["status"] == "running" and row["progress"].get("epoch", 0) >= 2:
                break
            assert worker.poll() is None, worker.stderr.read().decode()
            time.sleep(0.2)
        else:
            raise AssertionError("the worker never reached epoch 2")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert job_sql.get(project.store, long_job)["status"] == "running"  # nobody closed it
    assert version_dirs(project) == before  # no partial checkpoint is visible
    assert registry.active_version(project.store, "SGS")["version"] == 1
    # wait for what "stale" means: the dead worker's last heartbeat is over the 1 s limit
    deadline = time.monotonic() + 30
    while job_sql.stale_for(job_sql.get(project.store, long_job), stale_after_s=1.0) is None:
        assert time.monotonic() < deadline, "the killed worker's heartbeat never went stale"
        time.sleep(0.1)
    restarted = subprocess.run(
        [str(BIN / "rascore"), "worker", "--once", "--stale-after", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restarted.returncode == 0, restarted.stderr
    assert f"recovered stale jobs: {long_job}" in restarted.stderr
    row = job_sql.get(project.store, long_job)
    assert row["status"] == "failed" and "stopped (no heartbeat" in row["error"]
    assert registry.active_version(project.store, "SGS")["version"] == 1
    assert version_dirs(project) == before


def test_cli_submit_list_cancel(project_env):
    def rascore(*args):
        return subprocess.run(
            [str(BIN / "rascore"), *args],
            capture_output=True,
            text=True,
            env=cli_env(project_env),
            timeout=60,
        )

    assert rascore("jobs", "submit", "--modality", "SGS", "--epochs", "1").stdout.strip() == "queued job 1"
    listed = rascore("jobs", "list")
    assert "queued" in listed.stdout and "SGS" in listed.stdout
    assert rascore("jobs", "cancel", "1").stdout.strip() == "job 1: cancelled"
    assert rascore("jobs", "policy").stdout.strip() == "if-better"
    assert rascore("jobs", "policy", "always").stdout.strip() == "always"
    done = rascore("jobs", "cancel", "99")
    assert done.returncode == 2 and "no job 99" in done.stderr
