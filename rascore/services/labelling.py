"""Labelling: a reader's queue with leases, grading with the EOSS rules, back and edit, the atlas.

Blind by design: nothing here returns another reader's grade, and a model's output reaches a
reader only when an admin has turned pre-annotation on for the project. Every grade is written
(and audited) the moment it is submitted.

Queue order: items with a prediction from their modality's active model come first, least
confident first (uncertainty sampling); the rest follow by id. Each item served is leased to the
reader for ``LEASE_S`` seconds, claimed under ``BEGIN IMMEDIATE``. With the project setting
``labelling.max_readers`` = N, an item is offered only while fewer than N other readers have
graded or hold a live lease on it (N = 1: an exclusive assignment, two readers never race the
same item); without it every reader grades every item, as in a reader study.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


from rascore import scale
from rascore.media.preview import warm_in_background
from rascore.permissions import allowed, require
from rascore.project import Project
from rascore.store import Store, StoreBusy
from rascore.store import labelling as sql
from rascore.store.settings import get_setting, set_setting
from rascore.store.labelling import START, Position, QueueScope, iso, now_utc

LEASE_S = 300.0
PREANNOTATION_KEY = "labelling.preannotation"
MAX_READERS_KEY = "labelling.max_readers"
NOT_ASSESSABLE_REASONS: tuple[str, ...] = (
    "image quality too poor",
    "wrong or incomplete view",
    "joint not in the image",
    "artefact hides the synovium",
    "other",
)


class LabelError(ValueError):
    """A grade the EOSS or the store refuses, with a message a reader can act on."""


BUSY_GRADE = (
    "The database is busy (locked by another write); your grade was not saved. "
    "Press the grade again (Enter) to save it."
)
BUSY_NEXT = (
    "The database is busy (locked by another write); the next item could not be "
    "loaded. Wait a moment and reload the page."
)


@dataclass(frozen=True)
class Claim:
    """An item served to a reader: its id, its place in the queue and when the lease ends."""

    item_id: int
    position: Position
    expires_at: str


# ------------------------------------------------------------------ settings
def preannotation_enabled(store: Store) -> bool:
    """Whether readers see the active model's suggestion (off unless an admin turns it on)."""
    return bool(get_setting(store, PREANNOTATION_KEY, False))


def set_preannotation(store: Store, actor: Mapping, enabled: bool) -> None:
    """Turn pre-annotation on or off for the project (admin; audited)."""
    require(actor, "settings")
    set_setting(store, PREANNOTATION_KEY, bool(enabled), user_id=actor["id"])


def max_readers(store: Store) -> int | None:
    """How many readers may grade one item (None: every reader grades every item)."""
    value = get_setting(store, MAX_READERS_KEY, None)
    return int(value) if value else None


def set_max_readers(store: Store, actor: Mapping, value: int | None) -> None:
    """Set how many readers grade each item (1 = exclusive assignment; None = all; audited)."""
    require(actor, "settings")
    if value is not None and (int(value) < 1 or int(value) > 1000):
        raise LabelError("readers per item must be between 1 and 1000, or unlimited")
    set_setting(store, MAX_READERS_KEY, int(value) if value else None, user_id=actor["id"])


# ------------------------------------------------------------------ the queue
def scope(store: Store, modality: str | None = None, cohort: str | None = None) -> QueueScope:
    """The queue's items: one modality or all, one cohort or all, under the project's capacity."""
    mods = (scale.modality(modality).code,) if modality else tuple(scale.MODALITIES)
    return QueueScope(mods, scale.cohort(cohort) if cohort else None, max_readers(store))


def next_item(
    store: Store,
    user: Mapping,
    *,
    modality: str | None = None,
    cohort: str | None = None,
    after: Position | None = None,
    resume: bool = False,
    lease_s: float = LEASE_S,
    now: datetime | None = None,
) -> Claim | None:
    """Claim the reader's next item after ``after`` (wrapping round once), or None when done.

    With ``resume`` a live lease the reader already holds (a page reload) is served again first.
    """
    require(user, "grade")
    queue = scope(store, modality, cohort)
    moment = now or now_utc()
    at = iso(moment)
    with store.transaction(BUSY_NEXT):
        if resume:
            held = sql.held_reservation(store, user["id"], at)
            if held is not None and _in_scope(store, held["item_id"], queue):
                expires = sql.reserve(store, user["id"], held["item_id"], moment, lease_s)
                return Claim(held["item_id"], sql.position_of(store, held["item_id"]), expires)
        found = sql.first_available(store, user["id"], queue, after or START, at)
        if found is None and after is not None and after != START:
            found = sql.first_available(store, user["id"], queue, START, at)
        if found is None:
            sql.release(store, user["id"])
            return None
        expires = sql.reserve(store, user["id"], found.item_id, moment, lease_s)
    return Claim(found.item_id, found, expires)


@dataclass(frozen=True)
class Opened:
    """An item opened by its id (a link): leased for grading, or ``claim`` None when the reader
    graded it already (the page opens it as an edit of their own grade)."""

    item_id: int
    claim: Claim | None


def open_item(
    store: Store, user: Mapping, item_id: int, *, lease_s: float = LEASE_S, now: datetime | None = None
) -> Opened:
    """Open one item for this reader by its id, under the queue's rules, or LabelError saying why
    not: no such item; held by a reader study or a calibration set (never graded from the queue);
    or the project's readers-per-item limit reached by other readers."""
    require(user, "grade")
    moment = now or now_utc()
    with store.transaction(BUSY_NEXT):
        if store.item(item_id) is None:
            raise LabelError(f"There is no item #{item_id}.")
        if sql.held_elsewhere(store, item_id):
            raise LabelError(
                f"Item #{item_id} is not graded from the labelling queue: it belongs to a reader "
                "study or a calibration set, read from the Read choice in the sidebar."
            )
        if sql.latest_grade(store, user["id"], item_id) is not None:
            return Opened(item_id, None)
        limit = max_readers(store)
        if not sql.has_room(store, user["id"], item_id, limit, iso(moment)):
            raise LabelError(
                f"Item #{item_id} already has the {limit} reader(s) per item the project allows; "
                "it is not in your queue."
            )
        expires = sql.reserve(store, user["id"], item_id, moment, lease_s)
    return Opened(item_id, Claim(item_id, sql.position_of(store, item_id), expires))


def _in_scope(store: Store, item_id: int, queue: QueueScope) -> bool:
    item = store.item(item_id)
    return bool(
        item
        and item["modality"] in queue.modalities
        and (queue.cohort is None or item["cohort"] == queue.cohort)
    )


def renew(
    store: Store, user: Mapping, item_id: int, *, lease_s: float = LEASE_S, now: datetime | None = None
) -> str:
    """Extend the reader's lease on the item they are looking at."""
    require(user, "grade")
    with store.transaction():
        return sql.reserve(store, user["id"], item_id, now or now_utc(), lease_s)


def keep_alive(
    store: Store, user: Mapping, claim: Claim, *, lease_s: float = LEASE_S, now: datetime | None = None
) -> Claim:
    """The claim, its lease renewed once less than half of it is left (no write otherwise)."""
    moment = now or now_utc()
    if claim.expires_at >= iso(moment + timedelta(seconds=lease_s / 2)):
        return claim
    return Claim(
        claim.item_id, claim.position, renew(store, user, claim.item_id, lease_s=lease_s, now=moment)
    )


def skip(store: Store, user: Mapping, item_id: int) -> None:
    """Give an item back without grading it (it comes round again later)."""
    require(user, "grade")
    with store.transaction():
        sql.release(store, user["id"], item_id)


def progress(
    store: Store, user: Mapping, modality: str | None = None, cohort: str | None = None
) -> tuple[int, int]:
    """(items in this queue's scope, of those this reader has graded)."""
    require(user, "grade")
    return sql.count_scope(store, user["id"], scope(store, modality, cohort))


# ------------------------------------------------------------------ grading
def submit(
    store: Store,
    user: Mapping,
    item_id: int,
    sh: int | None,
    pd: int | None = None,
    *,
    not_assessable: bool = False,
    reason: str | None = None,
    seconds: float | None = None,
) -> int:
    """Write a reader's grade (a new row; an edit supersedes the earlier one), audited; its id.

    The grades are checked by the store (``scale.check_pair``, the one grade rule).
    """
    require(user, "grade")
    item = store.item(item_id)
    if item is None:
        raise LabelError(f"There is no item {item_id}.")
    if not_assessable:
        sh = pd = None
        reason = (reason or "").strip()[:500] or None
    else:
        reason = None
    if seconds is not None:
        seconds = round(max(0.0, float(seconds)), 3)
    try:
        with store.transaction(BUSY_GRADE):
            previous = sql.latest_grade(store, user["id"], item_id)
            annotation_id = store.add_annotation(
                item_id,
                user["id"],
                sh,
                pd,
                modality=item["modality"],
                supersedes=previous["id"] if previous else None,
                not_assessable=not_assessable,
                reason=reason,
                seconds=seconds,
            )
            sql.release(store, user["id"], item_id)
            store.audit(
                "annotation.edit" if previous else "annotation.add",
                user_id=user["id"],
                target=str(item_id),
                detail={
                    "annotation_id": annotation_id,
                    "sh": sh,
                    "pd": pd,
                    "not_assessable": not_assessable,
                    "seconds": seconds,
                },
            )
    except StoreBusy:
        raise
    except (scale.InvalidGrade, ValueError) as exc:
        raise LabelError(str(exc)) from None
    return annotation_id


def my_grade(store: Store, user: Mapping, item_id: int) -> dict | None:
    """This reader's own grade that counts on an item (never anyone else's)."""
    require(user, "grade")
    return sql.latest_grade(store, user["id"], item_id)


def my_history(store: Store, user: Mapping, item_id: int) -> list[dict]:
    """Every grade this reader gave this item, oldest first."""
    require(user, "grade")
    return store.annotation_history(item_id, user["id"])


def recent_items(store: Store, user: Mapping, limit: int = 50) -> list[int]:
    """Items this reader graded last, oldest first: the trail that Back walks."""
    require(user, "grade")
    return sql.recent_items(store, user["id"], limit)


def suggestion(store: Store, user: Mapping, item_id: int) -> dict | None:
    """The active model's suggestion for an item, only when an admin turned pre-annotation on."""
    require(user, "grade")
    if not preannotation_enabled(store):
        return None
    row = sql.prediction(store, item_id)
    if row is None:
        return None
    probs = json.loads(row["probs_json"])
    return {
        "grade": int(row["grade"]),
        "probabilities": [float(p) for p in probs],
        "model": f"{row['modality']} v{row['version']}",
        "item": scale.MODALITIES[row["modality"]].target,
    }


# ------------------------------------------------------------------ what the reader sees
@dataclass(frozen=True)
class ItemView:
    """What the labelling page shows of one item (no other reader's grade in it)."""

    item_id: int
    modality: scale.Modality
    joint: str | None
    side: str | None
    frames: int
    fps: float | None
    height: int
    width: int
    sha256: str


def item_view(store: Store, user: Mapping, item_id: int) -> ItemView:
    """The description of an item a reader is about to grade."""
    require(user, "grade")
    item = store.item(item_id)
    if item is None:
        raise LabelError(f"There is no item {item_id}.")
    return ItemView(
        int(item["id"]),
        scale.modality(item["modality"]),
        item["joint"],
        item["side"],
        int(item["frames"]),
        item["fps"],
        int(item["height"]),
        int(item["width"]),
        item["media_sha256"],
    )


def following(
    store: Store, user: Mapping, claim: Claim, *, modality: str | None = None, cohort: str | None = None
) -> ItemView | None:
    """The item likely to come after ``claim`` (read only: no lease is taken), or None."""
    found = sql.first_available(
        store, user["id"], scope(store, modality, cohort), claim.position, iso(now_utc())
    )
    return None if found is None else item_view(store, user, found.item_id)


def warm_next(
    project: Project,
    user: Mapping,
    claim: Claim,
    *,
    modality: str | None = None,
    cohort: str | None = None,
    zoom: int = 1,
) -> threading.Thread | None:
    """Prepare the pictures of the item likely to come after ``claim`` in a background thread."""
    if not allowed(user, "grade"):
        return None
    store = project.store

    def find() -> ItemView | None:
        try:
            return following(store, user, claim, modality=modality, cohort=cohort)
        finally:
            store.close()  # this thread's own connection

    return warm_in_background(project.media, find, zoom)


# ------------------------------------------------------------------ the reference atlas
@dataclass(frozen=True)
class AtlasEntry:
    """A reference-labelled training example of one grade."""

    item_id: int
    grade: int
    sha256: str
    sh: int
    pd: int | None


def atlas(
    store: Store,
    user: Mapping,
    modality: str,
    per_grade: int = 2,
    item: str | None = None,
    exclude: int | None = None,
) -> dict[int, list[AtlasEntry]]:
    """Reference-labelled training examples of each grade of this modality's item (SH, PD, EOSS).

    ``exclude``: the item the reader is grading, which the atlas never shows (its reference
    grade would unblind the reader).
    """
    require(user, "grade")
    mod = scale.modality(modality)
    item = item or mod.target
    column = scale.GRADE_COLUMNS[item]
    if column == "pd" and not mod.doppler:
        raise LabelError(f"{mod.code} has no PD grade")
    out: dict[int, list[AtlasEntry]] = {g: [] for g in scale.GRADES}
    for row in sql.atlas_candidates(store, mod.code, column, per_grade, exclude):
        out[int(row["grade"])].append(
            AtlasEntry(int(row["item_id"]), int(row["grade"]), row["media_sha256"], int(row["sh"]), row["pd"])
        )
    return out


def definitions(modality: str) -> dict[str, dict[int, str]]:
    """The EOSS texts a reader of this modality needs: SH, and PD and the combined rule on Doppler."""
    mod = scale.modality(modality)
    items = ("SH", "PD", "EOSS") if mod.doppler else ("SH",)
    return {scale.ITEM_NAMES[i]: scale.ITEMS[i] for i in items}


def preview(modality: str, sh: int | None, pd: int | None) -> tuple[int | None, str | None]:
    """(combined score, None) for a valid choice so far, or (None, what is missing or wrong)."""
    try:
        return scale.check_pair(modality, sh, pd), None
    except scale.InvalidGrade as exc:
        return None, str(exc)
