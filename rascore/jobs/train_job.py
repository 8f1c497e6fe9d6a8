"""The ``train`` job: retrain one modality model from the job row's parameters.

With ``nproc`` 1 (the default) the worker trains in its own process. With ``nproc`` N > 1 it
starts ``torchrun --standalone --nproc_per_node=N -m rascore.jobs.distributed_entry --job ID``
(rascore.jobs.torchrun) and watches it: every process trains the job's parameters together,
rank 0 writes progress and checks for a cancel through the job row and registers the version,
each rank writes its outcome to a result file, and the worker keeps the heartbeat, stops the
processes on cancel and closes the row.
"""

from __future__ import annotations

import os

from rascore.jobs.context import Cancelled, JobContext
from rascore.store import registry

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


def describe(config, processes: int = 1, backend: str | None = None) -> str:
    """The job log's first line: what is trained, how, and where."""
    where = f"{config.device}" + (f" x {processes} processes ({backend})" if processes > 1 else "")
    return (
        f"training {config.modality}: {config.arch}, preset {config.preset}, "
        f"{config.epochs} epochs on {where}"
    )


def registered(ctx: JobContext, published) -> int:
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
    ctx.log(describe(config))
    try:
        outcome = run_training(
            project,
            config,
            on_progress=ctx.on_progress,
            should_stop=ctx.should_stop,
            activate=params.get("activate") or registry.promotion_policy(project.store),
            job_id=job["id"],
            user_id=job.get("created_by"),
        )
    except TrainingCancelled:
        raise Cancelled() from None
    return registered(ctx, outcome.published)
