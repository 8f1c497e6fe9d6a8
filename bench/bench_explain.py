"""Latency of each attribution method against one forward+backward pass, and of a repeated view from the cache.

For the fast preset's architectures (slim_resnet18 stills, frames_slim_resnet18 clips) and the paper
preset's (resnet18 at 224x224, r2plus1d_18 on 16x112x112), each at its input size:

- forward, and forward+backward (gradient of one grade probability with respect to the input):
  the reference every method is compared with (ratios are what to quote; absolute times vary;
  the cheap ones are timed round-robin so a busy machine slows them alike);
- Grad-CAM (target: <= 3x forward+backward; alone, and on a just-loaded model, whose first call
  also chooses the layer with a small probe pass), Integrated Gradients (32 steps, batched 16 at a
  time through Captum's ``internal_batch_size``), IG + NoiseTunnel (4 samples), Occlusion;
- the whole ``Explainer`` request on a stored item: first view (attribution, overlay, files,
  cache write) and the repeated view served from ``$RASCORE_DATA/explain``.

Weights are random (latency does not depend on training). On a CPU the paper clip model's IG and
Occlusion take minutes; they are skipped unless ``--all`` is given.

    python bench/bench_explain.py [--preset fast|paper] [--repeats 5] [--all] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rascore.explain import ExplainOptions, GradeProbabilities, compute_maps, gradcam_layer, model_input  # noqa: E402
from rascore.explain.attribution import _CHOSEN_LAYERS  # noqa: E402
from rascore.nets import build_model  # noqa: E402
from rascore.nets.factory import arch_spec  # noqa: E402
from rascore.train.config import PRESETS  # noqa: E402
from rascore.train.preprocess import Preprocessing  # noqa: E402

FRAME_H, FRAME_W = 192, 256  # the demo cohort's picture size


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved(fns: dict, repeats: int, device: str) -> dict[str, float]:
    """Median seconds of each function, timed round-robin so a busy machine slows them alike."""
    for fn in fns.values():
        fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def timed(fn, repeats: int, device: str, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def setups(preset_names: list[str], modalities: list[str]) -> list[tuple[str, str, str, Preprocessing, dict]]:
    """(preset, modality, arch, preprocessing, arch options) for the static and dynamic model of each preset."""
    out = []
    for name in preset_names:
        preset = PRESETS[name]
        for modality in modalities:
            dynamic = modality in ("DGS", "DPD")
            arch = preset.dynamic_arch if dynamic else preset.static_arch
            height, width = preset.clip_size if dynamic else preset.image_size
            spec = arch_spec(arch)
            channels = 3 if modality in ("SPD", "DPD") else 1
            prep = Preprocessing(
                height,
                width,
                dynamic,
                preset.frames if dynamic else 1,
                preset.cache_frames if dynamic else 1,
                channels,
                spec.mean,
                spec.std,
            )
            out.append((name, modality, arch, prep, {"width": preset.width, "pooling": preset.pooling}))
    return out


def frames_for(prep: Preprocessing, seed: int = 0) -> np.ndarray:
    """A decoded-size picture or clip of speckle."""
    rng = np.random.default_rng(seed)
    count = 24 if prep.dynamic else 1
    return rng.integers(0, 200, size=(count, FRAME_H, FRAME_W, 3), dtype=np.uint8)


def measure(
    preset: str,
    modality: str,
    arch: str,
    prep: Preprocessing,
    arch_options: dict,
    repeats: int,
    device: str,
    run_all: bool,
) -> dict:
    """Latencies (seconds) of forward, forward+backward and the three methods for one model."""
    torch.manual_seed(0)
    model = build_model(arch, "softmax", **arch_options).eval().to(device)
    net = GradeProbabilities(model, prep)
    frames = frames_for(prep)
    x, _ = model_input(prep, frames, device)
    target = 1

    def forward() -> None:
        with torch.no_grad():
            net(x)

    def forward_backward() -> None:
        inp = x.detach().clone().requires_grad_(True)
        net(inp)[0, target].backward()

    layer = gradcam_layer(model, x.shape[2] if prep.dynamic else 1, size=tuple(x.shape[-2:]))
    options = ExplainOptions(ig_steps=32, internal_batch_size=16)
    smooth = ExplainOptions(ig_steps=32, internal_batch_size=16, smooth_samples=4)
    heavy = device == "cpu" and preset == "paper" and prep.dynamic and not run_all
    row = {
        "preset": preset,
        "modality": modality,
        "arch": arch,
        "input": f"{prep.channels}x{prep.frames}x{prep.height}x{prep.width}"
        if prep.dynamic
        else f"{prep.channels}x{prep.height}x{prep.width}",
        "gradcam_layer": layer[0],
        **interleaved(
            {
                "forward": forward,
                "forward_backward": forward_backward,
                "gradcam": lambda: compute_maps(net, x, "gradcam", target, options, layer),
                "gradcam_with_layer_choice": lambda: (
                    _CHOSEN_LAYERS.pop(model, None),
                    compute_maps(net, x, "gradcam", target, options),
                ),
            },
            repeats,
            device,
        ),
    }
    few = max(1, repeats // 3)
    row["ig"] = None if heavy else timed(lambda: compute_maps(net, x, "ig", target, options), few, device, 0)
    row["ig_smooth4"] = (
        None if heavy else timed(lambda: compute_maps(net, x, "ig", target, smooth), 1, device, 0)
    )
    row["occlusion"] = (
        None if heavy else timed(lambda: compute_maps(net, x, "occlusion", target, options), 1, device, 0)
    )
    row.update(explainer_views(modality, model, prep, arch_options, frames, device, repeats))
    return row


def explainer_views(
    modality: str,
    model,
    prep: Preprocessing,
    arch_options: dict,
    frames: np.ndarray,
    device: str,
    repeats: int,
) -> dict:
    """Grad-CAM through the whole Explainer on a stored item: first view and repeated (cached) view."""
    from rascore.explain import Explainer
    from rascore.project import open_project
    from rascore.train.checkpoint import make_checkpoint
    from rascore.train.versions import publish

    with tempfile.TemporaryDirectory() as folder:
        os.environ["RASCORE_DATA"] = folder
        os.environ["RASCORE_DB"] = str(Path(folder) / "rascore.db")
        project = open_project()
        checkpoint = make_checkpoint(
            model.cpu(),
            modality=modality,
            prep=prep,
            args={},
            metrics={},
            snapshot={},
            pretrained=None,
            arch_options=arch_options,
        )
        publish(project, checkpoint, lambda v: "# bench\n", activate="always")
        model.to(device)
        sha = hashlib.sha256(frames.tobytes()).hexdigest()
        project.media.write_cache(sha, frames)
        t = frames.shape[0]
        project.store.add_media(
            sha,
            format="mp4" if t > 1 else "png",
            kind="clip" if t > 1 else "image",
            nbytes=frames.nbytes,
            frames=t,
            height=FRAME_H,
            width=FRAME_W,
            fps=15.0 if t > 1 else None,
        )
        item = project.store.add_item(
            media_sha256=sha,
            modality=modality,
            cohort="test1",
            frames=t,
            fps=15.0 if t > 1 else None,
            patient="bench",
            source="import",
        )
        explainer = Explainer(project, device=device)
        started = time.perf_counter()
        first = explainer.item(item, "gradcam")
        first_s = time.perf_counter() - started
        hits = []
        for _ in range(max(3, repeats)):
            again = Explainer(project, device=device)  # as a new request would: nothing loaded
            started = time.perf_counter()
            view = again.item(item, "gradcam")
            hits.append(time.perf_counter() - started)
            assert view.cached
        project.store.close()
    return {
        "view_first": first_s,
        "view_compute": first.compute_seconds,
        "view_cached": statistics.median(hits),
    }


def _ms(value: float | None) -> str:
    return "skipped" if value is None else f"{value * 1000:.1f}"


def _ratio(value: float | None, reference: float) -> str:
    return "" if value is None else f" ({value / reference:.1f}x)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", choices=list(PRESETS), help="repeatable; default both")
    parser.add_argument(
        "--modality",
        action="append",
        choices=["SGS", "SPD", "DGS", "DPD"],
        help="repeatable; default SPD and DPD (a still and a clip model)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--all", action="store_true", help="also IG/Occlusion of the paper clip model on a CPU"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for preset, modality, arch, prep, options in setups(
        args.preset or ["fast", "paper"], args.modality or ["SPD", "DPD"]
    ):
        print(f"{preset} {modality} {arch} ...", file=sys.stderr)
        rows.append(measure(preset, modality, arch, prep, options, args.repeats, args.device, args.all))
    device = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {args.threads} threads"
    )
    print(f"Attribution latency, ms (ratio to one forward+backward), {device}, torch {torch.__version__}\n")
    print(
        "| preset | model | input | forward | fwd+bwd | Grad-CAM | Grad-CAM, first call | IG 32 steps | "
        "IG + NoiseTunnel x4 | Occlusion | view: first | view: cached |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        fb = r["forward_backward"]
        print(
            f"| {r['preset']} | {r['modality']} {r['arch']} | {r['input']} | {_ms(r['forward'])} | {_ms(fb)} | "
            f"{_ms(r['gradcam'])}{_ratio(r['gradcam'], fb)} | "
            f"{_ms(r['gradcam_with_layer_choice'])}{_ratio(r['gradcam_with_layer_choice'], fb)} | "
            f"{_ms(r['ig'])}{_ratio(r['ig'], fb)} | "
            f"{_ms(r['ig_smooth4'])}{_ratio(r['ig_smooth4'], fb)} | "
            f"{_ms(r['occlusion'])}{_ratio(r['occlusion'], fb)} | {_ms(r['view_first'])} | "
            f"{_ms(r['view_cached'])} |"
        )
    print()
    for r in rows:
        worst = max(r["gradcam"], r["gradcam_with_layer_choice"])
        verdict = "within" if worst <= 3 * r["forward_backward"] else "OVER"
        print(
            f"{r['preset']} {r['arch']}: Grad-CAM ({r['gradcam_layer']}) "
            f"{r['gradcam'] / r['forward_backward']:.2f}x, "
            f"first call on a loaded model {r['gradcam_with_layer_choice'] / r['forward_backward']:.2f}x "
            f"forward+backward, {verdict} the 3x target; cached view {r['view_cached'] * 1000:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
