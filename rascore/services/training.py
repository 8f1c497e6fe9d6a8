"""Library of the Train page: labels per modality, model versions, training jobs and their progress.

Everything the page shows or does goes through here, each action behind its permission check:
reference labels available per modality, cohort and grade; the active version and its validation
and test figures; the version history; submitting and cancelling retraining jobs (a row in the
job table: a separate ``rascore worker`` process trains, never the app); promotion and rollback
(one ``BEGIN IMMEDIATE`` transaction each, audited); the promotion policy (admin); whether a
worker is alive; and a running job's live progress.

Epoch history of a running job: the training loop reports the current epoch's figures in the
job row (``val_auc``, ``val_macro_auc`` with ``phase`` "validated", then ``val_auc`` again on the
next epoch's steps). When the row carries a ``history`` list it is used as is; otherwise the
history is accumulated here from the successive rows a page reads (``job_view``), kept per
process and job, so a page that watches from the start sees every epoch whose figures reached
the row.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, UTC

from rascore import scale
from rascore.jobs.train_job import MAX_NPROC, POLICIES, PROMOTION_SETTING, promotion_policy
from rascore.permissions import require
from rascore.store import Store, StoreError
from rascore.store import jobs as job_sql
from rascore.store.settings import set_setting
from rascore.store import registry

# Kept in step with rascore.train.config.PRESETS and rascore.nets.heads.HEADS (a test checks
# it); not imported from there so that the page does not import torch.
PRESET_CHOICES: tuple[str, ...] = ("auto", "fast", "paper")
HEAD_CHOICES: tuple[str, ...] = ("softmax", "ordinal")
MAX_EPOCHS = 500
HEARTBEAT_FRESH_S = 30.0  # a running job whose heartbeat is older has lost its worker (probably)
QUEUED_WAIT_S = 60.0  # a job queued longer than this with no live worker: say so
WORKER_HELP = (
    "Training runs in a separate worker process, never in the web app. Start one in a "
    "terminal with the app's environment (the same RASCORE_DATA / RASCORE_DB): "
    "`rascore worker` (it waits for jobs; `rascore worker --once` runs one and exits). "
    "A job whose worker stopped is marked failed when a worker next starts; the active "
    "model never changes on a failure."
)


class TrainingError(ValueError):
    """A training request the library refuses, with a message the user can act on."""


# ------------------------------------------------------------------ time and formatting
def _age_s(stamp: str | None, now: datetime | None = None) -> float | None:
    """Seconds since an ISO timestamp of the store (None when there is none)."""
    if not stamp:
        return None
    moment = now or datetime.now(UTC)
    then = datetime.fromisoformat(stamp)
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (moment - then).total_seconds())


def _num(value: object) -> float | None:
    """A stored figure as a float, None when absent or undefined."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def fmt(value: object, digits: int = 3) -> str:
    """A figure for a table: the number, or 'undefined'."""
    number = _num(value)
    return "undefined" if number is None else f"{number:.{digits}f}"


# ------------------------------------------------------------------ labels available
def label_counts(store: Store, user: Mapping, modality: str) -> dict:
    """Current reference labels of a modality per cohort and target grade.

    Returns {"modality", "target" (SH or EOSS), "cohorts": {cohort: [n0, n1, n2, n3]},
    "total": {cohort: n}, "missing_grades": {cohort: [grades with no label]}}.
    """
    require(user, "train")
    mod = scale.modality(modality)
    counts = {cohort: [0, 0, 0, 0] for cohort in scale.COHORTS}
    for row in store.references(mod.code):
        grade = int(row["combined"] if mod.target == "EOSS" else row["sh"])
        counts[row["cohort"]][grade] += 1
    return {
        "modality": mod.code,
        "target": mod.target,
        "cohorts": counts,
        "total": {c: sum(v) for c, v in counts.items()},
        "missing_grades": {c: [g for g, n in enumerate(v) if n == 0] for c, v in counts.items()},
    }


# ------------------------------------------------------------------ versions and their figures
def _val_figures(metrics: dict) -> dict:
    val = (metrics or {}).get("validation") or {}
    aucs = val.get("auc") or {}
    return {
        "n": val.get("n"),
        "auc": {g: _num(aucs.get(str(g), aucs.get(g))) for g in scale.GRADES},
        "macro_auc": _num(val.get("macro_auc")),
        "accuracy": _num(val.get("accuracy")),
    }


def _test_entry(metrics: dict, cohort: str) -> dict:
    return (((metrics or {}).get("test") or {}).get("cohorts") or {}).get(cohort) or {}


def figure_rows(version: Mapping) -> list[dict]:
    """A version's stored figures as table rows: validation, then each test cohort (and for Doppler
    models their figures and the PD-only colour rule's against the PD reference).

    Each row: split, n, AUC per grade (text, 'undefined' with the reason in ``reasons``), macro
    AUC, accuracy, quadratic kappa. Read from the version's metrics, nothing recomputed.
    """
    metrics = version.get("metrics") or {}
    rows = []
    val = _val_figures(metrics)
    if metrics.get("validation"):
        reasons = {
            g: "grade absent from (or alone in) the validation split"
            for g, a in val["auc"].items()
            if a is None
        }
        rows.append(
            {
                "split": "validation",
                "n": val["n"],
                **{f"AUC {g}": fmt(a) for g, a in val["auc"].items()},
                "macro AUC": fmt(val["macro_auc"]),
                "accuracy": fmt(val["accuracy"]),
                "kappa (quadratic)": "",
                "reasons": _reason_text(reasons),
            }
        )
    for cohort in ("test1", "test2"):
        entry = _test_entry(metrics, cohort)
        for source, label in (
            ("model", cohort),
            ("model_pd_reference", f"{cohort}: model against the PD reference"),
            ("pd_colour_rule", f"{cohort}: PD-only colour rule (PD reference)"),
        ):
            figures = entry.get(source)
            if not figures:
                continue
            aucs, reasons = {}, {}
            for grade in scale.GRADES:
                cell = (figures.get("auc") or {}).get(str(grade)) or {}
                value = _num(cell.get("auc"))
                if value is None:
                    n_pos = cell.get("n_pos")
                    reasons[grade] = (
                        f"no case of grade {grade}"
                        if n_pos == 0
                        else f"every case is grade {grade}"
                        if n_pos == entry.get("n")
                        else "undefined"
                    )
                    aucs[grade] = "undefined"
                else:
                    low, high = _num(cell.get("ci_low")), _num(cell.get("ci_high"))
                    ci = f" ({low:.2f}-{high:.2f})" if low is not None and high is not None else ""
                    aucs[grade] = f"{value:.3f}{ci}"
            rows.append(
                {
                    "split": label,
                    "n": entry.get("n"),
                    **{f"AUC {g}": aucs[g] for g in scale.GRADES},
                    "macro AUC": fmt(figures.get("macro_auc")),
                    "accuracy": fmt(figures.get("accuracy")),
                    "kappa (quadratic)": fmt(figures.get("kappa_quadratic")),
                    "reasons": _reason_text(reasons),
                }
            )
    return rows


def _reason_text(reasons: Mapping[int, str]) -> str:
    return "; ".join(f"grade {g}: {r}" for g, r in reasons.items())


def active_version(store: Store, user: Mapping, modality: str) -> dict | None:
    """The active version of a modality with its figures as rows (``figure_rows``), or None."""
    require(user, "train")
    row = registry.active_version(store, modality)
    if row is None:
        return None
    return {**row, "rows": figure_rows(row), "validation": _val_figures(row["metrics"])}


def version_history(store: Store, user: Mapping, modality: str) -> list[dict]:
    """Every version of a modality, newest first, with the figures promotion looks at."""
    require(user, "train")
    out = []
    for row in registry.list_versions(store, modality):
        metrics = row["metrics"] or {}
        training = metrics.get("training") or {}
        out.append(
            {
                "version": row["version"],
                "active": row["active"],
                "created_at": row["created_at"],
                "preset": row["preset"],
                "architecture": row["architecture"],
                "val macro AUC": _num(registry.validation_auc(metrics)),
                **{
                    f"{c} macro AUC": _num((_test_entry(metrics, c).get("model") or {}).get("macro_auc"))
                    for c in ("test1", "test2")
                },
                "epochs": training.get("epochs_run"),
                "job": row["job_id"],
                "id": row["id"],
            }
        )
    return out


def promote(store: Store, user: Mapping, modality: str, version: int) -> dict:
    """Make ``version`` the active model of its modality (train permission; one transaction)."""
    require(user, "train")
    return promote_version(store, modality, version, user_id=user["id"])


def rollback(store: Store, user: Mapping, modality: str) -> dict:
    """Go back to the version before the active one (train permission; one transaction)."""
    require(user, "train")
    return rollback_version(store, modality, user_id=user["id"])


def promote_version(store: Store, modality: str, version: int, user_id: int | None = None) -> dict:
    """Activate a version in one ``BEGIN IMMEDIATE`` transaction, audited (no permission check:
    for the command line, which acts as the project's operator; the page calls ``promote``)."""
    code = scale.modality(modality).code
    with store.transaction():
        target = registry.get_version(store, code, int(version))
        if target is None:
            raise TrainingError(f"There is no {code} version {version}.")
        current = registry.active_version(store, code)
        if current is not None and current["id"] == target["id"]:
            raise TrainingError(f"{code} v{version} is already the active model.")
        registry.activate_version(store, code, int(version), user_id=user_id)
        store.audit(
            "model.promote",
            user_id=user_id,
            target=f"{code}/v{version}",
            detail={"from": current["version"] if current else None, "to": int(version)},
        )
    return {"modality": code, "from": current["version"] if current else None, "to": int(version)}


def rollback_version(store: Store, modality: str, user_id: int | None = None) -> dict:
    """Activate the newest version older (by number) than the active one, in one transaction,
    audited (no permission check: for the command line; the page calls ``rollback``)."""
    code = scale.modality(modality).code
    with store.transaction():
        current = registry.active_version(store, code)
        if current is None:
            raise TrainingError(f"No {code} version is active: there is nothing to roll back.")
        earlier = [r for r in registry.list_versions(store, code) if r["version"] < current["version"]]
        if not earlier:
            raise TrainingError(
                f"{code} v{current['version']} is the oldest version: there is no earlier one to go back to."
            )
        target = earlier[0]
        registry.activate_version(store, code, target["version"], user_id=user_id)
        store.audit(
            "model.rollback",
            user_id=user_id,
            target=f"{code}/v{target['version']}",
            detail={"from": current["version"], "to": target["version"]},
        )
    return {"modality": code, "from": current["version"], "to": target["version"]}


def policy(store: Store) -> str:
    """The promotion policy new versions follow: ``if-better`` or ``always``."""
    return promotion_policy(store)


def set_policy(store: Store, user: Mapping, value: str) -> None:
    """Set the promotion policy (admin only: the settings permission; audited)."""
    require(user, "settings")
    if value not in POLICIES:
        raise TrainingError(f"The promotion policy must be one of {', '.join(POLICIES)}.")
    set_setting(store, PROMOTION_SETTING, value, user_id=user["id"])


# ------------------------------------------------------------------ jobs
def submit(
    store: Store,
    user: Mapping,
    modality: str,
    preset: str = "auto",
    epochs: int | None = None,
    head: str = "softmax",
    nproc: int = 1,
) -> int:
    """Queue a retraining of one modality (train permission; audited); returns the job id.

    ``nproc`` > 1 asks the worker to train on that many processes under torchrun (one GPU each on
    CUDA); the worker refuses, with the reason in the job row, more than its machine has.
    Refused when the modality already has a queued or running job, or has too few training labels.
    """
    require(user, "train")
    code = scale.modality(modality).code
    if preset not in PRESET_CHOICES:
        raise TrainingError(f"The preset must be one of {', '.join(PRESET_CHOICES)}.")
    if head not in HEAD_CHOICES:
        raise TrainingError(f"The head must be one of {', '.join(HEAD_CHOICES)}.")
    if epochs is not None and not 1 <= int(epochs) <= MAX_EPOCHS:
        raise TrainingError(f"Epochs must be between 1 and {MAX_EPOCHS}.")
    if not 1 <= int(nproc) <= MAX_NPROC:
        raise TrainingError(f"Processes must be between 1 and {MAX_NPROC}.")
    labels = label_counts(store, user, code)
    if labels["total"]["train"] < 4:
        raise TrainingError(
            f"{code} has {labels['total']['train']} labelled training items; a "
            "retraining needs at least 4 (set reference labels first)."
        )
    for status in ("queued", "running"):
        busy = job_sql.listing(store, 1, status=status, modality=code)
        if busy:
            raise TrainingError(
                f"{code} already has a {status} job (#{busy[0]['id']}): wait for it or cancel it first."
            )
    params: dict = {"head": head}
    if preset != "auto":
        params["preset"] = preset
    if epochs is not None:
        params["epochs"] = int(epochs)
    if int(nproc) > 1:
        params["nproc"] = int(nproc)
    return job_sql.submit(store, "train", code, params, created_by=user["id"])


def cancel(store: Store, user: Mapping, job_id: int) -> str:
    """Cancel a queued job, or ask a running one to stop between steps (train permission)."""
    require(user, "train")
    try:
        return job_sql.request_cancel(store, int(job_id), user_id=user["id"])
    except StoreError as exc:
        raise TrainingError(str(exc)) from None


def job_rows(store: Store, user: Mapping, modality: str | None = None, limit: int = 20) -> list[dict]:
    """Recent jobs, newest first, as table rows."""
    require(user, "train")
    rows = []
    for job in job_sql.listing(store, limit, modality=scale.modality(modality).code if modality else None):
        progress, params = job["progress"], job["params"]
        version = (
            registry.get_version_by_id(store, job["model_version_id"]) if job["model_version_id"] else None
        )
        rows.append(
            {
                "job": job["id"],
                "modality": job["modality"],
                "status": job["status"],
                "preset": params.get("preset", "auto"),
                "epochs": params.get("epochs"),
                "head": params.get("head", "softmax"),
                "progress": (
                    f"epoch {progress['epoch']}/{progress.get('epochs', '?')}"
                    if progress.get("epoch")
                    else ""
                ),
                "version": f"v{version['version']}" if version else "",
                "created": job["created_at"],
                "error": job["error"] or "",
            }
        )
    return rows


def latest_job(store: Store, user: Mapping, modality: str) -> dict | None:
    """The job to watch for a modality: its running or queued one, else its newest."""
    require(user, "train")
    code = scale.modality(modality).code
    for status in ("running", "queued"):
        rows = job_sql.listing(store, 1, status=status, modality=code)
        if rows:
            return rows[0]
    rows = job_sql.listing(store, 1, modality=code)
    return rows[0] if rows else None


# ------------------------------------------------------------------ live progress
@dataclass
class _Trace:
    """What the page has seen of one job: validation figures per epoch, loss per step."""

    epochs: dict[int, dict] = field(default_factory=dict)
    loss: dict[float, float] = field(default_factory=dict)


_TRACES: OrderedDict[tuple[str, int], _Trace] = OrderedDict()
_TRACES_LOCK = threading.Lock()
_MAX_TRACES = 64


def _observe(key: tuple[str, int], progress: Mapping) -> _Trace:
    """Fold one progress row into the job's trace (idempotent: the same row twice changes nothing)."""
    with _TRACES_LOCK:
        trace = _TRACES.pop(key, None) or _Trace()
        _TRACES[key] = trace
        while len(_TRACES) > _MAX_TRACES:
            _TRACES.popitem(last=False)
        epoch, steps = progress.get("epoch"), progress.get("steps")
        if not epoch:
            return trace
        epoch = int(epoch)
        val_auc = {int(g): _num(v) for g, v in (progress.get("val_auc") or {}).items()}
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
                    "val_macro_auc": _num(progress.get("val_macro_auc")),
                    "loss": _num(progress.get("loss")),
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


def _history_from_row(history: list) -> list[dict]:
    out = []
    for entry in history:
        aucs = entry.get("val_auc") or {}
        out.append(
            {
                "epoch": int(entry["epoch"]),
                "loss": _num(entry.get("loss")),
                "val_macro_auc": _num(entry.get("val_macro_auc")),
                "val_auc": {int(g): _num(v) for g, v in aucs.items()},
            }
        )
    return out


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


def job_view(store: Store, user: Mapping, job_id: int, now: datetime | None = None) -> JobView:
    """A job's status, progress fraction, ETA, loss and validation-AUC history, and log tail."""
    require(user, "train")
    job = job_sql.get(store, int(job_id))
    if job is None:
        raise TrainingError(f"There is no job {job_id}.")
    progress = job["progress"]
    trace = _observe((str(store.path), job["id"]), progress)
    if progress.get("history"):
        history = _history_from_row(progress["history"])
    else:
        history = [trace.epochs[e] for e in sorted(trace.epochs)]
    epoch, epochs = progress.get("epoch"), progress.get("epochs")
    step, steps = progress.get("step"), progress.get("steps")
    if job["status"] == "succeeded":
        fraction = 1.0
    elif epoch and epochs and steps:
        fraction = min(1.0, ((int(epoch) - 1) * int(steps) + int(step or 0)) / (int(epochs) * int(steps)))
    else:
        fraction = 0.0
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
        fraction=float(fraction),
        epoch=epoch,
        epochs=epochs,
        step=step,
        steps=steps,
        eta_s=_num(progress.get("eta_s")) if job["status"] == "running" else None,
        loss=_num(progress.get("loss")),
        heartbeat_age_s=_age_s(job["heartbeat_at"], now) if job["status"] == "running" else None,
        history=history,
        loss_curve=sorted(trace.loss.items()),
        log_tail=job["log_tail"] or "",
        error=job["error"],
        cancel_requested=bool(job["cancel_requested"]),
        version=version if version is not None else progress.get("version"),
        activated=progress.get("activated"),
    )


# ------------------------------------------------------------------ is a worker alive?
@dataclass(frozen=True)
class WorkerState:
    """Whether a worker seems alive, and a message when the user should start one."""

    alive: bool
    running: int
    queued: int
    oldest_queued_s: float | None
    message: str | None


def worker_state(store: Store, now: datetime | None = None) -> WorkerState:
    """A worker is alive when a running job had a heartbeat in the last ``HEARTBEAT_FRESH_S``.

    Without one, a message when a running job's heartbeat went stale or a job has been queued
    for more than ``QUEUED_WAIT_S``; an empty queue needs no worker and gets no message.
    """
    running = job_sql.listing(store, 50, status="running")
    queued = job_sql.listing(store, 200, status="queued")
    ages = [_age_s(j["heartbeat_at"], now) for j in running]
    alive = any(a is not None and a <= HEARTBEAT_FRESH_S for a in ages)
    waits = [_age_s(j["created_at"], now) or 0.0 for j in queued]
    oldest = max(waits) if waits else None
    message = None
    if not alive:
        stale = [(j, a) for j, a in zip(running, ages) if a is None or a > HEARTBEAT_FRESH_S]
        if stale:
            job, age = stale[0]
            message = (
                f"Job #{job['id']} has had no heartbeat for {duration(age)}: its worker "
                "seems to have stopped. " + WORKER_HELP
            )
        elif oldest is not None and oldest > QUEUED_WAIT_S:
            message = (
                f"No worker is running: job #{queued[-1]['id']} has been queued for "
                f"{duration(oldest)}. " + WORKER_HELP
            )
    return WorkerState(alive, len(running), len(queued), oldest, message)
