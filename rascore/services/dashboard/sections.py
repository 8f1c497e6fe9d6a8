"""One modality and test cohort: the models' figures against the reference (a ``Section``).

Per modality and test cohort, the current reference labels (the modality's target grade: SH for
greyscale, combined EOSS for power Doppler) are paired with the stored predictions of the active
(or chosen) model versions, and every figure is computed with ``rascore.evaluate``: per-grade
one-vs-rest AUC with 95% percentile-bootstrap CIs, ROC points, confusion matrix, weighted kappa,
reliability curve and ECE (all from ``rascore.evaluate.report``), and the paired AUC test between
versions scored on the same items. Where the items have patient ids the intervals resample
patients (all of a drawn patient's items kept) and the test between versions is Obuchowski's
clustered one, per grade and for the macro average; ``Section.resampled`` says so in one line.

Undefined numbers stay undefined: NaN with the reason from ``rascore.evaluate`` (no case of a
grade, every case of one grade...), never a value made up to fill a table.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from rascore import scale
from rascore.evaluate import (
    GradeAUC,
    ROCPoints,
    ReliabilityCurve,
    UndefinedMetricWarning,
    reliability_curve,
    roc_points,
)
from rascore.evaluate.clusters import Clusters
from rascore.evaluate.obuchowski import paired_auc_tests
from rascore.evaluate.report import MacroAUC, model_reports
from rascore.permissions import require
from rascore.services.dashboard import cache
from rascore.store import Store, registry, results

TEST_COHORTS: tuple[str, ...] = scale.TEST_COHORTS  # test1, test2, test3
# the study's test cohorts are always reported (an empty one says so); another only where it holds items
ALWAYS_REPORTED: tuple[str, ...] = ("test1", "test2")


def reported_cohorts(store: Store) -> tuple[str, ...]:
    """The test cohorts the dashboard reports: test1 and test2, and test3 where it holds items."""
    held = results.held_cohorts(store)
    return tuple(c for c in TEST_COHORTS if c in ALWAYS_REPORTED or c in held)


N_BOOT = 1000


@dataclass(frozen=True)
class ModelRef:
    """One model version as the dashboards name it."""

    id: int
    modality: str
    version: int
    active: bool

    @property
    def label(self) -> str:
        """E.g. 'SGS v3'."""
        return f"{self.modality} v{self.version}"


def version_choices(store: Store, user: Mapping, modality: str) -> list[ModelRef]:
    """The versions of a modality, newest first (for choosing which to compare)."""
    require(user, "view_results")
    return [
        ModelRef(r["id"], r["modality"], r["version"], bool(r["active"]))
        for r in registry.list_versions(store, modality)
    ]


def active_models(store: Store) -> dict[str, ModelRef]:
    """The active version of each modality that has one."""
    out = {}
    for code in scale.MODALITIES:
        row = registry.active_version(store, code)
        if row is not None:
            out[code] = ModelRef(row["id"], code, row["version"], True)
    return out


@dataclass
class ModelFigures:
    """One model version on one modality x cohort: every figure and the arrays behind them."""

    model: ModelRef
    item_ids: np.ndarray
    y: np.ndarray
    probs: np.ndarray
    predicted: np.ndarray
    n_missing: int  # reference items of this cohort the version has no prediction for
    auc: dict[int, GradeAUC] = field(default_factory=dict)
    macro_auc: float = float("nan")
    accuracy: float = float("nan")
    kappa_linear: float = float("nan")
    kappa_quadratic: float = float("nan")
    ece: float = float("nan")
    confusion: np.ndarray | None = None
    baseline: dict | None = None  # stored PD-reference figures: the PD-only colour rule's, the model's
    calibration: dict | None = None  # stored ECE before/after the sampling-prior correction
    crops: dict | None = None  # stored joint-crop counts (crop, fallback, none)
    patients: list | None = None  # patient pseudonym per item (None where an item has none)
    macro: MacroAUC | None = None  # the macro AUC with the grades it averaged
    resampled: str = ""  # what the intervals resampled, in one line

    @property
    def n(self) -> int:
        """Cases scored: reference items with a stored prediction."""
        return int(self.y.size)

    @cached_property
    def roc(self) -> dict[int, ROCPoints]:
        """ROC points per grade (computed when first shown; empty with a reason if undefined)."""
        if not self.n:
            return {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            return {g: roc_points(self.y, self.probs, g) for g in scale.GRADES}

    @cached_property
    def reliability(self) -> ReliabilityCurve | None:
        """Top-label reliability curve in 10 bins (computed when first shown)."""
        return reliability_curve(self.y, self.probs) if self.n else None


@dataclass
class Section:
    """One modality and test cohort: the reference, the models' figures and DeLong between them."""

    modality: str
    cohort: str
    target: str
    n_reference: int
    class_counts: list[int]
    models: list[ModelFigures]
    n_boot: int
    fingerprint: tuple = ()

    @property
    def empty(self) -> bool:
        """True when no model has a prediction on a reference item here."""
        return not any(m.n for m in self.models)

    @property
    def resampled(self) -> str:
        """One line per distinct set of items: what the intervals resampled."""
        return "; ".join(dict.fromkeys(m.resampled for m in self.models if m.n and m.resampled))

    @cached_property
    def delong(self) -> list[dict]:
        """The paired AUC test per grade and macro between each pair of models, on the items
        both scored (Obuchowski's clustered test where the items have patient ids)."""
        return delong_between(self.models)


def reference_grades(store: Store, modality: str, cohort: str) -> dict[int, int]:
    """item id -> reference target grade of one modality and cohort (current labels)."""
    mod = scale.modality(modality)
    column = 2 if mod.target == "EOSS" else 1
    return {int(r[0]): int(r[column]) for r in results.reference_rows(store, mod.code, cohort)}


def _stored_entry(store: Store, version_id: int, cohort: str) -> dict:
    """A version's stored test figures for one cohort (written by ``rascore evaluate``), or {}."""
    return results.stored_test_figures(
        (registry.get_version_by_id(store, version_id) or {}).get("metrics"), cohort
    )


def _stored_baseline(entry: dict) -> dict | None:
    """The stored PD-reference figures of a Doppler version: {"pd_colour_rule": ..., "model": ...}."""
    if not entry.get("pd_colour_rule"):
        return None
    return {
        "pd_colour_rule": entry["pd_colour_rule"],
        "model": entry.get("model_pd_reference"),
        "pd_class_counts": entry.get("pd_class_counts"),
    }


def _load_model(store: Store, model: ModelRef, cohort: str, reference: dict[int, int]) -> ModelFigures:
    ids, grades, probs = results.predictions(store, model.id, cohort)
    keep = np.fromiter((int(i) in reference for i in ids), bool, ids.size)
    ids, grades, probs = ids[keep], grades[keep], probs[keep]
    y = np.fromiter((reference[int(i)] for i in ids), np.int64, ids.size)
    stored = _stored_entry(store, model.id, cohort)
    baseline = _stored_baseline(stored) if scale.modality(model.modality).doppler else None
    return ModelFigures(
        model,
        ids,
        y,
        probs,
        grades,
        len(reference) - int(ids.size),
        baseline=baseline,
        patients=results.patients(store, ids.tolist()),
        calibration=stored.get("calibration"),
        crops=stored.get("crops"),
    )


def compute_figures(figures: Sequence[ModelFigures], n_boot: int = N_BOOT, seed: int = 0) -> None:
    """Fill in the models' AUCs with CIs, macro AUC, accuracy, kappas, ECE and confusion (in place).

    All from ``rascore.evaluate.report``; models scored on the same items share one bootstrap
    stream, which resamples patients where the items have patient ids. ROC points,
    reliability curves and the tests between versions are computed when first shown.
    """
    groups: dict[bytes, list[ModelFigures]] = {}
    for fig in figures:
        groups.setdefault(fig.item_ids.tobytes(), []).append(fig)
    for members in groups.values():
        first = members[0]
        if not first.n:
            continue
        reports = model_reports(
            first.y,
            {m.model.label: m.probs for m in members},
            {m.model.label: m.predicted for m in members},
            n_boot=n_boot,
            seed=seed,
            patients=first.patients,
        )
        for m in members:
            r = reports[m.model.label]
            m.auc, m.macro, m.macro_auc = r.auc, r.macro, r.macro_auc
            m.accuracy, m.confusion, m.ece = r.accuracy, r.confusion, r.ece
            m.kappa_linear, m.kappa_quadratic = r.kappa_linear, r.kappa_quadratic
            m.resampled = r.resampled


def delong_between(figures: Sequence[ModelFigures]) -> list[dict]:
    """The paired AUC test per grade and for the macro average between each pair of models, on
    the items both scored: Obuchowski's clustered test where they have patient ids, else DeLong."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for a, b in itertools.combinations([m for m in figures if m.n], 2):
            common, ia, ib = np.intersect1d(a.item_ids, b.item_ids, return_indices=True)
            if not common.size:
                continue
            patients = [a.patients[i] for i in ia] if a.patients is not None else None
            y, pa, pb = a.y[ia], a.probs[ia], b.probs[ib]
            for row in paired_auc_tests(y, pa, pb, patients):
                rows.append(
                    {
                        "a": a.model.label,
                        "b": b.model.label,
                        "n": int(common.size),
                        "n_clusters": Clusters.of(patients, int(common.size)).n_clusters,
                        **row,
                    }
                )
    return rows


def _build_section(
    store: Store,
    modality: str,
    cohort: str,
    models: Sequence[ModelRef],
    n_boot: int,
    seed: int,
    fingerprint: tuple,
) -> Section:
    """Load and compute one section's figures (no cache)."""
    mod = scale.modality(modality)
    reference = reference_grades(store, mod.code, cohort)
    counts = np.bincount(np.fromiter(reference.values(), np.int64, len(reference)), minlength=4)
    figures = [_load_model(store, m, cohort, reference) for m in models]
    compute_figures(figures, n_boot, seed)
    return Section(
        mod.code, cohort, mod.target, len(reference), counts.tolist(), figures, n_boot, fingerprint
    )


def _with_refs(sec: Section, models: Sequence[ModelRef]) -> Section:
    """The section with its models' references refreshed (an activation changes no figure)."""
    if [m.model for m in sec.models] == list(models):
        return sec
    figures = [replace(f, model=m) for f, m in zip(sec.models, models)]
    return replace(sec, models=figures)


def cached_section(
    store: Store, modality: str, cohort: str, models: Sequence[ModelRef], n_boot: int, seed: int
) -> Section:
    """A section from the cache when its own fingerprint is unchanged, else recomputed."""
    ids = tuple(m.id for m in models)
    key = (str(store.path), modality, cohort, ids, n_boot, seed)
    fingerprint = results.section_fingerprint(store, modality, cohort, ids)
    sec, reused = cache.reuse_section(
        key, fingerprint, lambda: _build_section(store, modality, cohort, models, n_boot, seed, fingerprint)
    )
    return _with_refs(sec, models) if reused else sec


def section(
    store: Store,
    user: Mapping,
    modality: str,
    cohort: str,
    version_ids: Sequence[int] | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> Section:
    """One modality and test cohort with the chosen versions (default: the active one)."""
    require(user, "view_results")
    code = scale.modality(modality).code
    cohort = scale.cohort(cohort)
    args = (code, cohort, tuple(version_ids) if version_ids is not None else None, n_boot, seed)

    def compute() -> Section:
        choices = {m.id: m for m in version_choices(store, user, code)}
        if version_ids is None:
            models = [m for m in choices.values() if m.active]
        else:
            models = [choices[i] for i in version_ids if i in choices]
        return cached_section(store, code, cohort, models, n_boot, seed)

    return cache.cached(store, "section", args, compute)
