"""The EULAR-OMERACT synovitis score (EOSS): items, grade definitions, the combined rule, targets.

Sources: D'Agostino et al., RMD Open 2017;3:e000428 (definitions and the combined score, Table 4);
Schmidt et al., Rheumatology 2015 (quantitative colour-fraction alternative for PD).
"""

from __future__ import annotations

from dataclasses import dataclass

GRADES: tuple[int, ...] = (0, 1, 2, 3)

SH_DEFINITIONS: dict[int, str] = {
    0: "No synovial hypertrophy.",
    1: "Minimal: hypoechoic synovium up to, not beyond, the line joining the tops of the "
    "periarticular bones (it fills the angle between the bones).",
    2: "Moderate: synovium extends beyond the line, with a flat or concave upper surface "
    "(no overall convex shape).",
    3: "Severe: synovium extends beyond the line with a clearly convex upper surface "
    "(distended capsule); it may also run along a bone shaft.",
}

PD_DEFINITIONS: dict[int, str] = {
    0: "No flow in the synovium.",
    1: "Up to 3 single spots, or up to 2 confluent spots, or 1 confluent spot plus up to 2 single spots.",
    2: "Signal in less than 50% of the synovial area.",
    3: "Signal in more than 50% of the synovial area.",
}

COMBINED_DEFINITIONS: dict[int, str] = {
    0: "SH 0 and PD 0.",
    1: "SH 1 with PD 0 or 1.",
    2: "SH 2 with PD 0-2, or SH 1 with PD 2.",
    3: "SH 3 with any PD, or SH 1-2 with PD 3.",
}

ITEMS: dict[str, dict[int, str]] = {
    "SH": SH_DEFINITIONS,
    "PD": PD_DEFINITIONS,
    "EOSS": COMBINED_DEFINITIONS,
}
# The stored column that holds each item's grade (annotations, reference labels, study reads).
GRADE_COLUMNS: dict[str, str] = {"SH": "sh", "PD": "pd", "EOSS": "combined"}
ITEM_NAMES: dict[str, str] = {
    "SH": "Synovial hypertrophy (greyscale)",
    "PD": "Power Doppler",
    "EOSS": "Combined EOSS score",
}


class InvalidGrade(ValueError):
    """A grade outside 0-3, or a combination the EOSS does not allow."""


def check_grade(value: object, item: str = "grade") -> int:
    """Return ``value`` as an int grade 0-3, or raise InvalidGrade naming the item."""
    try:
        grade = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidGrade(f"{item} must be an integer 0-3, got {value!r}") from None
    if isinstance(value, float) and value != grade:
        raise InvalidGrade(f"{item} must be an integer 0-3, got {value!r}")
    if grade not in GRADES:
        raise InvalidGrade(f"{item} must be 0-3, got {grade}")
    return grade


def is_valid_pair(sh: int, pd: int) -> bool:
    """False for SH 0 with PD > 0: Doppler signal counts only inside synovium that exists."""
    return not (sh == 0 and pd > 0)


def combined(sh: int, pd: int) -> int:
    """Combined EOSS score (D'Agostino 2017, Table 4): the higher of SH and PD, PD only where SH >= 1.

    Raises InvalidGrade for grades outside 0-3 and for SH 0 with PD > 0, which is flagged, never
    silently scored.
    """
    sh = check_grade(sh, "SH")
    pd = check_grade(pd, "PD")
    if not is_valid_pair(sh, pd):
        raise InvalidGrade(
            f"SH 0 with PD {pd} is not a valid EOSS combination: Doppler signal counts only inside "
            "synovium. Raise SH or set PD to 0."
        )
    return max(sh, pd)


@dataclass(frozen=True)
class Modality:
    """One of the four ultrasound modalities of He et al. 2023, each with its own model."""

    code: str
    name: str
    dynamic: bool
    doppler: bool

    @property
    def target(self) -> str:
        """The item a model of this modality predicts: SH for greyscale, combined EOSS for PD."""
        return "EOSS" if self.doppler else "SH"

    @property
    def reader_items(self) -> tuple[str, ...]:
        """What a reader grades: SH always, PD too on Doppler items (combined is derived)."""
        return ("SH", "PD") if self.doppler else ("SH",)


MODALITIES: dict[str, Modality] = {
    "SGS": Modality("SGS", "static greyscale", dynamic=False, doppler=False),
    "DGS": Modality("DGS", "dynamic greyscale", dynamic=True, doppler=False),
    "SPD": Modality("SPD", "static power Doppler", dynamic=False, doppler=True),
    "DPD": Modality("DPD", "dynamic power Doppler", dynamic=True, doppler=True),
}
# test3: an "unseen" scanner profile that no training item comes from (simulator: scanner-C)
COHORTS: tuple[str, ...] = ("train", "test1", "test2", "test3")
TEST_COHORTS: tuple[str, ...] = tuple(c for c in COHORTS if c != "train")  # held out from training
JOINTS: tuple[str, ...] = (
    "MCP1",
    "MCP2",
    "MCP3",
    "MCP4",
    "MCP5",
    "wrist",
    "PIP2",
    "PIP3",
    "MTP2",
    "MTP5",
    "knee",
)
SIDES: tuple[str, ...] = ("L", "R")


def modality(code: str) -> Modality:
    """Look up a modality by code (case-insensitive), or raise ValueError listing the valid ones."""
    key = str(code).strip().upper()
    if key not in MODALITIES:
        raise ValueError(f"unknown modality {code!r}; expected one of {', '.join(MODALITIES)}")
    return MODALITIES[key]


def cohort(name: str) -> str:
    """Validate a cohort name (train, test1, test2, test3)."""
    key = str(name).strip().lower()
    if key not in COHORTS:
        raise ValueError(f"unknown cohort {name!r}; expected one of {', '.join(COHORTS)}")
    return key


def target_grade(mod: str | Modality, sh: int, pd: int | None) -> int:
    """The label a modality's model learns: SH for SGS/DGS, combined(SH, PD) for SPD/DPD."""
    m = mod if isinstance(mod, Modality) else modality(mod)
    if not m.doppler:
        return check_grade(sh, "SH")
    if pd is None:
        raise InvalidGrade(f"{m.code} needs a PD grade as well as SH")
    return combined(sh, pd)


def check_pair(mod: str | Modality, sh: object, pd: object) -> int:
    """The combined EOSS of the grades given for one item of this modality, or InvalidGrade saying
    what to fix: SH always, PD on power Doppler items only, no PD signal without synovium.

    The one grade rule of the product: the labelling, adjudication and import paths and the store
    all call it (the schema's CHECKs are the last guard underneath).
    """
    m = mod if isinstance(mod, Modality) else modality(mod)
    if sh is None:
        raise InvalidGrade("Choose an SH grade (0-3).")
    sh = check_grade(sh, "SH")
    if not m.doppler:
        if pd is not None:
            raise InvalidGrade(f"{m.code} is a greyscale item: it has no PD grade.")
        return sh
    if pd is None:
        raise InvalidGrade(f"{m.code} is a power Doppler item: it needs a PD grade as well as SH.")
    return combined(sh, pd)


# The PD definitions above as numbers, shared by every rule that grades Doppler spots.
PD_GRADE3_COVERAGE = 0.5  # grade 3: signal in more than this share of the synovial area
# grade 1: at most (single, confluent) spots in one of these combinations ("up to 3 single spots,
# or up to 2 confluent spots, or 1 confluent spot plus up to 2 single spots")
PD_GRADE1_SPOTS: tuple[tuple[int, int], ...] = ((3, 0), (0, 2), (2, 1))
# A Doppler spot up to this area counts as "single", larger as "confluent" (the project's reading
# of the definitions; EOSS itself gives no size).
SINGLE_SPOT_MAX_MM2 = 0.10


def pd_grade_from_spots(n_single: int, n_confluent: int, coverage: float) -> int:
    """PD grade from Doppler spots inside the synovium and the fraction of synovium covered.

    Coverage above PD_GRADE3_COVERAGE (50%) gives 3; any signal beyond the grade-1 spot counts
    (PD_GRADE1_SPOTS) gives 2.
    """
    if coverage > PD_GRADE3_COVERAGE:
        return 3
    if n_single == 0 and n_confluent == 0:
        return 0
    grade1 = any(n_single <= single and n_confluent <= confluent for single, confluent in PD_GRADE1_SPOTS)
    return 1 if grade1 else 2


def pd_grade_from_fraction(
    fraction: float, thresholds: tuple[float, float, float] = (0.0, 0.06, 0.12)
) -> int:
    """Quantitative PD grade (Schmidt 2015): colour fraction of synovium >0-6% / >6-12% / >12%."""
    t0, t1, t2 = thresholds
    if fraction <= t0:
        return 0
    if fraction <= t1:
        return 1
    if fraction <= t2:
        return 2
    return 3
