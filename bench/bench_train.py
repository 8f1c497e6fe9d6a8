"""Training benchmarks: the project's loop against a bare torchvision-style loop, and the data path.

1. Loop overhead: same model (the fast preset's network), same in-memory data, same number of
   steps. "bare" slices pre-normalised float tensors and does forward/backward/step only; "bare
   uint8" slices the same uint8 arrays and converts each batch (what any loop over them must do);
   the project's loop adds class-balanced sampling, the scheduler, progress and cancellation
   callbacks, and optionally the batched augmentation. Target: project >= 0.95x bare
   (docs/PERFORMANCE.md). Runs are interleaved in rotating order, best of N; on a shared machine the
   wall figures move with other processes' load, so CPU seconds are printed beside them.
2. Data path: one epoch of inputs from the preloaded uint8 tensor, from the decoded-array cache
   (decompress + resize per item, what training would cost without preloading), and from the
   original files (decode PNG/MP4 + resize).
3. ``--retrain``: on the project in RASCORE_DATA (e.g. the paper-size demo), retrain each modality
   at the fast preset end to end (rascore.train.run_training, nothing registered as active unless
   better) and print wall time and per-grade test AUCs.

4. ``--memory-format``: one training step of the stills' network with model and input contiguous
   against channels_last (fit's choice on the CPU for still models), interleaved, best of N.

Run: .venv/bin/python bench/bench_train.py [--steps 30] [--threads 2] [--retrain SGS DGS ...]
     .venv/bin/python bench/bench_train.py --skip-loop --skip-data --memory-format --repeats 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rascore.train import make_config  # noqa: E402
from rascore.train.augment import Augmentation  # noqa: E402
from rascore.train.data import Arrays, preprocessing_for  # noqa: E402
from rascore.train.loop import make_model, parameter_groups, train_one_epoch  # noqa: E402


def fake_arrays(config, n: int, seed: int = 0) -> Arrays:
    prep = preprocessing_for(config)
    g = torch.Generator().manual_seed(seed)
    shape = (n, prep.channels) + ((prep.cache_frames,) if prep.dynamic else ()) + (prep.height, prep.width)
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return Arrays(x, y, list(range(n)))


def bare_loop(model, optimizer, x: torch.Tensor, y: torch.Tensor, batch: int, steps: int) -> None:
    """The reference loop: batches of ready float tensors, forward, loss, backward, step."""
    model.train()
    for step in range(steps):
        index = slice((step * batch) % (len(y) - batch), (step * batch) % (len(y) - batch) + batch)
        loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def bare_uint8_loop(model, optimizer, data: Arrays, prep, batch: int, steps: int) -> None:
    """A torchvision-style loop over the same uint8 arrays: slice, to float, normalise, step."""
    model.train()
    frames = prep.frame_index(False) if prep.dynamic else None
    for step in range(steps):
        start = (step * batch) % (len(data.y) - batch)
        x = data.x[start : start + batch]
        if frames is not None:
            x = x.index_select(2, frames)
        x = prep.normalise(x.float().div_(255.0))
        loss = torch.nn.functional.cross_entropy(model(x), data.y[start : start + batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def bench_loop(modality: str, steps: int, repeats: int, batch: int | None = None) -> None:
    config = make_config(modality, "fast", "cpu", weights="none", epochs=1, batch_size=batch)
    n = steps * config.batch_size
    data = fake_arrays(config, n)
    prep = preprocessing_for(config)
    # ready inputs for the bare loop: sampled frames, float, normalised (built once, untimed)
    ready = prep.normalise(prep.batch(data.x, train=False))
    labels = ("bare", "bare uint8", "project (no aug)", "project (aug)")
    results = {label: float("inf") for label in labels}
    cpu_results = dict(results)

    def run(label: str) -> tuple[float, float]:
        torch.manual_seed(0)
        model, _ = make_model(config)
        if not prep.dynamic:  # as fit keeps a still model on the CPU (rascore.train.loop)
            model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
        start, cpu = time.perf_counter(), time.process_time()
        if label == "bare":
            bare_loop(model, optimizer, ready, data.y, config.batch_size, steps)
        elif label == "bare uint8":
            bare_uint8_loop(model, optimizer, data, prep, config.batch_size, steps)
        else:
            aug = Augmentation() if label.endswith("(aug)") else None
            train_one_epoch(
                model,
                optimizer,
                scheduler,
                data,
                prep,
                config,
                torch.device("cpu"),
                torch.Generator().manual_seed(0),
                aug,
                lambda *a: None,
                lambda: False,
            )
        return time.perf_counter() - start, time.process_time() - cpu

    run("bare")  # warm-up: allocator and oneDNN primitive caches
    for repeat in range(repeats):  # interleaved, rotating order, best of the repeats
        for label in labels[repeat % len(labels) :] + labels[: repeat % len(labels)]:
            wall, cpu = run(label)
            results[label] = min(results[label], wall)
            cpu_results[label] = min(cpu_results[label], cpu)
    items = steps * config.batch_size
    print(
        f"\n[{modality}] {config.arch} {config.height}x{config.width}"
        + (f" x{config.frames} frames" if prep.dynamic else "")
        + f", batch {config.batch_size}, {steps} steps, best of {repeats}"
    )
    for label, seconds in results.items():
        cpu = cpu_results[label]
        print(
            f"  {label:<18} wall {seconds:7.2f} s  {items / seconds:7.1f} items/s  "
            f"ratio to bare {results['bare'] / seconds:5.3f}x   |  CPU {cpu:7.2f} s  "
            f"ratio to bare {cpu_results['bare'] / cpu:5.3f}x"
        )


def bench_memory_format(steps: int, repeats: int) -> None:
    """One training step of the stills' fast-preset network (SGS) with model and input contiguous
    against channels_last (what fit uses on the CPU for still models): interleaved, best of N."""
    config = make_config("SGS", "fast", "cpu", weights="none", epochs=1)
    prep = preprocessing_for(config)
    data = fake_arrays(config, steps * config.batch_size)
    ready = prep.normalise(prep.batch(data.x, train=False))
    formats = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    best = {name: float("inf") for name in formats}
    for repeat in range(repeats + 1):  # the first round warms the caches and is not counted
        for name in list(formats)[repeat % 2 :] + list(formats)[: repeat % 2]:
            torch.manual_seed(0)
            model, _ = make_model(config)
            model.to(memory_format=formats[name])
            x = ready.contiguous(memory_format=formats[name])
            optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.lr)
            start = time.perf_counter()
            bare_loop(model, optimizer, x, data.y, config.batch_size, steps)
            if repeat:
                best[name] = min(best[name], (time.perf_counter() - start) / steps)
    print(f"\n[memory format, SGS {config.arch} {config.height}x{config.width}, batch {config.batch_size}]")
    for name, seconds in best.items():
        print(
            f"  {name:<14} {seconds * 1000:6.1f} ms per step  ({best['contiguous'] / seconds:4.2f}x contiguous)"
        )


def _media(n: int, dynamic: bool, tmp: Path):
    """n files encoded like demo items (PNG stills or H.264 MP4 clips), ingested into a MediaStore."""
    import imageio.v3 as iio

    from rascore.media import MediaStore, ingest_bytes

    store = MediaStore(tmp / "media", tmp / "cache", fsync=False)
    rng = np.random.default_rng(0)
    shas = []
    for i in range(n):
        t = 16 if dynamic else 1
        frames = rng.gamma(2.0, 30.0, size=(t, 192, 256, 1)).clip(0, 255).astype(np.uint8).repeat(3, -1)
        if dynamic:
            data = iio.imwrite(
                "<bytes>", frames, extension=".mp4", fps=15, codec="libx264", quality=8, macro_block_size=16
            )
            name = f"c{i}.mp4"
        else:
            data = iio.imwrite("<bytes>", frames[0], extension=".png")
            name = f"s{i}.png"
        shas.append(ingest_bytes(data, name, store, b"k" * 32).sha256)
    return store, shas


def bench_data(n: int) -> None:
    from rascore.media import decode_file

    for modality in ("SGS", "DGS"):
        config = make_config(modality, "fast", "cpu", weights="none")
        prep = preprocessing_for(config)
        with tempfile.TemporaryDirectory() as tmp:
            store, shas = _media(n, prep.dynamic, Path(tmp))
            start = time.perf_counter()
            cached = torch.stack([prep.array(store.load_cache(s)) for s in shas])
            from_cache = time.perf_counter() - start
            start = time.perf_counter()
            for sha in shas:
                prep.array(decode_file(store.media_path(sha)).frames)
            from_files = time.perf_counter() - start
            start = time.perf_counter()
            for begin in range(0, n, config.batch_size):
                prep.batch(cached[begin : begin + config.batch_size], train=True)
            from_memory = time.perf_counter() - start
        print(
            f"\n[data path, {modality}] one epoch of {n} items ({'clips 16x192x256' if prep.dynamic else 'stills 192x256'})"
        )
        print(f"  preloaded uint8 tensor   {from_memory * 1000:8.1f} ms  ({n / from_memory:9.0f} items/s)")
        print(f"  decoded-array cache      {from_cache * 1000:8.1f} ms  ({n / from_cache:9.0f} items/s)")
        print(f"  decoding original files  {from_files * 1000:8.1f} ms  ({n / from_files:9.0f} items/s)")


def retrain(
    modalities: list[str], epochs: int | None, baseline: bool = True, pool: list[str] | None = None
) -> None:
    """Wall and CPU seconds of run_training per modality (load, train, test, publish).

    The baseline (PD-only colour rule, Doppler modalities, against the PD reference) is run too unless --no-baseline, as
    ``rascore train`` runs it; the training figure to compare with 5 minutes is the printed
    "training" time plus loading, without the baseline.
    """
    from rascore.project import open_project
    from rascore.train import run_training

    project = open_project()
    print(f"\n[retrain, fast preset, project {project.settings.data_dir}]")
    for modality in modalities:
        config = make_config(modality, "fast", "cpu", epochs=epochs, weights="none", pool=pool)
        start, cpu = time.perf_counter(), time.process_time()
        outcome = run_training(project, config, activate="if-better", baseline=baseline)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        fit = outcome.metrics["training"]
        line = (
            f"  {modality} v{outcome.published.version}: {seconds:6.1f} s wall, {cpu:6.1f} s CPU "
            f"(training {fit['seconds']:.1f} s, {fit['epochs_run']} epochs, best {fit['best_epoch']}; "
            f"{'pooled with ' + '+'.join(config.pool) if config.pool else 'own items only'}); "
            f"val macro AUC {outcome.metrics['validation']['macro_auc']:.3f}"
        )
        print(line)
        for cohort, entry in outcome.metrics["test"]["cohorts"].items():
            for name in ("model", "model_pd_reference", "pd_colour_rule"):
                if name in entry:
                    aucs = " ".join(
                        f"{g}:{v['auc']:.3f}" if v["auc"] is not None else f"{g}:n/a"
                        for g, v in entry[name]["auc"].items()
                    )
                    print(
                        f"    {cohort} {name:<18} AUC {aucs}  macro {entry[name]['macro_auc']:.3f}"
                        f"  acc {entry[name]['accuracy']:.3f}  kappa_q {entry[name]['kappa_quadratic']:.3f}"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--items", type=int, default=64, help="items in the data-path benchmark")
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--skip-data", action="store_true")
    parser.add_argument("--retrain", nargs="*", metavar="MODALITY")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--memory-format", action="store_true", help="a still model's step, contiguous against channels_last"
    )
    parser.add_argument(
        "--pool",
        nargs="+",
        help="--retrain: modalities to pool ('none': own items only; default the product's)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, CPU")
    if not args.skip_loop:
        for modality in ("SGS", "DPD"):
            bench_loop(modality, args.steps, args.repeats)
    if args.memory_format:
        bench_memory_format(args.steps, args.repeats)
    if not args.skip_data:
        bench_data(args.items)
    if args.retrain is not None:
        retrain(
            [m.upper() for m in args.retrain] or ["SGS", "DGS", "SPD", "DPD"],
            args.epochs,
            not args.no_baseline,
            args.pool,
        )


if __name__ == "__main__":
    main()
