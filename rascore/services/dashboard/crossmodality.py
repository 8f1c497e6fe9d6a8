"""Between modalities: the active models compared on every matched joint.

Items of the same patient, joint and side (or the same file) are matched (``match_cases``).
The models' own targets differ (SH for greyscale, combined EOSS for Doppler), so both are scored
against one joint-level reference, the combined EOSS of the joint, and a greyscale model's SH
probabilities are a predictor of it like any other. A greyscale item's reference has no PD
grade, so the joint's combined EOSS comes from the reference labels of the joint's Doppler items
in the same cohort (SPD and DPD; where a still and a clip of the joint differ, the higher, since
the joint shows at least what either shows), found by patient, joint and side, or from the
matched item itself when it is a Doppler item. A joint without a Doppler reference keeps its SH
reference as its combined EOSS where SH settles it whatever the PD (SH 0: no PD can count; SH 3:
already the top grade); with SH 1-2 it is counted and left out. A project without any Doppler
reference for the matched joints compares against the joint's SH instead, and every row names
its reference. The paired per-grade test is ``paired_auc_per_grade``: Obuchowski's clustered
test where the joints have patient ids (a patient's joints are correlated), DeLong's otherwise.
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rascore import scale
from rascore.evaluate import UndefinedMetricWarning
from rascore.evaluate.clusters import Clusters
from rascore.evaluate.obuchowski import paired_auc_per_grade
from rascore.services.dashboard import cache
from rascore.services.dashboard.sections import Section
from rascore.store import Store, results


def case_keys(store: Store, modality: str, cohort: str) -> dict[int, tuple]:
    """item id -> what identifies the case across modalities: the file, and patient/joint/side."""
    return {
        int(item): (sha, (patient, joint, side) if patient and joint and side else None)
        for item, sha, patient, joint, side in results.case_keys(store, modality, cohort)
    }


def match_cases(keys_a: dict[int, tuple], keys_b: dict[int, tuple]) -> list[tuple[int, int]]:
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


def joint_reference(store: Store, cohort: str) -> JointReference:
    """The joint-level reference of a cohort, from the current reference labels of every modality."""
    combined: dict[tuple, set[int]] = {}
    sh: dict[tuple, int] = {}
    doppler_item: dict[int, int] = {}
    item_sh: dict[int, int] = {}
    for code, mod in scale.MODALITIES.items():
        keys = {item: key for item, (_, key) in case_keys(store, code, cohort).items()}
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


def cross_modality(store: Store, sections: Sequence[Section]) -> tuple[list[dict], list[str]]:
    """Paired per-grade AUC tests between the active models of two modalities, on every matched
    joint, against the joint-level reference (``CROSS_REFERENCE``).

    Each pair is cached by both sections' fingerprints and the cohort's reference labels of
    every modality (the joint reference draws on all of them): a change recomputes only its pairs.
    """
    rows: list[dict] = []
    notes: list[str] = []
    keys: dict[tuple[str, str], dict[int, tuple]] = {}
    joint_refs: dict[str, JointReference] = {}

    def keys_of(sec: Section) -> dict[int, tuple]:
        if (sec.modality, sec.cohort) not in keys:
            keys[(sec.modality, sec.cohort)] = case_keys(store, sec.modality, sec.cohort)
        return keys[(sec.modality, sec.cohort)]

    def reference_of(cohort: str) -> JointReference:
        if cohort not in joint_refs:
            joint_refs[cohort] = joint_reference(store, cohort)
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
        hit = cache.remembered(
            key,
            lambda sa=sa, sb=sb: compare_modalities(
                store, sa, sb, keys_of(sa), keys_of(sb), reference_of(sa.cohort)
            ),
            "cross_pair_computed",
        )
        rows += hit[0]
        notes += hit[1]
    return rows, notes


def compare_modalities(
    store: Store,
    sa: Section,
    sb: Section,
    keys_a: dict[int, tuple],
    keys_b: dict[int, tuple],
    joint_ref: JointReference,
) -> tuple[list[dict], list[str]]:
    """Paired per-grade AUC tests between two sections' first models on every matched joint.

    Both models are scored against one joint-level reference, the combined EOSS of the joint
    (``joint_reference``), whatever their own target: a greyscale model's SH probabilities are
    predictors of that grade like any other. Only when none of the matched joints has a Doppler
    reference (a project without Doppler items) is the joint's SH the reference, and the rows
    say so. Joints without the reference (no Doppler item and SH 1-2) are counted and left out.
    """
    fa, fb = sa.models[0], sb.models[0]
    index_a = {int(i): k for k, i in enumerate(fa.item_ids)}
    index_b = {int(i): k for k, i in enumerate(fb.item_ids)}
    pairs = [(a, b) for a, b in match_cases(keys_a, keys_b) if a in index_a and b in index_b]
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
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        result = paired_auc_per_grade(
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
