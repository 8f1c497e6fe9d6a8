"""Peak memory (RSS) of prediction and training, each figure from its own child process.

(a) predict: a process builds the four modality models of a preset untrained (weights "none"),
    turns each into a checkpoint and back with ``model_from_checkpoint`` (what
    ``rascore.predict.load_model`` does after reading the file) and grades one synthetic item per
    modality with ``predict_frames`` (the Predictor's path), keeping all four loaded.
(b) train: ``rascore.train.loop.fit`` for ``--epochs`` epochs on ``--items`` random uint8 items of
    one modality at a preset (no pretrained weights), the split held in memory as the pipeline
    holds it. The cached arrays grow with the item count: bytes per item are printed per preset.

Peak RSS: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` in the child (VmHWM in /proc as well).

Usage:
  python bench/bench_memory.py                      # all figures
  python bench/bench_memory.py --only predict       # or train
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODS = ("SGS", "DGS", "SPD", "DPD")


def peak_mib() -> float:
    """Peak resident set of this process in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_baseline() -> dict:
    import torch  # noqa: F401

    import rascore.train.loop  # noqa: F401

    return {"peak_mib": peak_mib()}


def child_predict(preset: str) -> dict:
    import numpy as np
    import torch

    from rascore.predict import LoadedModel, predict_frames
    from rascore.train.checkpoint import make_checkpoint, model_from_checkpoint
    from rascore.train.config import make_config
    from rascore.train.data import preprocessing_for
    from rascore.train.loop import make_model

    torch.set_num_threads(2)
    base = peak_mib()
    loaded, out = [], {}
    for mod in MODS:
        config = make_config(mod, preset, "cpu", weights="none")
        model, _ = make_model(config)
        prep = preprocessing_for(config)
        checkpoint = make_checkpoint(
            model, modality=mod, prep=prep, args=config.to_dict(), metrics={}, snapshot={}, pretrained=None
        )
        del model
        net, prep = model_from_checkpoint(checkpoint)
        del checkpoint
        net.eval()
        item = LoadedModel(mod, 1, 1, net, prep, "SH")
        loaded.append(item)
        frames = np.random.default_rng(0).integers(
            0, 255, (24 if config.frames > 1 else 1, 240, 320, 3), dtype=np.uint8
        )
        if config.frames == 1:
            frames = frames[0]
        predict_frames(item, frames)
        out[mod] = {"arch": config.arch, "params_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 2)}
    return {"peak_mib": peak_mib(), "after_imports_mib": base, "models": out}


def child_train(preset: str, modality: str, items: int, epochs: int, batch: int | None) -> dict:
    import torch

    from rascore.train.config import make_config
    from rascore.train.data import Arrays, preprocessing_for
    from rascore.train.loop import TrainData, fit

    torch.set_num_threads(2)
    config = make_config(
        modality,
        preset,
        "cpu",
        weights="none",
        epochs=epochs,
        batch_size=batch,
        warmup_epochs=0,
        patience=epochs + 1,
    )
    prep = preprocessing_for(config)
    shape = ((prep.channels, prep.cache_frames) if prep.dynamic else (prep.channels,)) + (
        prep.height,
        prep.width,
    )
    gen = torch.Generator().manual_seed(0)

    def split(n: int) -> Arrays:
        x = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=gen)
        return Arrays(x, torch.arange(n) % 4, list(range(n)))

    n_val = max(4, items // 4)
    data = TrainData(split(items), split(n_val), prep, {})
    base = peak_mib()
    per_item = data.train.x[0].numel() * data.train.x.element_size()
    fit(config, data)
    return {
        "peak_mib": peak_mib(),
        "before_fit_mib": base,
        "arch": config.arch,
        "input": list(shape),
        "batch": config.batch_size,
        "items": items,
        "val": n_val,
        "epochs": epochs,
        "cached_bytes_per_item": per_item,
    }


def run_child(kind: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, *args], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-800:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("predict", "train"))
    parser.add_argument("--items", type=int, default=32, help="training items per run")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--paper-batch",
        type=int,
        default=16,
        help="batch for paper-preset training on CPU (the preset's 64 is for GPU)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        sys.path.insert(0, str(ROOT))
        if kind == "baseline":
            result = child_baseline()
        elif kind == "predict":
            result = child_predict(rest[0])
        else:
            batch = int(rest[4]) if rest[4] != "none" else None
            result = child_train(rest[0], rest[1], int(rest[2]), int(rest[3]), batch)
        print(json.dumps(result))
        return 0

    base = run_child("baseline")
    print(f"baseline (python + torch + rascore.train imported): {base.get('peak_mib', 0):.0f} MiB")
    if args.only in (None, "predict"):
        for preset in ("fast", "paper"):
            r = run_child("predict", preset)
            if "error" in r:
                print(f"predict {preset}: FAILED {r['error']}")
                continue
            archs = ", ".join(f"{m} {v['arch']} {v['params_m']}M" for m, v in r["models"].items())
            print(f"predict, 4 models loaded, {preset:5s}: peak RSS {r['peak_mib']:.0f} MiB ({archs})")
    if args.only in (None, "train"):
        for preset in ("fast", "paper"):
            for mod in ("SPD", "DPD"):  # a still and a clip model (Doppler: 3 channels)
                batch = str(args.paper_batch) if preset == "paper" else "none"
                r = run_child("train", preset, mod, str(args.items), str(args.epochs), batch)
                if "error" in r:
                    print(f"train {preset} {mod}: FAILED {r['error']}")
                    continue
                print(
                    f"train {preset:5s} {mod} ({r['arch']}, input {'x'.join(map(str, r['input']))},"
                    f" batch {r['batch']}, {r['items']}+{r['val']} items, {r['epochs']} epoch):"
                    f" peak RSS {r['peak_mib']:.0f} MiB; before fit {r['before_fit_mib']:.0f} MiB;"
                    f" cached bytes/item {r['cached_bytes_per_item']:,}"
                    f" ({r['cached_bytes_per_item'] * 1000 / 2**20:.0f} MiB per 1000 items)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
