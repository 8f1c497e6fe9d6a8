"""Plan a simulated cohort: items with modality, cohort, patient, joint and true grades, no pixels.

Planning is cheap and deterministic; rendering (rascore.synth.render) derives everything else from
``ItemSpec.seed``. The seed packs a joint seed and the modality (``seed // 8`` is the joint seed),
so the same joint of a patient shows the same anatomy and synovitis in every modality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from rascore import scale

# test3 (scanner-C, "unseen") is not in the study: it comes after the others, so planning it
# leaves train, test1 and test2 as they were.
SIZES: dict[str, dict[str, int]] = {
    "paper": {"train": 1244, "test1": 152, "test2": 354, "test3": 152},
    "small": {"train": 96, "test1": 32, "test2": 32, "test3": 32},
}
MODALITY_ORDER: tuple[str, ...] = ("SGS", "DGS", "SPD", "DPD")
COHORT_PROFILE: dict[str, str] = {
    "train": "scanner-A",
    "test1": "scanner-A",
    "test2": "scanner-B",
    "test3": "scanner-C",
}

# Marginal SH prevalence 0/1/2/3 (clinical-like: mostly inactive or mild joints).
SH_PREVALENCE: tuple[float, ...] = (0.35, 0.35, 0.20, 0.10)
# PD given SH (rows SH 0..3): no flow without synovium; more flow with more synovium.
PD_GIVEN_SH: tuple[tuple[float, ...], ...] = (
    (1.0, 0.0, 0.0, 0.0),
    (0.50, 0.33, 0.13, 0.04),
    (0.25, 0.33, 0.30, 0.12),
    (0.10, 0.25, 0.35, 0.30),
)
# Joints scanned (dorsal longitudinal views of small joints; mostly MCP2/MCP3).
JOINT_WEIGHTS: dict[str, float] = {
    "MCP2": 0.34,
    "MCP3": 0.30,
    "MCP1": 0.05,
    "MCP4": 0.06,
    "MCP5": 0.05,
    "PIP2": 0.05,
    "PIP3": 0.05,
    "MTP2": 0.04,
    "MTP5": 0.03,
    "wrist": 0.03,
}
_PATIENT_SD = 0.6  # share of a joint's disease latent that comes from the patient
_SH_CUTS = norm.ppf(np.cumsum(SH_PREVALENCE)[:-1])


@dataclass(frozen=True)
class ItemSpec:
    """One simulated image or clip: metadata and true grades, cheap to make, no pixels."""

    key: str
    modality: str
    cohort: str
    patient: str
    joint: str
    side: str
    scanner_profile: str
    sh: int
    pd: int
    seed: int
    variation: str = "wide"  # "none": the profile's centre settings on the 192 x 256 frame

    @property
    def joint_seed(self) -> int:
        """Seed of the joint's anatomy and synovitis, shared by all modalities of one joint."""
        return self.seed // 8

    @property
    def dynamic(self) -> bool:
        """True for cine clips (DGS, DPD)."""
        return scale.MODALITIES[self.modality].dynamic

    @property
    def doppler(self) -> bool:
        """True for power Doppler items (SPD, DPD)."""
        return scale.MODALITIES[self.modality].doppler


def _modality_quota(n: int) -> dict[str, int]:
    """Split n items over the four modalities as evenly as possible (earlier ones get the extra)."""
    base, extra = divmod(n, len(MODALITY_ORDER))
    return {m: base + (1 if i < extra else 0) for i, m in enumerate(MODALITY_ORDER)}


def _joint_seed(seed: int, patient_index: int, joint_index: int) -> int:
    """Stable 32-bit joint seed from the cohort seed, patient and joint number."""
    return int(np.random.SeedSequence([seed, 104729, patient_index, joint_index]).generate_state(1)[0])


def _draw_grades(rng: np.random.Generator, patient_latent: float) -> tuple[int, int]:
    """SH from a patient-correlated latent with the target prevalence, then PD given SH."""
    latent = patient_latent + rng.normal(0.0, np.sqrt(1.0 - _PATIENT_SD**2))
    sh = int(np.searchsorted(_SH_CUTS, latent))
    pd = int(rng.choice(4, p=PD_GIVEN_SH[sh]))
    return sh, pd


def plan_cohort(size: str = "paper", seed: int = 0, variation: str = "wide") -> list[ItemSpec]:
    """Plan every item of a simulated study (train, test1, test2, test3), deterministic by seed.

    Each cohort is split over SGS/DGS/SPD/DPD as evenly as possible; a patient belongs to one
    cohort; a joint of a patient may appear in several modalities with the same true grades.
    ``variation``: "wide" draws each acquisition's settings from its profile's ranges; "none"
    renders every item with its profile's centre settings (the simulator before widening). The
    plan (patients, joints, grades, seeds) is the same either way.
    """
    from rascore.synth.variation import check_variation

    if size not in SIZES:
        raise ValueError(f"unknown cohort size {size!r}; expected one of {', '.join(SIZES)}")
    check_variation(variation)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7919]))
    joint_names = list(JOINT_WEIGHTS)
    joint_p = np.array(list(JOINT_WEIGHTS.values()))
    joint_p = joint_p / joint_p.sum()
    specs: list[ItemSpec] = []
    patient_index = 0
    for cohort_name, n_items in SIZES[size].items():
        quota = _modality_quota(n_items)
        profile = COHORT_PROFILE[cohort_name]
        while sum(quota.values()) > 0:
            patient_index += 1
            patient = f"sim-p{patient_index:04d}"
            patient_latent = rng.normal(0.0, _PATIENT_SD)
            n_joints = int(rng.integers(2, 6))
            used: set[tuple[str, str]] = set()
            for joint_index in range(n_joints):
                left = [m for m in MODALITY_ORDER if quota[m] > 0]
                if not left:
                    break
                for _ in range(20):
                    joint = str(rng.choice(joint_names, p=joint_p))
                    side = str(rng.choice(scale.SIDES))
                    if (joint, side) not in used:
                        break
                else:
                    continue
                used.add((joint, side))
                sh, pd = _draw_grades(rng, patient_latent)
                n_mod = min(len(left), int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.2, 0.15])))
                weights = np.array([quota[m] for m in left], dtype=float)
                chosen = rng.choice(left, size=n_mod, replace=False, p=weights / weights.sum())
                jseed = _joint_seed(seed, patient_index, joint_index)
                for mod in sorted(chosen, key=MODALITY_ORDER.index):
                    quota[mod] -= 1
                    specs.append(
                        ItemSpec(
                            key=f"p{patient_index:04d}-{joint}-{side}-{mod}",
                            modality=mod,
                            cohort=cohort_name,
                            patient=patient,
                            joint=joint,
                            side=side,
                            scanner_profile=profile,
                            sh=sh,
                            pd=pd,
                            seed=jseed * 8 + MODALITY_ORDER.index(mod),
                            variation=variation,
                        )
                    )
    return specs


def example_spec(
    sh: int,
    pd: int,
    modality: str = "SPD",
    seed: int = 0,
    profile: str = "scanner-A",
    joint: str = "MCP2",
    variation: str = "wide",
) -> ItemSpec:
    """A single spec with chosen grades, for examples, contact sheets and tests."""
    sh = scale.check_grade(sh, "SH")
    pd = scale.check_grade(pd, "PD")
    if not scale.is_valid_pair(sh, pd):
        raise scale.InvalidGrade(f"SH 0 with PD {pd} is not a valid EOSS combination")
    mod = scale.modality(modality).code
    jseed = _joint_seed(seed, 10_000 + 16 * sh + 4 * pd, 0)
    return ItemSpec(
        key=f"ex{seed:04d}-sh{sh}pd{pd}-{mod}",
        modality=mod,
        cohort="train",
        patient=f"sim-ex{seed:04d}",
        joint=joint,
        side="R",
        scanner_profile=profile,
        sh=sh,
        pd=pd,
        seed=jseed * 8 + MODALITY_ORDER.index(mod),
        variation=variation,
    )
