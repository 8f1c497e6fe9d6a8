"""Benchmark: how much of the true synovium the joint crop keeps, and how often it falls back.

Renders simulated items (rascore.synth) with their truth masks, finds the joint on the frame the
network's crop is taken from (a clip's middle frame) exactly as rascore.train.roi does, and prints
per preset (both presets' roi) the distribution of the share of synovium inside the crop, the
share of crops that keep under half of it, and the fallback rate (a fallback shows the whole
frame, so it keeps all the synovium). Items without synovium (SH 0) count for the fallback rate
only.

The confidence check's thresholds are chosen on the training cohort (``--choose``: the joint
fits of crops that kept under half of the synovium against the rest); report on the test cohorts
of a seed no choice has seen:

    PYTHONPATH=$PWD python bench/bench_roi.py --choose --cohorts train --seed 0 --limit 400
    PYTHONPATH=$PWD python bench/bench_roi.py --cohorts test1 test2 test3 --seed 7

``--variation none`` renders the simulator before it was widened (192 x 256 frames, each
profile's centre settings); the default is the widened one.

``--variants`` compares the two crop placements (rascore.train.roi ``within``: "frame",
the preset's ``roi``; "field", its ``roi_field``) on layouts the demo does not make
(tests/roi_variants.py, made from narrow-demo renders) and on the widened simulator's cohorts:

    PYTHONPATH=$PWD python bench/bench_roi.py --variants --seed 5 --cohorts test1 --limit 60
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # rascore, and tests.roi_variants

from rascore.nets.colour_fraction import ColourFractionRule  # noqa: E402
from rascore.synth import plan_cohort, render_many  # noqa: E402
from rascore.train.config import PRESETS  # noqa: E402
from rascore.train.roi import DEFAULT_CHECK, CropCheck, crop_box  # noqa: E402


def measure(specs, workers: int = 2, rule: ColourFractionRule | None = None) -> list[dict]:
    """Per item: its joint fit (dip, edge) and, per preset, the share of true synovium in the crop box."""
    rule = rule or ColourFractionRule()
    rows = []
    for item in render_many(specs, workers=workers):
        t = len(item.frames) // 2
        frame, synovium = item.frames[t], item.synovium[t]
        fit = rule.fit_joint(frame)
        area = int(synovium.sum())
        row = {
            "key": item.spec.key,
            "modality": item.spec.modality,
            "cohort": item.spec.cohort,
            "sh": item.spec.sh,
            "dip": fit.dip,
            "edge": fit.edge,
            "kept": {},
        }
        for name, preset in PRESETS.items():
            top, left, h, w = crop_box(frame.shape, fit, preset.roi)
            row["kept"][name] = float(synovium[top : top + h, left : left + w].sum() / area) if area else None
        rows.append(row)
    return rows


def summary(rows: list[dict], check: CropCheck) -> dict:
    """Per preset: fallback rate, kept-share quantiles (crops only, and with fallbacks as 1) and
    crops keeping under half of the synovium."""
    trusted = np.array([check.trusted(_fit(r)) for r in rows], dtype=bool)
    out = {
        "n": len(rows),
        "fallback": int((~trusted).sum()),
        "fallback_rate": float((~trusted).mean()) if rows else float("nan"),
        "presets": {},
    }
    for name in PRESETS:
        kept = np.array([r["kept"][name] if r["kept"][name] is not None else np.nan for r in rows])
        has = ~np.isnan(kept)
        cropped = kept[has & trusted]
        served = np.where(trusted, kept, 1.0)[has]
        out["presets"][name] = {
            "roi": list(PRESETS[name].roi),
            "with_synovium": int(has.sum()),
            "crops_with_synovium": int(cropped.size),
            "kept_quantiles_crops": _quantiles(cropped),
            "kept_under_half_crops": int((cropped < 0.5).sum()),
            "kept_under_half_without_check": int((kept[has] < 0.5).sum()),
            "kept_quantiles_served": _quantiles(served),
            "kept_mean_served": float(served.mean()) if served.size else float("nan"),
        }
    return out


def choose(rows: list[dict], preset: str = "fast") -> dict:
    """Joint-fit confidence of crops that kept under half of the synovium against the rest."""
    bad = [r for r in rows if r["kept"][preset] is not None and r["kept"][preset] < 0.5]
    good = [r for r in rows if r["kept"][preset] is not None and r["kept"][preset] >= 0.5]
    return {
        "preset": preset,
        "n_under_half": len(bad),
        "n_rest": len(good),
        "under_half": [
            {
                "key": r["key"],
                "dip": round(r["dip"], 4),
                "edge": round(r["edge"], 1),
                "kept": round(r["kept"][preset], 3),
            }
            for r in bad
        ],
        "rest_dip_quantiles": _quantiles(np.array([r["dip"] for r in good])),
        "rest_edge_quantiles": _quantiles(np.array([r["edge"] for r in good])),
    }


def variants(args) -> None:
    """Fallbacks and share of synovium kept per layout, for the frame and the field placement."""
    from rascore.synth import render_item
    from rascore.train.roi import joint_crop
    from tests.roi_variants import VARIANTS

    preset = PRESETS["fast"]
    placements = {"frame": preset.roi, "field": preset.roi_field}
    layouts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    rng = np.random.default_rng(0)
    for variation in ("none", "wide"):
        specs = [
            s
            for s in plan_cohort(args.size, seed=args.seed, variation=variation)
            if s.cohort in args.cohorts and s.modality in ("SGS", "SPD") and s.sh >= 1
        ][: args.limit or None]
        items = [render_item(s) for s in specs]
        pairs = [(it.frames[0], it.synovium[0]) for it in items]
        if variation == "none":
            layouts["demo (narrow)"] = pairs
            for name, make in VARIANTS.items():
                layouts[name] = [make(f, m, rng) for f, m in pairs]
        else:
            layouts["simulator, widened"] = pairs
    print(f"SGS/SPD items with synovium, seed {args.seed}, {'/'.join(args.cohorts)}; fast preset crop")
    for name, pairs in layouts.items():
        cells = []
        for within, roi in placements.items():
            kept, fallback = [], 0
            for frame, mask in pairs:
                (top, left, h, w), mode, _ = joint_crop(frame, roi, within=within)
                if mode == "fallback":
                    fallback += 1
                    continue
                kept.append(mask[top : top + h, left : left + w].sum() / max(1, mask.sum()))
            k = np.array(kept)
            cells.append(
                f"{within}: fallback {fallback}/{len(pairs)}, crops keeping <50% {int((k < 0.5).sum())}, "
                f"<80% {int((k < 0.8).sum())}"
            )
        print(f"  {name:<20} " + " | ".join(cells))


def _fit(row: dict):
    from rascore.nets.colour_fraction import JointFit

    return JointFit(0, 0, row["dip"], row["edge"])


def _quantiles(values: np.ndarray) -> dict:
    if not values.size:
        return {}
    return {
        q: round(float(np.quantile(values, float(q))), 4)
        for q in ("0", "0.02", "0.05", "0.5", "0.95", "0.98", "1")
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="paper", choices=("paper", "small"))
    parser.add_argument("--seed", type=int, default=7, help="cohort plan seed")
    parser.add_argument("--cohorts", nargs="+", default=["test1", "test2", "test3"])
    parser.add_argument("--modalities", nargs="+", default=["SGS", "SPD", "DGS", "DPD"])
    parser.add_argument("--limit", type=int, default=0, help="at most N items (0: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--min-dip", type=float, default=DEFAULT_CHECK.min_dip)
    parser.add_argument("--max-dip", type=float, default=DEFAULT_CHECK.max_dip)
    parser.add_argument("--min-edge", type=float, default=DEFAULT_CHECK.min_edge)
    parser.add_argument("--choose", action="store_true", help="print the fits of failed crops")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--variants", action="store_true", help="frame vs field placement on other layouts")
    parser.add_argument("--variation", default="wide", choices=("wide", "none"))
    args = parser.parse_args(argv)
    if args.variants:
        variants(args)
        return 0
    specs = [
        s
        for s in plan_cohort(args.size, seed=args.seed, variation=args.variation)
        if s.cohort in args.cohorts and s.modality in args.modalities
    ]
    if args.limit:
        specs = specs[: args.limit]
    started = time.perf_counter()
    rows = measure(specs, args.workers)
    check = CropCheck(args.min_dip, args.max_dip, args.min_edge)
    result = {
        "seed": args.seed,
        "variation": args.variation,
        "cohorts": args.cohorts,
        "modalities": args.modalities,
        "check": {"min_dip": check.min_dip, "max_dip": check.max_dip, "min_edge": check.min_edge},
        "summary": summary(rows, check),
        "by_cohort": {
            c: summary([r for r in rows if r["cohort"] == c], check)
            for c in args.cohorts
            if len(args.cohorts) > 1
        },
        "seconds": time.perf_counter() - started,
    }
    if args.choose:
        result["choose"] = {name: choose(rows, name) for name in PRESETS}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    s = result["summary"]
    print(
        f"{s['n']} items (seed {args.seed}, variation {args.variation}, {'/'.join(args.cohorts)}, "
        f"{'/'.join(args.modalities)}); "
        f"check: dip {check.min_dip:.4f}-{check.max_dip} of the height, bone edge >= {check.min_edge}; "
        f"fallback {s['fallback']} ({s['fallback_rate']:.1%}); {result['seconds']:.0f} s"
    )
    for name, p in s["presets"].items():
        print(
            f"  {name} roi {p['roi']}: {p['with_synovium']} with synovium, {p['crops_with_synovium']} "
            f"cropped; share kept by crops (quantiles) {p['kept_quantiles_crops']}; crops under half: "
            f"{p['kept_under_half_crops']} (without the check {p['kept_under_half_without_check']}); "
            f"served (fallback = 1) quantiles {p['kept_quantiles_served']}, mean {p['kept_mean_served']:.3f}"
        )
    for cohort, c in result["by_cohort"].items():
        print(
            f"  {cohort}: {c['n']} items, fallback {c['fallback']} ({c['fallback_rate']:.1%}); crops under "
            "half of the synovium "
            + ", ".join(
                f"{name} {p['kept_under_half_crops']} of {p['crops_with_synovium']} (without the check "
                f"{p['kept_under_half_without_check']} of {p['with_synovium']})"
                for name, p in c["presets"].items()
            )
        )
    if args.choose:
        print(json.dumps(result["choose"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
