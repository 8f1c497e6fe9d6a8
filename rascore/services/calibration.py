"""Reader calibration: a reader grades reference-graded items one by one and, after each, sees the
reference grade, whether they matched, the EOSS definitions of the levels in dispute and an atlas
example of the reference level; they pass when their agreement with the reference reaches the
set's target.

The stop rule: quadratic weighted kappa (``rascore.evaluate.agreement.weighted_kappa``) of the
reader's last ``window_n`` reads against the current reference grades, on the set's grade (SH, PD
or the combined EOSS; on a greyscale item the combined grade is SH). The reader passes once they
have at least ``window_n`` reads and that kappa is at least ``target_kappa``; then nothing more is
served. Each item is read once (the feedback shows its answer), in position order; a reader who
reads every item without passing has used the set up (an admin may attach another set to the
study). An undefined kappa (e.g. a window of one grade only) never passes, and says why.

Calibration items never count anywhere else: calibration reads are a table of their own, never
annotations (so never in the labelling queue's done list, agreement, adjudication or the reference
standard), a calibration item can never be a study case (refused both ways by the schema), and the
reference atlas never shows one (``rascore.store.labelling.atlas_candidates``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from rascore import scale
from rascore.evaluate.agreement import weighted_kappa
from rascore.evaluate.undefined import UndefinedMetricWarning, reason_of
from rascore.permissions import allowed, require
from rascore.services import labelling
from rascore.store import Store, StoreError
from rascore.store import calibration as sql
from rascore.store.labelling import iso, now_utc

DEFAULT_TARGET_KAPPA = 0.8
DEFAULT_WINDOW = 20
EXAMPLES = 2  # atlas examples of the reference level shown with the feedback


class CalibrationError(ValueError):
    """A calibration action refused, with a message a person can act on."""


class CalibrationRequired(CalibrationError):
    """The reader has not passed the calibration set a study requires."""


@dataclass(frozen=True)
class CalibrationTask:
    """The calibration item due: its number among the set's items, and when it was served."""

    set_id: int
    item_id: int
    number: int
    total: int
    served_at: str


@dataclass(frozen=True)
class CurvePoint:
    """Kappa over the window ending at one read (NaN and the reason where undefined)."""

    read: int
    item_id: int
    matched: bool
    kappa: float
    reason: str | None


@dataclass(frozen=True)
class CalibrationStatus:
    """Where a reader stands on a set; ``curve`` only for those who design studies."""

    set_id: int
    reader_id: int
    reads: int
    items: int
    window_n: int
    target_kappa: float
    kappa: float
    reason: str | None
    passed: bool
    used_up: bool
    curve: tuple[CurvePoint, ...] | None


@dataclass(frozen=True)
class Difference:
    """One graded item (SH, PD or EOSS) on which the read differs from the reference, with the
    EOSS definition of both levels."""

    item: str
    reference: int
    read: int
    reference_definition: str
    read_definition: str


@dataclass(frozen=True)
class Feedback:
    """What a reader sees after a calibration read."""

    item_id: int
    grade: str
    reference: int
    read: int
    matched: bool
    differences: tuple[Difference, ...]
    examples: tuple[labelling.AtlasEntry, ...]
    status: CalibrationStatus


def _item_of(grade: str, mod: scale.Modality) -> str:
    """The item a set's grade means on this modality: the combined EOSS is SH on greyscale."""
    return "SH" if grade == "EOSS" and not mod.doppler else grade


def _value(row: Mapping, grade: str, prefix: str = "") -> int | None:
    value = row[prefix + scale.GRADE_COLUMNS[grade]]
    return None if value is None else int(value)


# ------------------------------------------------------------------ sets (admin)
def exists(store: Store, set_id: int) -> bool:
    """Whether a calibration set with this id exists."""
    return sql.calibration_set(store, set_id) is not None


def create_set(
    store: Store,
    actor: Mapping,
    name: str,
    items: Sequence[int],
    *,
    grade: str = "EOSS",
    target_kappa: float = DEFAULT_TARGET_KAPPA,
    window_n: int = DEFAULT_WINDOW,
    now: datetime | None = None,
) -> int:
    """Create a calibration set of reference-graded items, read in the order given (created
    ``now``, by default the present); audited."""
    require(actor, "design_study")
    name = (name or "").strip()
    if not name:
        raise CalibrationError("Give the calibration set a name.")
    if grade not in scale.GRADE_COLUMNS:
        raise CalibrationError(f"The grade must be one of {', '.join(scale.GRADE_COLUMNS)}.")
    ids = [int(i) for i in items]
    if len(set(ids)) != len(ids):
        raise CalibrationError("An item is listed twice.")
    if not 0 < float(target_kappa) <= 1:
        raise CalibrationError("The target kappa is above 0 and at most 1.")
    if int(window_n) < 2 or int(window_n) > len(ids):
        raise CalibrationError(f"The window is 2 to {len(ids)} reads (the number of items).")
    clash = sorted(sql.study_case_ids(store, ids))
    if clash:
        raise CalibrationError(
            f"Items {', '.join(map(str, clash[:5]))} are study cases: they cannot calibrate."
        )
    refs: list[int] = []
    for item_id in ids:
        item, ref = store.item(item_id), store.reference(item_id)
        if item is None:
            raise CalibrationError(f"There is no item {item_id}.")
        if ref is None:
            raise CalibrationError(f"Item {item_id} has no reference grade: a calibration item needs one.")
        if grade == "PD" and not scale.modality(item["modality"]).doppler:
            raise CalibrationError(f"Item {item_id} is greyscale: a PD set holds power Doppler items only.")
        refs.append(_value(ref, grade))
    if len(set(refs)) < 2:
        raise CalibrationError("The items need at least two reference grades (kappa is undefined otherwise).")
    try:
        with store.transaction():
            set_id = sql.create_set(
                store,
                name=name,
                grade=grade,
                target_kappa=float(target_kappa),
                window_n=int(window_n),
                item_ids=ids,
                created_by=actor["id"],
                created_at=None if now is None else iso(now),
            )
            store.audit(
                "calibration.create",
                user_id=actor["id"],
                target=str(set_id),
                detail={"name": name, "items": len(ids), "target_kappa": target_kappa, "window_n": window_n},
            )
    except StoreError as exc:
        raise CalibrationError(str(exc)) from None
    return set_id


def calibration_sets(store: Store, user: Mapping) -> list[dict]:
    """Every calibration set with its number of items."""
    require(user, "calibrate")
    return sql.calibration_sets(store)


def _set(store: Store, set_id: int) -> dict:
    row = sql.calibration_set(store, set_id)
    if row is None:
        raise CalibrationError(f"There is no calibration set {set_id}.")
    return row


# ------------------------------------------------------------------ status and the stop rule
def _kappa(reads: Sequence[Mapping], grade: str) -> tuple[float, str | None]:
    """Quadratic weighted kappa of reads against their reference on ``grade``, and the reason
    when undefined (no warning: the reason is returned)."""
    pairs = [(_value(r, grade, "ref_"), _value(r, grade)) for r in reads]
    pairs = [p for p in pairs if p[0] is not None and p[1] is not None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        value = weighted_kappa([p[0] for p in pairs], [p[1] for p in pairs], "quadratic")
    return float(value), reason_of(value)


def _status(store: Store, calib: Mapping, reader_id: int, with_curve: bool) -> CalibrationStatus:
    reads = sql.reads(store, calib["id"], reader_id)
    window, grade = int(calib["window_n"]), calib["grade"]
    kappa, reason = _kappa(reads[-window:], grade)
    passed = len(reads) >= window and not math.isnan(kappa) and kappa >= float(calib["target_kappa"])
    curve = None
    if with_curve:
        points = []
        for k in range(1, len(reads) + 1):
            value, why = _kappa(reads[max(0, k - window) : k], grade)
            row = reads[k - 1]
            points.append(
                CurvePoint(
                    k, int(row["item_id"]), _value(row, grade) == _value(row, grade, "ref_"), value, why
                )
            )
        curve = tuple(points)
    return CalibrationStatus(
        set_id=int(calib["id"]),
        reader_id=int(reader_id),
        reads=len(reads),
        items=int(calib["items"]),
        window_n=window,
        target_kappa=float(calib["target_kappa"]),
        kappa=kappa,
        reason=reason,
        passed=passed,
        used_up=not passed and len(reads) >= int(calib["items"]),
        curve=curve,
    )


def calibration_status(
    store: Store, user: Mapping, set_id: int, reader: Mapping | None = None
) -> CalibrationStatus:
    """A reader's standing on a set: kappa over the last window of reads, passed or not; another
    reader's standing and the curve (kappa over reads) only for those who design studies."""
    require(user, "calibrate")
    designer = allowed(user, "design_study")
    if reader is not None and reader["id"] != user["id"] and not designer:
        require(user, "design_study")
    return _status(store, _set(store, set_id), int((reader or user)["id"]), designer)


def _kappa_text(status: CalibrationStatus) -> str:
    return "undefined" if math.isnan(status.kappa) else f"{status.kappa:.2f}"


def require_passed(store: Store, user: Mapping, set_id: int) -> None:
    """Raise CalibrationRequired unless this reader has passed the calibration set."""
    calib = _set(store, set_id)
    status = _status(store, calib, int(user["id"]), False)
    if status.passed:
        return
    raise CalibrationRequired(
        f"Pass the calibration set {calib['name']!r} first: a weighted kappa of at least "
        f"{status.target_kappa:.2f} over your last {status.window_n} reads is needed "
        f"({status.reads} reads so far, kappa {_kappa_text(status)})."
        + (" You have read every item without reaching it; ask an admin." if status.used_up else "")
    )


# ------------------------------------------------------------------ reading with feedback
def next_calibration_item(
    store: Store, user: Mapping, set_id: int, *, now: datetime | None = None
) -> CalibrationTask | None:
    """The next item of the set for this reader, or None when they passed or read every item."""
    require(user, "calibrate")
    calib = _set(store, set_id)
    if _status(store, calib, int(user["id"]), False).passed:
        return None
    row = sql.next_unread(store, set_id, user["id"])
    if row is None:
        return None
    return CalibrationTask(
        set_id, int(row["item_id"]), int(row["position"]) + 1, int(calib["items"]), iso(now or now_utc())
    )


def _differences(mod: scale.Modality, row: Mapping) -> tuple[Difference, ...]:
    """Each graded item of a read (SH, and PD and EOSS on Doppler) that differs from the reference."""
    items = mod.reader_items + (("EOSS",) if mod.doppler else ())
    out = []
    for item in items:
        mine, truth = _value(row, item), _value(row, item, "ref_")
        if mine is not None and truth is not None and mine != truth:
            out.append(Difference(item, truth, mine, scale.ITEMS[item][truth], scale.ITEMS[item][mine]))
    return tuple(out)


def record_calibration(
    store: Store,
    user: Mapping,
    set_id: int,
    item_id: int,
    sh: int | None,
    pd: int | None = None,
    *,
    started_at: str | None = None,
    now: datetime | None = None,
) -> Feedback:
    """Save the reader's grade of the item due (checked by ``scale.check_pair``) and return the
    feedback: reference grade, match, the definitions in dispute, atlas examples, the new status."""
    require(user, "calibrate")
    moment = iso(now or now_utc())
    with store.transaction():
        calib = _set(store, set_id)
        if _status(store, calib, int(user["id"]), False).passed:
            raise CalibrationError(f"You have passed the calibration set {calib['name']!r}.")
        due = sql.next_unread(store, set_id, user["id"])
        if due is None:
            raise CalibrationError(f"You have read every item of {calib['name']!r}.")
        if int(item_id) != int(due["item_id"]):
            raise CalibrationError(f"Item {due['item_id']} is due now (items are read in order).")
        mod = scale.modality(due["modality"])
        try:
            combined = scale.check_pair(mod, sh, pd)
        except scale.InvalidGrade as exc:
            raise CalibrationError(str(exc)) from None
        read_id = sql.add_read(
            store,
            set_id=set_id,
            user_id=user["id"],
            item_id=int(item_id),
            sh=int(sh),
            pd=None if pd is None else int(pd),
            combined=combined,
            started_at=started_at,
            saved_at=moment,
        )
        store.audit(
            "calibration.read", user_id=user["id"], target=f"{set_id}:{item_id}", detail={"read_id": read_id}
        )
    grade = calib["grade"]
    row = sql.reads(store, set_id, user["id"])[-1]
    reference, read = _value(row, grade, "ref_"), _value(row, grade)
    item = _item_of(grade, mod)
    examples = labelling.atlas(store, user, mod.code, per_grade=EXAMPLES, item=item, exclude=int(item_id))
    return Feedback(
        item_id=int(item_id),
        grade=item,
        reference=reference,
        read=read,
        matched=reference == read,
        differences=_differences(mod, row),
        examples=tuple(examples[reference]),
        status=calibration_status(store, user, set_id),
    )
