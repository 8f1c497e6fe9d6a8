"""``rascore worker`` and ``rascore jobs``: the retraining queue from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time

from rascore import names
from rascore.cli import CliError
from rascore.project import open_project
from rascore.scale import MODALITIES
from rascore.store import jobs as job_sql


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``worker`` and ``jobs submit|list|watch|cancel|policy``."""
    worker = sub.add_parser(
        "worker",
        help="run queued jobs (training)",
        description="Claim queued jobs one at a time and run them. Running claims whose heartbeat "
        "is older than --stale-after are failed (or re-queued with --requeue-stale) at start.",
    )
    worker.add_argument("--once", action="store_true", help="run at most one job, then exit")
    worker.add_argument("--max-jobs", type=int, help="exit after this many jobs")
    worker.add_argument("--poll", type=float, default=2.0, help="seconds between polls (default 2)")
    worker.add_argument(
        "--heartbeat",
        type=float,
        default=job_sql.HEARTBEAT_S,
        help=f"seconds between heartbeats (default {job_sql.HEARTBEAT_S:g})",
    )
    worker.add_argument(
        "--stale-after",
        type=float,
        default=job_sql.STALE_AFTER_S,
        help=f"a running claim without heartbeat for this long is dead (default {job_sql.STALE_AFTER_S:g})",
    )
    worker.add_argument(
        "--requeue-stale", action="store_true", help="queue dead claims again instead of failing them"
    )
    worker.set_defaults(func=_worker)

    jobs = sub.add_parser(
        "jobs", help="submit and follow jobs", description="Submit, list, watch and cancel retraining jobs."
    )
    jobs_sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    submit = jobs_sub.add_parser(
        "submit", help="queue a retraining", description="Queue a retraining of one modality model."
    )
    submit.add_argument("--modality", required=True, type=str.upper, choices=tuple(MODALITIES))
    submit.add_argument("--preset", choices=names.PRESET_NAMES)
    submit.add_argument("--epochs", type=int)
    submit.add_argument("--head", choices=names.HEAD_NAMES)
    submit.add_argument("--seed", type=int)
    submit.add_argument(
        "--weights",
        help="start from MODALITY@VERSION (e.g. SGS@3), a RAScore checkpoint file or a torchvision "
        "weights file, or 'none' (as `rascore train --weights`)",
    )
    submit.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train on N processes of the worker's machine under torchrun "
        "(DistributedDataParallel; one GPU each on CUDA, Gloo on CPU); default 1",
    )
    submit.add_argument(
        "--activate",
        choices=names.PROMOTION_POLICIES,
        help="promotion policy for this job (default: the project's policy)",
    )
    submit.add_argument("--json", action="store_true")
    submit.set_defaults(func=_submit)

    listing = jobs_sub.add_parser("list", help="list jobs", description="List jobs, newest first.")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)

    watch = jobs_sub.add_parser(
        "watch", help="follow a job until it ends", description="Follow a job's progress until it ends."
    )
    watch.add_argument("id", type=int)
    watch.add_argument("--interval", type=float, default=1.0)
    watch.set_defaults(func=_watch)

    cancel = jobs_sub.add_parser(
        "cancel", help="cancel a job", description="Cancel a queued job, or stop a running one between steps."
    )
    cancel.add_argument("id", type=int)
    cancel.set_defaults(func=_cancel)

    policy = jobs_sub.add_parser(
        "policy",
        help="show or set the promotion policy",
        description="; ".join(f"{name}: {meaning}" for name, meaning in names.POLICY_MEANINGS.items()) + ".",
    )
    policy.add_argument("value", nargs="?", choices=names.PROMOTION_POLICIES)
    policy.set_defaults(func=_policy)


def _worker(args: argparse.Namespace) -> int:
    from rascore.jobs import Worker

    worker = Worker(
        open_project(),
        poll_s=args.poll,
        heartbeat_s=args.heartbeat,
        stale_after_s=args.stale_after,
        requeue_stale=args.requeue_stale,
    )
    recovered = worker.recover()
    if recovered:
        print(f"recovered stale jobs: {', '.join(map(str, recovered))}", file=sys.stderr)
    print(f"worker {worker.name} waiting for jobs", file=sys.stderr, flush=True)
    if args.once:
        row = worker.run_once()
        if row is not None:
            print(f"job {row['id']}: {row['status']}" + (f" ({row['error']})" if row["error"] else ""))
        return 0
    try:
        worker.run_forever(max_jobs=args.max_jobs)
    except KeyboardInterrupt:
        print("worker stopped", file=sys.stderr)
    return 0


def _submit(args: argparse.Namespace) -> int:
    from rascore.jobs.train_job import MAX_NPROC

    if args.nproc is not None and not 1 <= args.nproc <= MAX_NPROC:
        raise CliError(f"--nproc must be from 1 to {MAX_NPROC}")
    params = {
        k: getattr(args, k)
        for k in ("preset", "epochs", "head", "seed", "weights", "activate", "nproc")
        if getattr(args, k) is not None
    }
    project = open_project()
    if "weights" in params:
        from rascore.train.start import check_weights

        try:
            params["weights"] = check_weights(project.store, params["weights"])
        except (ValueError, LookupError, FileNotFoundError) as exc:
            raise CliError(str(exc)) from None
    job_id = job_sql.submit(project.store, "train", args.modality, params)
    print(json.dumps({"id": job_id, "status": "queued"}) if args.json else f"queued job {job_id}")
    return 0


def _describe(job: dict) -> str:
    progress = job["progress"]
    stale = job_sql.stale_for(job)
    status = "stale" if stale is not None else job["status"]
    bits = [f"{job['id']:>4}", f"{status:<9}", f"{job['modality'] or '-':<4}"]
    if progress.get("epoch"):
        bits.append(f"epoch {progress['epoch']}/{progress.get('epochs', '?')}")
    if progress.get("loss") is not None:
        bits.append(f"loss {progress['loss']:.3f}")
    if progress.get("eta_s") is not None and job["status"] == "running":
        bits.append(f"eta {progress['eta_s']:.0f}s")
    if stale is not None:
        bits.append(f"- {job_sql.stale_note(stale)} (its worker seems to have stopped)")
    if job["error"]:
        bits.append(f"- {job['error']}")
    return "  ".join(bits)


def _list(args: argparse.Namespace) -> int:
    rows = job_sql.listing(open_project().store, args.limit)
    if args.json:
        rows = [{**row, "stale_s": job_sql.stale_for(row)} for row in rows]
        print(json.dumps(rows, indent=2, default=str))
    else:
        for row in rows:
            print(_describe(row))
    return 0


def _watch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    store = open_project().store
    job = job_sql.get(store, args.id)
    if job is None:
        raise CliError(f"no job {args.id}")
    bar = tqdm(total=1, unit="step", file=sys.stderr, desc=f"job {args.id}")
    while True:
        job = job_sql.get(store, args.id)
        progress = job["progress"]
        if progress.get("steps") and progress.get("epochs"):
            total = progress["steps"] * progress["epochs"]
            done = (progress.get("epoch", 1) - 1) * progress["steps"] + progress.get("step", 0)
            bar.total = total
            bar.update(max(0, done - bar.n))
        bar.set_postfix_str(
            job["status"] + (f" loss {progress['loss']:.3f}" if progress.get("loss") is not None else "")
        )
        if job["status"] in job_sql.FINAL or job_sql.stale_for(job) is not None:
            break  # a stale job would never end while its worker is gone
        time.sleep(args.interval)
    bar.close()
    print(_describe(job))
    return 0 if job["status"] == "succeeded" else 1


def _cancel(args: argparse.Namespace) -> int:
    from rascore.store import StoreError

    try:
        status = job_sql.request_cancel(open_project().store, args.id)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    print(f"job {args.id}: {status}")
    return 0


def _policy(args: argparse.Namespace) -> int:
    from rascore.store import registry

    store = open_project().store
    if args.value:
        registry.set_promotion_policy(store, args.value)
    print(registry.promotion_policy(store))
    return 0
