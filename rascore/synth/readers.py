"""Simulated readers: two experts who read everything and twelve readers at three levels.

The twelve read the test cohorts of the study (test1, test2), not the unseen-scanner test3.

A reader perceives an item's latent severity (its true grade plus how far into the grade the
drawing sits, so items near a boundary are harder) with level-dependent noise and a personal
bias, then rounds down to a grade. On a still, PD is perceived from what the still shows
(render.visible_grades), which can be less than the joint's truth.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rascore import scale
from rascore.synth.anatomy import sample_anatomy
from rascore.synth.cohort import ItemSpec


@dataclass(frozen=True)
class ReaderProfile:
    """A simulated reader: name, role (expert or reader) and experience level."""

    name: str
    role: str
    level: str


# the twelve readers read the study's two test cohorts, as in its reader comparison; test3 (the
# unseen scanner, not in the study) is read by the experts only, for its reference standard
READER_COHORTS: tuple[str, ...] = ("test1", "test2")

READERS: list[ReaderProfile] = [
    ReaderProfile("expert-a", "expert", "expert"),
    ReaderProfile("expert-b", "expert", "expert"),
] + [
    ReaderProfile(f"{lvl}-{i}", "reader", lvl)
    for lvl in ("senior", "intermediate", "junior")
    for i in range(1, 5)
]
EXPERTS: tuple[str, ...] = ("expert-a", "expert-b")

# perception noise (grade units), spread of personal bias, median seconds per still
_NOISE = {"expert": 0.16, "senior": 0.30, "intermediate": 0.45, "junior": 0.65}
_BIAS_SD = {"expert": 0.03, "senior": 0.10, "intermediate": 0.16, "junior": 0.25}
_SECONDS = {"expert": 9.0, "senior": 11.0, "intermediate": 14.0, "junior": 19.0}


@dataclass(frozen=True)
class Read:
    """One reader's grades of one item (PD None on greyscale items) and the time it took."""

    reader: str
    item_key: str
    sh: int
    pd: int | None
    seconds: float


@lru_cache(maxsize=65536)
def severity_position(spec: ItemSpec) -> tuple[float, float]:
    """How far into its SH and PD grade the joint is drawn (0 low edge .. 1 high edge)."""
    jrng = np.random.default_rng(np.random.SeedSequence([spec.joint_seed, 1]))
    sample_anatomy(spec.joint, jrng)
    u_sh, u_pd = jrng.uniform(0.05, 0.95, size=2)
    return float(u_sh), float(u_pd)


@lru_cache(maxsize=65536)
def _visible(spec: ItemSpec) -> tuple[int, int | None]:
    from rascore.synth.render import visible_grades

    return visible_grades(spec)


def _reader_bias(seed: int, index: int, level: str) -> tuple[float, float, float]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 31337, index]))
    sd = _BIAS_SD[level]
    return float(rng.normal(0, sd)), float(rng.normal(0, sd)), float(rng.normal(1.0, 0.12))


@dataclass(frozen=True)
class Perception:
    """What a reader perceives of one item before rounding to grades: the latent SH and PD
    severities (PD None on greyscale) and the seconds the read takes."""

    sh: float
    pd: float | None
    seconds: float


def perceive(
    reader: ReaderProfile, index: int, spec: ItemSpec, seed: int, stream: int | None = None
) -> Perception:
    """One look of reader ``index`` (of READERS) at an item. ``stream`` None is the look behind
    ``simulate_reads``; another stream is another look (a study or calibration read), with the
    same personal bias and fresh noise."""
    bias_sh, bias_pd, speed = _reader_bias(seed, index, reader.level)
    key = [seed, index, spec.seed] if stream is None else [seed, index, spec.seed, stream]
    rng = np.random.default_rng(np.random.SeedSequence(key))
    u_sh, u_pd = severity_position(spec)
    noise = _NOISE[reader.level]
    sh_latent = spec.sh + u_sh + bias_sh + rng.normal(0, noise)
    pd_latent: float | None = None
    if spec.doppler:
        _, shown_pd = _visible(spec)
        assert shown_pd is not None
        u = u_pd if shown_pd == spec.pd else 0.75
        pd_noise = noise * (0.85 if spec.dynamic else 1.0)
        pd_latent = shown_pd + u + bias_pd + rng.normal(0, pd_noise)
    closeness = 1.0 - 2.0 * abs(u_sh - 0.5)
    base = _SECONDS[reader.level] * speed * (1.5 if spec.dynamic else 1.0) * (1.3 if spec.doppler else 1.0)
    seconds = base * (1.0 + 0.6 * closeness) * float(np.exp(rng.normal(0, 0.3)))
    return Perception(float(sh_latent), None if pd_latent is None else float(pd_latent), seconds)


def grades_of(sh_latent: float, pd_latent: float | None) -> tuple[int, int | None]:
    """(SH, PD) a reader gives for perceived latents: each rounded down and kept within 0-3.

    SH 0 with PD > 0 is resolved as a reader would: clear flow (PD >= 2) makes them find
    synovium (SH 1); a doubtful spot outside any synovium does not count (PD 0).
    """
    sh = int(np.clip(np.floor(sh_latent), 0, 3))
    if pd_latent is None:
        return sh, None
    pd = int(np.clip(np.floor(pd_latent), 0, 3))
    if sh == 0 and pd > 0:
        if pd >= 2:
            sh = 1
        else:
            pd = 0
    return sh, pd


def _read(reader: ReaderProfile, index: int, spec: ItemSpec, seed: int) -> Read:
    seen = perceive(reader, index, spec, seed)
    sh, pd = grades_of(seen.sh, seen.pd)
    return Read(reader=reader.name, item_key=spec.key, sh=sh, pd=pd, seconds=round(seen.seconds, 2))


def simulate_reads(specs: Iterable[ItemSpec], seed: int = 0) -> list[Read]:
    """Experts read every item; the twelve readers read the test cohorts. Deterministic by seed."""
    reads: list[Read] = []
    for spec in specs:
        for index, reader in enumerate(READERS):
            if reader.role == "expert" or spec.cohort in READER_COHORTS:
                reads.append(_read(reader, index, spec, seed))
    return reads


def reference_grades(spec: ItemSpec) -> tuple[int, int | None]:
    """(SH, PD) an ideal reader gives from the item's own evidence: what the item shows, not the joint.

    SH is visible on every item; PD is what the frames show at their best: the clip's peak frame,
    or on a still the flow visible at the still's pulse phase (render.visible_grades), which can be
    less than the joint's peak truth. PD is None on greyscale items.
    """
    return _visible(spec)


def adjudicate(spec: ItemSpec, reads: Iterable[Read]) -> tuple[int, int | None, str]:
    """Reference standard from the two experts: their grades where they agree, else adjudicated.

    Adjudication stands for a careful third look at the same item by the lead expert: the grades
    an ideal reader gives from the item's own visible evidence (reference_grades), never the
    joint's hidden truth. The pair obeys the EOSS (no PD without synovium), so
    scale.combined gives the combined reference.
    """
    by_expert = {r.reader: r for r in reads if r.item_key == spec.key and r.reader in EXPERTS}
    missing = [e for e in EXPERTS if e not in by_expert]
    if missing:
        raise ValueError(f"{spec.key}: no read from {', '.join(missing)}")
    a, b = (by_expert[e] for e in EXPERTS)
    if (a.sh, a.pd) == (b.sh, b.pd):
        return a.sh, a.pd, "agreement"
    sh, pd = reference_grades(spec)
    if pd is not None and not scale.is_valid_pair(sh, pd):
        raise scale.InvalidGrade(f"{spec.key}: visible grades SH {sh} / PD {pd} break the EOSS")
    return sh, pd, "adjudication"
