"""How the simulated cohort's reference standard was formed: agreements, adjudications, and how many
adjudicated Doppler items show less PD than the joint's hidden peak (so the reference is below it).

Usage: python bench/synth_reference.py [--size paper] [--seed 0]   (prints one JSON object)
"""

from __future__ import annotations

import argparse
import collections
import json

from rascore import scale
from rascore.synth import adjudicate, plan_cohort, simulate_reads


def main(argv: list[str] | None = None) -> dict:
    """Count reference methods and adjudicated Doppler items graded below their peak truth."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="paper", choices=["paper", "small"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    specs = plan_cohort(args.size, args.seed)
    by_item: dict[str, list] = collections.defaultdict(list)
    for read in simulate_reads(specs, args.seed):
        by_item[read.item_key].append(read)
    methods: collections.Counter = collections.Counter()
    pd_below = combined_below = 0
    for spec in specs:
        sh, pd, method = adjudicate(spec, by_item[spec.key])
        methods[method] += 1
        if method == "adjudication" and spec.doppler and pd < spec.pd:
            pd_below += 1
            combined_below += scale.combined(sh, pd) < scale.combined(spec.sh, spec.pd)
    out = {
        "size": args.size,
        "seed": args.seed,
        "items": len(specs),
        **dict(methods),
        "agreement_share": round(methods["agreement"] / len(specs), 4),
        "adjudicated_pd_below_peak": pd_below,
        "adjudicated_combined_below_peak": combined_below,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
