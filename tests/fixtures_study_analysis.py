"""A closed reader study on the results project (``tests.fixtures_dashboard``), for the study
analysis and the Reader study page: the 24 SPD items of test1 (12 patients, 2 joints each;
reference combined EOSS 0-3) read by four readers (two junior, one intermediate, one senior) in
a sequential design, every read through ``rascore.services.study``. Aided reads are the
reference with a few grades one off; unaided reads are off more often, so aided - unaided is
positive for every reader. Unaided reads take 30 s, aided ones 12 s."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from rascore.project import Project
from rascore.services import study, study_design
from rascore.store import accounts
from tests.fixtures_dashboard import build_results_project
from tests.fixtures_study import T0

READERS = {"junior-1": "junior", "junior-2": "junior", "demo-reader": "intermediate", "senior-1": "senior"}
OFF = {"unaided": 0.6, "aided": 0.05}  # share of reads one or two grades off the reference
SECONDS = {"unaided": 30.0, "aided": 12.0}


def _grade(rng: np.random.Generator, reference: int, arm: str) -> int:
    """The reference, or (with probability OFF[arm]) a grade one or two steps away from it."""
    if rng.random() >= OFF[arm]:
        return reference
    off = int(np.clip(reference + rng.choice([-2, -1, 1, 2]), 0, 3))
    return off if off != reference else reference + (1 if reference < 3 else -1)


def study_cases(project: Project) -> list[int]:
    """The SPD items of test1, in id order."""
    return [int(i["id"]) for i in project.store.items("SPD", "test1")]


def drive(project: Project, study_id: int, name: str, seed: int, limit: int | None = None) -> None:
    """Read the tasks due to ``name`` (all, or the first ``limit``) through the study service."""
    store, reader = project.store, accounts.user(project.store, name)
    rng = np.random.default_rng(seed)
    now, done = T0, 0
    while limit is None or done < limit:
        task = study.next_task(store, reader, study_id, now=now)
        if task is None:
            return
        reference = int(store.reference(task.item_id)["combined"])
        g = _grade(rng, reference, task.arm)
        now = now + timedelta(seconds=SECONDS[task.arm])
        study.record_read(
            store, reader, study_id, task.item_id, task.arm, g, min(g, 1), started_at=task.served_at, now=now
        )
        done += 1


def build_study(
    project: Project,
    name: str = "aid study",
    close: bool = True,
    partial: str | None = None,
    readers: dict[str, str] | None = None,
    items: list[int] | None = None,
) -> int:
    """Design, open, read and (by default) close a study of ``readers`` (default ``READERS``)
    on ``items`` (default every SPD item of test1); ``partial`` names a reader who stops after
    5 reads. Returns the study id."""
    admin = accounts.user(project.store, "demo-admin")
    readers = readers or READERS
    made = study_design.design_study(
        project.store,
        admin,
        name,
        design="sequential",
        readers=readers,
        items=items or study_cases(project),
        seed=11,
    )
    study.open_study(project.store, admin, made.study_id)
    for k, reader in enumerate(readers):
        drive(project, made.study_id, reader, seed=100 + k, limit=5 if reader == partial else None)
    if close:
        study.close_study(project.store, admin, made.study_id)
    return made.study_id


def aid_frame(project: Project) -> pd.DataFrame:
    """The SPD v1 model's suggestion per study case: its predicted combined grade and its
    probability of grade 1 or more (from the fixture's stored predictions)."""
    ids, _, probs = project.fixture["arrays"][("SPD", "test1", 1)]
    return pd.DataFrame({"case": ids, "grade": probs.argmax(axis=1), "prob": probs[:, 1:].sum(axis=1)})


def build(root: Path) -> tuple[Project, int]:
    """The results project with its closed study."""
    project = build_results_project(Path(root))
    return project, build_study(project)
