"""The Dashboard's overview: every modality's active model on every test cohort, and the
modalities compared per joint (cached while the store is unchanged, recomputed per section)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rascore import scale
from rascore.permissions import require
from rascore.services.dashboard import cache
from rascore.services.dashboard.crossmodality import cross_modality
from rascore.services.dashboard.sections import (
    N_BOOT,
    Section,
    active_models,
    cached_section,
    reported_cohorts,
)
from rascore.store import Store


@dataclass
class Overview:
    """Every modality's active model on every test cohort, and the modalities compared per joint."""

    sections: list[Section]
    cross: list[dict]
    cross_notes: list[str]
    missing: list[str]  # modalities without an active model


def overview(
    store: Store,
    user: Mapping,
    n_boot: int = N_BOOT,
    seed: int = 0,
    cohorts: Sequence[str] | None = None,
) -> Overview:
    """The active models of all modalities on the test cohorts (cached, recomputed per section).

    ``cohorts``: None reports test1 and test2, and test3 where the project holds items of it.
    """
    require(user, "view_results")
    cohorts = tuple(scale.cohort(c) for c in (reported_cohorts(store) if cohorts is None else cohorts))

    def compute() -> Overview:
        active = active_models(store)
        sections = [
            cached_section(store, code, cohort, [model], n_boot, seed)
            for code, model in active.items()
            for cohort in cohorts
        ]
        cross, notes = cross_modality(store, sections)
        return Overview(sections, cross, notes, [c for c in scale.MODALITIES if c not in active])

    return cache.cached(store, "overview", (n_boot, seed, cohorts), compute)
