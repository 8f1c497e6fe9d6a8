"""The durable job queue and worker with stand-in runners (the real training job is tested apart)."""

from __future__ import annotations

import re
import threading
import time

import pytest

from rascore.jobs import Cancelled, Worker
from rascore.store import Store
from rascore.store import jobs as job_sql


def ok_runner(project, job, ctx):
    for step in range(3):
        ctx.on_progress({"epoch": 1, "step": step + 1, "steps": 3}, force=True)
    return None


def slow_runner(project, job, ctx):
    for step in range(400):
        if ctx.should_stop():
            raise Cancelled()
        ctx.on_progress({"step": step})
        time.sleep(0.01)
    return None


def failing_runner(project, job, ctx):
    raise ValueError("no reference labels for DPD: grade or import some first")


def test_submit_run_succeeds_with_progress(project):
    job_id = job_sql.submit(project.store, "train", "SGS", {"epochs": 1})
    worker = Worker(project, runners={"train": ok_runner}, heartbeat_s=0.05)
    row = worker.run_once()
    assert row["id"] == job_id and row["status"] == "succeeded"
    assert row["progress"] == {"epoch": 1, "step": 3, "steps": 3}
    assert row["started_at"] and row["finished_at"] and row["worker"] == worker.name
    assert "succeeded" in row["log_tail"]
    assert worker.run_once() is None  # queue empty
    actions = [r["action"] for r in project.store.audit_rows()]
    assert "job.submit" in actions and "job.succeeded" in actions


def test_failure_reason_recorded_and_worker_goes_on(project):
    bad = job_sql.submit(project.store, "train", "DPD", {})
    good = job_sql.submit(project.store, "train", "SGS", {})
    runners = {"train": lambda p, job, ctx: (failing_runner if job["id"] == bad else ok_runner)(p, job, ctx)}
    worker = Worker(project, runners=runners)
    assert worker.run_forever(max_jobs=2) == 2
    assert job_sql.get(project.store, bad)["status"] == "failed"
    assert "no reference labels for DPD" in job_sql.get(project.store, bad)["error"]
    assert job_sql.get(project.store, good)["status"] == "succeeded"


def test_cancel_queued_and_running(project):
    queued = job_sql.submit(project.store, "train", "SGS", {})
    assert job_sql.request_cancel(project.store, queued) == "cancelled"
    assert job_sql.get(project.store, queued)["status"] == "cancelled"
    running = job_sql.submit(project.store, "train", "SGS", {})
    worker = Worker(project, runners={"train": slow_runner})
    result = {}
    thread = threading.Thread(target=lambda: result.update(row=worker.run_once()))
    thread.start()
    for _ in range(1000):
        row = job_sql.get(project.store, running)
        if row["status"] == "running" and "step" in row["progress"]:  # it has begun its steps
            break
        time.sleep(0.01)
    assert job_sql.request_cancel(project.store, running) == "cancelling"
    thread.join(timeout=10)
    assert result["row"]["status"] == "cancelled"
    assert result["row"]["progress"]["step"] < 399


def test_two_workers_never_claim_the_same_job(project):
    ids = [job_sql.submit(project.store, "train", "SGS", {}) for _ in range(30)]
    claimed: dict[str, list[int]] = {"a": [], "b": []}

    def take(name):
        own = Store(project.settings.db_path)
        while (job := job_sql.claim(own, name)) is not None:
            claimed[name].append(job["id"])

    threads = [threading.Thread(target=take, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed["a"] + claimed["b"]) == ids
    assert not set(claimed["a"]) & set(claimed["b"])


@pytest.mark.parametrize("requeue", [False, True])
def test_stale_claim_recovered(project, requeue):
    job_id = job_sql.submit(project.store, "train", "SGS", {})
    job_sql.claim(project.store, "dead-worker")
    project.store.execute("UPDATE jobs SET heartbeat_at = '2000-01-01T00:00:00.000+00:00'")
    worker = Worker(project, runners={"train": ok_runner}, stale_after_s=30, requeue_stale=requeue)
    assert worker.recover() == [job_id]
    row = job_sql.get(project.store, job_id)
    assert row["status"] == ("queued" if requeue else "failed")
    assert "dead-worker stopped" in row["error"]


def test_jobs_list_shows_a_job_without_heartbeat_as_stale(project, capsys):
    """`rascore jobs list`: a running job whose worker died is stale, with its silence in seconds."""
    import json
    from datetime import datetime, timedelta, UTC

    from rascore.cli import main

    dead = job_sql.submit(project.store, "train", "SGS", {})
    job_sql.claim(project.store, "dead-worker")
    alive = job_sql.submit(project.store, "train", "DGS", {})
    job_sql.claim(project.store, "live-worker")
    silent = job_sql.STALE_AFTER_S + 40
    old = (datetime.now(UTC) - timedelta(seconds=silent)).isoformat(timespec="milliseconds")
    project.store.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", (old, dead))
    assert main(["jobs", "list"]) == 0
    lines = {int(line.split()[0]): line for line in capsys.readouterr().out.splitlines()}
    assert lines[dead].split()[1] == "stale"
    seconds = re.search(r"no heartbeat for (\d+) s", lines[dead])
    assert seconds and silent <= int(seconds.group(1)) <= silent + 5
    assert lines[alive].split()[1] == "running" and "heartbeat" not in lines[alive]
    assert main(["jobs", "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[dead]["stale_s"] == pytest.approx(silent, abs=5) and rows[alive]["stale_s"] is None


def test_every_validated_epoch_kept_in_history(project):
    def fast_epochs(project, job, ctx):
        for epoch in range(1, 6):
            for step in range(50):
                ctx.on_progress({"epoch": epoch, "step": step, "loss": 1.0 / epoch, "phase": "train"})
            ctx.on_progress(
                {
                    "epoch": epoch,
                    "loss": 1.0 / epoch,
                    "val_auc": {"0": 0.5 + epoch / 20},
                    "val_macro_auc": 0.5 + epoch / 20,
                    "phase": "validated",
                }
            )
        return None

    job_sql.submit(project.store, "train", "SGS", {})
    row = Worker(project, runners={"train": fast_epochs}).run_once()
    history = row["progress"]["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert history[-1]["val_macro_auc"] == 0.75
