"""Benchmark: render the simulated cohort with worker processes; prints seconds and frames/s.

Target (docs/PERFORMANCE.md): the paper-size cohort (1750 items, 14,875 frames) in <= 60 s with 2
workers on a 2-core machine. Because a shared machine's wall time depends on its other load,
it also measures CPU seconds per still and per clip in this process and projects the time the
cohort would take on free cores. Usage: python bench/bench_synth.py [--size paper] [--workers 2]
[--variation wide|none]. ``--before-after N`` instead times N stills and N clips of one plan in this
process, each rendered narrow (variation "none", the simulator before widening) and widened, in
alternation, and prints CPU ms per still and per clip and the widened / narrow ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

from rascore.synth import plan_cohort, render_item, render_many


def cpu_projection(specs, sample: int, workers: int) -> dict[str, float]:
    """CPU seconds per still and per clip (rendered here), projected to the cohort on free cores."""
    stills = [s for s in specs if not s.dynamic][: sample // 2]
    clips = [s for s in specs if s.dynamic][: sample // 2]
    out = {}
    for name, chosen in (("still", stills), ("clip", clips)):
        t0 = time.process_time()
        for spec in chosen:
            render_item(spec)
        out[f"cpu_per_{name}_s"] = (time.process_time() - t0) / max(len(chosen), 1)
    n_still = sum(not s.dynamic for s in specs)
    total = n_still * out["cpu_per_still_s"] + (len(specs) - n_still) * out["cpu_per_clip_s"]
    out["projected_free_cores_s"] = total / max(workers, 1)
    return out


def before_after(specs, n: int) -> dict[str, float]:
    """CPU ms per still and per clip, narrow and widened, the same items rendered in alternation."""
    out = {}
    for name, chosen in (
        ("still", [s for s in specs if not s.dynamic][:n]),
        ("clip", [s for s in specs if s.dynamic][:n]),
    ):
        times: dict[str, list[float]] = {"none": [], "wide": []}
        for spec in chosen:
            for variation in ("none", "wide"):
                t0 = time.process_time()
                render_item(dataclasses.replace(spec, variation=variation))
                times[variation].append(1000 * (time.process_time() - t0))
        for variation, ms in times.items():
            out[f"{name}_{variation}_ms"] = statistics.mean(ms)
        out[f"{name}_ratio"] = out[f"{name}_wide_ms"] / out[f"{name}_none_ms"]
        print(
            f"  {name}: narrow {out[f'{name}_none_ms']:.1f} ms, widened {out[f'{name}_wide_ms']:.1f} ms CPU "
            f"(mean of {len(chosen)}), ratio {out[f'{name}_ratio']:.2f}"
        )
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Render every planned item once and report wall time, throughput and a CPU projection."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="paper", choices=["paper", "small"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="render only the first N items")
    parser.add_argument("--cpu-sample", type=int, default=80, help="items timed in-process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variation", default="wide", choices=["wide", "none"])
    parser.add_argument(
        "--before-after", type=int, default=0, metavar="N", help="time N stills and N clips both ways"
    )
    args = parser.parse_args(argv)

    if args.before_after:
        print(f"synth render CPU time, narrow vs widened, {args.size} plan seed {args.seed}:")
        return before_after(plan_cohort(args.size, seed=args.seed), args.before_after)
    t0 = time.perf_counter()
    specs = plan_cohort(args.size, seed=args.seed, variation=args.variation)
    if args.limit:
        specs = specs[: args.limit]
    t_plan = time.perf_counter() - t0
    load_before = os.getloadavg()[0]
    frames = 0
    t1 = time.perf_counter()
    for item in render_many(specs, workers=args.workers):
        frames += len(item.frames)
    t_render = time.perf_counter() - t1
    result = {
        "items": float(len(specs)),
        "frames": float(frames),
        "plan_s": t_plan,
        "render_s": t_render,
        "frames_per_s": frames / t_render,
        "items_per_s": len(specs) / t_render,
        "load_avg_before": load_before,
    }
    result.update(cpu_projection(specs, args.cpu_sample, args.workers))
    print(
        f"synth {args.size}: {len(specs)} items, {frames} frames, workers={args.workers}, "
        f"cpus={os.cpu_count()}, 1-min load average before {load_before:.1f}"
    )
    print(
        f"  plan {t_plan:.2f} s, render {t_render:.1f} s wall, {result['frames_per_s']:.0f} frames/s, "
        f"{result['items_per_s']:.1f} items/s (target <= 60 s for paper size)"
    )
    print(
        f"  CPU per still {1000 * result['cpu_per_still_s']:.1f} ms, per 16-frame clip "
        f"{1000 * result['cpu_per_clip_s']:.1f} ms -> {result['projected_free_cores_s']:.1f} s "
        f"on {args.workers} free cores (rendering only, no IPC)"
    )
    return result


if __name__ == "__main__":
    main()
