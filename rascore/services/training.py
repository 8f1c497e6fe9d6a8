"""Library of the Train page: labels per modality, model versions, training jobs and their progress.

Everything the page shows or does goes through here, each action behind its permission check,
calling down for the work: reference labels available per modality, cohort and grade; the active
version and its validation and test figures; the version history; submitting and cancelling
retraining jobs (a row in the job table: a separate ``rascore worker`` process trains, never the
app); promotion, rollback and the promotion policy (rascore.store.registry, the versions layer);
whether a worker is alive and which jobs lost theirs (rascore.store.jobs decides staleness); and
a running job's live progress (rascore.jobs.progress).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path

from rascore import names, scale
from rascore.jobs import progress as job_progress
from rascore.jobs.progress import JobView, duration
from rascore.jobs.progress import number as _num
from rascore.jobs.train_job import MAX_NPROC
from rascore.permissions import require
from rascore.store import Store, StoreBusy, StoreError
from rascore.store import jobs as job_sql
from rascore.store import registry
from rascore.store.results import stored_test_figures
from rascore.train import start
from rascore.train.config import POOLED, PRESETS

MAX_EPOCHS = 500
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


# ------------------------------------------------------------------ formatting
def fmt(value: object, digits: int = 3) -> str:
    """A figure for a table: the number, or 'undefined'."""
    number = _num(value)
    return "undefined" if number is None else f"{number:.{digits}f}"


# ------------------------------------------------------------------ labels available
def label_counts(store: Store, user: Mapping, modality: str) -> dict:
    """Current reference labels of a modality per cohort and target grade.

    Returns {"modality", "target" (SH or EOSS), "cohorts": {cohort: [n0, n1, n2, n3]},
    "total": {cohort: n}, "missing_grades": {cohort: [grades with no label]}, "pooled":
    {modality: training-cohort reference labels} for the modalities a retraining also learns from
    (rascore.train.config.POOLED; those of validation patients are left out when it runs)}.
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
        "pooled": {code: len(store.references(code, "train")) for code in POOLED.get(mod.code, ())},
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
    for cohort in scale.TEST_COHORTS:
        entry = stored_test_figures(metrics, cohort)
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
                    f"{c} macro AUC": _num(
                        (stored_test_figures(metrics, c).get("model") or {}).get("macro_auc")
                    )
                    for c in scale.TEST_COHORTS
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
    return _refused_as_training_error(registry.promote_version, store, modality, version, user_id=user["id"])


def rollback(store: Store, user: Mapping, modality: str) -> dict:
    """Go back to the version before the active one (train permission; one transaction)."""
    require(user, "train")
    return _refused_as_training_error(registry.rollback_version, store, modality, user_id=user["id"])


def policy(store: Store) -> str:
    """The promotion policy new versions follow (rascore.names.PROMOTION_POLICIES)."""
    return registry.promotion_policy(store)


def set_policy(store: Store, user: Mapping, value: str) -> None:
    """Set the promotion policy (admin only: the settings permission; audited)."""
    require(user, "settings")
    _refused_as_training_error(registry.set_promotion_policy, store, value, user_id=user["id"])


def _refused_as_training_error(fn, *args, **kwargs):
    """Call ``fn``; a refusal of the store (not a busy database) becomes a TrainingError."""
    try:
        return fn(*args, **kwargs)
    except StoreBusy:
        raise
    except StoreError as exc:
        raise TrainingError(str(exc)) from None


def preset_epochs(modality: str) -> dict[str, int]:
    """The epochs each preset trains ``modality`` for when a retraining names none."""
    dynamic = scale.modality(modality).dynamic
    return {name: p.clip_epochs if dynamic else p.epochs for name, p in PRESETS.items()}


# ------------------------------------------------------------------ jobs
def submit(
    store: Store,
    user: Mapping,
    modality: str,
    preset: str = "auto",
    epochs: int | None = None,
    head: str = "softmax",
    nproc: int = 1,
    weights: str | None = None,
) -> int:
    """Queue a retraining of one modality (train permission; audited); returns the job id.

    ``weights`` is where training starts (``start_choices``; any ``rascore train --weights``
    value): None or ``auto`` the default, ``SGS@3`` a registered version to fine-tune from.

    ``nproc`` > 1 asks the worker to train on that many processes under torchrun (one GPU each on
    CUDA); the worker refuses, with the reason in the job row, more than its machine has.
    Refused when the modality already has a queued or running job, or has too few training labels.
    """
    require(user, "train")
    code = scale.modality(modality).code
    if preset not in names.PRESET_CHOICES:
        raise TrainingError(f"The preset must be one of {', '.join(names.PRESET_CHOICES)}.")
    if head not in names.HEAD_NAMES:
        raise TrainingError(f"The head must be one of {', '.join(names.HEAD_NAMES)}.")
    if epochs is not None and not 1 <= int(epochs) <= MAX_EPOCHS:
        raise TrainingError(f"Epochs must be between 1 and {MAX_EPOCHS}.")
    if not 1 <= int(nproc) <= MAX_NPROC:
        raise TrainingError(f"Processes must be between 1 and {MAX_NPROC}.")
    try:
        weights = start.check_weights(store, weights)
    except (ValueError, LookupError, FileNotFoundError) as exc:
        raise TrainingError(f"Start from: {exc}.") from None
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
    if weights not in (None, "auto"):
        params["weights"] = weights
    return job_sql.submit(store, "train", code, params, created_by=user["id"])


def start_choices(store: Store, user: Mapping, modality: str) -> list[dict]:
    """What a retraining of ``modality`` may start from: {"value", "label"} per choice.

    Always the default (scratch, or ImageNet weights already in the torch hub cache for the
    torchvision architectures); then the simulator model, the newest version of this modality
    trained on demo items only (rascore.train.start.simulator_version), when the project has one.
    """
    require(user, "train")
    code = scale.modality(modality).code
    choices = [
        {
            "value": "auto",
            "label": "scratch (or local ImageNet weights in the torch hub cache, for the paper preset)",
        }
    ]
    row = start.simulator_version(store, code)
    if row is not None:
        choices.append(
            {
                "value": f"{code}@{row['version']}",
                "label": f"the simulator model ({code}@{row['version']}, trained on the demo; "
                f"preset {row['preset']})",
            }
        )
    return choices


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
    now = datetime.now(UTC)
    for job in job_sql.listing(store, limit, modality=scale.modality(modality).code if modality else None):
        progress, params = job["progress"], job["params"]
        stale = job_sql.stale_for(job, now)
        version = (
            registry.get_version_by_id(store, job["model_version_id"]) if job["model_version_id"] else None
        )
        rows.append(
            {
                "job": job["id"],
                "modality": job["modality"],
                "status": f"stale ({job_sql.stale_note(stale)})" if stale is not None else job["status"],
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
def job_view(store: Store, user: Mapping, job_id: int, now: datetime | None = None) -> JobView:
    """A job's status, progress fraction, ETA, loss and validation-AUC history, and log tail."""
    require(user, "train")
    job = job_sql.get(store, int(job_id))
    if job is None:
        raise TrainingError(f"There is no job {job_id}.")
    return job_progress.view(store, job, now)


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
    """A worker is alive when a running job is not stale (rascore.store.jobs.stale_for).

    Without one, a message when a running job went stale or a job has been queued for more than
    ``QUEUED_WAIT_S``; an empty queue needs no worker and gets no message.
    """
    running = job_sql.listing(store, 50, status="running")
    queued = job_sql.listing(store, 200, status="queued")
    stale = [(job, job_sql.stale_for(job, now)) for job in running]
    alive = any(age is None for _, age in stale)
    waits = [job_sql.age_s(j["created_at"], now) or 0.0 for j in queued]
    oldest = max(waits) if waits else None
    message = None
    if not alive and stale:
        job, age = stale[0]
        message = (
            f"Job #{job['id']} has had no heartbeat for {duration(age)}: its worker "
            "seems to have stopped. " + WORKER_HELP
        )
    elif not alive and oldest is not None and oldest > QUEUED_WAIT_S:
        message = (
            f"No worker is running: job #{queued[-1]['id']} has been queued for "
            f"{duration(oldest)}. " + WORKER_HELP
        )
    return WorkerState(alive, len(running), len(queued), oldest, message)


# ------------------------------------------------------------------ label efficiency
_BENCH = Path(__file__).resolve().parents[2] / "bench"
LABEL_EFFICIENCY_FILES = {
    "SGS": _BENCH / "label_efficiency.json",
    "SPD": _BENCH / "label_efficiency.SPD.json",
}
LABEL_EFFICIENCY_COMMAND = "OMP_NUM_THREADS=1 python bench/bench_label_efficiency.py"


def label_efficiency_command(modality: str) -> str:
    """The command that writes a modality's label-efficiency results."""
    code = scale.modality(modality).code
    return LABEL_EFFICIENCY_COMMAND + ("" if code == "SGS" else f" --modality {code}")


def label_efficiency(user: Mapping, modality: str = "SGS", path: Path | None = None) -> dict | None:
    """The latest label-efficiency results of a modality (bench/bench_label_efficiency.py's JSON:
    bench/label_efficiency.json for SGS, .SPD.json for SPD), or None.

    Returns {"summary": rows of arm, size, seeds, macro AUC mean/min/max, accuracy mean;
    "command", "created", "simulator_model", "test_items", "seconds"}; None when the file is
    absent (a checkout without the bench, or not yet run). A file that cannot be read is a
    TrainingError naming it.
    """
    require(user, "train")
    path = Path(path) if path is not None else LABEL_EFFICIENCY_FILES.get(scale.modality(modality).code)
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        summary = list(data["summary"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"{path.name} could not be read: {exc}") from None
    keys = (
        "command",
        "created",
        "modality",
        "target",
        "simulator_model",
        "test_items",
        "seeds",
        "sizes",
        "seconds",
        "cohort",
    )
    return {"summary": summary, **{k: data.get(k) for k in keys}}
