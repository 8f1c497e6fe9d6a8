"""The ``train`` job: retrain one modality model from the job row's parameters.

With ``nproc`` 1 (the default) the worker trains in its own process. With ``nproc`` N > 1 it
starts ``torchrun --standalone --nproc_per_node=N -m rascore.cli train --job ID``
(rascore.jobs.torchrun) and watches it: every process runs ``run_job_in_process_group``, rank 0
writes progress and checks for a cancel through the job row and registers the version, and the
worker keeps the heartbeat, stops the processes on cancel and closes the row.
"""

from __future__ import annotations

import os

from rascore.jobs.context import Cancelled, JobContext
from rascore.store import jobs as job_sql
from rascore.store.settings import get_setting

PROMOTION_SETTING = "promotion_policy"
POLICIES = ("if-better", "always")
# What a job row may set; the rest comes from the preset (size and widths for small test runs).
TRAIN_PARAMS = (
    "preset",
    "epochs",
    "head",
    "arch",
    "seed",
    "weights",
    "size",
    "net_width",
    "batch_size",
    "patience",
    "nproc",
)
# How a job runs rather than what it trains: not part of the TrainConfig.
LAUNCH_PARAMS = ("nproc",)
MAX_NPROC = 64


def promotion_policy(store) -> str:
    """The admin's promotion policy: only if validation macro AUC >= the active one's, or always."""
    policy = get_setting(store, PROMOTION_SETTING, "if-better")
    return policy if policy in POLICIES else "if-better"


def job_config(project, job: dict):
    """The TrainConfig a job row asks for (ValueError a user can act on for a bad parameter)."""
    from rascore.train.config import make_config

    params = dict(job["params"])
    if not job["modality"]:
        raise ValueError("a training job needs a modality")
    unknown = sorted(set(params) - set(TRAIN_PARAMS) - {"device", "activate"})
    if unknown:
        raise ValueError(f"unknown training parameter(s): {', '.join(unknown)}")
    overrides = {k: params[k] for k in TRAIN_PARAMS if k not in LAUNCH_PARAMS and params.get(k) is not None}
    if isinstance(overrides.get("size"), list):
        overrides["size"] = tuple(overrides["size"])
    return make_config(
        job["modality"],
        preset=overrides.pop("preset", None),
        device=params.get("device") or project.settings.device,
        **overrides,
    )


def job_nproc(params: dict, device: str = "cpu") -> int:
    """Training processes a job asks for: 1 (in the worker) or N > 1 under torchrun."""
    value = params.get("nproc")
    if value is None:
        return 1
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_NPROC:
        raise ValueError(f"nproc must be a whole number from 1 to {MAX_NPROC}, not {value!r}")
    if value > 1 and device.startswith("cuda"):
        import torch

        gpus = torch.cuda.device_count()
        if value > gpus:
            raise ValueError(f"nproc {value} needs one GPU per process; this machine has {gpus}")
    elif value > 1 and value > (os.cpu_count() or 1):
        raise ValueError(f"nproc {value} is more than the {os.cpu_count()} CPU cores of this machine")
    return value


def _describe(config, processes: int = 1, backend: str | None = None) -> str:
    where = f"{config.device}" + (f" x {processes} processes ({backend})" if processes > 1 else "")
    return (
        f"training {config.modality}: {config.arch}, preset {config.preset}, "
        f"{config.epochs} epochs on {where}"
    )


def _registered(ctx: JobContext, published) -> int:
    """Log the new version and write the final progress (read back by the worker under torchrun)."""
    ctx.log(
        f"registered {published.modality} v{published.version}"
        f" ({'active' if published.activated else 'not promoted'})"
    )
    ctx.on_progress(
        {
            **ctx.progress,
            "done": True,
            "version": published.version,
            "activated": published.activated,
            "model_version_id": published.model_version_id,
        },
        force=True,
    )
    return published.model_version_id


def run_train_job(project, job: dict, ctx: JobContext) -> int:
    """Train, evaluate, publish; the active model changes only at the very end, on success."""
    from rascore.train.loop import TrainingCancelled
    from rascore.train.pipeline import run_training

    config = job_config(project, job)
    nproc = job_nproc(job["params"], config.device)
    if nproc > 1:
        from rascore.jobs.torchrun import run_under_torchrun

        return run_under_torchrun(project, job, ctx, nproc)
    params = job["params"]
    ctx.log(_describe(config))
    try:
        outcome = run_training(
            project,
            config,
            on_progress=ctx.on_progress,
            should_stop=ctx.should_stop,
            activate=params.get("activate") or promotion_policy(project.store),
            job_id=job["id"],
            user_id=job.get("created_by"),
        )
    except TrainingCancelled:
        raise Cancelled() from None
    return _registered(ctx, outcome.published)


def run_job_in_process_group(project, job_id: int) -> int | None:
    """``rascore train --job ID`` in each torchrun process: train a claimed job's parameters together.

    Rank 0 reports progress and checks for a cancel through the job row, and registers the
    version (its id is returned and written to the row's progress); the other ranks return None.
    TrainingCancelled propagates (the command exits non-zero and the worker closes the row).
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
        ctx.log(_describe(config, env.world_size, distributed.backend_for(config.device)))
    outcome = run_training(
        project,
        config,
        on_progress=ctx.on_progress if ctx else None,
        should_stop=ctx.should_stop if ctx else None,
        activate=job["params"].get("activate") or promotion_policy(project.store),
        job_id=job_id,
        user_id=job.get("created_by"),
    )
    if outcome is None or ctx is None:
        return None
    return _registered(ctx, outcome.published)
