"""Published figures (He et al. 2024), shown beside ours and labelled as published, never computed."""

from __future__ import annotations

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
