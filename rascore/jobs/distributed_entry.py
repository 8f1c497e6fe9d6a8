"""One process of a multi-process training job: what torchrun runs for the worker.

``python -m torch.distributed.run --standalone --nproc_per_node=N -m rascore.jobs.distributed_entry
--job ID --result-dir DIR [--parent-pid PID]`` (rascore.jobs.torchrun builds the command). Every
rank trains the claimed job's parameters together (rascore.train.pipeline); rank 0 reports
progress and checks for a cancel through the job row, and registers the version. Each rank
writes its outcome as data to ``DIR/rank-<R>.json`` (``result_path``)::

    {"rank": R, "status": "succeeded", "at": T, "model_version_id": ID or null}
    {"rank": R, "status": "cancelled" | "failed", "at": T, "error": "a reason a user can act on"}

and exits 0 on success, 1 otherwise; the worker reads the files (``read_results``), never the
processes' output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from rascore.atomic import write_atomic
from rascore.jobs.context import JobContext
from rascore.jobs.train_job import describe, job_config, registered
from rascore.jobs.worker import failure_reason
from rascore.project import open_project
from rascore.store import jobs as job_sql
from rascore.store import registry


def result_path(result_dir: str | Path, rank: int) -> Path:
    """Where rank ``rank`` writes its outcome."""
    return Path(result_dir) / f"rank-{rank}.json"


def write_result(result_dir: str | Path, rank: int, status: str, **fields: object) -> Path:
    """Write one rank's outcome atomically (the worker never reads half a file)."""
    payload = {"rank": rank, "status": status, "at": time.time(), **fields}
    return write_atomic(result_path(result_dir, rank), json.dumps(payload, default=str).encode(), fsync=False)


def read_results(result_dir: str | Path) -> dict[int, dict]:
    """Every rank's outcome written so far, by rank."""
    results = {}
    for path in sorted(Path(result_dir).glob("rank-*.json")):
        entry = json.loads(path.read_text())
        results[int(entry["rank"])] = entry
    return results


def run_rank(project, job_id: int) -> int | None:
    """Train a claimed job's parameters in this process of the group.

    Rank 0 reports progress and checks for a cancel through the job row, and registers the
    version (its id is returned and written to the row's progress); the other ranks return None.
    TrainingCancelled propagates.
    """
    from rascore.train import distributed
    from rascore.train.pipeline import run_training

    job = job_sql.get(project.store, job_id)
    if job is None:
        raise ValueError(f"no job {job_id}")
    if job["kind"] != "train" or job["status"] != "running":
        raise ValueError(
            f"job {job_id} is a {job['status']} {job['kind']} job; a worker claims a "
            "training job before it starts processes for it"
        )
    config = job_config(project, job)
    env = distributed.environment()
    ctx = None
    if env.is_main:
        ctx = JobContext(project.store, job_id)
        ctx.adopt(job)
        ctx.log(describe(config, env.world_size, distributed.backend_for(config.device)))
    outcome = run_training(
        project,
        config,
        on_progress=ctx.on_progress if ctx else None,
        should_stop=ctx.should_stop if ctx else None,
        activate=job["params"].get("activate") or registry.promotion_policy(project.store),
        job_id=job_id,
        user_id=job.get("created_by"),
    )
    if outcome is None or ctx is None:
        return None
    return registered(ctx, outcome.published)


def main(argv: list[str] | None = None) -> int:
    """Run this rank, write its result file, exit 0 on success and 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m rascore.jobs.distributed_entry")
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--result-dir", required=True)
    parser.add_argument("--parent-pid", type=int, help="the worker: stop when it is gone")
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    from rascore.train.loop import TrainingCancelled

    try:
        if args.parent_pid:
            from rascore.jobs.torchrun import exit_with

            exit_with(args.parent_pid)
        version_id = run_rank(open_project(), args.job)
    except TrainingCancelled as exc:
        write_result(args.result_dir, rank, "cancelled", error=str(exc) or "cancelled")
        return 1
    except KeyboardInterrupt:
        write_result(args.result_dir, rank, "failed", error="interrupted: the worker or torchrun stopped")
        return 1
    except Exception as exc:
        write_result(args.result_dir, rank, "failed", error=failure_reason(exc))
        raise  # the traceback goes to the processes' output, for whoever reads the log
    write_result(args.result_dir, rank, "succeeded", model_version_id=version_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
