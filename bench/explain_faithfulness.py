"""Are the attribution maps faithful? Localisation against the simulated cohort's truth, randomisation, Captum metrics.

Needs a project holding the simulated demo (its truth masks) and trained models, e.g.::

    RASCORE_DATA=/tmp/ex1 rascore demo --size small --quiet
    RASCORE_DATA=/tmp/ex1 rascore train --modality SPD --preset fast      # and SGS, DGS, DPD
    RASCORE_DATA=/tmp/ex1 python bench/explain_faithfulness.py --limit 12

For each modality with an active model and each method it prints markdown tables:

1. localisation on test items with synovium (the grade each model predicts is explained): the
   share of positive attribution inside the synovium, beside what a uniform map over the
   model's field of view gives and what the same model with every layer re-initialised gives;
   the same inside the synovial Doppler signal for PD models; the pointing-game hit rate (the
   map's maximum inside the synovium dilated by 3 px).
2. cascading model-parameter randomisation (Adebayo et al. 2018): mean Spearman rank
   correlation of |map| with the trained model's as blocks are re-initialised from the head down;
   a faithful map's correlation falls.
3. Captum ``infidelity`` (Gaussian noise 0.02, attributions rescaled) and ``sensitivity_max``
   (radius 0.02) on a sample.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rascore.explain import METHODS, ExplainOptions, GradeProbabilities, model_input  # noqa: E402
from rascore.explain.faithfulness import (  # noqa: E402
    cascading_randomisation, infidelity_score, load_masks, localisation, map_at_image_size,
    randomised_copy, sensitivity_score,
)
from rascore.project import open_project  # noqa: E402
from rascore.scale import MODALITIES  # noqa: E402


def _mean(values) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _predicted(model, prep, frames, device) -> int:
    x, _ = model_input(prep, frames, device)
    with torch.no_grad():
        return int(GradeProbabilities(model, prep)(x).argmax())


def evaluate_modality(project, modality: str, methods: list[str], cohorts: list[str], limit: int,
                      n_random: int, n_metrics: int, options: ExplainOptions, device: str,
                      log=print) -> dict:
    """All figures of one modality's active model: localisation, randomisation, Captum metrics."""
    from rascore.explain.service import registered_model

    ref = registered_model(project, modality)
    model, prep = ref.load()
    model.eval().to(device)
    randomised = randomised_copy(model).to(device)
    doppler = MODALITIES[modality].doppler
    rows = [r for c in cohorts for r in project.store.items(modality, c)]
    subjects = []
    for row in rows:
        masks = load_masks(project, row["id"])
        if masks is not None and masks["synovium"].any():
            subjects.append((row, masks))
        if len(subjects) >= limit:
            break
    out: dict = {"modality": modality, "version": ref.version, "arch": model.arch, "n": len(subjects),
                 "methods": {}}
    for method in methods:
        started = time.perf_counter()
        figures: dict[str, list] = {k: [] for k in (
            "share", "area", "random_share", "doppler_share", "doppler_area", "random_doppler_share",
            "hit", "random_hit")}
        cascades, infidelities, sensitivities = [], [], []
        for index, (row, masks) in enumerate(subjects):
            frames = project.media.load_cache(row["media_sha256"])
            target = _predicted(model, prep, frames, device)
            heat, frame_index, box = map_at_image_size(model, prep, frames, method, target, options, device)
            loc = localisation(heat, masks, frame_index, box)
            random_target = _predicted(randomised, prep, frames, device)
            heat_r, _, _ = map_at_image_size(randomised, prep, frames, method, random_target, options, device)
            loc_r = localisation(heat_r, masks, frame_index, box)
            figures["share"].append(loc.synovium_share)
            figures["area"].append(loc.synovium_area)
            figures["random_share"].append(loc_r.synovium_share)
            figures["hit"].append(loc.pointing_hit)
            figures["random_hit"].append(loc_r.pointing_hit)
            if doppler:
                figures["doppler_share"].append(loc.doppler_share)
                figures["doppler_area"].append(loc.doppler_area)
                figures["random_doppler_share"].append(loc_r.doppler_share)
            if index < n_random:
                steps = cascading_randomisation(model, prep, frames, method, target, options, device=device)
                cascades.append([(s.block, s.spearman_abs, s.spearman) for s in steps])
            if index < n_metrics:
                infidelities.append(infidelity_score(model, prep, frames, method, target, options,
                                                     device=device))
                sensitivities.append(sensitivity_score(model, prep, frames, method, target, options,
                                                       n_perturb_samples=3, device=device))
        cascade = []
        if cascades:
            for step in range(len(cascades[0])):
                cascade.append({"block": cascades[0][step][0],
                                "spearman_abs": _mean([c[step][1] for c in cascades]),
                                "spearman": _mean([c[step][2] for c in cascades])})
        out["methods"][method] = {
            **{k: _mean(v) for k, v in figures.items()},
            "cascade": cascade, "n_cascade": len(cascades),
            "infidelity": _mean(infidelities), "sensitivity_max": _mean(sensitivities),
            "n_metrics": len(infidelities), "seconds": time.perf_counter() - started,
        }
        log(f"  {modality} {method}: {len(subjects)} items in {time.perf_counter() - started:.1f} s")
    return out


def markdown(results: list[dict]) -> str:
    """The three tables, ready to paste."""
    lines = ["### Localisation (test items with synovium; the predicted grade explained)", "",
             "| modality | model | method | n | share in synovium | uniform map | randomised model | "
             "pointing game | randomised | share in Doppler | uniform | randomised |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for method, m in r["methods"].items():
            lines.append(
                f"| {r['modality']} | v{r['version']} {r['arch']} | {method} | {r['n']} | {_fmt(m['share'])} | "
                f"{_fmt(m['area'])} | {_fmt(m['random_share'])} | {_fmt(m['hit'], 2)} | "
                f"{_fmt(m['random_hit'], 2)} | {_fmt(m['doppler_share'])} | {_fmt(m['doppler_area'])} | "
                f"{_fmt(m['random_doppler_share'])} |")
    lines += ["", "### Cascading randomisation: Spearman rank correlation of |map| with the trained model's", ""]
    for r in results:
        for method, m in r["methods"].items():
            if not m["cascade"]:
                continue
            blocks = [c["block"].removeprefix("backbone.") for c in m["cascade"][1:]]
            lines += [f"{r['modality']} {method} (n={m['n_cascade']}), blocks re-initialised from the head down:", "",
                      "| " + " | ".join(["trained", *[f"+{b}" for b in blocks]]) + " |",
                      "|" + "---|" * (len(blocks) + 1),
                      "| " + " | ".join(_fmt(c["spearman_abs"], 2) for c in m["cascade"]) + " |", ""]
    lines += ["### Captum metrics (lower is better)", "",
              "| modality | method | n | infidelity | sensitivity_max |", "|---|---|---|---|---|"]
    for r in results:
        for method, m in r["methods"].items():
            lines.append(f"| {r['modality']} | {method} | {m['n_metrics']} | {m['infidelity']:.3g} | "
                         f"{m['sensitivity_max']:.3g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", action="append", type=str.upper, choices=list(MODALITIES),
                        help="repeatable; default every modality with an active model")
    parser.add_argument("--method", action="append", choices=METHODS, help="repeatable; default all")
    parser.add_argument("--cohort", action="append", choices=["train", "test1", "test2"],
                        help="repeatable; default test1 and test2")
    parser.add_argument("--limit", type=int, default=12, help="items with synovium per modality")
    parser.add_argument("--random-items", type=int, default=3, help="items for the cascading randomisation")
    parser.add_argument("--metric-items", type=int, default=3, help="items for infidelity / sensitivity")
    parser.add_argument("--steps", type=int, default=32, help="Integrated Gradients steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    project = open_project()
    from rascore.store import registry

    modalities = args.modality or [m for m in MODALITIES if registry.active_version(project.store, m)]
    if not modalities:
        print("no active models: build the demo and train first (see this script's docstring)", file=sys.stderr)
        return 2
    options = ExplainOptions(ig_steps=args.steps)
    results = []
    for modality in modalities:
        print(f"{modality}: explaining ...", file=sys.stderr)
        results.append(evaluate_modality(project, modality, args.method or list(METHODS),
                                         args.cohort or ["test1", "test2"], args.limit, args.random_items,
                                         args.metric_items, options, args.device,
                                         log=lambda text: print(text, file=sys.stderr)))
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
