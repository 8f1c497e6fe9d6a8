"""Benchmark: which of the unseen scanner's factors costs a model the most?

Trains SGS at the fast preset on the widened simulator's train cohort (as bench/bench_robustness.py
does, one seed), then re-renders the *validation* items (the training profile, scanner-A) with one
group of acquisition factors drawn from the unseen profile's ranges instead (scanner-C: the
probe, the grey map, gain and noise, the zoom, the screen) and scores each version. The items,
their anatomy, grades and every other factor stay the same (each item draws its settings from its
own seed), so the drop from the first row is that group's cost. No test cohort is rendered.

  OMP_NUM_THREADS=2 PYTHONPATH=$PWD python bench/bench_factor_ablation.py --seed 0
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_robustness as robustness  # noqa: E402

from rascore.synth import plan_cohort, render_item  # noqa: E402
from rascore.synth.profiles import PROFILES  # noqa: E402
from rascore.train.config import make_config  # noqa: E402
from rascore.train.data import preprocessing_for  # noqa: E402
from rascore.train.loop import evaluate, fit  # noqa: E402

GROUPS: dict[str, tuple[str, ...]] = {
    "none (the validation split as rendered)": (),
    "probe: frequency, point spread, display blur, attenuation": (
        "freq_mhz",
        "psf_axial_wl",
        "psf_lateral_wl",
        "smooth_px",
        "attenuation",
    ),
    "grey map: dynamic range, gamma, curve, black level": (
        "dynamic_range_db",
        "grey_gamma",
        "grey_curves",
        "grey_black",
    ),
    "gain, time-gain sliders, noise floor": ("gain_db", "tgc_slider_db", "noise_floor_log10"),
    "zoom: display depth and pixel scale": ("depth_mm", "mm_per_px"),
    "screen: size, aspect, margins, tilt, annotations": (
        "frame_h",
        "aspect",
        "margin_x",
        "tilt_deg",
        "annotations",
    ),
}
TRAIN, UNSEEN, PROBE = "scanner-A", "scanner-C", "scanner-ablation"


@contextlib.contextmanager
def borrowed_profile(fields: tuple[str, ...]):
    """PROFILES[PROBE]: the training profile with ``fields`` of its variation taken from the unseen one."""
    base, unseen = PROFILES[TRAIN], PROFILES[UNSEEN].variation
    variation = dataclasses.replace(base.variation, **{f: getattr(unseen, f) for f in fields})
    PROFILES[PROBE] = dataclasses.replace(base, name=PROBE, variation=variation)
    try:
        yield PROBE
    finally:
        PROFILES.pop(PROBE, None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="paper")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = make_config("SGS", "fast", "cpu", weights="none", seed=args.seed)
    prep = preprocessing_for(config)
    specs = [s for s in plan_cohort(args.size, args.seed) if s.modality == "SGS" and s.cohort == "train"]
    items = [(render_item(s).frames, robustness._target(s), s.patient, i) for i, s in enumerate(specs)]
    data, val_ids = robustness.split_train(items, config, prep)
    model = fit(config, data).model
    val_specs = [specs[i] for i in val_ids]
    y = data.val.y.numpy()
    print(f"SGS {args.size}, seed {args.seed}: {len(val_specs)} validation items, factors from {UNSEEN}")
    print(
        f"{'factors from the unseen profile':<58} {'macro AUC':>9} {'accuracy':>8} {'fallback':>8} {'mean grade':>10}"
    )
    for name, fields in GROUPS.items():
        with borrowed_profile(fields) as probe:
            moved = [dataclasses.replace(s, scanner_profile=probe) if fields else s for s in val_specs]
            split = robustness._arrays(
                [(render_item(s).frames, int(t), "", i) for i, (s, t) in enumerate(zip(moved, y))], prep
            )
        probs = evaluate(model, split, prep, torch.device("cpu"))
        s = robustness.scores(y, probs, split.crops)
        expected = float((probs @ np.arange(probs.shape[1])).mean())
        print(
            f"{name:<58} {s['macro_auc']:>9.3f} {s['accuracy']:>8.3f} {s['fallback']:>8} {expected:>10.2f}"
            f"  predicted {s['predicted']} (true {s['true']})",
            flush=True,
        )


if __name__ == "__main__":
    main()
