"""The demo's finished reader study and calibration set, made the way an admin and readers make
them: through ``calibration``, ``study_design`` and ``study`` (every permission and order rule
applies), with the simulated readers' grades from ``rascore.synth.study_reads``.

* **Calibration**: up to ``CALIBRATION_ITEMS`` power Doppler stills (SPD) of the training cohort,
  none a study case, target quadratic kappa ``TARGET_KAPPA`` over the last ``WINDOW`` reads; each
  of the twelve simulated readers reads until they pass or run out of items (no learning from the
  feedback is simulated). The study is not gated by the set: some simulated juniors do not pass,
  and the demo study has every reader read every case.
* **Study**: ``STUDY_NAME``, sequential, the combined EOSS, over up to ``STUDY_CASES`` SPD items
  of the two test cohorts (a seeded draw), read by the twelve readers at their accounts' levels.
  It opens with the simulated aid (source ``simulated``; no model has been trained when the demo
  is built), every reader reads both arms of every case in the order served, and it is closed.

Times are set in the past, so the study reads as finished: calibration three days before the
build, the study designed and opened two days before, half the readers reading that day and half
the next, each in one sitting from a morning start, and the study closed that evening. Each read
takes the simulated seconds, with a few seconds between reads. Everything is deterministic from
the demo's seed except the build time the schedule is anchored to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from rascore.services import calibration, study, study_design
from rascore.store import Store, accounts
from rascore.synth.cohort import ItemSpec
from rascore.synth.readers import READER_COHORTS, READERS, ReaderProfile
from rascore.synth.study_reads import Suggestion, calibration_read, case_reads, simulated_aids

MODALITY = "SPD"
STUDY_NAME = "Demo study: SPD, sequential"
CALIBRATION_NAME = "Demo calibration: SPD"
STUDY_CASES = 80
CALIBRATION_ITEMS = 20
WINDOW = 10
TARGET_KAPPA = 0.8
_STREAM = 7919  # the seed stream of the demo's draws of cases and items


@dataclass
class DemoStudy:
    """What was built: the study and calibration set (None where skipped, with the reason)."""

    study_id: int | None = None
    cases: int = 0
    readers: int = 0
    reads: int = 0
    aids: int = 0
    set_id: int | None = None
    calibration_items: int = 0
    passed: dict[str, bool] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0  # time to build (``rascore.demo`` counts importing the services too)


def _draw(specs: Sequence[ItemSpec], n: int, seed: int, stream: int) -> list[ItemSpec]:
    """A seeded draw of up to n specs, kept in their planned order."""
    if len(specs) <= n:
        return list(specs)
    rng = np.random.default_rng([int(seed), _STREAM, stream])
    return [specs[k] for k in sorted(rng.choice(len(specs), size=n, replace=False))]


class _Clock:
    """A simulated reader's clock: each read starts a few seconds after the previous one ended."""

    def __init__(self, start: datetime, seed: int, reader: int) -> None:
        self.now = start
        self.rng = np.random.default_rng([int(seed), _STREAM, 99, reader])

    def served(self) -> datetime:
        self.now += timedelta(seconds=float(self.rng.uniform(2.0, 8.0)))
        return self.now

    def saved(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=float(seconds))
        return self.now


def _calibrate(
    store: Store,
    admin: Mapping,
    items: Sequence[ItemSpec],
    item_ids: Mapping[str, int],
    readers: Sequence[tuple[ReaderProfile, dict]],
    seed: int,
    day: datetime,
    result: DemoStudy,
) -> None:
    """The calibration set and each reader's reads until they pass or run out of items, from
    ``day``; too few items (or of one reference grade only) skip it, saying so in ``result``."""
    refs = {store.reference(item_ids[s.key])["combined"] for s in items}
    if len(items) < 4 or len(refs) < 2:
        result.skipped.append(
            f"calibration: too few {MODALITY} training items ({len(items)}, of {len(refs)} reference "
            "grades; at least 4 items of 2 grades needed)"
        )
        return
    window = min(WINDOW, max(2, len(items) // 2))
    set_id = calibration.create_set(
        store,
        admin,
        CALIBRATION_NAME,
        [item_ids[s.key] for s in items],
        grade="EOSS",
        target_kappa=TARGET_KAPPA,
        window_n=window,
        now=day - timedelta(hours=1),
    )
    by_id = {item_ids[s.key]: s for s in items}
    for k, (profile, user) in enumerate(readers):
        clock = _Clock(day + timedelta(minutes=20 * k), seed, k)
        while (
            task := calibration.next_calibration_item(store, user, set_id, now=clock.served())
        ) is not None:
            read = calibration_read(profile, by_id[task.item_id], seed)
            calibration.record_calibration(
                store,
                user,
                set_id,
                task.item_id,
                read.sh,
                read.pd,
                started_at=task.served_at,
                now=clock.saved(read.seconds),
            )
        status = calibration.calibration_status(store, admin, set_id, reader=user)
        result.passed[profile.name] = status.passed
    result.set_id, result.calibration_items = set_id, len(items)


def _read_study(
    store: Store,
    study_id: int,
    cases: Sequence[ItemSpec],
    item_ids: Mapping[str, int],
    suggestions: Mapping[str, Suggestion],
    readers: Sequence[tuple[ReaderProfile, dict]],
    seed: int,
    day: datetime,
) -> tuple[int, datetime]:
    """Every reader reads every task served, in order; returns the reads and the last save."""
    by_id = {item_ids[s.key]: s for s in cases}
    reads, last = 0, day
    for k, (profile, user) in enumerate(readers):
        half = k >= (len(readers) + 1) // 2
        start = day + timedelta(days=int(half), minutes=75 * (k % ((len(readers) + 1) // 2)))
        clock = _Clock(start, seed, 100 + k)
        grades: dict[tuple[int, str], object] = {}
        while (task := study.next_task(store, user, study_id, now=clock.served())) is not None:
            if (task.item_id, task.arm) not in grades:
                spec = by_id[task.item_id]
                unaided, aided = case_reads(profile, spec, suggestions[spec.key], seed, "sequential")
                grades[(task.item_id, "unaided")], grades[(task.item_id, "aided")] = unaided, aided
            read = grades[(task.item_id, task.arm)]
            study.record_read(
                store,
                user,
                study_id,
                task.item_id,
                task.arm,
                read.sh,
                read.pd,
                started_at=task.served_at,
                now=clock.saved(read.seconds),
            )
            reads += 1
        last = max(last, clock.now)
    return reads, last


def build_demo_study(
    store: Store,
    specs: Sequence[ItemSpec],
    item_ids: Mapping[str, int],
    seed: int = 0,
    *,
    admin_name: str = "demo-admin",
    now: datetime | None = None,
) -> DemoStudy:
    """Build the demo's calibration set and closed reader study (see the module docstring) in
    one transaction; ``specs`` and ``item_ids`` are the demo's planned cohort and its item ids."""
    import time

    started = time.perf_counter()
    result = DemoStudy()
    admin = accounts.user(store, admin_name)
    anchor = (now or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    spd = [s for s in specs if s.modality == MODALITY and s.key in item_ids]
    cases = _draw([s for s in spd if s.cohort in READER_COHORTS], STUDY_CASES, seed, 1)
    calib = _draw([s for s in spd if s.cohort == "train"], CALIBRATION_ITEMS, seed, 2)
    profiles = [r for r in READERS if r.role == "reader"]
    readers = [(p, accounts.user(store, p.name)) for p in profiles]
    with store.transaction():
        _calibrate(
            store,
            admin,
            calib,
            item_ids,
            readers,
            seed,
            anchor - timedelta(days=3) + timedelta(hours=9),
            result,
        )
        if len(cases) < 2:
            result.skipped.append(f"study: too few {MODALITY} test items ({len(cases)}; at least 2 needed)")
        else:
            day = anchor - timedelta(days=2)
            made = study_design.design_study(
                store,
                admin,
                STUDY_NAME,
                design="sequential",
                readers={p.name: p.level for p in profiles},
                items=[item_ids[s.key] for s in cases],
                grade="EOSS",
                seed=seed,
                now=day + timedelta(hours=8),
            )
            suggestions = simulated_aids(cases, seed)
            opened = study.open_study(
                store,
                admin,
                made.study_id,
                simulated_aids={item_ids[k]: (s.grade, s.probs) for k, s in suggestions.items()},
                now=day + timedelta(hours=8, minutes=30),
            )
            reads, last = _read_study(
                store, made.study_id, cases, item_ids, suggestions, readers, seed, day + timedelta(hours=9)
            )
            study.close_study(store, admin, made.study_id, now=last + timedelta(hours=1))
            result.study_id, result.cases, result.readers = made.study_id, made.cases, len(readers)
            result.reads, result.aids = reads, opened.aids
    result.seconds = time.perf_counter() - started
    return result


def summary(result: DemoStudy) -> str:
    """One line for the demo command."""
    parts = []
    if result.study_id is not None:
        parts.append(
            f"reader study {STUDY_NAME!r} (closed): {result.cases} cases x {result.readers} readers x 2 arms "
            f"= {result.reads} reads, simulated aid on {result.aids} cases"
        )
    if result.set_id is not None:
        parts.append(
            f"calibration set {CALIBRATION_NAME!r} ({result.calibration_items} items): "
            f"{sum(result.passed.values())} of {len(result.passed)} readers passed"
        )
    parts += [f"no {s}" for s in result.skipped]
    return "; ".join(parts) + f" ({result.seconds:.1f} s)"
