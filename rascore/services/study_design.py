"""Designing a reader study (admin): its cases, readers with experience levels, design, washout,
grade, seed and calibration set, written as a draft in one transaction. Opening, closing and a
reader's tasks are in ``rascore.services.study``.

Cases are an explicit item list, or every item of the chosen cohorts and modalities; calibration
items never count in a study: an explicit list naming one is refused, a cohort selection leaves
them out and says how many (the schema refuses them too).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rascore import scale
from rascore.permissions import require
from rascore.services import calibration
from rascore.services.study import DESIGNS, EXPERIENCE, STUDY_GRADES, StudyError, _moment, first_arms
from rascore.store import Store, StoreError, accounts
from rascore.store import studies as sql
from rascore.store.labelling import iso


@dataclass(frozen=True)
class Designed:
    """A designed study: its id, its cases, and how many calibration items the selection left out."""

    study_id: int
    cases: int
    calibration_left_out: int


def _readers(
    store: Store, readers: Mapping[str, str | None] | Iterable[tuple[str, str | None]]
) -> dict[int, str]:
    """user id -> experience of the named readers (the account's level when none is given)."""
    pairs = list(readers.items()) if isinstance(readers, Mapping) else [tuple(r) for r in readers]
    if not pairs:
        raise StudyError("A study needs at least one reader.")
    out: dict[int, str] = {}
    for name, experience in pairs:
        row = (
            accounts.user(store, str(name)) if not isinstance(name, int) else accounts.user_by_id(store, name)
        )
        if row is None:
            raise StudyError(f"There is no account {name!r}.")
        if not row["active"]:
            raise StudyError(f"The account {row['name']!r} is deactivated.")
        level = experience or (row["level"] if row["level"] in EXPERIENCE else None)
        if level not in EXPERIENCE:
            raise StudyError(f"Give {row['name']!r} an experience level: one of {', '.join(EXPERIENCE)}.")
        if int(row["id"]) in out:
            raise StudyError(f"{row['name']!r} is listed twice.")
        out[int(row["id"])] = level
    return out


def _cases(store: Store, items, cohorts, modalities) -> tuple[list[dict], int]:
    """The case rows (id, modality) and how many calibration items a cohort selection left out."""
    if items is not None:
        ids = [int(i) for i in items]
        if len(set(ids)) != len(ids):
            raise StudyError("An item is listed twice in the case set.")
        found = sql.items_by_id(store, ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise StudyError(f"There is no item {', '.join(map(str, missing[:5]))}.")
        clash = sorted(sql.calibration_item_ids(store, ids))
        if clash:
            raise StudyError(
                f"Items {', '.join(map(str, clash[:5]))} are calibration items: a calibration item "
                "never counts in a study."
            )
        return [found[i] for i in ids], 0
    if not cohorts:
        raise StudyError("Choose the cases: an item list, or cohorts (and modalities).")
    try:
        cohorts = [scale.cohort(c) for c in cohorts]
        mods = [scale.modality(m).code for m in (modalities or scale.MODALITIES)]
    except ValueError as exc:
        raise StudyError(str(exc)) from None
    rows = sql.candidate_items(store, cohorts, mods)
    return [r for r in rows if not r["calibration"]], sum(1 for r in rows if r["calibration"])


def design_study(
    store: Store,
    actor: Mapping,
    name: str,
    *,
    design: str,
    readers: Mapping[str, str | None] | Iterable[tuple[str, str | None]],
    items: Sequence[int] | None = None,
    cohorts: Sequence[str] | None = None,
    modalities: Sequence[str] | None = None,
    washout_days: int = 0,
    grade: str = "EOSS",
    seed: int | None = None,
    calibration_set_id: int | None = None,
    now: datetime | None = None,
) -> Designed:
    """Create a draft study (created ``now``, by default the present): its cases (an item list, or
    every non-calibration item of the cohorts and modalities), its readers (name -> experience),
    design, washout and seed; audited."""
    require(actor, "design_study")
    name = (name or "").strip()
    if not name:
        raise StudyError("Give the study a name.")
    if design not in DESIGNS:
        raise StudyError(f"The design must be one of {', '.join(DESIGNS)}.")
    if grade not in STUDY_GRADES:
        raise StudyError(f"The study grade must be one of {', '.join(STUDY_GRADES)}.")
    try:
        washout = int(washout_days)
    except (TypeError, ValueError):
        raise StudyError("The washout is a whole number of days.") from None
    if washout < 0 or (design == "sequential" and washout):
        raise StudyError("The washout is 0 or more days, and only a crossover has one.")
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    if seed < 0:
        raise StudyError("The seed is a whole number of 0 or more.")
    if calibration_set_id is not None and not calibration.exists(store, calibration_set_id):
        raise StudyError(f"There is no calibration set {calibration_set_id}.")
    enrolled = _readers(store, readers)
    if design == "crossover" and len(enrolled) < 2:
        raise StudyError("A crossover needs at least 2 readers (half of them start aided).")
    case_rows, left_out = _cases(store, items, cohorts, modalities)
    if not case_rows:
        raise StudyError("The case set is empty.")
    if grade == "PD" and any(not scale.modality(r["modality"]).doppler for r in case_rows):
        raise StudyError("A PD study reads power Doppler items only.")
    arms = first_arms(list(enrolled.items()), seed) if design == "crossover" else {}
    try:
        with store.transaction():
            study_id = sql.create_study(
                store,
                name=name,
                design=design,
                washout_days=washout,
                grade=grade,
                seed=seed,
                calibration_set_id=calibration_set_id,
                created_by=actor["id"],
                created_at=None if now is None else iso(_moment(now, "now")),
            )
            sql.add_cases(store, study_id, [r["id"] for r in case_rows])
            sql.add_readers(store, study_id, [(u, e, arms.get(u)) for u, e in enrolled.items()])
            store.audit(
                "study.design",
                user_id=actor["id"],
                target=str(study_id),
                detail={
                    "name": name,
                    "design": design,
                    "cases": len(case_rows),
                    "readers": len(enrolled),
                    "washout_days": washout,
                    "seed": seed,
                    "calibration_left_out": left_out,
                },
            )
    except StoreError as exc:
        raise StudyError(str(exc)) from None
    return Designed(study_id, len(case_rows), left_out)
