"""Reader studies with AI assistance: opening and closing, each reader's tasks in order, reads,
the model's aid. The design (cases, readers, seed) is written by ``rascore.services.study_design``.

A study reads a fixed case set with readers of stated experience, in two arms: unaided, and aided
by the model's grade and probabilities. Two designs:

* **sequential**: one session; for each case the unaided read first, then the aided read of the
  same case at once (it is served only after the unaided read is saved, and nothing else comes
  between them);
* **crossover**: session 1 reads every case in the reader's first arm, session 2 every case in the
  other arm, in a fresh order, and only once ``washout_days`` have passed since the reader's last
  session-1 read. Half the readers start aided: readers are ordered by experience, shuffled within
  each level (seeded) and alternate, so the two starting groups differ by at most one reader
  overall and within each level.

Case order is a permutation per reader and session drawn from ``numpy.random.default_rng([seed,
reader id, session])``: random, and the same every time it is computed. Only the task due is
served and only the task due is accepted (no skipping, no aided before unaided). The time of a
read runs from when its task was served (``Task.served_at``, passed back as ``started_at``) to when
it is saved. A study with a calibration set serves tasks only to readers who passed it
(``rascore.services.calibration``).

The aided arm shows the model version of each modality that was active when the study opened
(frozen then), and what it shows is frozen per case too: opening snapshots each case's stored
prediction by that version into ``study_aids`` (a case without one gets no aid, and opening says
how many), so a prediction stored later, even by the same version, never changes what a reader
sees and every reader sees the same aid. The demo opens its study with a simulated suggestion per
case instead (source ``simulated``, ``rascore.synth.study_reads``), labelled as such wherever it
is shown. The aid is served only with an aided task.
Blind: a reader is served their own tasks, their own reads and the model's output, never another
reader's grade, and study reads are not annotations (they never reach the labelling queue, the
agreement figures or the reference standard). Reads are append-only: a read is never changed.
The long table for MRMC analysis is in ``rascore.services.study_results``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC

import numpy as np

from rascore import scale
from rascore.permissions import require
from rascore.services import calibration
from rascore.store import Store, StoreError
from rascore.store import labelling as labelling_sql
from rascore.store import registry
from rascore.store import studies as sql
from rascore.store.labelling import iso, now_utc

DESIGNS: tuple[str, ...] = ("sequential", "crossover")
ARMS: tuple[str, ...] = ("unaided", "aided")
EXPERIENCE: tuple[str, ...] = ("junior", "intermediate", "senior")
STUDY_GRADES: tuple[str, ...] = tuple(scale.GRADE_COLUMNS)
_ARMS_STREAM = 0  # the seed stream of the first arms; case orders use (reader id >= 1, session)


class StudyError(ValueError):
    """A study action refused, with a message a person can act on."""


class WashoutPending(StudyError):
    """Session 2 of a crossover is not open yet for this reader; ``opens_at`` says when it is."""

    def __init__(self, message: str, opens_at: datetime) -> None:
        super().__init__(message)
        self.opens_at = opens_at


@dataclass(frozen=True)
class Step:
    """One read a reader owes: a case in an arm, in a session."""

    item_id: int
    arm: str
    session: int


@dataclass(frozen=True)
class Task:
    """The read due now: the step, its number among the reader's reads, and when it was served."""

    study_id: int
    item_id: int
    arm: str
    session: int
    number: int
    total: int
    served_at: str


@dataclass(frozen=True)
class Aid:
    """What the aided arm shows: the suggested grade and probabilities, or None and the reason;
    ``model`` names the model version (or ``SIMULATED``), ``source`` is 'model' or 'simulated'."""

    item_id: int
    target: str
    grade: int | None
    probabilities: tuple[float, ...] | None
    model: str | None
    reason: str | None
    source: str | None = None


@dataclass(frozen=True)
class Opened:
    """What opening a study froze: the model version per modality, where the aids came from, and
    how many cases have an aid and how many have none."""

    models: dict[str, int]
    source: str
    aids: int
    without_aid: int


SIMULATED = "simulated aid (not a model)"


# ------------------------------------------------------------------ randomisation (pure)
def first_arms(readers: Sequence[tuple[int, str]], seed: int) -> dict[int, str]:
    """First arm per reader id of a crossover: balanced overall and within experience, seeded."""
    rng = np.random.default_rng([int(seed), _ARMS_STREAM])
    keys = rng.random(len(readers))
    order = sorted(range(len(readers)), key=lambda k: (EXPERIENCE.index(readers[k][1]), keys[k]))
    offset = int(rng.integers(2))
    return {int(readers[k][0]): ARMS[(j + offset) % 2] for j, k in enumerate(order)}


def case_order(item_ids: Sequence[int], seed: int, user_id: int, session: int) -> list[int]:
    """The study's cases in this reader's order for this session (reproducible from the seed)."""
    rng = np.random.default_rng([int(seed), int(user_id), int(session)])
    return [int(item_ids[k]) for k in rng.permutation(len(item_ids))]


def plan(study: Mapping, reader: Mapping, item_ids: Sequence[int]) -> list[Step]:
    """Every read a reader owes in a study, in the order they are served."""
    seed, user = study["seed"], reader["user_id"]
    if study["design"] == "sequential":
        return [Step(i, arm, 1) for i in case_order(item_ids, seed, user, 1) for arm in ARMS]
    first = reader["first_arm"]
    second = ARMS[1 - ARMS.index(first)]
    return [Step(i, first, 1) for i in case_order(item_ids, seed, user, 1)] + [
        Step(i, second, 2) for i in case_order(item_ids, seed, user, 2)
    ]


def _moment(value: str | datetime, what: str) -> datetime:
    """An aware UTC datetime from a datetime or ISO text (naive means UTC)."""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise StudyError(f"{what} is not a time: {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _shown(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


# ------------------------------------------------------------------ lifecycle (admin)
def study_row(store: Store, study_id: int) -> dict:
    """A study row, or StudyError when there is none."""
    row = sql.study(store, study_id)
    if row is None:
        raise StudyError(f"There is no study {study_id}.")
    return row


def _aid_row(item_id: int, source: str, version_id: int | None, grade: object, probs: object) -> tuple | None:
    """One ``study_aids`` row from a grade and four probabilities, or None when they are not
    (four non-negative numbers summing to 1 and a grade 0-3)."""
    try:
        values = [float(p) for p in (json.loads(probs) if isinstance(probs, str) else probs)]
        grade = scale.check_grade(grade)
    except (TypeError, ValueError, scale.InvalidGrade):
        return None
    if len(values) != 4 or min(values) < 0 or abs(sum(values) - 1.0) > 1e-3:
        return None
    return (int(item_id), source, version_id, grade, json.dumps(values))


def open_study(
    store: Store,
    actor: Mapping,
    study_id: int,
    *,
    simulated_aids: Mapping[int, tuple[int, Sequence[float]]] | None = None,
    now: datetime | None = None,
) -> Opened:
    """Open a draft (at ``now``, by default the present): freeze the active model version of each
    of its modalities and snapshot each case's aid; audited.

    The aid of a case is the frozen version's stored prediction for it; a modality without an
    active model, or a case without a stored prediction, gets no aid. ``simulated_aids`` (item id
    -> (grade, four probabilities)) is the demo's simulated suggestion, stored with source
    'simulated' in place of the models' predictions (cases it leaves out get no aid).
    """
    require(actor, "design_study")
    moment = iso(_moment(now or now_utc(), "now"))
    with store.transaction():
        study = study_row(store, study_id)
        if study["status"] != "draft":
            raise StudyError(f"The study {study['name']!r} is {study['status']}: only a draft opens.")
        cases = sql.cases(store, study_id)
        case_ids = [c["item_id"] for c in cases]
        mods = sorted({c["modality"] for c in cases})
        versions = labelling_sql.active_versions(store, mods)
        sql.set_models(store, study_id, versions)
        if simulated_aids is None:
            source = "model"
            rows = [
                _aid_row(p["item_id"], source, p["model_version_id"], p["grade"], p["probs_json"])
                for p in sql.frozen_predictions(store, study_id)
            ]
        else:
            source = "simulated"
            unknown = sorted(set(map(int, simulated_aids)) - set(case_ids))
            if unknown:
                raise StudyError(f"Items {', '.join(map(str, unknown[:5]))} are not cases of this study.")
            rows = []
            for item_id, (grade, probs) in simulated_aids.items():
                row = _aid_row(item_id, source, None, grade, probs)
                if row is None:
                    raise StudyError(
                        f"The simulated aid of item {item_id} is not a grade 0-3 and 4 probabilities."
                    )
                rows.append(row)
        written = sql.set_aids(store, study_id, [r for r in rows if r is not None])
        sql.set_status(store, study_id, "open", at=moment)
        opened = Opened(versions, source, written, len(case_ids) - written)
        store.audit(
            "study.open",
            user_id=actor["id"],
            target=str(study_id),
            detail={
                "models": versions,
                "aid_source": source,
                "aids": written,
                "without_aid": opened.without_aid,
            },
        )
    return opened


def close_study(store: Store, actor: Mapping, study_id: int, *, now: datetime | None = None) -> None:
    """Close an open study (at ``now``, by default the present): it takes no more reads; audited."""
    require(actor, "design_study")
    moment = iso(_moment(now or now_utc(), "now"))
    with store.transaction():
        study = study_row(store, study_id)
        if study["status"] != "open":
            raise StudyError(f"The study {study['name']!r} is {study['status']}: only an open study closes.")
        sql.set_status(store, study_id, "closed", at=moment)
        store.audit("study.close", user_id=actor["id"], target=str(study_id))


def studies(store: Store, actor: Mapping) -> list[dict]:
    """Every study with its numbers of cases, readers and reads (designers)."""
    require(actor, "design_study")
    return sql.studies(store)


def study_detail(store: Store, actor: Mapping, study_id: int) -> dict:
    """A study's design, readers with first arms, case ids and frozen models (designers)."""
    require(actor, "design_study")
    return {
        **study_row(store, study_id),
        "readers": sql.readers(store, study_id),
        "cases": [c["item_id"] for c in sql.cases(store, study_id)],
        "models": sql.models(store, study_id),
    }


def reader_progress(store: Store, actor: Mapping, study_id: int) -> list[dict]:
    """Each reader of a study (name, experience, first arm) with reads done and owed (designers)."""
    require(actor, "design_study")
    study_row(store, study_id)
    total = 2 * len(sql.cases(store, study_id))  # every design owes an unaided and an aided read per case
    return [
        {**r, "done": len(sql.reads_of(store, study_id, r["user_id"])), "total": total}
        for r in sql.readers(store, study_id)
    ]


# ------------------------------------------------------------------ a reader's tasks
def my_studies(store: Store, user: Mapping) -> list[dict]:
    """The open studies this user reads in."""
    require(user, "read_study")
    return [s for s in sql.studies(store, user["id"]) if s["status"] == "open"]


def _enrolled(store: Store, user: Mapping, study_id: int, gate: bool = True) -> tuple[dict, dict]:
    """(study, reader row) for an open study this user reads in, after the calibration gate."""
    require(user, "read_study")
    study = study_row(store, study_id)
    reader = sql.reader(store, study_id, user["id"])
    if reader is None:
        raise StudyError(f"You are not a reader of the study {study['name']!r}.")
    if study["status"] != "open":
        raise StudyError(f"The study {study['name']!r} is {study['status']}: it is not taking reads.")
    if gate and study["calibration_set_id"] is not None:
        calibration.require_passed(store, user, int(study["calibration_set_id"]))
    return study, reader


def _due(store: Store, study: dict, reader: dict, now: datetime) -> tuple[Step | None, int, int]:
    """(the step due, its number, the total) for this reader; WashoutPending while session 2 waits."""
    steps = plan(study, reader, [c["item_id"] for c in sql.cases(store, study["id"])])
    reads = sql.reads_of(store, study["id"], reader["user_id"])
    done = {(r["item_id"], r["arm"]) for r in reads}
    for number, step in enumerate(steps, start=1):
        if (step.item_id, step.arm) in done:
            continue
        if step.session == 2:
            last = max(_moment(r["saved_at"], "saved_at") for r in reads if r["session"] == 1)
            opens = last + timedelta(days=int(study["washout_days"]))
            if now < opens:
                raise WashoutPending(
                    f"Session 2 of {study['name']!r} opens on {_shown(opens)}: a washout of "
                    f"{study['washout_days']} days after your last session-1 read ({_shown(last)}).",
                    opens,
                )
        return step, number, len(steps)
    return None, len(steps), len(steps)


def next_task(store: Store, user: Mapping, study_id: int, *, now: datetime | None = None) -> Task | None:
    """The read due now for this reader (None when they have read everything).

    Raises WashoutPending (with the date) while session 2 of a crossover waits, and
    CalibrationRequired when the study's calibration set is not passed.
    """
    moment = _moment(now or now_utc(), "now")
    study, reader = _enrolled(store, user, study_id)
    step, number, total = _due(store, study, reader, moment)
    if step is None:
        return None
    return Task(study_id, step.item_id, step.arm, step.session, number, total, iso(moment))


def progress(store: Store, user: Mapping, study_id: int, *, now: datetime | None = None) -> dict:
    """This reader's reads done and owed, and when session 2 opens if it is waiting."""
    moment = _moment(now or now_utc(), "now")
    study, reader = _enrolled(store, user, study_id, gate=False)
    opens = None
    try:
        _due(store, study, reader, moment)
    except WashoutPending as wait:
        opens = iso(wait.opens_at)
    done = len(sql.reads_of(store, study_id, user["id"]))
    # every design owes two reads per case: unaided and aided
    return {"done": done, "total": 2 * len(sql.cases(store, study_id)), "session_2_opens_at": opens}


BUSY_READ = "The database is busy (locked by another write); your read was not saved. Press save again."


def record_read(
    store: Store,
    user: Mapping,
    study_id: int,
    item_id: int,
    arm: str,
    sh: int | None,
    pd: int | None = None,
    *,
    started_at: str | datetime,
    now: datetime | None = None,
) -> int:
    """Save the read due now (grades checked by ``scale.check_pair``), timed from ``started_at``
    (when its task was served); append-only and audited. Returns the read's id."""
    moment = _moment(now or now_utc(), "now")
    started = _moment(started_at, "started_at")
    if started > moment:
        raise StudyError("The read cannot start after it is saved (started_at is in the future).")
    with store.transaction(BUSY_READ):
        study, reader = _enrolled(store, user, study_id)
        step, _, _ = _due(store, study, reader, moment)
        if step is None:
            raise StudyError(f"You have read every case of {study['name']!r}.")
        if (int(item_id), arm) != (step.item_id, step.arm):
            raise StudyError(
                f"This read is not the one due: case {step.item_id}, {step.arm}, is due now "
                "(reads are taken in the order served)."
            )
        previous = sql.reads_of(store, study_id, user["id"])
        if previous and started < _moment(previous[-1]["saved_at"], "saved_at"):
            raise StudyError(
                "started_at is before your previous read was saved: use the time this task was served."
            )
        modality = store.item(step.item_id)["modality"]
        try:
            combined = scale.check_pair(modality, sh, pd)
        except scale.InvalidGrade as exc:
            raise StudyError(str(exc)) from None
        duration_ms = int(round((moment - started).total_seconds() * 1000))
        try:
            read_id = sql.add_read(
                store,
                study_id=study_id,
                user_id=user["id"],
                item_id=step.item_id,
                arm=step.arm,
                session=step.session,
                sh=int(sh),
                pd=None if pd is None else int(pd),
                combined=combined,
                started_at=iso(started),
                saved_at=iso(moment),
                duration_ms=duration_ms,
            )
        except StoreError as exc:
            raise StudyError(str(exc)) from None
        store.audit(
            "study.read",
            user_id=user["id"],
            target=f"{study_id}:{step.item_id}",
            detail={"read_id": read_id, "arm": step.arm, "session": step.session, "duration_ms": duration_ms},
        )
    return read_id


def model_aid(
    store: Store, user: Mapping, study_id: int, item_id: int, *, now: datetime | None = None
) -> Aid:
    """What the aided arm shows for the case due now: the frozen model's grade and probabilities,
    or no grade and the reason. Refused unless the task due is this case's aided read."""
    moment = _moment(now or now_utc(), "now")
    study, reader = _enrolled(store, user, study_id)
    step, _, _ = _due(store, study, reader, moment)
    if step is None or (step.item_id, step.arm) != (int(item_id), "aided"):
        raise StudyError("The model's output is shown only with the aided read due now.")
    mod = scale.modality(store.item(step.item_id)["modality"])
    row = sql.aid(store, study_id, step.item_id)
    if row is not None:
        label = f"{mod.code} v{row['version']}" if row["source"] == "model" else SIMULATED
        probs = tuple(float(p) for p in json.loads(row["probs_json"]))
        return Aid(step.item_id, mod.target, int(row["grade"]), probs, label, None, row["source"])
    if "simulated" in sql.aid_sources(store, study_id):
        return Aid(
            step.item_id,
            mod.target,
            None,
            None,
            SIMULATED,
            "the simulated aid has no suggestion for this case",
            "simulated",
        )
    version_id = sql.models(store, study_id).get(mod.code)
    if version_id is None:
        reason = f"no {mod.code} model was active when the study opened"
        return Aid(step.item_id, mod.target, None, None, None, reason)
    model = f"{mod.code} v{registry.get_version_by_id(store, version_id)['version']}"
    reason = f"{model} had no stored prediction for this case when the study opened"
    return Aid(step.item_id, mod.target, None, None, model, reason, "model")
