"""Which attribution method to trust, decided from the faithfulness figures of the models measured.

A ``Variant`` is a method with the settings that make its map (Integrated Gradients with one
baseline, Grad-CAM at one stage, Occlusion); ``trust_verdict`` weighs each variant's
localisation and randomisation figures (``rascore.explain.faithfulness`` measures them) and
names the one to trust, or none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from rascore.explain.attribution import ExplainOptions
from rascore.names import METHOD_NAMES


@dataclass(frozen=True)
class Variant:
    """A method with the settings that make its map: what the faithfulness tables compare."""

    code: str
    method: str
    label: str
    ig_baseline: str | None = None
    gradcam_stage: str | None = None
    clips_only: bool = False

    def options(self, base: ExplainOptions = ExplainOptions()) -> ExplainOptions:
        """``base`` with this variant's baseline or stage."""
        changes = {}
        if self.ig_baseline:
            changes["ig_baseline"] = self.ig_baseline
        if self.gradcam_stage:
            changes["gradcam_stage"] = self.gradcam_stage
        return replace(base, **changes)


VARIANTS: tuple[Variant, ...] = (
    Variant("ig", "ig", f"{METHOD_NAMES['ig']} (blurred baseline)", ig_baseline="blur"),
    Variant("ig-tissue", "ig", f"{METHOD_NAMES['ig']} (tissue-mean baseline)", ig_baseline="tissue"),
    Variant("ig-black", "ig", f"{METHOD_NAMES['ig']} (black baseline)", ig_baseline="black"),
    Variant("gradcam", "gradcam", METHOD_NAMES["gradcam"], gradcam_stage="fine"),
    Variant(
        "gradcam-deep",
        "gradcam",
        f"{METHOD_NAMES['gradcam']} (deepest stage)",
        gradcam_stage="deep",
        clips_only=True,
    ),
    Variant("occlusion", "occlusion", METHOD_NAMES["occlusion"]),
)
DEFAULT_VARIANTS: tuple[str, ...] = ("ig", "ig-black", "gradcam", "gradcam-deep", "occlusion")
# A map passes the randomisation test when, with every block of the network re-initialised, the rank
# correlation of |map| with the trained model's is below this (Adebayo et al. 2018 count gradient x
# input, at about 0.7, as failing: such a map shows the picture's edges, not what the model learned).
RANDOMISATION_LIMIT = 0.5


def variant(code: str) -> Variant:
    """The variant of this code (``ig``, ``ig-black``, ``gradcam-deep``, ...)."""
    for v in VARIANTS:
        if v.code == code:
            return v
    raise ValueError(f"unknown variant {code!r}; expected one of {', '.join(v.code for v in VARIANTS)}")


@dataclass
class VariantFigures:
    """What ``trust_verdict`` weighs for one variant on one model (means over its items; NaN when unmeasured)."""

    model: str  # e.g. "SPD v3"
    variant: str  # Variant.code
    share: float  # positive attribution inside the synovium
    uniform: float  # what a uniform map gives
    randomised: float  # what the randomised model's map gives
    final_correlation: float  # Spearman of |map| with the trained one, every block re-initialised

    @property
    def localises(self) -> bool:
        """More attribution in the synovium than a uniform map and than the randomised model."""
        return self.share > self.uniform and self.share > self.randomised  # NaN compares False

    @property
    def randomisation_tested(self) -> bool:
        """Whether the cascading randomisation was run."""
        return not math.isnan(self.final_correlation)

    @property
    def passes_randomisation(self) -> bool:
        """The map changes when the model is randomised (see ``RANDOMISATION_LIMIT``)."""
        return self.final_correlation < RANDOMISATION_LIMIT


def trust_verdict(figures: list[VariantFigures], limit: float = RANDOMISATION_LIMIT) -> str:
    """One line: which variant to trust and why, from the figures (not a fixed answer).

    A variant is trusted on a model when it localises (``VariantFigures.localises``) and passes the
    randomisation test (correlation below ``limit``). The one trusted on the largest share of the models
    it was measured on wins, then the one measured on more models (a clip-only variant does not beat
    one that also serves stills), then the larger mean lift (share in synovium over a uniform map's).
    When none is trusted anywhere, the line says so and names what failed.
    """
    by_variant: dict[str, list[VariantFigures]] = {}
    for f in figures:
        by_variant.setdefault(f.variant, []).append(f)
    if not by_variant:
        return "No verdict: nothing was measured."

    def trusted(f: VariantFigures) -> bool:
        return f.localises and f.final_correlation < limit

    def lift(rows: list[VariantFigures]) -> float:
        values = [f.share / f.uniform for f in rows if f.uniform > 0 and not math.isnan(f.share)]
        return float(np.mean(values)) if values else float("nan")

    def summary(code: str) -> str:
        rows = by_variant[code]
        tested = [f for f in rows if f.randomisation_tested]
        correlations = ", ".join(f"{f.final_correlation:.2f}" for f in tested) or "not run"
        return (
            f"{variant(code).label}: localises on {sum(f.localises for f in rows)} of {len(rows)} "
            f"(share {lift(rows):.1f}x a uniform map's), correlation after randomisation {correlations}"
        )

    scores = {
        code: (sum(trusted(f) for f in rows) / len(rows), len(rows), np.nan_to_num(lift(rows), nan=-1.0))
        for code, rows in by_variant.items()
    }
    best = max(scores, key=lambda code: scores[code])
    if not any(f.randomisation_tested for f in figures):
        return "No verdict: the randomisation test was not run (--random-items 0)."
    others = "; ".join(summary(code) for code in by_variant if code != best)
    if scores[best][0] == 0:
        return (
            f"Trust none of these maps on these models: no method both puts more attribution in the "
            f"synovium than a uniform map and the randomised model, and changes when the model is "
            f"randomised (correlation below {limit:g}). " + "; ".join(summary(c) for c in by_variant) + "."
        )
    n = len(by_variant[best])
    count = sum(trusted(f) for f in by_variant[best])
    return (
        f"Trust {variant(best).label}: on {count} of {n} models it puts more attribution in the "
        f"synovium than a uniform map and the randomised model, and its map changes when the model is "
        f"randomised (correlation below {limit:g}). {summary(best)}."
        + (f" Beside it: {others}." if others else "")
    )
