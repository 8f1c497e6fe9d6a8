"""Adjudication: items on which experts disagree, their grades side by side, the reference decided,
and pairwise agreement (weighted kappa on shared items) between readers.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rascore import scale
from rascore.evaluate import UndefinedMetricWarning, weighted_kappa
from rascore.permissions import require
from rascore.store import Store, StoreBusy, accounts
from rascore.store import labelling as sql

GRADE_ITEMS: tuple[str, ...] = ("target", "SH", "PD", "EOSS")
BUSY_REFERENCE = (
    "The database is busy (locked by another write); the reference was not saved. Press Set reference again."
)


class AdjudicationError(ValueError):
    """A reference the EOSS or the store refuses, with a message an expert can act on."""


def _modalities(modality: str | None) -> tuple[str, ...]:
    return (scale.modality(modality).code,) if modality else tuple(scale.MODALITIES)


def disagreements(
    store: Store,
    user: Mapping,
    modality: str | None = None,
    cohort: str | None = None,
    include_resolved: bool = False,
) -> list[dict]:
    """Items whose expert grades differ (SH, PD, combined, or assessable or not), open ones only
    unless ``include_resolved``; each with what differs and the current reference's method."""
    require(user, "adjudicate")
    rows = sql.expert_disagreements(
        store, _modalities(modality), scale.cohort(cohort) if cohort else None, include_resolved
    )
    for row in rows:
        row["differs_on"] = ", ".join(
            name
            for name, key in (
                ("SH", "differ_sh"),
                ("PD", "differ_pd"),
                ("EOSS", "differ_combined"),
                ("assessable", "differ_assessable"),
            )
            if row[key]
        )
        row["resolved"] = bool(row["resolved"])
    return rows


def grades(store: Store, user: Mapping, item_id: int, experts_only: bool = True) -> list[dict]:
    """The grades that count on one item, readers named (experts first); for adjudicators only."""
    require(user, "view_grades")
    rows = sql.item_grades(store, item_id)
    return [r for r in rows if r["role"] == "expert"] if experts_only else rows


def current_reference(store: Store, user: Mapping, item_id: int) -> dict | None:
    """The item's reference label now, with who decided it."""
    require(user, "view_grades")
    row = store.reference(item_id)
    if row is not None and row["decided_by"] is not None:
        decider = accounts.user_by_id(store, row["decided_by"])
        row["decided_by_name"] = decider["name"] if decider else None
    elif row is not None:
        row["decided_by_name"] = None
    return row


def set_reference(
    store: Store, user: Mapping, item_id: int, sh: int, pd: int | None, note: str | None = None
) -> int:
    """Decide an item's reference standard by adjudication (expert or admin; audited)."""
    require(user, "adjudicate")
    item = store.item(item_id)
    if item is None:
        raise AdjudicationError(f"There is no item {item_id}.")
    try:
        combined = scale.check_pair(item["modality"], sh, pd)
        with store.transaction(BUSY_REFERENCE):
            previous = store.reference(item_id)
            ref_id = store.set_reference(
                item_id, sh, pd, "adjudication", decided_by=user["id"], modality=item["modality"]
            )
            store.audit(
                "reference.adjudicate",
                user_id=user["id"],
                target=str(item_id),
                detail={
                    "reference_id": ref_id,
                    "sh": sh,
                    "pd": pd,
                    "combined": combined,
                    "previous": (
                        {k: previous[k] for k in ("sh", "pd", "combined", "method")} if previous else None
                    ),
                    "note": (note or "").strip()[:500] or None,
                },
            )
    except (scale.InvalidGrade, StoreBusy) as exc:
        raise AdjudicationError(str(exc)) from None
    return ref_id


@dataclass
class Agreement:
    """Pairwise weighted kappa between readers on their shared items."""

    readers: list[str]
    kappa: np.ndarray  # (n, n), NaN where undefined or too few shared items
    shared: np.ndarray  # (n, n) number of items both graded
    item: str
    weights: str

    def pairs(self) -> list[dict]:
        """One row per reader pair (upper triangle)."""
        return [
            {
                "reader_a": a,
                "reader_b": b,
                "shared_items": int(self.shared[i, j]),
                "kappa": None if np.isnan(self.kappa[i, j]) else float(self.kappa[i, j]),
            }
            for (i, a), (j, b) in itertools.combinations(enumerate(self.readers), 2)
        ]


_AGREEMENT_CACHE: dict[tuple, Agreement] = {}


def pairwise_agreement(
    store: Store,
    user: Mapping,
    modality: str | None = None,
    cohort: str | None = None,
    item: str = "target",
    roles: tuple[str, ...] = ("reader", "expert", "admin"),
    weights: str = "linear",
    min_shared: int = 5,
) -> Agreement:
    """Weighted kappa (rascore.evaluate.weighted_kappa) for every pair of readers on shared items.

    ``item``: "target" (SH on greyscale, combined EOSS on Doppler, what the models learn), "SH",
    "PD" (Doppler items only) or "EOSS". Pairs sharing fewer than ``min_shared`` items get NaN.
    Recomputed only when a grade has been added since the last call.
    """
    require(user, "view_grades")
    if item not in GRADE_ITEMS:
        raise ValueError(f"unknown item {item!r}; expected one of {', '.join(GRADE_ITEMS)}")
    mods = _modalities(modality)
    key = (str(store.path), sql.annotation_fingerprint(store), mods, cohort, item, roles, weights, min_shared)
    if key in _AGREEMENT_CACHE:
        return _AGREEMENT_CACHE[key]
    rows = sql.grade_table(store, mods, scale.cohort(cohort) if cohort else None, roles)
    grades_by_reader: dict[str, dict[int, int]] = {}
    for row in rows:
        value = _value(row, item)
        if value is not None:
            grades_by_reader.setdefault(row["reader"], {})[int(row["item_id"])] = value
    readers = sorted(grades_by_reader)
    n = len(readers)
    kappa = np.full((n, n), np.nan)
    shared = np.zeros((n, n), dtype=int)
    for i in range(n):
        shared[i, i] = len(grades_by_reader[readers[i]])
        kappa[i, i] = 1.0 if shared[i, i] >= min_shared else np.nan
    with warnings.catch_warnings():  # an undefined kappa (both constant and equal) is NaN here
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for i, j in itertools.combinations(range(n), 2):
            first, second = grades_by_reader[readers[i]], grades_by_reader[readers[j]]
            common = sorted(first.keys() & second.keys())
            shared[i, j] = shared[j, i] = len(common)
            if len(common) >= min_shared:
                value = weighted_kappa(
                    [first[k] for k in common], [second[k] for k in common], weights=weights
                )
                kappa[i, j] = kappa[j, i] = value
    result = Agreement(readers, kappa, shared, item, weights)
    if len(_AGREEMENT_CACHE) > 64:
        _AGREEMENT_CACHE.clear()
    _AGREEMENT_CACHE[key] = result
    return result


def _value(row: Mapping, item: str) -> int | None:
    """The grade of one annotation row for the chosen item."""
    if item == "target":
        return row["combined"] if scale.MODALITIES[row["modality"]].doppler else row["sh"]
    if item == "SH":
        return row["sh"]
    if item == "PD":
        return row["pd"]
    return row["combined"]
