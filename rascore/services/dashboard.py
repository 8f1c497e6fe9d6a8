"""Results for the Dashboard and Reader-study pages: models and readers against the reference.

Per modality and test cohort, the current reference labels (the modality's target grade: SH for
greyscale, combined EOSS for power Doppler) are paired with the stored predictions of the active
(or chosen) model versions, and every figure is computed with ``rascore.evaluate``: per-grade
one-vs-rest AUC with 95% percentile-bootstrap CIs, ROC points, confusion matrix, weighted kappa,
reliability curve and ECE (all from ``rascore.evaluate.report``), and the paired AUC test between
versions scored on the same items. Where the items have patient ids the intervals resample
patients (all of a drawn patient's items kept) and the test between versions is Obuchowski's
clustered one, per grade and for the macro average; ``Section.resampled`` says so in one line.

Between modalities, the active models are compared on every matched joint: items of the same
patient, joint and side (or the same file). Their own targets differ (SH for greyscale, combined
EOSS for Doppler), so both are scored against one joint-level reference, the combined EOSS of the
joint, and a greyscale model's SH probabilities are a predictor of it like any other. A greyscale
item's reference has no PD grade, so the joint's combined EOSS comes from the reference labels of
the joint's Doppler items in the same cohort (SPD and DPD; where a still and a clip of the joint
differ, the higher, since the joint shows at least what either shows), found by patient, joint
and side, or from the matched item itself when it is a Doppler item. A joint without a Doppler
reference keeps its SH reference as its combined EOSS where SH settles it whatever the PD (SH 0:
no PD can count; SH 3: already the top grade); with SH 1-2 it is counted and left out. A project
without any Doppler reference for the matched joints compares against the joint's SH instead,
and every row names its reference. The paired
per-grade test is one call (``paired_grade_test``): Obuchowski's clustered test where the
joints have patient ids (a patient's joints are correlated), DeLong's otherwise.

Caching, so that a page polling every few seconds costs almost nothing and recomputes only what
changed: (1) a cheap global fingerprint of the store (max ids and counts of reference labels,
predictions, model versions, active models, items; annotations and users for the reader study);
while it is unchanged the last result is returned as is; (2) when it changed, a fingerprint per
section (modality x cohort x model versions: its reference rows, each version's predictions in
that cohort and stored metrics) decides which sections are reloaded and recomputed; the others
are reused. ``cache_stats`` counts both, for tests and benchmarks.

Undefined numbers stay undefined: NaN with the reason from ``rascore.evaluate`` (no case of a
grade, every case of one grade...), never a value made up to fill a table.

The read-only queries (fingerprints, reference rows, bulk predictions) are in
``rascore.store.results``; the global fingerprint there is gated by SQLite's ``data_version``, so
an unchanged store costs a poll two pragmas, not a count of every table.
"""

from __future__ import annotations

import itertools
import threading
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from rascore import scale
from rascore.evaluate import (
    GradeAUC,
    ROCPoints,
    ReliabilityCurve,
    reader_study,
    reliability_curve,
    roc_points,
)
from rascore.evaluate.clusters import Clusters
from rascore.evaluate.obuchowski import paired_auc_per_grade, paired_macro_test
from rascore.evaluate.report import MacroAUC, model_reports
from rascore.evaluate.undefined import reason_of
from rascore.permissions import require
from rascore.store import Store
from rascore.store import registry, results

TEST_COHORTS: tuple[str, ...] = ("test1", "test2")
N_BOOT = 1000
REFERENCE_ROLES: tuple[str, ...] = ("expert", "admin")  # whose grades make the reference

PUBLISHED_SOURCE = (
    "He X, Wang M, Zhao C, et al. Rheumatology 2024;63(3):866-873 "
    "(published figures, not computed by RAScore)"
)
# Best model per EOSS grade (AUC of that grade against the rest), as published.
PUBLISHED_BEST: dict[int, tuple[str, float]] = {
    0: ("DPD", 0.87),
    1: ("SGS", 0.95),
    2: ("DGS", 0.74),
    3: ("SPD", 0.95),
}
# SPD against SGS, per-grade AUC, as published (cohort 1: scores 0/2/3; cohort 2: score 0).
PUBLISHED_SPD_VS_SGS: tuple[dict, ...] = (
    {"cohort": "test1", "grade": 0, "SPD": 0.82, "SGS": 0.66},
    {"cohort": "test1", "grade": 2, "SPD": 0.67, "SGS": 0.66},
    {"cohort": "test1", "grade": 3, "SPD": 0.95, "SGS": 0.75},
    {"cohort": "test2", "grade": 0, "SPD": 0.89, "SGS": 0.81},
)


# ------------------------------------------------------------------ cache
class _LRU:
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable):
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_RESULTS = _LRU(64)  # (db, what, args) -> (global fingerprint, result)
_SECTIONS = _LRU(256)  # (db, modality, cohort, versions, n_boot, seed) -> (fingerprint, Section)
_STATS: Counter = Counter()
_STATS_LOCK = threading.Lock()


def _count(name: str) -> None:
    with _STATS_LOCK:
        _STATS[name] += 1


def cache_stats() -> dict[str, int]:
    """How often results were served unchanged, and sections reused or recomputed."""
    with _STATS_LOCK:
        return dict(_STATS)


def clear_cache() -> None:
    """Forget every cached result (tests, or after the project folder changed)."""
    _RESULTS.clear()
    _SECTIONS.clear()
    with _STATS_LOCK:
        _STATS.clear()


def _cached(store: Store, what: str, args: tuple, compute: Callable[[], object], with_readers: bool = False):
    """The result of ``compute`` while the store's global fingerprint stays the same."""
    key = (str(store.path), what, args)
    fingerprint = results.fingerprint(store, with_readers)
    hit = _RESULTS.get(key)
    if hit is not None and hit[0] == fingerprint:
        _count(f"{what}_unchanged")
        return hit[1]
    value = compute()
    _RESULTS.put(key, (fingerprint, value))
    return value


# ------------------------------------------------------------------ model versions
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


# ------------------------------------------------------------------ one section's figures
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
            warnings.simplefilter("ignore")
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


def _reference(store: Store, modality: str, cohort: str) -> dict[int, int]:
    """item id -> reference target grade of one modality and cohort (current labels)."""
    mod = scale.modality(modality)
    column = 2 if mod.target == "EOSS" else 1
    return {int(r[0]): int(r[column]) for r in results.reference_rows(store, mod.code, cohort)}


def _stored_entry(store: Store, version_id: int, cohort: str) -> dict:
    """A version's stored test figures for one cohort (written by ``rascore evaluate``), or {}."""
    row = registry.get_version_by_id(store, version_id)
    entry = ((((row or {}).get("metrics") or {}).get("test") or {}).get("cohorts") or {}).get(cohort)
    return entry or {}


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
        warnings.simplefilter("ignore")
        for a, b in itertools.combinations([m for m in figures if m.n], 2):
            common, ia, ib = np.intersect1d(a.item_ids, b.item_ids, return_indices=True)
            if not common.size:
                continue
            patients = [a.patients[i] for i in ia] if a.patients is not None else None
            y, pa, pb = a.y[ia], a.probs[ia], b.probs[ib]
            found = paired_auc_per_grade(y, pa, pb, patients)
            found.append(paired_macro_test(y, pa, pb, patients))
            for row in found:
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
    store: Store, modality: str, cohort: str, models: Sequence[ModelRef], n_boot: int, seed: int
) -> Section:
    mod = scale.modality(modality)
    reference = _reference(store, mod.code, cohort)
    counts = np.bincount(np.fromiter(reference.values(), np.int64, len(reference)), minlength=4)
    figures = [_load_model(store, m, cohort, reference) for m in models]
    compute_figures(figures, n_boot, seed)
    return Section(mod.code, cohort, mod.target, len(reference), counts.tolist(), figures, n_boot)


def _with_refs(sec: Section, models: Sequence[ModelRef]) -> Section:
    """The section with its models' references refreshed (an activation changes no figure)."""
    if [m.model for m in sec.models] == list(models):
        return sec
    figures = [replace(f, model=m) for f, m in zip(sec.models, models)]
    return replace(sec, models=figures)


def _section(
    store: Store, modality: str, cohort: str, models: Sequence[ModelRef], n_boot: int, seed: int
) -> Section:
    """A section from the cache when its own fingerprint is unchanged, else recomputed."""
    ids = tuple(m.id for m in models)
    key = (str(store.path), modality, cohort, ids, n_boot, seed)
    fingerprint = results.section_fingerprint(store, modality, cohort, ids)
    hit = _SECTIONS.get(key)
    if hit is not None and hit[0] == fingerprint:
        _count("section_reused")
        return _with_refs(hit[1], models)
    _count("section_computed")
    section = _build_section(store, modality, cohort, models, n_boot, seed)
    section.fingerprint = fingerprint
    _SECTIONS.put(key, (fingerprint, section))
    return section


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
        return _section(store, code, cohort, models, n_boot, seed)

    return _cached(store, "section", args, compute)


@dataclass
class Overview:
    """Every modality's active model on every test cohort, and the modalities compared per joint."""

    sections: list[Section]
    cross: list[dict]
    cross_notes: list[str]
    missing: list[str]  # modalities without an active model


def overview(
    store: Store, user: Mapping, n_boot: int = N_BOOT, seed: int = 0, cohorts: Sequence[str] = TEST_COHORTS
) -> Overview:
    """The active models of all modalities on the test cohorts (cached, recomputed per section)."""
    require(user, "view_results")
    cohorts = tuple(scale.cohort(c) for c in cohorts)

    def compute() -> Overview:
        active = active_models(store)
        sections = [
            _section(store, code, cohort, [model], n_boot, seed)
            for code, model in active.items()
            for cohort in cohorts
        ]
        cross, notes = _cross_modality(store, sections)
        return Overview(sections, cross, notes, [c for c in scale.MODALITIES if c not in active])

    return _cached(store, "overview", (n_boot, seed, cohorts), compute)


# ------------------------------------------------------------------ between modalities
def _case_keys(store: Store, modality: str, cohort: str) -> dict[int, tuple]:
    """item id -> what identifies the case across modalities: the file, and patient/joint/side."""
    return {
        int(item): (sha, (patient, joint, side) if patient and joint and side else None)
        for item, sha, patient, joint, side in results.case_keys(store, modality, cohort)
    }


def _match_cases(keys_a: dict[int, tuple], keys_b: dict[int, tuple]) -> list[tuple[int, int]]:
    """Pairs (item a, item b) showing the same case: the same file or the same patient's joint.

    A case key that names more than one item on either side is ambiguous and left out.
    """
    pairs: dict[int, int] = {}
    taken: set[int] = set()  # b items already paired (a set: pairs.values() would be O(n) a probe)
    for index in (0, 1):
        count_a = Counter(k[index] for k in keys_a.values() if k[index] is not None)
        count_b = Counter(k[index] for k in keys_b.values() if k[index] is not None)
        lookup = {k[index]: i for i, k in keys_b.items() if k[index] is not None and count_b[k[index]] == 1}
        for item, k in keys_a.items():
            if item in pairs or k[index] is None or count_a[k[index]] != 1:
                continue
            other = lookup.get(k[index])
            if other is not None and other not in taken:
                pairs[item] = other
                taken.add(other)
    return sorted(pairs.items())


CROSS_REFERENCE = "combined EOSS of the joint"
CROSS_REFERENCE_SH = "SH of the joint (no Doppler reference for these joints)"


def paired_grade_test(
    y: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, patients: Sequence[object] | None
) -> list[dict]:
    """The paired per-grade AUC test between two modalities' models on the same joints.

    Obuchowski's clustered test when ``patients`` holds patient ids (a patient's joints are
    correlated, so they are not counted as independent), DeLong's when it is None; each row
    says which in ``method``.
    """
    return paired_auc_per_grade(y, probs_a, probs_b, patients)


@dataclass(frozen=True)
class JointReference:
    """One cohort's joint-level reference: the combined EOSS and SH of each joint.

    ``combined`` maps a joint (patient, joint, side) to the highest combined EOSS of its
    Doppler items' references (a still and a clip of one joint may differ: the joint shows at
    least what either shows); ``sh`` the highest SH of all its items' references;
    ``doppler_item`` the combined EOSS of each Doppler item and ``item_sh`` the SH of every item
    (for items matched by file, without a joint key); ``split`` the joints whose Doppler items'
    references differ.
    """

    combined: dict[tuple, int]
    sh: dict[tuple, int]
    doppler_item: dict[int, int]
    split: frozenset
    item_sh: dict[int, int] = field(default_factory=dict)


def _joint_reference(store: Store, cohort: str) -> JointReference:
    """The joint-level reference of a cohort, from the current reference labels of every modality."""
    combined: dict[tuple, set[int]] = {}
    sh: dict[tuple, int] = {}
    doppler_item: dict[int, int] = {}
    item_sh: dict[int, int] = {}
    for code, mod in scale.MODALITIES.items():
        keys = {item: key for item, (_, key) in _case_keys(store, code, cohort).items()}
        for item, grade_sh, item_combined in results.reference_rows(store, code, cohort):
            key = keys.get(int(item))
            item_sh[int(item)] = int(grade_sh)
            if key is not None:
                sh[key] = max(sh.get(key, 0), int(grade_sh))
            if mod.doppler:
                doppler_item[int(item)] = int(item_combined)
                if key is not None:
                    combined.setdefault(key, set()).add(int(item_combined))
    return JointReference(
        {k: max(v) for k, v in combined.items()},
        sh,
        doppler_item,
        frozenset(k for k, v in combined.items() if len(v) > 1),
        item_sh,
    )


def combined_from_sh(sh: int) -> int | None:
    """The combined EOSS when SH alone settles it, whatever the PD (SH 0 or 3), else None."""
    values = {scale.combined(sh, pd) for pd in scale.GRADES if scale.is_valid_pair(sh, pd)}
    return values.pop() if len(values) == 1 else None


def _pair_reference(
    ref: JointReference, items: Sequence[int], keys: Sequence[tuple | None]
) -> tuple[int | None, int | None, bool]:
    """(combined EOSS, SH, combined settled by SH alone) of the joint that matched items show.

    The combined EOSS is the highest of the joint's Doppler references; without one, SH settles
    it where PD cannot change it (SH 0 or 3); otherwise None. SH is the highest SH reference.
    """
    combined = [ref.combined[k] for k in keys if k in ref.combined]
    combined += [ref.doppler_item[i] for i in items if i in ref.doppler_item]
    sh = [ref.sh[k] for k in keys if k in ref.sh] + [ref.item_sh[i] for i in items if i in ref.item_sh]
    top_sh = max(sh) if sh else None
    if combined:
        return max(combined), top_sh, False
    settled = combined_from_sh(top_sh) if top_sh is not None else None
    return settled, top_sh, settled is not None


def _cross_modality(store: Store, sections: Sequence[Section]) -> tuple[list[dict], list[str]]:
    """Paired per-grade AUC tests between the active models of two modalities, on every matched
    joint, against the joint-level reference (``CROSS_REFERENCE``).

    Each pair is cached by both sections' fingerprints and the cohort's reference labels of
    every modality (the joint reference draws on all of them): a change recomputes only its pairs.
    """
    rows: list[dict] = []
    notes: list[str] = []
    keys: dict[tuple[str, str], dict[int, tuple]] = {}
    joint_refs: dict[str, JointReference] = {}

    def case_keys(sec: Section) -> dict[int, tuple]:
        if (sec.modality, sec.cohort) not in keys:
            keys[(sec.modality, sec.cohort)] = _case_keys(store, sec.modality, sec.cohort)
        return keys[(sec.modality, sec.cohort)]

    def joint_reference(cohort: str) -> JointReference:
        if cohort not in joint_refs:
            joint_refs[cohort] = _joint_reference(store, cohort)
        return joint_refs[cohort]

    labels: dict[str, tuple] = {}  # cohort -> its reference labels' fingerprint, every modality
    for sa, sb in itertools.combinations(sections, 2):
        if sa.cohort != sb.cohort or not sa.models[0].n or not sb.models[0].n:
            continue
        if sa.cohort not in labels:
            labels[sa.cohort] = tuple(
                results.section_fingerprint(store, code, sa.cohort, ()) for code in scale.MODALITIES
            )
        key = (
            str(store.path),
            "cross",
            sa.cohort,
            sa.modality,
            sa.fingerprint,
            sb.modality,
            sb.fingerprint,
            labels[sa.cohort],
        )
        hit = _RESULTS.get(key)
        if hit is None:
            _count("cross_pair_computed")
            hit = _compare_modalities(store, sa, sb, case_keys(sa), case_keys(sb), joint_reference(sa.cohort))
            _RESULTS.put(key, hit)
        rows += hit[0]
        notes += hit[1]
    return rows, notes


def _compare_modalities(
    store: Store,
    sa: Section,
    sb: Section,
    keys_a: dict[int, tuple],
    keys_b: dict[int, tuple],
    joint_ref: JointReference,
) -> tuple[list[dict], list[str]]:
    """Paired per-grade AUC tests between two sections' first models on every matched joint.

    Both models are scored against one joint-level reference, the combined EOSS of the joint
    (``_joint_reference``), whatever their own target: a greyscale model's SH probabilities are
    predictors of that grade like any other. Only when none of the matched joints has a Doppler
    reference (a project without Doppler items) is the joint's SH the reference, and the rows
    say so. Joints without the reference (no Doppler item and SH 1-2) are counted and left out.
    """
    fa, fb = sa.models[0], sb.models[0]
    index_a = {int(i): k for k, i in enumerate(fa.item_ids)}
    index_b = {int(i): k for k, i in enumerate(fb.item_ids)}
    pairs = [(a, b) for a, b in _match_cases(keys_a, keys_b) if a in index_a and b in index_b]
    what = f"{fa.model.label} vs {fb.model.label} on {sa.cohort}"
    if not pairs:
        return [], [
            f"{what}: no shared cases (no item shows the same joint in both modalities), not compared."
        ]
    grades = [_pair_reference(joint_ref, (a, b), (keys_a[a][1], keys_b[b][1])) for a, b in pairs]
    use_combined = any(combined is not None and not by_sh for combined, _, by_sh in grades)
    reference = CROSS_REFERENCE if use_combined else CROSS_REFERENCE_SH
    kept = [(a, b, g[0] if use_combined else g[1]) for (a, b), g in zip(pairs, grades)]
    kept = [(a, b, grade) for a, b, grade in kept if grade is not None]
    notes = []
    if len(kept) < len(pairs):
        lacking = (
            "combined EOSS (no Doppler item of the joint, and SH 1-2 leaves PD open)"
            if use_combined
            else "SH"
        )
        notes.append(
            f"{what}: {len(pairs) - len(kept)} of {len(pairs)} matched joints left out: "
            f"their reference labels give no {lacking}."
        )
    by_sh = sum(1 for combined, _, settled in grades if settled) if use_combined else 0
    if by_sh:
        notes.append(
            f"{what}: on {by_sh} joints without a Doppler item the combined EOSS is the "
            "SH reference (SH 0 or 3 settles it whatever the PD)."
        )
    if not kept:
        return [], notes
    ia = np.array([index_a[a] for a, _, _ in kept])
    ib = np.array([index_b[b] for _, b, _ in kept])
    y = np.array([grade for _, _, grade in kept], dtype=np.int64)
    differ = ((fa.y[ia] != y) if sa.target != "EOSS" else np.zeros(y.size, bool)) | (
        (fb.y[ib] != y) if sb.target != "EOSS" else np.zeros(y.size, bool)
    )
    if use_combined and differ.any():
        notes.append(
            f"{what}: all {len(kept)} matched joints compared against the {reference}; "
            f"on {int(differ.sum())} of them a greyscale item's own SH reference differs "
            "from it (kept)."
        )
    split = sum(1 for a, b, _ in kept if {keys_a[a][1], keys_b[b][1]} & joint_ref.split)
    if use_combined and split:
        notes.append(
            f"{what}: on {split} joints the Doppler items' references differ (still and "
            "clip); the joint's combined EOSS is the higher."
        )
    patients = results.patients(store, [a for a, _, _ in kept])
    clusters = Clusters.of(patients)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = paired_grade_test(
            y, fa.probs[ia], fb.probs[ib], patients if clusters.kind == "patient" else None
        )
    n_patients = clusters.n_clusters if clusters.kind == "patient" else None
    return [
        {
            "cohort": sa.cohort,
            "a": fa.model.label,
            "b": fb.model.label,
            "n": len(kept),
            "patients": n_patients,
            "reference": reference,
            **row,
        }
        for row in result
    ], notes


# ------------------------------------------------------------------ tables for the pages
def fmt(value: object, digits: int = 3) -> str:
    """A figure as text, or 'undefined'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "undefined"
    return f"{float(value):.{digits}f}"


def auc_rows(sections: Sequence[Section]) -> list[dict]:
    """Per-grade AUC with its 95% CI per model, cohort and grade; undefined ones with the reason."""
    rows = []
    for sec in sections:
        for m in sec.models:
            for grade in scale.GRADES:
                r = m.auc.get(grade)
                if r is None:
                    reason = "no reference item of this cohort has a prediction" if not m.n else None
                    rows.append(
                        {
                            "model": m.model.label,
                            "cohort": sec.cohort,
                            "grade": grade,
                            "n_pos": 0,
                            "n_neg": 0,
                            "resampled": "",
                            "clusters": 0,
                            "excluded": 0,
                            "AUC": None,
                            "CI low": None,
                            "CI high": None,
                            "AUC (95% CI)": "undefined",
                            "reason": reason,
                        }
                    )
                    continue
                defined = not np.isnan(r.auc)
                text = (
                    f"{r.auc:.3f} ({r.ci_low:.3f}-{r.ci_high:.3f})"
                    if defined and not np.isnan(r.ci_low)
                    else f"{r.auc:.3f} (no CI)"
                    if defined
                    else "undefined"
                )
                rows.append(
                    {
                        "model": m.model.label,
                        "cohort": sec.cohort,
                        "grade": grade,
                        "n_pos": r.n_pos,
                        "n_neg": r.n_neg,
                        "resampled": "patients" if r.cluster == "patient" else "items",
                        "clusters": r.n_clusters,
                        "excluded": r.n_boot_excluded,
                        "AUC": float(r.auc) if defined else None,
                        "CI low": None if np.isnan(r.ci_low) else float(r.ci_low),
                        "CI high": None if np.isnan(r.ci_high) else float(r.ci_high),
                        "AUC (95% CI)": text,
                        "reason": r.reason or "",
                    }
                )
    return rows


def auc_table_rows(sections: Sequence[Section]) -> list[dict]:
    """Per-grade AUC (95% CI) as text, one row per model and cohort, a column per grade."""
    rows: dict[tuple[str, str], dict] = {}
    for r in auc_rows(sections):
        row = rows.setdefault(
            (r["model"], r["cohort"]), {"model": r["model"], "cohort": r["cohort"], "reason": ""}
        )
        row[f"grade {r['grade']}"] = r["AUC (95% CI)"]
        if r["reason"]:
            row["reason"] = "; ".join(x for x in (row["reason"], f"grade {r['grade']}: {r['reason']}") if x)
    return [
        {k: v for k, v in row.items() if k != "reason"} | {"reason": row["reason"]} for row in rows.values()
    ]


def summary_rows(sections: Sequence[Section]) -> list[dict]:
    """One row per model and cohort: cases, macro AUC (and its grades), what the intervals
    resampled, accuracy, kappas, ECE, missing predictions."""
    rows = []
    for sec in sections:
        for m in sec.models:
            reasons = {
                k: reason_of(getattr(m, k))
                for k in ("macro_auc", "accuracy", "kappa_linear", "kappa_quadratic", "ece")
            }
            if m.macro is not None and m.macro.grades:
                reasons.update({f"macro AUC leaves out grade {g}": r for g, r in m.macro.left_out.items()})
            rows.append(
                {
                    "model": m.model.label,
                    "active": m.model.active,
                    "cohort": sec.cohort,
                    "target": sec.target,
                    "cases": m.n,
                    "without prediction": m.n_missing,
                    "macro AUC": fmt(m.macro_auc),
                    "macro of grades": (", ".join(map(str, m.macro.grades)) if m.macro is not None else ""),
                    "intervals": m.resampled,
                    "accuracy": fmt(m.accuracy),
                    "kappa linear": fmt(m.kappa_linear),
                    "kappa quadratic": fmt(m.kappa_quadratic),
                    "ECE": fmt(m.ece),
                    "ECE before prior correction": fmt((m.calibration or {}).get("ece_uncorrected")),
                    "crop fell back": (m.crops or {}).get("fallback", ""),
                    "reason": "; ".join(f"{k}: {v}" for k, v in reasons.items() if v and m.n)
                    or ("" if m.n else "no reference item of this cohort has a prediction"),
                }
            )
    return rows


def baseline_rows(sections: Sequence[Section]) -> list[dict]:
    """The PD-only colour rule's stored per-grade AUCs beside each Doppler model, both against the
    PD reference of the same items (stored by ``rascore evaluate``)."""
    rows = []
    for sec in sections:
        for m in sec.models:
            if not m.baseline:
                continue
            for name, figures in (
                (m.model.label, m.baseline.get("model")),
                ("PD-only colour rule", m.baseline.get("pd_colour_rule")),
            ):
                if not figures:
                    continue
                aucs = figures.get("auc") or {}
                row = {"scored": name, "beside": m.model.label, "cohort": sec.cohort, "reference": "PD"}
                for grade in scale.GRADES:
                    cell = aucs.get(str(grade)) or {}
                    value = cell.get("auc")
                    row[f"AUC {grade}"] = (
                        fmt(value) if value is not None else f"undefined (n_pos {cell.get('n_pos', '?')})"
                    )
                row.update(
                    {"macro AUC": fmt(figures.get("macro_auc")), "accuracy": fmt(figures.get("accuracy"))}
                )
                rows.append(row)
    return rows


def delong_rows(rows: Sequence[dict]) -> list[dict]:
    """DeLong rows for a table: p-values and AUCs as text, 'undefined' with the reason."""
    return [
        {
            **({"cohort": r["cohort"]} if "cohort" in r else {}),
            "A": r["a"],
            "B": r["b"],
            "grade": str(r["grade"]),
            "cases": r["n"],
            "test": r.get("method", "delong"),
            **({"patients": r["n_clusters"]} if r.get("method") == "obuchowski" else {}),
            "AUC A": fmt(r["auc_a"]),
            "AUC B": fmt(r["auc_b"]),
            "z": fmt(r["z"], 2),
            "p": fmt(r["p"], 4),
            "reason": r["reason"] or "",
        }
        for r in rows
    ]


def cross_rows(rows: Sequence[dict]) -> list[dict]:
    """Between-modality rows for a table: the joint-level reference, joints, patients, method."""
    return [
        {
            "cohort": r["cohort"],
            "A": r["a"],
            "B": r["b"],
            "reference": r["reference"],
            "grade": r["grade"],
            "joints": r["n"],
            "patients": r["patients"] if r["patients"] is not None else "no patient ids",
            "AUC A": fmt(r["auc_a"]),
            "AUC B": fmt(r["auc_b"]),
            "z": fmt(r["z"], 2),
            "p": fmt(r["p"], 4),
            "method": r["method"],
            "reason": r["reason"] or "",
        }
        for r in rows
    ]


def published_rows() -> list[dict]:
    """He et al. 2024's best per-grade AUCs, labelled as published."""
    return [
        {"grade": g, "best model (published)": m, "AUC (published)": a, "source": "He et al. 2024"}
        for g, (m, a) in PUBLISHED_BEST.items()
    ]


def published_spd_sgs_rows() -> list[dict]:
    """He et al. 2024's SPD against SGS per-grade AUCs, labelled as published."""
    return [
        {
            "cohort": r["cohort"],
            "grade": r["grade"],
            "SPD AUC (published)": r["SPD"],
            "SGS AUC (published)": r["SGS"],
            "source": "He et al. 2024",
        }
        for r in PUBLISHED_SPD_VS_SGS
    ]


# ------------------------------------------------------------------ reader study
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
):
    codes = [scale.modality(modality).code] if modality else list(scale.MODALITIES)
    reference: dict[int, int] = {}
    for code in codes:
        for cohort in cohorts:
            reference.update(_reference(store, code, cohort))
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
            warnings.simplefilter("ignore")
            study = reader_study(reference, reads, levels, preds, n_boot=n_boot, seed=seed, patients=patients)
        _count("reader_study_computed")
        return ReaderResults(code, cohorts, len(reference), study, models, excluded)

    return _cached(
        store, "readers", (code, cohorts, include_reference_readers, n_boot, seed), compute, with_readers=True
    )


LEVEL_ORDER: tuple[str, ...] = ("junior", "intermediate", "senior", "expert", "unspecified")


def reader_rows(results: ReaderResults) -> list[dict]:
    """One row per reader and per model: level, items, accuracy, kappas, ICC with CI, reasons."""
    rows = []
    entries = [(name, "reader", r["level"], r) for name, r in results.study["raters"].items()]
    entries += [(name, "model", "model", r) for name, r in results.study["models"].items()]
    for name, kind, level, r in entries:
        icc = fmt(r["icc"])
        if icc != "undefined" and not np.isnan(r["icc_ci_low"]):
            icc += f" ({r['icc_ci_low']:.2f}-{r['icc_ci_high']:.2f})"
        rows.append(
            {
                "who": name,
                "kind": kind,
                "level": level,
                "items": r["n"],
                "accuracy": fmt(r["accuracy"]),
                "kappa linear": fmt(r["kappa_linear"]),
                "kappa quadratic": fmt(r["kappa_quadratic"]),
                "kappa quadratic value": None
                if np.isnan(r["kappa_quadratic"])
                else float(r["kappa_quadratic"]),
                f"ICC ({results.study['icc_form']})": icc,
                "reason": "; ".join(f"{k}: {v}" for k, v in r["reasons"].items()),
            }
        )
    order = {lvl: i for i, lvl in enumerate(LEVEL_ORDER)}
    readers = sorted(
        (r for r in rows if r["kind"] == "reader"), key=lambda row: (order.get(row["level"], 9), row["who"])
    )
    return readers + [r for r in rows if r["kind"] == "model"]  # models in modality order


def level_rows(results: ReaderResults) -> list[dict]:
    """Per experience level: readers, and mean (min-max) of accuracy, kappas and ICC."""
    rows = []
    order = {lvl: i for i, lvl in enumerate(LEVEL_ORDER)}
    for level, entry in sorted(results.study["by_level"].items(), key=lambda kv: order.get(kv[0], 9)):
        row = {"level": level, "readers": entry["n_raters"]}
        for metric in ("accuracy", "kappa_linear", "kappa_quadratic", "icc"):
            s = entry[metric]
            row[metric.replace("_", " ")] = (
                "undefined" if s["n"] == 0 else f"{s['mean']:.3f} ({s['min']:.3f}-{s['max']:.3f})"
            )
        rows.append(row)
    return rows


def sens_spec_rows(results: ReaderResults) -> list[dict]:
    """Per reader and model: sensitivity and specificity per grade (that grade against the rest)."""
    rows = []
    for kind, group in (("reader", results.study["raters"]), ("model", results.study["models"])):
        for name, r in group.items():
            row = {"who": name, "kind": kind}
            for grade, cell in r["per_grade"].items():
                row[f"sens {grade}"] = fmt(cell["sensitivity"])
                row[f"spec {grade}"] = fmt(cell["specificity"])
            rows.append(row)
    return rows


def resampling_line(results: ReaderResults) -> str:
    """One line for the page: what the model-reader comparisons resample, and how often."""
    study = results.study
    n_boot = study.get("n_boot", N_BOOT)
    if study.get("cluster") == "patient":
        text = (
            f"Comparisons resample patients: {study['n_clusters']} patients behind the "
            f"{results.n_reference} reference items, {n_boot} resamples"
        )
        lone = study.get("n_without_patient", 0)
        if lone:
            text += f" ({lone} items without a patient id count as their own patient)"
        return text + "."
    return f"Comparisons resample items ({results.n_reference} items, no patient ids), {n_boot} resamples."


def _p_text(p: float, n_used: int) -> str:
    """A bootstrap p-value as text: below 1/B when no resample reached 0."""
    if p == 0 and n_used:
        return f"< {1 / n_used:.4f}"
    return fmt(p, 4)


def versus_rows(results: ReaderResults) -> list[dict]:
    """Each model against each reader on their shared items: kappas, difference, the interval the
    verdict rests on (Holm-adjusted level), p and Holm-adjusted p, and the verdict."""
    rows = []
    for model, r in results.study["models"].items():
        for reader, c in r["vs_readers"].items():
            level = results.study["raters"].get(reader, {}).get("level", "")
            low, high = c.get("ci_low_holm", np.nan), c.get("ci_high_holm", np.nan)
            interval = "undefined" if np.isnan(low) else f"{low:.3f} to {high:.3f} ({100 * c['level']:.1f}%)"
            rows.append(
                {
                    "model": model,
                    "reader": reader,
                    "level": level,
                    "shared items": c["n"],
                    "patients": c["n_clusters"] if c.get("cluster") == "patient" else "no ids",
                    "kappa model": fmt(c["kappa_model"]),
                    "kappa reader": fmt(c["kappa_reader"]),
                    "difference": fmt(c["diff"]),
                    "interval (Holm level)": interval,
                    "p": _p_text(c["p"], c["n_boot_used"]),
                    "p (Holm)": _p_text(c["p_holm"], c["n_boot_used"]),
                    "verdict": c["verdict"],
                    "reason": c.get("reason") or "",
                }
            )
    return rows


def verdict_lines(results: ReaderResults) -> list[str]:
    """Per model, in words: the readers it beats, those better than it, and no difference shown."""
    lines = []
    for name, r in results.study["models"].items():
        by: dict[str, list[str]] = {}
        for reader, c in r["vs_readers"].items():
            by.setdefault(c["verdict"], []).append(reader)
        total = len(r["vs_readers"])
        beaten = by.get("model better", [])
        text = f"{name} beats {len(beaten)} of {total} readers" + (
            f" ({', '.join(beaten)})" if beaten else ""
        )
        for verdict, label in (
            ("reader better", "better than the model"),
            ("no difference shown", "no difference shown"),
            ("undefined", "undefined"),
        ):
            if by.get(verdict):
                text += f"; {label}: {', '.join(by[verdict])}"
        lines.append(text + ".")
    return lines
