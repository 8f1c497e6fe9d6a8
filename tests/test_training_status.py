"""rascore.services.training: labels per modality, jobs (submit, cancel, live progress and history),
promotion and rollback in one transaction, the promotion policy, worker liveness, permissions."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC

import pytest

from rascore.services import training as ts
from rascore.permissions import PermissionDenied
from rascore.store import jobs as job_sql
from rascore.store import registry
from rascore.services.training import TrainingError
from rascore.store import accounts
from tests.fixtures_dashboard import build_results_project


@pytest.fixture
def project(tmp_path):
    return build_results_project(tmp_path / "p", n_cases=8)


def who(project, name):
    return accounts.user(project.store, name)


def audit_actions(project, n=5):
    return [r["action"] for r in project.store.audit_rows(n)]


def audit_count(project):
    return project.store.value("SELECT count(*) FROM audit_log")


def test_label_counts_per_cohort_and_target_grade(project):
    labels = ts.label_counts(project.store, who(project, "demo-expert"), "SPD")
    assert labels["target"] == "EOSS"
    assert labels["cohorts"]["train"] == [2, 2, 2, 2]
    assert labels["cohorts"]["test1"] == [1, 2, 2, 3]  # case 0 of test1 is EOSS 3 (SH 1, PD 3)
    assert labels["cohorts"]["test2"] == [3, 3, 2, 0] and labels["missing_grades"]["test2"] == [3]
    assert labels["pooled"] == {}  # power Doppler learns from its own modality
    sgs = ts.label_counts(project.store, who(project, "demo-expert"), "SGS")
    assert sgs["target"] == "SH"
    # a still model also learns from the training cohort's greyscale clips
    assert sgs["pooled"] == {"DGS": len(project.store.references("DGS", "train"))}


def test_a_retraining_without_epochs_runs_the_presets():
    assert ts.preset_epochs("SGS") == {"paper": 30, "fast": 80}
    assert ts.preset_epochs("dpd") == {"paper": 30, "fast": 20}


def test_submit_queues_a_job_with_its_parameters_and_audits_it(project):
    expert = who(project, "demo-expert")
    job_id = ts.submit(project.store, expert, "sgs", "fast", 3, "ordinal")
    job = job_sql.get(project.store, job_id)
    assert (job["status"], job["modality"], job["kind"]) == ("queued", "SGS", "train")
    assert job["params"] == {"preset": "fast", "epochs": 3, "head": "ordinal"}
    assert job["created_by"] == expert["id"]
    assert audit_actions(project, 1) == ["job.submit"]
    # auto preset and default epochs leave the choice to the worker
    auto = job_sql.get(project.store, ts.submit(project.store, expert, "DGS"))
    assert auto["params"] == {"head": "softmax"}
    job_sql.request_cancel(project.store, auto["id"])
    several = job_sql.get(project.store, ts.submit(project.store, expert, "DGS", nproc=2))
    assert several["params"] == {"head": "softmax", "nproc": 2}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"preset": "huge"}, "preset must be one of"),
        ({"epochs": 0}, "Epochs must be between 1 and"),
        ({"head": "sigmoid"}, "head must be one of"),
        ({"nproc": 0}, "Processes must be between 1 and"),
    ],
)
def test_submit_refuses_bad_parameters(project, kwargs, message):
    with pytest.raises(TrainingError, match=message):
        ts.submit(project.store, who(project, "demo-expert"), "SGS", **kwargs)
    assert job_sql.listing(project.store) == []


def test_submit_refuses_a_second_job_and_too_few_labels(project, tmp_path):
    expert = who(project, "demo-expert")
    first = ts.submit(project.store, expert, "SGS")
    with pytest.raises(TrainingError, match=f"SGS already has a queued job \\(#{first}\\)"):
        ts.submit(project.store, expert, "SGS")
    job_sql.claim(project.store, "w")
    with pytest.raises(TrainingError, match="already has a running job"):
        ts.submit(project.store, expert, "SGS")
    small = build_results_project(tmp_path / "small", n_cases=3)
    with pytest.raises(
        TrainingError, match="SGS has 3 labelled training items; a retraining needs at least 4"
    ):
        ts.submit(small.store, accounts.user(small.store, "demo-expert"), "SGS")


def test_cancel_queued_and_running_jobs(project):
    expert = who(project, "demo-expert")
    queued = ts.submit(project.store, expert, "SGS")
    assert ts.cancel(project.store, expert, queued) == "cancelled"
    running = ts.submit(project.store, expert, "DGS")
    job_sql.claim(project.store, "w")
    assert ts.cancel(project.store, expert, running) == "cancelling"
    assert job_sql.cancel_requested(project.store, running)
    assert audit_actions(project, 1) == ["job.cancel"]
    with pytest.raises(TrainingError, match="no job 999"):
        ts.cancel(project.store, expert, 999)


def test_rollback_and_promote_move_the_active_version(project):
    store, expert = project.store, who(project, "demo-expert")
    from tests.fixtures_dashboard import register

    register(project, "DGS", 2, "always", {})
    register(project, "DGS", 3, "always", {})
    assert registry.active_version(store, "DGS")["version"] == 3
    assert ts.rollback(store, expert, "DGS") == {"modality": "DGS", "from": 3, "to": 2}
    assert registry.active_version(store, "DGS")["version"] == 2
    assert audit_actions(project, 1) == ["model.rollback"]
    detail = project.store.audit_rows(1)[0]
    assert detail["user"] == "demo-expert" and '"from": 3' in detail["detail_json"]
    ts.rollback(store, expert, "DGS")
    with pytest.raises(TrainingError, match="DGS v1 is the oldest version"):
        ts.rollback(store, expert, "DGS")
    before = audit_count(project)
    assert ts.promote(store, expert, "DGS", 3) == {"modality": "DGS", "from": 1, "to": 3}
    assert registry.active_version(store, "DGS")["version"] == 3
    assert audit_count(project) == before + 1 and audit_actions(project, 1) == ["model.promote"]
    with pytest.raises(TrainingError, match="already the active model"):
        ts.promote(store, expert, "DGS", 3)
    with pytest.raises(TrainingError, match="There is no DGS version 9"):
        ts.promote(store, expert, "DGS", 9)


def test_promotion_is_one_transaction(project, monkeypatch):
    store, expert = project.store, who(project, "demo-expert")
    before = registry.active_version(store, "SGS")["version"]
    real_audit = store.audit

    def failing_audit(action, **kwargs):
        if action == "model.promote":
            raise RuntimeError("disk full")
        return real_audit(action, **kwargs)

    rows = audit_count(project)
    monkeypatch.setattr(store, "audit", failing_audit)
    with pytest.raises(RuntimeError, match="disk full"):
        ts.promote(store, expert, "SGS", 2)
    monkeypatch.undo()
    assert registry.active_version(store, "SGS")["version"] == before  # the switch rolled back
    assert audit_count(project) == rows


def test_policy_is_for_admins(project):
    with pytest.raises(PermissionDenied, match="may not change project settings"):
        ts.set_policy(project.store, who(project, "demo-expert"), "always")
    with pytest.raises(TrainingError, match="must be one of"):
        ts.set_policy(project.store, who(project, "demo-admin"), "sometimes")
    ts.set_policy(project.store, who(project, "demo-admin"), "always")
    assert ts.policy(project.store) == "always" == registry.promotion_policy(project.store)


def test_a_reader_may_do_none_of_it(project):
    reader = who(project, "demo-reader")
    calls = [
        lambda: ts.label_counts(project.store, reader, "SGS"),
        lambda: ts.submit(project.store, reader, "SGS"),
        lambda: ts.cancel(project.store, reader, 1),
        lambda: ts.promote(project.store, reader, "SGS", 2),
        lambda: ts.rollback(project.store, reader, "SGS"),
        lambda: ts.version_history(project.store, reader, "SGS"),
        lambda: ts.active_version(project.store, reader, "SGS"),
        lambda: ts.job_rows(project.store, reader),
        lambda: ts.job_view(project.store, reader, 1),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied, match="may not start training"):
            call()
    assert job_sql.listing(project.store) == []


def test_version_history_and_active_figures(project):
    expert = who(project, "demo-expert")
    history = ts.version_history(project.store, expert, "SGS")
    assert [(h["version"], h["active"]) for h in history] == [(2, False), (1, True)]
    assert history[1]["val macro AUC"] == pytest.approx(0.6)
    active = ts.active_version(project.store, expert, "SPD")
    assert active["version"] == 1
    baseline = next(r for r in active["rows"] if r["split"] == "test1: PD-only colour rule (PD reference)")
    assert baseline["AUC 1"] == "undefined" and "grade 1: no case of grade 1" in baseline["reasons"]
    assert baseline["AUC 0"] == "0.710"


def test_figure_rows_of_a_trained_version():
    version = {
        "metrics": {
            "validation": {
                "n": 5,
                "auc": {"0": 1.0, "1": 0.5, "2": 0.25, "3": None},
                "macro_auc": 0.58,
                "accuracy": 0.4,
            },
            "test": {
                "cohorts": {
                    "test2": {
                        "n": 8,
                        "model": {
                            "auc": {
                                "0": {"auc": 0.8, "ci_low": 0.5, "ci_high": 1.0, "n_pos": 3},
                                "1": {"auc": 0.6, "ci_low": 0.2, "ci_high": 0.9, "n_pos": 3},
                                "2": {"auc": 0.7, "ci_low": None, "ci_high": None, "n_pos": 2},
                                "3": {"auc": None, "ci_low": None, "ci_high": None, "n_pos": 0},
                            },
                            "macro_auc": 0.7,
                            "accuracy": 0.5,
                            "kappa_quadratic": 0.61,
                        },
                    }
                }
            },
        }
    }
    rows = ts.figure_rows(version)
    assert [r["split"] for r in rows] == ["validation", "test2"]
    assert rows[0]["AUC 3"] == "undefined" and "grade 3" in rows[0]["reasons"]
    assert rows[1]["AUC 0"] == "0.800 (0.50-1.00)" and rows[1]["AUC 2"] == "0.700"
    assert rows[1]["AUC 3"] == "undefined" and rows[1]["reasons"] == "grade 3: no case of grade 3"
    assert rows[1]["kappa (quadratic)"] == "0.610"


def _progress(epoch, step, phase, loss, val_auc, **extra):
    return {
        "epoch": epoch,
        "epochs": 3,
        "step": step,
        "steps": 2,
        "loss": loss,
        "val_auc": val_auc,
        "eta_s": 10.0,
        "phase": phase,
        **extra,
    }


def test_job_view_accumulates_the_epoch_history_from_successive_rows(project):
    store, expert = project.store, who(project, "demo-expert")
    job_id = ts.submit(store, expert, "SGS", "fast", 3)
    view = ts.job_view(store, expert, job_id)
    assert (view.status, view.fraction, view.history) == ("queued", 0.0, [])
    assert "queued, waiting for a worker" in view.status_text()
    job_sql.claim(store, "w")
    e1 = {"0": 0.6, "1": 0.7, "2": None, "3": 0.5}
    e2 = {"0": 0.8, "1": 0.75, "2": None, "3": 0.6}
    rows = [
        _progress(1, 1, "train", 1.4, {}),
        _progress(1, 2, "validated", 1.3, e1, val_macro_auc=0.6),
        _progress(2, 1, "train", 1.2, e1),
        # epoch 2's "validated" row was never written (the worker throttles its writes);
        # epoch 3's steps still carry epoch 2's figures
        _progress(3, 1, "train", 1.0, e2),
    ]
    for progress in rows:
        job_sql.heartbeat(store, job_id, progress, "a log line")
        view = ts.job_view(store, expert, job_id)
        ts.job_view(store, expert, job_id)  # reading the same row twice changes nothing
    assert [h["epoch"] for h in view.history] == [1, 2]
    assert view.history[0]["val_auc"] == {0: 0.6, 1: 0.7, 2: None, 3: 0.5}
    assert view.history[0]["val_macro_auc"] == 0.6
    assert view.history[1]["val_auc"][0] == 0.8
    assert view.history[1]["val_macro_auc"] == pytest.approx((0.8 + 0.75 + 0.6) / 3)
    assert view.loss_curve == [(0.5, 1.4), (1.0, 1.3), (1.5, 1.2), (2.5, 1.0)]
    assert view.fraction == pytest.approx(5 / 6)
    assert view.log_tail == "a log line" and view.heartbeat_age_s < 5
    assert "running: epoch 3/3, step 1/2, about 10 s left" in view.status_text()
    job_sql.finish(store, job_id, "failed", error="out of memory")
    view = ts.job_view(store, expert, job_id)
    assert view.finished and view.status_text() == f"Job #{job_id} (SGS) failed: out of memory."


def test_job_view_uses_a_history_list_when_the_row_has_one(project):
    store, expert = project.store, who(project, "demo-expert")
    job_id = ts.submit(store, expert, "SGS")
    job_sql.claim(store, "w")
    history = [
        {"epoch": 1, "loss": 1.1, "val_macro_auc": 0.7, "val_auc": {"0": 0.7}},
        {"epoch": 2, "loss": 0.9, "val_macro_auc": 0.8, "val_auc": {"0": 0.8}},
    ]
    job_sql.heartbeat(store, job_id, _progress(3, 1, "train", 0.8, {"0": 0.8}, history=history))
    view = ts.job_view(store, expert, job_id)
    assert [(h["epoch"], h["val_auc"][0]) for h in view.history] == [(1, 0.7), (2, 0.8)]


def test_worker_state_says_when_no_worker_runs(project):
    store, expert = project.store, who(project, "demo-expert")
    now = datetime.now(UTC)
    assert ts.worker_state(store, now).message is None  # nothing queued: no worker needed
    ts.submit(store, expert, "SGS")
    assert ts.worker_state(store, now).message is None  # queued a moment ago
    late = ts.worker_state(store, now + timedelta(seconds=90))
    assert not late.alive and late.queued == 1
    assert late.message.startswith("No worker is running: job #1 has been queued for 1 min 30 s")
    assert "`rascore worker`" in late.message
    job_sql.claim(store, "w")
    job_sql.heartbeat(store, 1)
    fresh = ts.worker_state(store, now + timedelta(seconds=5))
    assert fresh.alive and fresh.message is None and fresh.running == 1
    stale = ts.worker_state(store, now + timedelta(seconds=120))
    assert not stale.alive and "Job #1 has had no heartbeat for 2 min" in stale.message


def test_command_line_promotion_and_rollback_without_a_user(project):
    """registry.promote_version / rollback_version: what `rascore models promote|rollback` calls."""
    store = project.store
    assert registry.promote_version(store, "SGS", 2) == {"modality": "SGS", "from": 1, "to": 2}
    row = store.audit_rows(1)[0]
    assert (row["action"], row["user"], row["target"]) == ("model.promote", None, "SGS/v2")
    assert registry.rollback_version(store, "sgs") == {"modality": "SGS", "from": 2, "to": 1}
    assert registry.active_version(store, "SGS")["version"] == 1


def test_a_running_job_without_heartbeat_shows_as_stale(project):
    """A job whose worker died is "stale: no heartbeat for N s" in the view and the job rows."""
    store, expert = project.store, who(project, "demo-expert")
    job_id = ts.submit(store, expert, "SGS")
    job_sql.claim(store, "w")
    now = datetime.now(UTC)
    fresh = ts.job_view(store, expert, job_id, now=now)
    assert fresh.stale_s is None and "is running" in fresh.status_text()
    later = now + timedelta(seconds=job_sql.STALE_AFTER_S + 35)
    view = ts.job_view(store, expert, job_id, now=later)
    assert view.status == "running" and view.stale_s == pytest.approx(job_sql.STALE_AFTER_S + 35, abs=2)
    assert f"is stale: no heartbeat for {view.stale_s:.0f} s" in view.status_text()
    old = (now - timedelta(seconds=job_sql.STALE_AFTER_S + 35)).isoformat(timespec="milliseconds")
    store.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", (old, job_id))
    (row,) = ts.job_rows(store, expert)
    assert row["status"].startswith("stale (no heartbeat for ")
