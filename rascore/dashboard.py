"""Results for the Dashboard and Reader-study pages: models and readers against the reference.

Per modality and test cohort, the current reference labels (the modality's target grade: SH for
greyscale, combined EOSS for power Doppler) are paired with the stored predictions of the active
(or chosen) model versions, and every figure is computed with ``rascore.evaluate``: per-grade
one-vs-rest AUC with 95% percentile-bootstrap CIs, ROC points, confusion matrix, weighted kappa,
reliability curve and ECE, and DeLong's paired test between versions scored on the same items.
Between modalities, DeLong is run only on the same cases: items of the same patient, joint and
side (or the same file) whose reference grades agree; everything else is counted and left out.

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
    accuracy,
    confusion,
    delong_per_grade,
    expected_calibration_error,
    macro_from,
    per_grade_auc_models,
    reader_study,
    reliability_curve,
    roc_points,
    weighted_kappa,
)
from rascore.evaluate.undefined import reason_of
from rascore.permissions import require
from rascore.store import Store
from rascore.store import registry, results

TEST_COHORTS: tuple[str, ...] = ("test1", "test2")
N_BOOT = 1000
REFERENCE_ROLES: tuple[str, ...] = ("expert", "admin")  # whose grades make the reference

PUBLISHED_SOURCE = ("He X, Wang M, Zhao C, et al. Rheumatology 2024;63(3):866-873 "
                    "(published figures, not computed by RAScore)")
# Best model per EOSS grade (AUC of that grade against the rest), as published.
PUBLISHED_BEST: dict[int, tuple[str, float]] = {0: ("DPD", 0.87), 1: ("SGS", 0.95),
                                                2: ("DGS", 0.74), 3: ("SPD", 0.95)}
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


def _cached(store: Store, what: str, args: tuple, compute: Callable[[], object],
            with_readers: bool = False):
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
    return [ModelRef(r["id"], r["modality"], r["version"], bool(r["active"]))
            for r in registry.list_versions(store, modality)]


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

    @cached_property
    def delong(self) -> list[dict]:
        """DeLong per grade between each pair of models, on the items both scored."""
        return delong_between(self.models)


def _reference(store: Store, modality: str, cohort: str) -> dict[int, int]:
    """item id -> reference target grade of one modality and cohort (current labels)."""
    mod = scale.modality(modality)
    column = 2 if mod.target == "EOSS" else 1
    return {int(r[0]): int(r[column]) for r in results.reference_rows(store, mod.code, cohort)}


def _stored_baseline(store: Store, version_id: int, cohort: str) -> dict | None:
    """The stored PD-reference figures of a Doppler version: {"pd_colour_rule": ..., "model": ...}."""
    row = registry.get_version_by_id(store, version_id)
    entry = ((((row or {}).get("metrics") or {}).get("test") or {}).get("cohorts") or {}).get(cohort)
    entry = entry or {}
    if not entry.get("pd_colour_rule"):
        return None
    return {"pd_colour_rule": entry["pd_colour_rule"], "model": entry.get("model_pd_reference"),
            "pd_class_counts": entry.get("pd_class_counts")}


def _load_model(store: Store, model: ModelRef, cohort: str, reference: dict[int, int]) -> ModelFigures:
    ids, grades, probs = results.predictions(store, model.id, cohort)
    keep = np.fromiter((int(i) in reference for i in ids), bool, ids.size)
    ids, grades, probs = ids[keep], grades[keep], probs[keep]
    y = np.fromiter((reference[int(i)] for i in ids), np.int64, ids.size)
    baseline = _stored_baseline(store, model.id, cohort) if scale.modality(model.modality).doppler else None
    return ModelFigures(model, ids, y, probs, grades, len(reference) - int(ids.size), baseline=baseline)


def compute_figures(figures: Sequence[ModelFigures], n_boot: int = N_BOOT, seed: int = 0) -> None:
    """Fill in the models' AUCs with CIs, macro AUC, accuracy, kappas, ECE and confusion (in place).

    Models scored on the same items share one bootstrap stream (``per_grade_auc_models``). ROC
    points, reliability curves and DeLong between versions are computed when first shown.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined values carry their reasons
        groups: dict[bytes, list[ModelFigures]] = {}
        for fig in figures:
            groups.setdefault(fig.item_ids.tobytes(), []).append(fig)
        for members in groups.values():
            if not members[0].n:
                continue
            per = per_grade_auc_models(members[0].y, {m.model.label: m.probs for m in members},
                                       n_boot=n_boot, seed=seed)
            for m in members:
                m.auc = per[m.model.label]
        for m in figures:
            if not m.n:
                continue
            m.macro_auc = macro_from(m.auc)
            m.accuracy = accuracy(m.y, m.predicted)
            m.kappa_linear = weighted_kappa(m.y, m.predicted, "linear")
            m.kappa_quadratic = weighted_kappa(m.y, m.predicted, "quadratic")
            m.ece = expected_calibration_error(m.y, m.probs)
            m.confusion = confusion(m.y, m.predicted)


def delong_between(figures: Sequence[ModelFigures]) -> list[dict]:
    """DeLong per grade between each pair of models, paired on the items both scored."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, b in itertools.combinations([m for m in figures if m.n], 2):
            common, ia, ib = np.intersect1d(a.item_ids, b.item_ids, return_indices=True)
            for row in (delong_per_grade(a.y[ia], a.probs[ia], b.probs[ib]) if common.size
                        else []):
                rows.append({"a": a.model.label, "b": b.model.label, "n": int(common.size), **row})
    return rows


def _build_section(store: Store, modality: str, cohort: str, models: Sequence[ModelRef],
                   n_boot: int, seed: int) -> Section:
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


def _section(store: Store, modality: str, cohort: str, models: Sequence[ModelRef], n_boot: int,
             seed: int) -> Section:
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


def section(store: Store, user: Mapping, modality: str, cohort: str,
            version_ids: Sequence[int] | None = None, n_boot: int = N_BOOT, seed: int = 0) -> Section:
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
    """Every modality's active model on every test cohort, and DeLong between modalities."""

    sections: list[Section]
    cross: list[dict]
    cross_notes: list[str]
    missing: list[str]  # modalities without an active model


def overview(store: Store, user: Mapping, n_boot: int = N_BOOT, seed: int = 0,
             cohorts: Sequence[str] = TEST_COHORTS) -> Overview:
    """The active models of all modalities on the test cohorts (cached, recomputed per section)."""
    require(user, "view_results")
    cohorts = tuple(scale.cohort(c) for c in cohorts)

    def compute() -> Overview:
        active = active_models(store)
        sections = [_section(store, code, cohort, [model], n_boot, seed)
                    for code, model in active.items() for cohort in cohorts]
        cross, notes = _cross_modality(store, sections)
        return Overview(sections, cross, notes, [c for c in scale.MODALITIES if c not in active])

    return _cached(store, "overview", (n_boot, seed, cohorts), compute)


# ------------------------------------------------------------------ between modalities
def _case_keys(store: Store, modality: str, cohort: str) -> dict[int, tuple]:
    """item id -> what identifies the case across modalities: the file, and patient/joint/side."""
    return {int(item): (sha, (patient, joint, side) if patient and joint and side else None)
            for item, sha, patient, joint, side in results.case_keys(store, modality, cohort)}


def _match_cases(keys_a: dict[int, tuple], keys_b: dict[int, tuple]) -> list[tuple[int, int]]:
    """Pairs (item a, item b) showing the same case: the same file or the same patient's joint.

    A case key that names more than one item on either side is ambiguous and left out.
    """
    pairs: dict[int, int] = {}
    taken: set[int] = set()  # b items already paired (a set: pairs.values() would be O(n) a probe)
    for index in (0, 1):
        count_a = Counter(k[index] for k in keys_a.values() if k[index] is not None)
        count_b = Counter(k[index] for k in keys_b.values() if k[index] is not None)
        lookup = {k[index]: i for i, k in keys_b.items()
                  if k[index] is not None and count_b[k[index]] == 1}
        for item, k in keys_a.items():
            if item in pairs or k[index] is None or count_a[k[index]] != 1:
                continue
            other = lookup.get(k[index])
            if other is not None and other not in taken:
                pairs[item] = other
                taken.add(other)
    return sorted(pairs.items())


def _cross_modality(store: Store, sections: Sequence[Section]) -> tuple[list[dict], list[str]]:
    """DeLong per grade between the active models of two modalities, on the same cases only.

    Each pair is cached by both sections' fingerprints: a change recomputes only its pairs.
    """
    rows: list[dict] = []
    notes: list[str] = []
    keys: dict[tuple[str, str], dict[int, tuple]] = {}

    def case_keys(sec: Section) -> dict[int, tuple]:
        if (sec.modality, sec.cohort) not in keys:
            keys[(sec.modality, sec.cohort)] = _case_keys(store, sec.modality, sec.cohort)
        return keys[(sec.modality, sec.cohort)]

    for sa, sb in itertools.combinations(sections, 2):
        if sa.cohort != sb.cohort or not sa.models[0].n or not sb.models[0].n:
            continue
        key = (str(store.path), "cross", sa.cohort, sa.modality, sa.fingerprint, sb.modality,
               sb.fingerprint)
        hit = _RESULTS.get(key)
        if hit is None:
            _count("cross_pair_computed")
            hit = _compare_modalities(sa, sb, case_keys(sa), case_keys(sb))
            _RESULTS.put(key, hit)
        rows += hit[0]
        notes += hit[1]
    return rows, notes


def _compare_modalities(sa: Section, sb: Section, keys_a: dict[int, tuple],
                        keys_b: dict[int, tuple]) -> tuple[list[dict], list[str]]:
    """DeLong per grade between two sections' first models on their shared, same-grade cases."""
    fa, fb = sa.models[0], sb.models[0]
    index_a = {int(i): k for k, i in enumerate(fa.item_ids)}
    index_b = {int(i): k for k, i in enumerate(fb.item_ids)}
    pairs = [(index_a[a], index_b[b]) for a, b in _match_cases(keys_a, keys_b)
             if a in index_a and b in index_b]
    same = [(a, b) for a, b in pairs if fa.y[a] == fb.y[b]]
    what = f"{fa.model.label} vs {fb.model.label} on {sa.cohort}"
    if not pairs:
        return [], [f"{what}: no shared cases (no item shows the same joint in both modalities), "
                    "not compared."]
    notes = []
    if len(same) < len(pairs):
        notes.append(f"{what}: {len(pairs) - len(same)} of {len(pairs)} shared cases left out "
                     f"because their reference grades differ ({sa.target} vs {sb.target}).")
    if not same:
        return [], notes
    ia, ib = (np.array(x) for x in zip(*same))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = delong_per_grade(fa.y[ia], fa.probs[ia], fb.probs[ib])
    return [{"cohort": sa.cohort, "a": fa.model.label, "b": fb.model.label, "n": len(same), **row}
            for row in result], notes


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
                    rows.append({"model": m.model.label, "cohort": sec.cohort, "grade": grade,
                                 "n_pos": 0, "n_neg": 0, "AUC": None, "CI low": None,
                                 "CI high": None, "AUC (95% CI)": "undefined", "reason": reason})
                    continue
                defined = not np.isnan(r.auc)
                text = (f"{r.auc:.3f} ({r.ci_low:.3f}-{r.ci_high:.3f})"
                        if defined and not np.isnan(r.ci_low) else
                        f"{r.auc:.3f} (no CI)" if defined else "undefined")
                rows.append({"model": m.model.label, "cohort": sec.cohort, "grade": grade,
                             "n_pos": r.n_pos, "n_neg": r.n_neg,
                             "AUC": float(r.auc) if defined else None,
                             "CI low": None if np.isnan(r.ci_low) else float(r.ci_low),
                             "CI high": None if np.isnan(r.ci_high) else float(r.ci_high),
                             "AUC (95% CI)": text, "reason": r.reason or ""})
    return rows


def auc_table_rows(sections: Sequence[Section]) -> list[dict]:
    """Per-grade AUC (95% CI) as text, one row per model and cohort, a column per grade."""
    rows: dict[tuple[str, str], dict] = {}
    for r in auc_rows(sections):
        row = rows.setdefault((r["model"], r["cohort"]), {"model": r["model"], "cohort": r["cohort"],
                                                         "reason": ""})
        row[f"grade {r['grade']}"] = r["AUC (95% CI)"]
        if r["reason"]:
            row["reason"] = "; ".join(x for x in (row["reason"], f"grade {r['grade']}: {r['reason']}") if x)
    return [{k: v for k, v in row.items() if k != "reason"} | {"reason": row["reason"]}
            for row in rows.values()]


def summary_rows(sections: Sequence[Section]) -> list[dict]:
    """One row per model and cohort: cases, macro AUC, accuracy, kappas, ECE, missing predictions."""
    rows = []
    for sec in sections:
        for m in sec.models:
            reasons = {k: reason_of(getattr(m, k)) for k in
                       ("macro_auc", "accuracy", "kappa_linear", "kappa_quadratic", "ece")}
            rows.append({"model": m.model.label, "active": m.model.active, "cohort": sec.cohort,
                         "target": sec.target, "cases": m.n, "without prediction": m.n_missing,
                         "macro AUC": fmt(m.macro_auc), "accuracy": fmt(m.accuracy),
                         "kappa linear": fmt(m.kappa_linear),
                         "kappa quadratic": fmt(m.kappa_quadratic), "ECE": fmt(m.ece),
                         "reason": "; ".join(f"{k}: {v}" for k, v in reasons.items() if v and m.n)
                         or ("" if m.n else "no reference item of this cohort has a prediction")})
    return rows


def baseline_rows(sections: Sequence[Section]) -> list[dict]:
    """The PD-only colour rule's stored per-grade AUCs beside each Doppler model, both against the
    PD reference of the same items (stored by ``rascore evaluate``)."""
    rows = []
    for sec in sections:
        for m in sec.models:
            if not m.baseline:
                continue
            for name, figures in ((m.model.label, m.baseline.get("model")),
                                  ("PD-only colour rule", m.baseline.get("pd_colour_rule"))):
                if not figures:
                    continue
                aucs = figures.get("auc") or {}
                row = {"scored": name, "beside": m.model.label, "cohort": sec.cohort,
                       "reference": "PD"}
                for grade in scale.GRADES:
                    cell = aucs.get(str(grade)) or {}
                    value = cell.get("auc")
                    row[f"AUC {grade}"] = (fmt(value) if value is not None else
                                           f"undefined (n_pos {cell.get('n_pos', '?')})")
                row.update({"macro AUC": fmt(figures.get("macro_auc")),
                            "accuracy": fmt(figures.get("accuracy"))})
                rows.append(row)
    return rows


def delong_rows(rows: Sequence[dict]) -> list[dict]:
    """DeLong rows for a table: p-values and AUCs as text, 'undefined' with the reason."""
    return [{**({"cohort": r["cohort"]} if "cohort" in r else {}), "A": r["a"], "B": r["b"],
             "grade": r["grade"], "cases": r["n"], "AUC A": fmt(r["auc_a"]), "AUC B": fmt(r["auc_b"]),
             "z": fmt(r["z"], 2), "p": fmt(r["p"], 4), "reason": r["reason"] or ""} for r in rows]


def published_rows() -> list[dict]:
    """He et al. 2024's best per-grade AUCs, labelled as published."""
    return [{"grade": g, "best model (published)": m, "AUC (published)": a, "source": "He et al. 2024"}
            for g, (m, a) in PUBLISHED_BEST.items()]


def published_spd_sgs_rows() -> list[dict]:
    """He et al. 2024's SPD against SGS per-grade AUCs, labelled as published."""
    return [{"cohort": r["cohort"], "grade": r["grade"], "SPD AUC (published)": r["SPD"],
             "SGS AUC (published)": r["SGS"], "source": "He et al. 2024"} for r in PUBLISHED_SPD_VS_SGS]


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


def _reader_inputs(store: Store, modality: str | None, cohorts: Sequence[str],
                   include_reference_readers: bool):
    codes = [scale.modality(modality).code] if modality else list(scale.MODALITIES)
    reference: dict[int, int] = {}
    for code in codes:
        for cohort in cohorts:
            reference.update(_reference(store, code, cohort))
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
    return reference, reads, levels, models, preds, sorted(excluded)


def reader_results(store: Store, user: Mapping, modality: str | None = None,
                   cohorts: Sequence[str] = TEST_COHORTS, include_reference_readers: bool = False,
                   n_boot: int = N_BOOT, seed: int = 0) -> ReaderResults:
    """Each reader's latest grades and each active model's predictions against the reference.

    Readers are scored on the test items they graded (target grade: SH on greyscale, combined
    EOSS on Doppler). Experts and admins are left out unless ``include_reference_readers``: their
    grades make the reference, so they would be scored against themselves.
    """
    require(user, "view_results")
    cohorts = tuple(scale.cohort(c) for c in cohorts)
    code = scale.modality(modality).code if modality else None

    def compute() -> ReaderResults:
        reference, reads, levels, models, preds, excluded = _reader_inputs(
            store, code, cohorts, include_reference_readers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study = reader_study(reference, reads, levels, preds, n_boot=n_boot, seed=seed)
        _count("reader_study_computed")
        return ReaderResults(code, cohorts, len(reference), study, models, excluded)

    return _cached(store, "readers", (code, cohorts, include_reference_readers, n_boot, seed),
                   compute, with_readers=True)


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
        rows.append({"who": name, "kind": kind, "level": level, "items": r["n"],
                     "accuracy": fmt(r["accuracy"]), "kappa linear": fmt(r["kappa_linear"]),
                     "kappa quadratic": fmt(r["kappa_quadratic"]),
                     "kappa quadratic value": None if np.isnan(r["kappa_quadratic"]) else float(r["kappa_quadratic"]),
                     f"ICC ({results.study['icc_form']})": icc,
                     "reason": "; ".join(f"{k}: {v}" for k, v in r["reasons"].items())})
    order = {lvl: i for i, lvl in enumerate(LEVEL_ORDER)}
    readers = sorted((r for r in rows if r["kind"] == "reader"),
                     key=lambda row: (order.get(row["level"], 9), row["who"]))
    return readers + [r for r in rows if r["kind"] == "model"]  # models in modality order


def level_rows(results: ReaderResults) -> list[dict]:
    """Per experience level: readers, and mean (min-max) of accuracy, kappas and ICC."""
    rows = []
    order = {lvl: i for i, lvl in enumerate(LEVEL_ORDER)}
    for level, entry in sorted(results.study["by_level"].items(), key=lambda kv: order.get(kv[0], 9)):
        row = {"level": level, "readers": entry["n_raters"]}
        for metric in ("accuracy", "kappa_linear", "kappa_quadratic", "icc"):
            s = entry[metric]
            row[metric.replace("_", " ")] = ("undefined" if s["n"] == 0 else
                                             f"{s['mean']:.3f} ({s['min']:.3f}-{s['max']:.3f})")
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


def versus_rows(results: ReaderResults) -> list[dict]:
    """Each model against each reader on their shared items: kappas, difference, CI, p, beats."""
    rows = []
    for model, r in results.study["models"].items():
        for reader, c in r["vs_readers"].items():
            level = results.study["raters"].get(reader, {}).get("level", "")
            ci = ("undefined" if np.isnan(c["ci_low"]) else f"{c['ci_low']:.3f} to {c['ci_high']:.3f}")
            rows.append({"model": model, "reader": reader, "level": level, "shared items": c["n"],
                         "kappa model": fmt(c["kappa_model"]), "kappa reader": fmt(c["kappa_reader"]),
                         "difference": fmt(c["diff"]), "95% CI": ci, "p": fmt(c["p"], 4),
                         "model beats reader": c["beats"], "reason": c.get("reason") or ""})
    return rows
