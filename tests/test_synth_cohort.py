"""Cohort planning: sizes, modality split, patients, prevalence, determinism, shared joint truth."""

from __future__ import annotations

import collections

import pytest

from rascore import scale
from rascore.synth import SIZES, example_spec, plan_cohort
from rascore.synth.cohort import MODALITY_ORDER


@pytest.fixture(scope="module")
def paper():
    return plan_cohort("paper", seed=0)


def test_sizes_and_even_modality_split(paper):
    for cohort, n in SIZES["paper"].items():
        items = [s for s in paper if s.cohort == cohort]
        assert len(items) == n
        counts = collections.Counter(s.modality for s in items)
        assert set(counts) == set(MODALITY_ORDER)
        assert max(counts.values()) - min(counts.values()) <= 1
    small = plan_cohort("small", seed=0)
    assert collections.Counter(s.cohort for s in small) == SIZES["small"]


def test_keys_unique_and_fields_valid(paper):
    assert len({s.key for s in paper}) == len(paper)
    assert len({s.seed for s in paper}) == len(paper)
    for s in paper:
        assert s.modality in scale.MODALITIES and s.cohort in scale.COHORTS
        assert s.joint in scale.JOINTS and s.side in scale.SIDES
        assert scale.is_valid_pair(s.sh, s.pd)
        assert s.key.endswith(s.modality) and s.patient.startswith("sim-p")
        expected = {"test2": "scanner-B", "test3": "scanner-C"}.get(s.cohort, "scanner-A")
        assert s.scanner_profile == expected and s.variation == "wide"


def test_patient_in_one_cohort_with_several_joints(paper):
    cohorts = collections.defaultdict(set)
    joints = collections.defaultdict(set)
    for s in paper:
        cohorts[s.patient].add(s.cohort)
        joints[s.patient].add((s.joint, s.side))
    assert all(len(c) == 1 for c in cohorts.values())
    multi = sum(len(j) >= 2 for j in joints.values())
    assert multi / len(joints) > 0.6


def test_same_joint_same_truth_across_modalities(paper):
    by_joint = collections.defaultdict(list)
    for s in paper:
        by_joint[(s.patient, s.joint, s.side)].append(s)
    shared = [v for v in by_joint.values() if len(v) > 1]
    assert len(shared) > 100
    for views in shared:
        assert len({(v.sh, v.pd) for v in views}) == 1
        assert len({v.joint_seed for v in views}) == 1
        assert len({v.modality for v in views}) == len(views)


def test_clinical_prevalence(paper):
    n = len(paper)
    sh = collections.Counter(s.sh for s in paper)
    assert 0.27 < sh[0] / n < 0.43 and 0.27 < sh[1] / n < 0.43
    assert 0.13 < sh[2] / n < 0.27 and 0.05 < sh[3] / n < 0.16
    assert sh[0] > sh[3] and sh[1] > sh[3]
    pairs = {(s.sh, s.pd) for s in paper}
    assert pairs == {(a, b) for a in range(4) for b in range(4) if scale.is_valid_pair(a, b)}
    joints = collections.Counter(s.joint for s in paper)
    assert (joints["MCP2"] + joints["MCP3"]) / n > 0.5 and len(joints) >= 6


def test_deterministic_by_seed(paper):
    assert plan_cohort("paper", seed=0) == paper
    other = plan_cohort("paper", seed=1)
    assert [s.seed for s in other] != [s.seed for s in paper]
    assert [(s.sh, s.pd) for s in other] != [(s.sh, s.pd) for s in paper]


def test_bad_size_and_example_spec():
    with pytest.raises(ValueError, match="unknown cohort size"):
        plan_cohort("huge")
    spec = example_spec(2, 3, "dpd", seed=4)
    assert (spec.modality, spec.sh, spec.pd) == ("DPD", 2, 3)
    assert example_spec(2, 3, "SGS", seed=4).joint_seed == spec.joint_seed
    with pytest.raises(scale.InvalidGrade):
        example_spec(0, 2, "SPD")
