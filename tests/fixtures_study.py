"""A tiny project for the reader-study and calibration tests: the labelling fixture's items and
accounts (6 rounds of SGS, DGS, SPD, DPD; references on rounds 1-5 with SH 1, 2, 3, 0, 1), a few
more readers of each experience level, and helpers that drive a reader through their tasks."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC
from pathlib import Path

from rascore.project import Project
from rascore.services import study
from rascore.store import accounts
from tests.fixtures_labelling import build_project

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
EXTRA_READERS = {
    "junior-1": "junior",
    "junior-2": "junior",
    "senior-1": "senior",
    "senior-2": "senior",
    "mid-1": "intermediate",
}


def build_study_project(root: Path) -> Project:
    """The labelling fixture (no expert grades) plus readers of each experience level."""
    project = build_project(Path(root), per_modality=6, expert_grades=False)
    for name, level in EXTRA_READERS.items():
        accounts.add_user(project.store, name, "reader", level)
    return project


def user(project: Project, name: str) -> dict:
    """An account row by name."""
    return accounts.user(project.store, name)


def items(project: Project, modality: str, cohort: str | None = None) -> list[int]:
    """Item ids of one modality (and cohort), in id order."""
    return [int(i["id"]) for i in project.store.items(modality, cohort)]


def grade_for(project: Project, item_id: int, sh: int = 1) -> tuple[int, int | None]:
    """A valid (SH, PD) pair for the item's modality."""
    doppler = project.store.item(item_id)["modality"] in ("SPD", "DPD")
    return sh, (min(sh, 1) if doppler else None)


def read_all(project: Project, reader: dict, study_id: int, start: datetime, step_s: float = 30.0) -> list:
    """Serve and save every task that is due now, one every ``step_s`` seconds; the tasks served."""
    served, now = [], start
    while True:
        try:
            task = study.next_task(project.store, reader, study_id, now=now)
        except study.WashoutPending:
            return served
        if task is None:
            return served
        served.append(task)
        now = now + timedelta(seconds=step_s)
        sh, pd = grade_for(project, task.item_id, 1 + len(served) % 3)
        study.record_read(
            project.store,
            reader,
            study_id,
            task.item_id,
            task.arm,
            sh,
            pd,
            started_at=task.served_at,
            now=now,
        )
