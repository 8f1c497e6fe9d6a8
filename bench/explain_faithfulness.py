"""Are the attribution maps faithful? Localisation against the simulated cohort's truth, randomisation, Captum metrics.

Runs on the active models of the project that ``RASCORE_DATA`` (and ``RASCORE_DB``) name, which
must hold the simulated demo (its truth masks), e.g.::

    RASCORE_DATA=demo-project rascore demo --size small --no-train --quiet
    RASCORE_DATA=demo-project rascore train --modality SGS --activate always   # and DGS, SPD, DPD
    RASCORE_DATA=demo-project python bench/explain_faithfulness.py --limit 40

For each modality with an active model and each variant (a method with its settings: Integrated
Gradients from the blurred and from the black baseline, Grad-CAM at its fine stage and, for clip
models, at the deepest stage, Occlusion) it prints, as markdown in the README's form:

1. localisation on test items with synovium (the grade each model predicts is explained): the
   share of positive attribution inside the synovium, beside what a uniform map over the
   model's field of view gives and what the same model with every layer re-initialised gives;
   the pointing-game hit rate (the map's maximum inside the synovium dilated by 3 px); the share
   inside the synovial Doppler signal for PD models.
2. cascading model-parameter randomisation (Adebayo et al. 2018): mean Spearman rank
   correlation of |map| with the trained model's, trained, after the head is re-initialised and
   after every block is; a faithful map's correlation falls.
3. Captum ``infidelity`` (Gaussian noise 0.02, attributions rescaled) and ``sensitivity_max``
   (radius 0.02) on a sample.
4. one line saying which method to trust and why, decided from these figures
   (``rascore.explain.trust.trust_verdict``).
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

from rascore.explain import ExplainOptions, GradeProbabilities, model_input  # noqa: E402
from rascore.explain.faithfulness import (  # noqa: E402
    cascading_randomisation,
    infidelity_score,
    load_masks,
    localisation,
    map_at_image_size,
    randomised_copy,
    sensitivity_score,
)
from rascore.explain.trust import DEFAULT_VARIANTS, VARIANTS, VariantFigures, trust_verdict, variant  # noqa: E402
from rascore.project import open_project  # noqa: E402
from rascore.scale import MODALITIES  # noqa: E402


def _mean(values) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def _fmt(value: float, digits: int = 3) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def _sig(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3g}"


def _predicted(model, prep, frames, device) -> int:
    x, _ = model_input(prep, frames, device)
    with torch.no_grad():
        return int(GradeProbabilities(model, prep)(x).argmax())


def test_macro_auc(row: dict, cohort: str) -> float:
    """The registered test macro AUC of a model version on one cohort (NaN when not recorded)."""
    metrics = row.get("metrics") or {}
    block = metrics.get("test", {}).get("cohorts", {}).get(cohort) or metrics.get(cohort) or {}
    value = (block.get("model") or block).get("macro_auc")
    if isinstance(value, dict):  # a figure kept with its reason when undefined
        value = value.get("value")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def evaluate_modality(
    project,
    modality: str,
    variants: list[str],
    cohorts: list[str],
    limit: int,
    n_random: int,
    n_metrics: int,
    options: ExplainOptions,
    device: str,
    log=print,
) -> dict:
    """All figures of one modality's active model: localisation, randomisation, Captum metrics."""
    from rascore.explain.service import registered_model
    from rascore.store import registry

    ref = registered_model(project, modality)
    row = registry.get_version(project.store, modality, ref.version)
    model, prep = ref.load()
    model.eval().to(device)
    randomised = randomised_copy(model).to(device)
    doppler = MODALITIES[modality].doppler
    rows = [r for c in cohorts for r in project.store.items(modality, c)]
    subjects = []
    for item in rows:
        masks = load_masks(project, item["id"])
        if masks is not None and masks["synovium"].any():
            subjects.append((item, masks))
        if len(subjects) >= limit:
            break
    out: dict = {
        "modality": modality,
        "version": ref.version,
        "arch": model.arch,
        "n": len(subjects),
        "dynamic": bool(prep.dynamic),
        "auc": {c: test_macro_auc(row, c) for c in cohorts},
        "methods": {},
    }
    for code in variants:
        spec = variant(code)
        if spec.clips_only and not prep.dynamic:
            continue
        method, chosen = spec.method, spec.options(options)
        started = time.perf_counter()
        figures: dict[str, list] = {
            k: []
            for k in (
                "share",
                "area",
                "random_share",
                "doppler_share",
                "doppler_area",
                "random_doppler_share",
                "hit",
                "random_hit",
            )
        }
        cascades, infidelities, sensitivities = [], [], []
        for index, (item, masks) in enumerate(subjects):
            frames = project.media.load_cache(item["media_sha256"])
            target = _predicted(model, prep, frames, device)
            heat, frame_index, box = map_at_image_size(model, prep, frames, method, target, chosen, device)
            loc = localisation(heat, masks, frame_index, box)
            random_target = _predicted(randomised, prep, frames, device)
            heat_r, _, _ = map_at_image_size(randomised, prep, frames, method, random_target, chosen, device)
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
                steps = cascading_randomisation(model, prep, frames, method, target, chosen, device=device)
                cascades.append([(s.block, s.spearman_abs, s.spearman) for s in steps])
            if index < n_metrics:
                infidelities.append(
                    infidelity_score(model, prep, frames, method, target, chosen, device=device)
                )
                sensitivities.append(
                    sensitivity_score(
                        model, prep, frames, method, target, chosen, n_perturb_samples=3, device=device
                    )
                )
        cascade = []
        if cascades:
            for step in range(len(cascades[0])):
                cascade.append(
                    {
                        "block": cascades[0][step][0],
                        "spearman_abs": _mean([c[step][1] for c in cascades]),
                        "spearman": _mean([c[step][2] for c in cascades]),
                    }
                )
        out["methods"][code] = {
            "label": spec.label,
            "method": method,
            "settings": chosen.key(method),
            **{k: _mean(v) for k, v in figures.items()},
            "cascade": cascade,
            "n_cascade": len(cascades),
            "infidelity": _mean(infidelities),
            "sensitivity_max": _mean(sensitivities),
            "n_metrics": len(infidelities),
            "seconds": time.perf_counter() - started,
        }
        log(f"  {modality} {code}: {len(subjects)} items in {time.perf_counter() - started:.1f} s")
    return out


def verdict_figures(results: list[dict]) -> list[VariantFigures]:
    """What ``trust_verdict`` weighs, one row per model and variant."""
    rows = []
    for r in results:
        for code, m in r["methods"].items():
            final = m["cascade"][-1]["spearman_abs"] if m["cascade"] else float("nan")
            rows.append(
                VariantFigures(
                    f"{r['modality']} v{r['version']}", code, m["share"], m["area"], m["random_share"], final
                )
            )
    return rows


def markdown(results: list[dict], cohorts: list[str]) -> str:
    """The tables and the verdict, ready to paste into the README's "Explanations" section."""
    models = ", ".join(
        f"{r['modality']} v{r['version']} {r['arch']} ("
        + ", ".join(f"{c} macro AUC {_fmt(r['auc'].get(c), 2)}" for c in cohorts)
        + f"; n = {r['n']})"
        for r in results
    )
    lines = [
        f"Models (the active versions): {models}. Items: {' and '.join(cohorts)} items with synovium; "
        "the grade each model predicts is explained.",
        "",
        "| modality | method | share in synovium | uniform | randomised | pointing game | randomised | "
        "share in Doppler (uniform) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for m in r["methods"].values():
            doppler = (
                f"{_fmt(m['doppler_share'])} ({_fmt(m['doppler_area'])})"
                if MODALITIES[r["modality"]].doppler
                else ""
            )
            lines.append(
                f"| {r['modality']} | {m['label']} | {_fmt(m['share'])} | {_fmt(m['area'])} | "
                f"{_fmt(m['random_share'])} | {_fmt(m['hit'], 2)} | {_fmt(m['random_hit'], 2)} | {doppler} |"
            )
    lines += [
        "",
        "Model-parameter randomisation (Adebayo et al. 2018): Spearman correlation of |map| with the "
        "trained model's as blocks are re-initialised from the head down.",
        "",
        "| modality | method | n | trained | head re-initialised | every block re-initialised |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        for m in r["methods"].values():
            if not m["cascade"]:
                continue
            head = m["cascade"][1]["spearman_abs"] if len(m["cascade"]) > 1 else float("nan")
            lines.append(
                f"| {r['modality']} | {m['label']} | {m['n_cascade']} | "
                f"{_fmt(m['cascade'][0]['spearman_abs'], 2)} | {_fmt(head, 2)} | "
                f"{_fmt(m['cascade'][-1]['spearman_abs'], 2)} |"
            )
    lines += [
        "",
        "Captum metrics (lower is better):",
        "",
        "| modality | method | n | infidelity | sensitivity_max |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        for m in r["methods"].values():
            lines.append(
                f"| {r['modality']} | {m['label']} | {m['n_metrics']} | {_sig(m['infidelity'])} | "
                f"{_sig(m['sensitivity_max'])} |"
            )
    lines += ["", f"**{trust_verdict(verdict_figures(results))}**"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modality",
        action="append",
        type=str.upper,
        choices=list(MODALITIES),
        help="repeatable; default every modality with an active model",
    )
    parser.add_argument(
        "--variant",
        action="append",
        choices=[v.code for v in VARIANTS],
        help=f"repeatable; default {', '.join(DEFAULT_VARIANTS)} (gradcam-deep on clip models only)",
    )
    parser.add_argument(
        "--cohort",
        action="append",
        choices=["train", "test1", "test2"],
        help="repeatable; default test1 and test2",
    )
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
        print(
            "no active models: build the demo and train first (see this script's docstring)", file=sys.stderr
        )
        return 2
    cohorts = args.cohort or ["test1", "test2"]
    options = ExplainOptions(ig_steps=args.steps)
    results = []
    for modality in modalities:
        print(f"{modality}: explaining ...", file=sys.stderr)
        results.append(
            evaluate_modality(
                project,
                modality,
                args.variant or list(DEFAULT_VARIANTS),
                cohorts,
                args.limit,
                args.random_items,
                args.metric_items,
                options,
                args.device,
                log=lambda text: print(text, file=sys.stderr),
            )
        )
    print(markdown(results, cohorts))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
