"""Prediction latency: one still at the fast preset, against one bare forward pass of the same network.

Measured (CPU, batch 1, best-of-N medians):
- bare forward: ``model(x)`` on a ready (1, 3, H, W) tensor under inference_mode;
- predict_frames: decoded 192x256 frame -> joint crop -> resize -> normalise -> forward -> probabilities;
- Predictor.predict: the same plus the registry check for a newer active version (one SQL query);
- decode PNG + predict: decode a PNG as ingest does, then Predictor.predict;
- predict_file: the CLI path, which also loads the checkpoint each call.
Target (docs/PERFORMANCE.md): predict within 2x of the bare forward pass.

Run: .venv/bin/python bench/bench_predict.py [--n 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(candidates: dict, n: int) -> dict[str, tuple[float, float]]:
    """(10th percentile, median) seconds per candidate, the candidates interleaved call by call.

    Interleaving gives every candidate the same share of whatever else the machine is doing; the
    10th percentile is the figure compared, the median is shown beside it.
    """
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for i in range(n + 10):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            if i >= 10:
                samples[name].append(time.perf_counter() - start)
    return {name: (float(np.percentile(v, 10)), statistics.median(v)) for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: batch-1 latency; 2 threads stall badly when another process holds a core)",
    )
    parser.add_argument("--modality", default="SPD", choices=["SGS", "SPD"])
    parser.add_argument("--no-roi", action="store_true", help="without the joint crop, for comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import imageio.v3 as iio

    from rascore.config import Settings
    from rascore.predict import Predictor, load_model, predict_file, predict_frames
    from rascore.project import Project
    from rascore.train import make_config
    from rascore.train.card import render_card
    from rascore.train.checkpoint import make_checkpoint
    from rascore.train.data import preprocessing_for
    from rascore.train.loop import make_model
    from rascore.train.versions import publish
    from tests.test_train import tiny_frames

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = Project(
            Settings(db_path=root / "db.sqlite", data_dir=root, models_dir=root / "models", device="cpu")
        )
        config = make_config(
            args.modality, "fast", "cpu", weights="none", roi="none" if args.no_roi else None
        )
        model, _ = make_model(config)
        model.eval()
        prep = preprocessing_for(config)
        checkpoint = make_checkpoint(
            model,
            modality=config.modality,
            prep=prep,
            args=config.to_dict(),
            metrics={},
            snapshot={},
            pretrained=None,
            arch_options={"width": config.net_width, "pooling": config.pooling},
        )
        publish(project, checkpoint, lambda v: render_card(checkpoint, v), activate="always")
        loaded = load_model(project, config.modality)
        frames = tiny_frames(
            np.random.default_rng(0), 2, 2 if config.modality == "SPD" else 0, height=192, width=256
        )
        x = prep.normalise(prep.batch(prep.array(frames)[None]))
        path = root / "still.png"
        iio.imwrite(path, frames[0])
        predictor = Predictor(project)
        predictor.model(config.modality)

        from rascore.media import decode_file

        def bare() -> None:
            with torch.inference_mode():
                loaded.model(x)

        results = timed(
            {
                "bare forward": bare,
                "predict_frames": lambda: predict_frames(loaded, frames),
                "Predictor.predict": lambda: predictor.predict(frames, config.modality),
                "decode PNG + predict": lambda: predictor.predict(decode_file(path).frames, config.modality),
            },
            args.n,
        )
        results.update(
            timed(
                {
                    "bare forward": bare,
                    "predict_file (loads model)": lambda: predict_file(project, path, config.modality),
                },
                max(5, args.n // 20),
            )
            | {"bare forward": results["bare forward"]}
        )
        bare_time = results["bare forward"]
        print(
            f"torch {torch.__version__}, {args.threads} threads, CPU; {config.modality} fast preset: "
            f"{config.arch} at {config.height}x{config.width}, joint crop {config.roi}, 192x256 input"
        )
        print(f"  {'':<28} {'p10':>8}      {'ratio':>5}          {'median':>8}")
        for label, (low, median) in results.items():
            print(
                f"  {label:<28} {low * 1000:8.2f} ms   {low / bare_time[0]:5.2f}x bare   "
                f"{median * 1000:8.2f} ms   {median / bare_time[1]:5.2f}x bare"
            )


if __name__ == "__main__":
    main()
