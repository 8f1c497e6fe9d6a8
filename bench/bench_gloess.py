"""Patient-level GLOESS of the simulated cohort: joints per patient, and the simulated readers'
patient-level agreement with the simulated reference (ICC(2,1), Bland-Altman), test cohorts.

No pixels and no models: the demo's reads (``rascore.synth.simulate_reads``) and reference
(``rascore.synth.adjudicate``) are drawn for the planned Doppler items of test1 and test2, and
summed by ``rascore.evaluate.gloess`` exactly as ``rascore export gloess`` sums a project's.

Run: .venv/bin/python bench/bench_gloess.py [--size paper|small] [--seed 0]
"""

from __future__ import annotations

import argparse
import warnings
from collections import Counter

import pandas as pd

from rascore import scale
from rascore.evaluate.gloess import REFERENCE, patient_agreement, patient_scores
from rascore.synth import READERS, adjudicate, plan_cohort, simulate_reads


def rater_rows(size: str, seed: int) -> list[dict]:
    """One row per Doppler test item and rater (each simulated reader, the reference)."""
    specs = [s for s in plan_cohort(size, seed) if s.cohort != "train" and s.doppler]
    reads: dict[str, list] = {}
    for read in simulate_reads(specs, seed):
        reads.setdefault(read.item_key, []).append(read)
    rows = []
    for spec in specs:
        item = {k: getattr(spec, k) for k in ("patient", "cohort", "modality", "joint", "side")}
        sh, pd_grade, _ = adjudicate(spec, reads.get(spec.key, []))
        rows.append({**item, "rater": REFERENCE, "combined": scale.combined(sh, pd_grade)})
        rows += [
            {**item, "rater": r.reader, "combined": scale.combined(r.sh, r.pd)}
            for r in reads.get(spec.key, [])
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="paper", choices=("paper", "small"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scores = patient_scores(rater_rows(args.size, args.seed))
    reference = scores.table[scores.table["rater"] == REFERENCE]
    for modality, group in reference.groupby("modality"):
        joints = sorted(Counter(group["n_joints"]).items())
        print(
            f"{modality}: {len(group)} test patients; joints per patient {joints}; "
            f"reference GLOESS {group['gloess'].min()}-{group['gloess'].max()}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = patient_agreement(scores)
    levels = {r.name: r.level for r in READERS}
    frame = pd.DataFrame(
        [{**a.to_dict(), "level": levels[a.rater]} for a in results],
    )
    summary = frame.groupby(["modality", "level"]).agg(
        readers=("rater", "size"),
        patients=("n_patients", "min"),
        left_out=("n_missing_joints", "sum"),
        icc_min=("icc", "min"),
        icc_max=("icc", "max"),
        mean_diff_min=("mean_diff", "min"),
        mean_diff_max=("mean_diff", "max"),
        loa_width_max=("loa_high", lambda s: float((s - frame.loc[s.index, "loa_low"]).max())),
    )
    print(f"ICC(2,1) and Bland-Altman (reader - reference) per level, {args.size} cohort, seed {args.seed}:")
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
