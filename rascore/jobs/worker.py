"""``rascore worker``: claims queued jobs one at a time, runs them, never loses a model.

The MONAI Label subprocess pattern with the job table made durable: the app only inserts rows;
this process claims one (``BEGIN IMMEDIATE``), keeps a heartbeat from a side thread, reports
progress into the row, stops between steps when a cancel is requested, and closes the row. A
failed or cancelled job never touches the active model (the runner registers and promotes only at
the very end). On start, claims whose heartbeat went stale (a worker killed with ``kill -9``) are
failed, or queued again, by policy.
"""

from __future__ import annotations

import os
import socket
import threading
import traceback
from collections.abc import Callable

from rascore.jobs.context import Cancelled, JobContext
from rascore.project import Project
from rascore.store import Store
from rascore.store import jobs as job_sql

Runner = Callable[[Project, dict, JobContext], "int | None"]


def default_runners() -> dict[str, Runner]:
    """Job kinds this worker knows: training a modality model."""
    from rascore.jobs.train_job import run_train_job

    return {"train": run_train_job}


class Worker:
    """One worker process; ``run_forever`` polls, ``run_once`` handles at most one job."""

    def __init__(
        self,
        project: Project,
        *,
        name: str | None = None,
        poll_s: float = 2.0,
        heartbeat_s: float = job_sql.HEARTBEAT_S,
        stale_after_s: float = job_sql.STALE_AFTER_S,
        requeue_stale: bool = False,
        runners: dict[str, Runner] | None = None,
    ) -> None:
        self.project = project
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.requeue_stale = requeue_stale
        self.runners = runners if runners is not None else default_runners()
        self.stop_event = threading.Event()

    @property
    def store(self) -> Store:
        return self.project.store

    def recover(self) -> list[int]:
        """Fail (or re-queue) running jobs whose heartbeat is older than ``stale_after_s``."""
        return job_sql.recover_stale(self.store, self.stale_after_s, self.requeue_stale)

    def _beat(self, job_id: int, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_s):
            job_sql.heartbeat(self.store, job_id)

    def run_once(self) -> dict | None:
        """Claim and run one queued job; returns the finished row, or None when the queue is empty."""
        self.recover()
        job = job_sql.claim(self.store, self.name, tuple(self.runners))
        if job is None:
            return None
        ctx = JobContext(self.store, job["id"])
        ctx.log(f"claimed by {self.name}")
        done = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job["id"], done), daemon=True)
        beat.start()
        try:
            version_id = self.runners[job["kind"]](self.project, job, ctx)
        except Cancelled:
            ctx.log("cancelled between steps")
            job_sql.finish(
                self.store, job["id"], "cancelled", error="cancelled by a user", log_tail=ctx.log_tail
            )
        except Exception as exc:  # the reason goes into the row, the worker goes on
            ctx.log(traceback.format_exc(limit=3).strip().splitlines()[-1])
            job_sql.finish(self.store, job["id"], "failed", error=failure_reason(exc), log_tail=ctx.log_tail)
        else:
            ctx.log("succeeded")
            job_sql.finish(
                self.store, job["id"], "succeeded", model_version_id=version_id, log_tail=ctx.log_tail
            )
        finally:
            done.set()
            beat.join()
        return job_sql.get(self.store, job["id"])

    def run_forever(self, max_jobs: int | None = None) -> int:
        """Poll the queue until stopped; returns the number of jobs handled."""
        handled = 0
        while not self.stop_event.is_set():
            if self.run_once() is None:
                self.stop_event.wait(self.poll_s)
                continue
            handled += 1
            if max_jobs is not None and handled >= max_jobs:
                break
        return handled


def failure_reason(exc: BaseException) -> str:
    """A failure reason a user can act on: the exception's own message, with its type."""
    message = str(exc).strip() or exc.__class__.__name__
    return (
        message
        if isinstance(exc, (ValueError, RuntimeError, FileNotFoundError))
        else (f"{exc.__class__.__name__}: {message}")
    )
