"""Simulated reader-study reads: a simulated aid (a "model" suggestion per item), each reader's
unaided and aided reads of a study case, and calibration reads. Deterministic by seed.

Everything here reuses the perception model of ``rascore.synth.readers``: a reader perceives an
item's latent severity (true grade, how far into the grade the joint is drawn, a personal bias,
noise growing with inexperience) and rounds down. A study or calibration read is another look at
the item than the one behind the demo's annotations (its own seed stream), with the same bias.

**The simulated aid** stands in for a model's suggestion where no model has been trained (the
demo builds its study before any training). It is labelled source ``simulated`` wherever it is
stored or shown. It "sees" the grade the item shows (the model's target: SH on greyscale, the
combined EOSS on power Doppler, from ``readers.reference_grades``) and how far into that grade it
lies, with its own noise (``AID_SD``), so it errs mostly on items near a grade boundary and by
one grade: about 80% exact agreement with the grade shown. Its probabilities are a normal
distribution (spread ``AID_SPREAD``, varying per item) around what it perceives, cut at the grade
boundaries; the suggested grade is the most probable one.

**Aided reads.** The reader first forms their own perception (in a sequential design, the one of
the unaided read just made of the same case; in a crossover, a fresh look). Then:

* where the reader's own grade differs from the suggestion, they take the suggestion with
  probability ``FOLLOW`` by level (juniors most, seniors least), whether it is right or wrong:
  their perceived severities move to the middle of the suggested grade;
* otherwise their perceived severities move toward the suggestion's expected grade (the middle of
  the grade, weighted by its probabilities) by a gain ``GAIN`` by level (juniors most).

On a Doppler item the suggestion is a combined EOSS grade: SH and PD move together, so the
combined grade moves by the same amount (the higher of the two drives it).

**Read times.** The unaided read takes what the perception model says (longer for juniors, for
clips, for Doppler, near a boundary). In a sequential design the aided read is a second look at a
case just read: ``SECOND_LOOK`` of the unaided time where the suggestion agrees with the reader's
own grade, ``RECONSIDER[level]`` where it does not (juniors weigh it longest); in a crossover the
aided read is a first look, ``FIRST_LOOK_AIDED`` of an unaided read's time (x ``RECONSIDER_FIRST``
where the suggestion disagrees). Each with a little log-normal noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from rascore import scale
from rascore.synth.cohort import ItemSpec
from rascore.synth.readers import (
    READERS,
    Read,
    ReaderProfile,
    grades_of,
    perceive,
    reference_grades,
    severity_position,
)

AID_SD = 0.30  # the simulated aid's perception noise (grade units)
AID_SPREAD = 0.40  # median spread of its probability distribution (grade units)
GAIN = {"expert": 0.10, "senior": 0.20, "intermediate": 0.35, "junior": 0.50}
FOLLOW = {"expert": 0.05, "senior": 0.10, "intermediate": 0.20, "junior": 0.35}
SECOND_LOOK = 0.35
RECONSIDER = {"expert": 0.45, "senior": 0.50, "intermediate": 0.60, "junior": 0.70}
FIRST_LOOK_AIDED = 0.90
RECONSIDER_FIRST = 1.25
DESIGNS = ("sequential", "crossover")
# seed streams: another look than the annotations' (which use none)
_AID, _STUDY, _AIDED, _CROSSOVER, _CALIBRATION = 101, 102, 103, 104, 105
_CUTS = np.array([-np.inf, 1.0, 2.0, 3.0, np.inf])


@dataclass(frozen=True)
class Suggestion:
    """The simulated aid's suggestion for one item: the grade and its probabilities over 0-3."""

    item_key: str
    grade: int
    probs: tuple[float, float, float, float]
    source: str = "simulated"


@dataclass(frozen=True)
class StudyRead:
    """One read of a study case in one arm; ``followed``: an aided read that took the suggestion
    over the reader's own, differing grade."""

    reader: str
    item_key: str
    arm: str
    sh: int
    pd: int | None
    seconds: float
    followed: bool = False


def target_shown(spec: ItemSpec) -> tuple[int, float]:
    """The grade a model of the item's modality learns, as the item shows it (SH on greyscale, the
    combined EOSS on Doppler), and the severity behind it (that grade plus how far into it)."""
    sh, pd = reference_grades(spec)
    u_sh, u_pd = severity_position(spec)
    if pd is None or sh == 0:
        return sh, sh + u_sh
    u = u_pd if pd == spec.pd else 0.75  # a still showing less flow than the joint has
    latent = max(sh + u_sh, pd + u)
    return scale.combined(sh, pd), latent


def probabilities(centre: float, spread: float) -> np.ndarray:
    """Probabilities of grades 0-3 of a normal(centre, spread) severity cut at 1, 2 and 3."""
    cdf = norm.cdf((_CUTS - centre) / spread)
    return np.diff(cdf)


def simulated_aid(spec: ItemSpec, seed: int = 0) -> Suggestion:
    """The simulated aid's suggestion for one item (see the module docstring)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _AID, spec.seed]))
    _, latent = target_shown(spec)
    seen = latent + rng.normal(0, AID_SD)
    spread = AID_SPREAD * float(np.exp(rng.normal(0, 0.25)))
    probs = np.round(probabilities(seen, spread), 4)
    probs[int(np.argmax(probs))] += 1.0 - probs.sum()  # exactly 1 after rounding
    return Suggestion(spec.key, int(np.argmax(probs)), tuple(float(p) for p in probs))


def simulated_aids(specs: Iterable[ItemSpec], seed: int = 0) -> dict[str, Suggestion]:
    """item key -> the simulated aid's suggestion."""
    return {spec.key: simulated_aid(spec, seed) for spec in specs}


def _suggested(spec: ItemSpec, sh: int, pd: int | None) -> int:
    """A read's grade on the aid's scale: SH on greyscale, the combined EOSS on Doppler."""
    return sh if pd is None else scale.combined(sh, pd)


def _combined_latent(sh: float, pd: float | None) -> float:
    return sh if pd is None else max(sh, pd)


def _aided(
    reader: ReaderProfile,
    index: int,
    spec: ItemSpec,
    suggestion: Suggestion,
    seed: int,
    design: str,
    unaided_seconds: float,
) -> StudyRead:
    """The aided read of one case (see the module docstring)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, spec.seed, _AIDED]))
    stream = _STUDY if design == "sequential" else _CROSSOVER
    seen = perceive(reader, index, spec, seed, stream)
    own = _suggested(spec, *grades_of(seen.sh, seen.pd))
    level = reader.level
    follow = rng.random() < FOLLOW[level]
    current = _combined_latent(seen.sh, seen.pd)
    disagrees = own != suggestion.grade
    if disagrees and follow:
        shift = suggestion.grade + 0.5 - current
    else:
        expected = float(np.dot(np.arange(4), suggestion.probs)) + 0.5
        shift = GAIN[level] * (expected - current)
    sh, pd = grades_of(seen.sh + shift, None if seen.pd is None else seen.pd + shift)
    if disagrees and follow and sh == 0 and suggestion.grade == 1 and pd == 0 and seen.pd is not None:
        # the moved PD is one spot but SH 0: taking a suggestion of synovitis, the reader finds
        # the synovium that spot lies in (grades_of would drop the spot instead)
        sh, pd = 1, int(np.clip(np.floor(seen.pd + shift), 0, 1))
    if design == "sequential":
        factor = RECONSIDER[level] if disagrees else SECOND_LOOK
        base = unaided_seconds
    else:
        factor = FIRST_LOOK_AIDED * (RECONSIDER_FIRST if disagrees else 1.0)
        base = seen.seconds
    seconds = base * factor * float(np.exp(rng.normal(0, 0.2)))
    return StudyRead(
        reader.name, spec.key, "aided", sh, pd, round(seconds, 2), followed=bool(disagrees and follow)
    )


def case_reads(
    reader: ReaderProfile, spec: ItemSpec, suggestion: Suggestion, seed: int = 0, design: str = "sequential"
) -> tuple[StudyRead, StudyRead]:
    """(unaided, aided) reads of one study case by one of READERS."""
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")
    index = READERS.index(reader)
    seen = perceive(reader, index, spec, seed, _STUDY)
    sh, pd = grades_of(seen.sh, seen.pd)
    unaided = StudyRead(reader.name, spec.key, "unaided", sh, pd, round(seen.seconds, 2))
    return unaided, _aided(reader, index, spec, suggestion, seed, design, seen.seconds)


def study_reads(
    specs: Sequence[ItemSpec],
    suggestions: Mapping[str, Suggestion],
    seed: int = 0,
    readers: Iterable[ReaderProfile] | None = None,
    design: str = "sequential",
) -> list[StudyRead]:
    """Both arms of every case by every reader (by default the twelve non-expert READERS), in
    reader then case order."""
    chosen = [r for r in READERS if r.role == "reader"] if readers is None else list(readers)
    return [
        read
        for reader in chosen
        for spec in specs
        for read in case_reads(reader, spec, suggestions[spec.key], seed, design)
    ]


def calibration_read(reader: ReaderProfile, spec: ItemSpec, seed: int = 0) -> Read:
    """One calibration read (another look at the item, no learning from the feedback)."""
    seen = perceive(reader, READERS.index(reader), spec, seed, _CALIBRATION)
    sh, pd = grades_of(seen.sh, seen.pd)
    return Read(reader=reader.name, item_key=spec.key, sh=sh, pd=pd, seconds=round(seen.seconds, 2))
