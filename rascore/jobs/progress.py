"""A training job as a watcher sees it (``JobView``): status, fraction done, epoch history, loss curve.

The training loop reports the current epoch's figures in the job row (``val_auc``,
``val_macro_auc`` with ``phase`` "validated", then ``val_auc`` again on the next epoch's steps).
When the row carries a ``history`` list (rascore.jobs.context writes one) it is used as is;
otherwise the history is accumulated from the successive rows a watcher reads (``observe``),
kept per process and job, so a page that watches from the start sees every epoch whose figures
reached the row.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from rascore.lru import LRU
from rascore.store import Store
from rascore.store import jobs as job_sql
from rascore.store import registry

_MAX_TRACES = 64


def number(value: object) -> float | None:
    """A stored figure as a float, None when absent or undefined."""
    if value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


@dataclass
class Trace:
    """What a watcher has seen of one job: validation figures per epoch, loss per step."""

    epochs: dict[int, dict] = field(default_factory=dict)
    loss: dict[float, float] = field(default_factory=dict)

    def loss_curve(self) -> list[tuple[float, float]]:
        """(epoch as a fraction, loss) per step seen, in order."""
        return sorted(self.loss.items())


_TRACES = LRU(_MAX_TRACES)  # (database, job id) -> Trace
_TRACES_LOCK = threading.Lock()  # one row folded into a trace at a time


def observe(key: tuple[str, int], progress: Mapping) -> Trace:
    """Fold one progress row into the job's trace (idempotent: the same row twice changes nothing)."""
    with _TRACES_LOCK:
        trace = _TRACES.get_or_make(key, Trace)
        epoch, steps = progress.get("epoch"), progress.get("steps")
        if not epoch:
            return trace
        epoch = int(epoch)
        val_auc = {int(g): number(v) for g, v in (progress.get("val_auc") or {}).items()}
        phase = progress.get("phase")
        if progress.get("loss") is not None and steps:
            x = round(epoch - 1 + int(progress.get("step", 0)) / int(steps), 4)
            trace.loss[x] = float(progress["loss"])
        if phase == "validated":
            record = trace.epochs.setdefault(epoch, {})
            record.update(
                {
                    "epoch": epoch,
                    "val_auc": val_auc,
                    "val_macro_auc": number(progress.get("val_macro_auc")),
                    "loss": number(progress.get("loss")),
                }
            )
        elif phase == "train" and epoch > 1 and val_auc:
            # the steps of epoch e still carry the validation figures of epoch e - 1
            record = trace.epochs.setdefault(epoch - 1, {"epoch": epoch - 1})
            record.setdefault("val_auc", val_auc)
            if record.get("val_macro_auc") is None:
                defined = [v for v in val_auc.values() if v is not None]
                record["val_macro_auc"] = sum(defined) / len(defined) if defined else None
        return trace


def history(progress: Mapping, trace: Trace) -> list[dict]:
    """Validation figures per epoch: the row's own ``history`` when it has one, else the trace's."""
    if not progress.get("history"):
        return [trace.epochs[e] for e in sorted(trace.epochs)]
    out = []
    for entry in progress["history"]:
        aucs = entry.get("val_auc") or {}
        out.append(
            {
                "epoch": int(entry["epoch"]),
                "loss": number(entry.get("loss")),
                "val_macro_auc": number(entry.get("val_macro_auc")),
                "val_auc": {int(g): number(v) for g, v in aucs.items()},
            }
        )
    return out


def fraction(status: str, progress: Mapping) -> float:
    """Share of the run's steps done (1 once the job succeeded)."""
    if status == "succeeded":
        return 1.0
    epoch, epochs = progress.get("epoch"), progress.get("epochs")
    step, steps = progress.get("step"), progress.get("steps")
    if not (epoch and epochs and steps):
        return 0.0
    return float(min(1.0, ((int(epoch) - 1) * int(steps) + int(step or 0)) / (int(epochs) * int(steps))))


@dataclass
class JobView:
    """One job as the page shows it."""

    id: int
    modality: str | None
    status: str
    params: dict
    phase: str
    fraction: float
    epoch: int | None
    epochs: int | None
    step: int | None
    steps: int | None
    eta_s: float | None
    loss: float | None
    heartbeat_age_s: float | None
    stale_s: float | None  # seconds without a heartbeat when the worker seems gone (store.jobs)
    history: list[dict]
    loss_curve: list[tuple[float, float]]
    log_tail: str
    error: str | None
    cancel_requested: bool
    version: int | None
    activated: bool | None

    @property
    def finished(self) -> bool:
        """True once the job has ended (succeeded, failed or cancelled)."""
        return self.status in job_sql.FINAL

    def status_text(self) -> str:
        """One line: what the job is doing now."""
        if self.status == "queued":
            return f"Job #{self.id} ({self.modality}) is queued, waiting for a worker."
        if self.stale_s is not None:
            return (
                f"Job #{self.id} ({self.modality}) is stale: {job_sql.stale_note(self.stale_s)}; "
                "its worker seems to have stopped (a worker marks it failed when it next starts)."
            )
        if self.status == "running":
            where = (
                f"epoch {self.epoch}/{self.epochs}, step {self.step}/{self.steps}"
                if self.epoch
                else "loading the training data"
            )
            eta = f", about {duration(self.eta_s)} left" if self.eta_s is not None else ""
            stop = " - stopping after the current step (cancel requested)" if self.cancel_requested else ""
            return f"Job #{self.id} ({self.modality}) is running: {where}{eta}{stop}."
        if self.status == "succeeded":
            state = (
                "now the active model"
                if self.activated
                else "not promoted: the active version validates better"
                if self.activated is False
                else "registered"
            )
            return (
                f"Job #{self.id} ({self.modality}) succeeded: v{self.version}, {state}."
                if self.version
                else f"Job #{self.id} ({self.modality}) succeeded."
            )
        return f"Job #{self.id} ({self.modality}) {self.status}: {self.error or 'no reason recorded'}."


def duration(seconds: float | None) -> str:
    """Seconds as "4 min 05 s" or "12 s" ("unknown" for None)."""
    if seconds is None:
        return "unknown"
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def view(store: Store, job: dict, now: datetime | None = None) -> JobView:
    """A job row as the Train page shows it (its trace of earlier rows folded in)."""
    progress = job["progress"]
    trace = observe((str(store.path), job["id"]), progress)
    version = None
    if job["model_version_id"]:
        row = registry.get_version_by_id(store, job["model_version_id"])
        version = row["version"] if row else None
    return JobView(
        id=job["id"],
        modality=job["modality"],
        status=job["status"],
        params=job["params"],
        phase=str(progress.get("phase") or ("waiting" if job["status"] == "queued" else "")),
        fraction=fraction(job["status"], progress),
        epoch=progress.get("epoch"),
        epochs=progress.get("epochs"),
        step=progress.get("step"),
        steps=progress.get("steps"),
        eta_s=number(progress.get("eta_s")) if job["status"] == "running" else None,
        loss=number(progress.get("loss")),
        heartbeat_age_s=job_sql.heartbeat_age_s(job, now),
        stale_s=job_sql.stale_for(job, now),
        history=history(progress, trace),
        loss_curve=trace.loss_curve(),
        log_tail=job["log_tail"] or "",
        error=job["error"],
        cancel_requested=bool(job["cancel_requested"]),
        version=version if version is not None else progress.get("version"),
        activated=progress.get("activated"),
    )
