"""Simulated reader-study reads: the simulated aid's accuracy and probabilities, the aided reads'
effect by experience (juniors gain most), following wrong suggestions, read times, determinism."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from rascore import scale
from rascore.evaluate.agreement import weighted_kappa
from rascore.synth import READERS, plan_cohort
from rascore.synth import study_reads as sr
from rascore.synth.readers import grades_of, perceive

LEVELS = ("senior", "intermediate", "junior")


@pytest.fixture(scope="module")
def study():
    """The paper cohort's SPD test items (about 126), the aid and both arms of the 12 readers."""
    specs = [s for s in plan_cohort("paper", 0) if s.modality == "SPD" and s.cohort != "train"]
    aids = sr.simulated_aids(specs, 0)
    reads = sr.study_reads(specs, aids, 0)
    truth = np.array([sr.target_shown(s)[0] for s in specs])
    by = collections.defaultdict(dict)
    for read in reads:
        by[(read.reader, read.arm)][read.item_key] = read
    return specs, aids, reads, truth, by


def _combined(read) -> int:
    return scale.combined(read.sh, read.pd)


def test_the_simulated_aid_is_right_about_four_times_in_five_and_errs_by_one_grade(study):
    specs, aids, _, truth, _ = study
    grade = np.array([aids[s.key].grade for s in specs])
    exact = float((grade == truth).mean())
    assert 0.75 <= exact <= 0.85, exact
    errors = np.abs(grade - truth)[grade != truth]
    assert errors.size > 0 and (errors == 1).mean() >= 0.9
    for s in specs:
        probs = np.array(aids[s.key].probs)
        assert probs.shape == (4,) and probs.min() >= 0 and probs.sum() == pytest.approx(1.0, abs=1e-9)
        assert int(np.argmax(probs)) == aids[s.key].grade and aids[s.key].source == "simulated"
    # the suggestion is confident where it is right more often than where it is wrong
    top = np.array([max(aids[s.key].probs) for s in specs])
    assert top[grade == truth].mean() > top[grade != truth].mean()
    assert sr.simulated_aids(specs[:5], 0) == {s.key: aids[s.key] for s in specs[:5]}
    assert sr.simulated_aids(specs[:5], 1) != {s.key: aids[s.key] for s in specs[:5]}


def test_the_aid_helps_juniors_most_and_seniors_least(study):
    specs, _, _, truth, by = study
    gains: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for reader in (r for r in READERS if r.role == "reader"):
        figures = {}
        for arm in ("unaided", "aided"):
            grades = np.array([_combined(by[(reader.name, arm)][s.key]) for s in specs])
            figures[arm] = (float((grades == truth).mean()), weighted_kappa(truth, grades, "quadratic"))
        gains[reader.level].append(tuple(np.subtract(figures["aided"], figures["unaided"])))
    mean = {level: np.mean(gains[level], axis=0) for level in LEVELS}
    accuracy, kappa = ({level: mean[level][k] for level in LEVELS} for k in (0, 1))
    assert kappa["junior"] > kappa["intermediate"] > kappa["senior"]
    assert accuracy["junior"] > accuracy["senior"] and accuracy["junior"] > 0.05 and kappa["junior"] > 0.03


def test_readers_follow_wrong_suggestions_juniors_more_often(study):
    specs, aids, _, truth, by = study
    true_of = dict(zip((s.key for s in specs), truth))
    wrong_followed = collections.Counter()
    for (reader, arm), reads in by.items():
        if arm != "aided":
            continue
        level = reader.split("-")[0]
        for key, read in reads.items():
            own = _combined(by[(reader, "unaided")][key])
            if read.followed:
                assert own != aids[key].grade and _combined(read) == aids[key].grade
            if read.followed and aids[key].grade != true_of[key]:
                wrong_followed[level] += 1  # an unaided read that was right, or wrong otherwise
    assert wrong_followed["junior"] > wrong_followed["senior"] > 0


def test_unaided_reads_are_another_look_of_the_same_perception_model(study):
    specs, _, _, truth, by = study
    reader = next(r for r in READERS if r.name == "senior-2")
    index = READERS.index(reader)
    first = by[("senior-2", "unaided")]
    looks = [perceive(reader, index, s, 0) for s in specs]  # the look behind the annotations
    same = [grades_of(look.sh, look.pd) for look in looks]
    # another look than the annotation's: mostly the same grades, not all
    agree = np.mean([(first[s.key].sh, first[s.key].pd) == g for s, g in zip(specs, same)])
    assert 0.35 < agree < 0.95, agree
    accuracy = {
        level: np.mean(
            [
                np.mean([_combined(by[(r.name, "unaided")][s.key]) == t for s, t in zip(specs, truth)])
                for r in READERS
                if r.level == level
            ]
        )
        for level in LEVELS
    }
    assert accuracy["senior"] > accuracy["intermediate"] > accuracy["junior"]


def test_read_times_by_level_and_arm(study):
    specs, aids, reads, _, by = study
    seconds = collections.defaultdict(list)
    for read in reads:
        seconds[(read.reader.split("-")[0], read.arm)].append(read.seconds)
    median = {k: float(np.median(v)) for k, v in seconds.items()}
    assert median[("junior", "unaided")] > median[("senior", "unaided")]
    for level in LEVELS:  # the sequential aided read is a second look: shorter
        assert median[(level, "aided")] < 0.75 * median[(level, "unaided")]
    # reconsidering a suggestion that differs from one's own grade takes longer than agreeing
    ratio = collections.defaultdict(list)
    for (reader, arm), rows in by.items():
        if arm == "aided":
            for key, read in rows.items():
                disagree = _combined(by[(reader, "unaided")][key]) != aids[key].grade
                ratio[disagree].append(read.seconds / by[(reader, "unaided")][key].seconds)
    assert np.median(ratio[True]) > np.median(ratio[False])
    crossover = sr.study_reads(specs[:20], aids, 0, design="crossover")
    assert np.median([r.seconds for r in crossover if r.arm == "aided"]) > median[("senior", "aided")]
    with pytest.raises(ValueError, match="design must be one of"):
        sr.case_reads(READERS[5], specs[0], aids[specs[0].key], 0, "parallel")


def test_study_and_calibration_reads_are_valid_and_deterministic(study):
    specs, aids, reads, _, _ = study
    assert len(reads) == 12 * 2 * len(specs)
    for read in reads:
        scale.check_pair("SPD", read.sh, read.pd)
        assert read.seconds > 0
    keys = {s.key for s in specs[:3]}
    assert sr.study_reads(specs[:3], aids, 0) == [r for r in reads if r.item_key in keys]
    reader = READERS[9]
    calib = [sr.calibration_read(reader, s, 0) for s in specs[:10]]
    assert calib == [sr.calibration_read(reader, s, 0) for s in specs[:10]]
    assert all(scale.check_pair("SPD", r.sh, r.pd) >= 0 for r in calib)
