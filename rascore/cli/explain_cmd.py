"""``rascore explain (FILE | --item ID) --method ig|gradcam|occlusion [--baseline B] [--stage S]``: where a model looked.

torch and Captum are imported inside the handler only, so building the parser stays fast.
"""

from __future__ import annotations

import argparse
import json
import time

from rascore.cli import CliError
from rascore.names import GRADCAM_STAGES, IG_BASELINES, METHODS
from rascore.project import open_project
from rascore.scale import MODALITIES


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``explain``."""
    p = sub.add_parser(
        "explain",
        help="show which pixels drove a model's grade (Captum attributions)",
        description="Explain one scan's grade with Integrated Gradients (ig), Grad-CAM (gradcam) or "
        "Occlusion: a heat map at image resolution (per frame for clips) blended on the scan with a "
        "colour bar; for clips also a per-frame importance curve and an animated overlay. Results are "
        "cached per model version, scan, method and target grade under $RASCORE_DATA/explain.",
    )
    p.add_argument("file", nargs="?", help="a scan file, decoded as ingest does (or use --item)")
    p.add_argument("--item", type=int, help="a stored item id")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument(
        "--modality",
        type=str.upper,
        choices=list(MODALITIES),
        help="whose model explains (default: the item's modality, or guessed from a file)",
    )
    p.add_argument("--version", type=int, help="model version (default: the active one)")
    p.add_argument("--checkpoint", help="explain with this checkpoint file instead of a registered version")
    p.add_argument(
        "--target",
        type=int,
        choices=range(4),
        metavar="GRADE",
        help="grade 0-3 to explain (default: the predicted grade)",
    )
    p.add_argument(
        "--out", help="write the overlay PNG here (clips: also <stem>.gif and <stem>-importance.png)"
    )
    p.add_argument("--steps", type=int, default=32, help="Integrated Gradients steps (default 32)")
    p.add_argument(
        "--smooth",
        type=int,
        default=0,
        metavar="N",
        help="average IG over N noisy copies (Captum NoiseTunnel SmoothGrad; default 0 = off)",
    )
    p.add_argument(
        "--baseline",
        choices=IG_BASELINES,
        default="blur",
        help="Integrated Gradients baseline: the picture strongly blurred (default), a flat picture "
        "at the tissue's mean brightness, or black (black cannot credit dark, hypoechoic synovium)",
    )
    p.add_argument(
        "--blur-sigma",
        type=float,
        default=0.15,
        metavar="SHARE",
        help="--baseline blur: Gaussian sigma as a share of the input's short side (default 0.15)",
    )
    p.add_argument("--layer", help="Grad-CAM layer, a dotted module name (default: chosen by --stage)")
    p.add_argument(
        "--stage",
        choices=GRADCAM_STAGES,
        default="fine",
        help="Grad-CAM stage: fine = the deepest with at least 4 cells on its short side that keeps "
        "every clip frame (default); deep = the deepest stage, its time axis upsampled for clips",
    )
    p.add_argument("--window", type=int, help="occlusion window in model-input pixels")
    p.add_argument("--stride", type=int, help="occlusion stride in model-input pixels")
    p.add_argument("--animation", choices=("gif", "mp4"), default="gif", help="clip animation format")
    p.add_argument("--device", default=None, help="auto, cpu or cuda (default $RASCORE_DEVICE or auto)")
    p.add_argument("--no-cache", action="store_true", help="recompute even when a cached explanation exists")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_explain)


def _explain(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if (args.file is None) == (args.item is None):
        raise CliError("give a FILE or --item ID (one of them)")
    if args.steps < 1 or args.smooth < 0 or not args.blur_sigma > 0:
        raise CliError("--steps must be >= 1, --smooth >= 0 and --blur-sigma > 0")
    import torch

    from rascore.explain import ExplainOptions, Explainer, export
    from rascore.media import MediaError
    from rascore.train.config import resolve_device

    torch.set_num_threads(min(torch.get_num_threads(), 4))
    project = open_project()
    try:
        device = str(resolve_device(args.device or project.settings.device))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    options = ExplainOptions(
        ig_steps=args.steps,
        ig_baseline=args.baseline,
        ig_blur_sigma=args.blur_sigma,
        smooth_samples=args.smooth,
        gradcam_layer=args.layer,
        gradcam_stage=args.stage,
        occlusion_window=args.window,
        occlusion_stride=args.stride,
    )
    explainer = Explainer(
        project, device=device, options=options, use_cache=not args.no_cache, animation=args.animation
    )
    try:
        if args.item is not None:
            if args.checkpoint:
                raise CliError("--checkpoint works with a FILE; for an item use --version")
            explanation = explainer.item(
                args.item, args.method, modality=args.modality, version=args.version, target=args.target
            )
        else:
            explanation = explainer.file(
                args.file,
                args.method,
                modality=args.modality,
                version=args.version,
                target=args.target,
                checkpoint=args.checkpoint,
            )
    except (MediaError, LookupError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    written = export(explanation, args.out) if args.out else {}
    seconds = time.perf_counter() - started
    result = {
        "subject": args.file if args.item is None else f"item {args.item}",
        "modality": explanation.modality,
        "version": explanation.version,
        "method": explanation.method,
        "predicted": explanation.predicted,
        "probabilities": explanation.probabilities,
        "target": explanation.target,
        "frame_index": explanation.frame_index,
        "importance": explanation.importance,
        "layer": explanation.layer,
        "setting": explanation.options.get("setting", ""),
        "settings_key": explanation.options.get("settings"),
        "cached": explanation.cached,
        "paths": written or {k: v for k, v in explanation.paths.items()},
        "cache_paths": explanation.paths,
        "seconds": round(seconds, 4),
        "compute_seconds": round(explanation.compute_seconds, 4),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    who = (
        f"{explanation.modality} v{explanation.version}"
        if explanation.version is not None
        else explanation.modality
    )
    probs = ", ".join(f"{g}: {p:.3f}" for g, p in enumerate(explanation.probabilities))
    print(f"{result['subject']}: {who} predicts grade {explanation.predicted} ({probs})")
    print(
        f"  {explanation.method_name} of grade {explanation.target}"
        + (f" at layer {explanation.layer}" if explanation.layer else "")
        + (f" ({result['setting']})" if explanation.method == "ig" else "")
        + (" (from cache)" if explanation.cached else f" in {explanation.compute_seconds:.2f} s")
    )
    if explanation.importance is not None:
        shares = ", ".join(f"{f}: {s:.0%}" for f, s in zip(explanation.frame_index, explanation.importance))
        print(f"  share of attribution per frame: {shares}")
    for role, path in result["paths"].items():
        print(f"  {role}: {path}")
    return 0
