"""The ``train`` job: retrain one modality model from the job row's parameters."""
from __future__ import annotations

from rascore.jobs.context import Cancelled, JobContext
from rascore.store import jobs as job_sql

PROMOTION_SETTING = "promotion_policy"
POLICIES = ("if-better", "always")
# What a job row may set; the rest comes from the preset (size and widths for small test runs).
TRAIN_PARAMS = ("preset", "epochs", "head", "arch", "seed", "weights", "size", "net_width",
                "batch_size", "patience")


def promotion_policy(store) -> str:
    """The admin's promotion policy: only if validation macro AUC >= the active one's, or always."""
    policy = job_sql.get_setting(store, PROMOTION_SETTING, "if-better")
    return policy if policy in POLICIES else "if-better"


def run_train_job(project, job: dict, ctx: JobContext) -> int:
    """Train, evaluate, publish; the active model changes only at the very end, on success."""
    from rascore.train.config import make_config
    from rascore.train.loop import TrainingCancelled
    from rascore.train.pipeline import run_training

    params = dict(job["params"])
    if not job["modality"]:
        raise ValueError("a training job needs a modality")
    unknown = sorted(set(params) - set(TRAIN_PARAMS) - {"device", "activate"})
    if unknown:
        raise ValueError(f"unknown training parameter(s): {', '.join(unknown)}")
    overrides = {k: params[k] for k in TRAIN_PARAMS if params.get(k) is not None}
    if isinstance(overrides.get("size"), list):
        overrides["size"] = tuple(overrides["size"])
    config = make_config(job["modality"], preset=overrides.pop("preset", None),
                         device=params.get("device") or project.settings.device, **overrides)
    ctx.log(f"training {config.modality}: {config.arch}, preset {config.preset}, "
            f"{config.epochs} epochs on {config.device}")
    try:
        outcome = run_training(project, config, on_progress=ctx.on_progress,
                               should_stop=ctx.should_stop,
                               activate=params.get("activate") or promotion_policy(project.store),
                               job_id=job["id"], user_id=job.get("created_by"))
    except TrainingCancelled:
        raise Cancelled() from None
    published = outcome.published
    ctx.log(f"registered {published.modality} v{published.version}"
            f" ({'active' if published.activated else 'not promoted'})")
    ctx.on_progress({**ctx.progress, "done": True, "version": published.version,
                     "activated": published.activated}, force=True)
    return published.model_version_id
