"""The Reader-study page's results: each reader's latest grades and each active model's
predictions against the reference, through ``rascore.evaluate.reader_study`` (cached while the
store, its annotations and its users are unchanged)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rascore import scale
from rascore.evaluate import UndefinedMetricWarning, reader_study
from rascore.permissions import ACTIONS, ROLES, require
from rascore.services.dashboard import cache
from rascore.services.dashboard.sections import (
    N_BOOT,
    TEST_COHORTS,
    ModelRef,
    active_models,
    reference_grades,
)
from rascore.store import Store, results

# whose grades make the reference: the roles that adjudicate
REFERENCE_ROLES: tuple[str, ...] = tuple(r for r in ROLES if r in ACTIONS["adjudicate"])


@dataclass
class ReaderResults:
    """Readers and models against the reference on the test items of a modality (or all four)."""

    modality: str | None
    cohorts: tuple[str, ...]
    n_reference: int
    study: dict
    models: dict[str, ModelRef]
    excluded_readers: list[str]


def _reader_inputs(
    store: Store, modality: str | None, cohorts: Sequence[str], include_reference_readers: bool
) -> tuple:
    """(reference, reads, levels, models, predictions, excluded readers, patients) of a study."""
    codes = [scale.modality(modality).code] if modality else list(scale.MODALITIES)
    reference: dict[int, int] = {}
    for code in codes:
        for cohort in cohorts:
            reference.update(reference_grades(store, code, cohort))
    patients = dict(zip(reference, results.patients(store, list(reference))))
    reads: dict[str, dict[int, int]] = {}
    levels: dict[str, str] = {}
    excluded: set[str] = set()
    for row in store.latest_annotations():
        item = int(row["item_id"])
        if item not in reference or row["not_assessable"] or row["combined"] is None:
            continue
        if row["role"] in REFERENCE_ROLES and not include_reference_readers:
            excluded.add(row["reader"])
            continue
        # combined is the item's target grade: SH on greyscale items, EOSS on Doppler ones
        reads.setdefault(row["reader"], {})[item] = int(row["combined"])
        levels[row["reader"]] = row["level"] or "unspecified"
    active = active_models(store)
    models: dict[str, ModelRef] = {}
    preds: dict[str, dict[int, int]] = {}
    for code in codes:
        if code not in active:
            continue
        model = active[code]
        grades: dict[int, int] = {}
        for cohort in cohorts:
            ids, predicted, _ = results.predictions(store, model.id, cohort)
            grades.update({int(i): int(g) for i, g in zip(ids, predicted) if int(i) in reference})
        models[model.label] = model
        preds[model.label] = grades
    return reference, reads, levels, models, preds, sorted(excluded), patients


def reader_results(
    store: Store,
    user: Mapping,
    modality: str | None = None,
    cohorts: Sequence[str] = TEST_COHORTS,
    include_reference_readers: bool = False,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> ReaderResults:
    """Each reader's latest grades and each active model's predictions against the reference.

    Readers are scored on the test items they graded (target grade: SH on greyscale, combined
    EOSS on Doppler). Experts and admins are left out unless ``include_reference_readers``: their
    grades make the reference, so they would be scored against themselves. Model-reader
    comparisons resample patients (each item's patient pseudonym from the store).
    """
    require(user, "view_results")
    cohorts = tuple(scale.cohort(c) for c in cohorts)
    code = scale.modality(modality).code if modality else None

    def compute() -> ReaderResults:
        reference, reads, levels, models, preds, excluded, patients = _reader_inputs(
            store, code, cohorts, include_reference_readers
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            study = reader_study(reference, reads, levels, preds, n_boot=n_boot, seed=seed, patients=patients)
        cache.count("reader_study_computed")
        return ReaderResults(code, cohorts, len(reference), study, models, excluded)

    return cache.cached(
        store, "readers", (code, cohorts, include_reference_readers, n_boot, seed), compute, with_readers=True
    )
