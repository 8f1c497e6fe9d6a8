"""Benchmark: does a model trained on the demo simulator survive another scanner?

For each seed: plan a cohort with the demo simulator (rascore.synth.plan_cohort, paper size by
default), keep one modality (SGS by default), render train / test1 / test2 (and test3, the
unseen profile, where the simulator has it), train at the fast preset in this process (the same
rascore.train.loop.fit the product runs, on a patient-grouped validation split of the train
cohort; no store), and score every test cohort: macro AUC and accuracy of the prior-corrected
probabilities against the grade a careful reader could see on the item
(rascore.synth.visible_grades, target of the modality). A foreign cohort from
tests/foreign_cohort.py (another generator) is scored too when that file exists.

"Before" and "after" differ only in the options: ``--augment basic --norm dataset --roi-within frame``
is the training of before the scanner-robustness changes, ``--augment wide --norm image`` (the defaults) the new one;
``--train-variation none`` trains on the simulator's narrow look (before it was widened) while
the test cohorts keep ``--test-variation`` (default: the simulator's default, wide).

SGS also learns from the training patients' DGS clips (their middle frames), as the product's
training does (rascore.train.config.POOLED); ``--pool none`` trains on the modality's own items
alone, as before pooling. The validation half is the same either way.

``--set KEY=VALUE ...`` overrides training settings (TrainConfig fields: ``net_width=16
patience=8`` gives the stills' preset of before; ``size=128x176``; ``lr=0.001``); each row records
them. Prints a table (per seed and cohort, then mean and spread over seeds; each cohort's JSON
also holds its accuracy on cropped and on fallback items) and appends JSON lines to ``--out``. ``--time-augment`` prints the cost per batch of the basic and wide augmentation
(interleaved, same process) and exits. Keep OMP_NUM_THREADS at 1 or 2.

  OMP_NUM_THREADS=2 PYTHONPATH=$PWD python bench/bench_robustness.py --seeds 0 1 2 \
      --augment basic --norm dataset --out bench/robustness.jsonl
  OMP_NUM_THREADS=2 PYTHONPATH=$PWD python bench/bench_robustness.py --seeds 0 1 2 --out bench/robustness.jsonl
  PYTHONPATH=$PWD python bench/bench_robustness.py --time-augment
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rascore import scale  # noqa: E402
from rascore.synth import plan_cohort, render_item, visible_grades  # noqa: E402
from rascore.synth import cohort as synth_cohort  # noqa: E402
from rascore.train.augment import AUGMENTATIONS, Augmentation, WideAugmentation  # noqa: E402
from rascore.train.config import make_config  # noqa: E402
from rascore.train.data import Arrays, patient_split, preprocessing_for  # noqa: E402
from rascore.train.loop import TrainData, evaluate, fit, validation_metrics  # noqa: E402
from rascore.train.preprocess import NORMS  # noqa: E402
from rascore.train.roi import WITHIN  # noqa: E402

FOREIGN = ROOT / "tests" / "foreign_cohort.py"


def _plan(size: str, seed: int, variation: str | None) -> list:
    """plan_cohort, passing ``variation`` only to a simulator that takes it."""
    if variation is None:
        return plan_cohort(size, seed)
    if "variation" not in inspect.signature(plan_cohort).parameters:
        raise SystemExit("this simulator has no variation switch (rascore.synth.plan_cohort)")
    return plan_cohort(size, seed, variation=variation)


def _arrays(items: list[tuple[np.ndarray, int, str, int]], prep) -> Arrays:
    """(frames, target, patient, id) -> one preloaded split, as rascore.train.data.preload makes it."""
    xs, crops = [], []
    for frames, _, _, _ in items:
        x, crop = prep.array_and_crop(frames)
        xs.append(x)
        crops.append(crop)
    y = torch.tensor([t for _, t, _, _ in items], dtype=torch.long)
    return Arrays(torch.stack(xs), y, [i for _, _, _, i in items], crops)


def _setting(text: str) -> tuple[str, object]:
    """KEY=VALUE of --set as a TrainConfig override: numbers parsed, "AxB" as a pair of numbers."""
    key, _, value = text.partition("=")
    if "x" in value and all(part.replace(".", "").isdigit() for part in value.split("x")):
        return key, tuple(float(p) if "." in p else int(p) for p in value.split("x"))
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def _target(spec) -> int:
    sh, pd = visible_grades(spec)
    return scale.target_grade(spec.modality, sh, pd)


def foreign_cohort(path: Path, modality: str, n: int, seed: int):
    """[(frames, target)] from a foreign_cohort.py (make_foreign and target), or None without one
    (or for a clip modality: the foreign generator draws stills only)."""
    if not path.exists() or scale.modality(modality).dynamic:
        return None
    spec = importlib.util.spec_from_file_location("foreign_cohort", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["foreign_cohort"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    items = module.make_foreign(n, seed, modality)
    return [(frames, module.target(modality, sh, pd)) for frames, sh, pd, _ in items]


def scores(y: np.ndarray, probs: np.ndarray, crops: list[str]) -> dict:
    m = validation_metrics(y, probs)
    return {
        "n": m["n"],
        "macro_auc": m["macro_auc"],
        "auc": m["auc"],  # per grade, one against the rest
        "accuracy": m["accuracy"],
        "predicted": np.bincount(probs.argmax(axis=1), minlength=4).tolist(),
        "true": np.bincount(y, minlength=4).tolist(),
        "fallback": sum(c == "fallback" for c in crops),
        "accuracy_by_crop": {
            mode: float(np.mean(probs.argmax(axis=1)[picked] == y[picked]))
            for mode in ("crop", "fallback")
            if (picked := np.array([c == mode for c in crops], dtype=bool)).any()
        },
    }


def split_train(items: list[tuple[np.ndarray, int, str, int]], config, prep) -> tuple[TrainData, list[int]]:
    """The training cohort's (frames, target, patient, id) as the product splits it (patient-grouped
    validation share of ``config``): the preloaded TrainData and the validation items' ids."""
    rows = [{"item_id": i, "target": t, "patient": p} for _, t, p, i in items]
    train_rows, val_rows = patient_split(rows, config.val_fraction, config.seed)
    by_id = {item[3]: item for item in items}
    train = _arrays([by_id[r["item_id"]] for r in train_rows], prep)
    val = _arrays([by_id[r["item_id"]] for r in val_rows], prep)
    return TrainData(train, val, prep, {}), [r["item_id"] for r in val_rows]


def pooled(data: TrainData, specs: list, val_patients: set[str], modalities: list[str], prep) -> TrainData:
    """``data`` with the training cohort's items of other ``modalities`` added to its training half
    (patients of the validation half left out, so that half and the selection stay as they were)."""
    chosen = [
        s for s in specs if s.cohort == "train" and s.modality in modalities and s.patient not in val_patients
    ]
    extra = _arrays(
        [(render_item(s).frames, _target(s), s.patient, -1 - n) for n, s in enumerate(chosen)], prep
    )
    train = Arrays(
        torch.cat([data.train.x, extra.x]),
        torch.cat([data.train.y, extra.y]),
        data.train.item_ids + extra.item_ids,
        data.train.crops + extra.crops,
    )
    return TrainData(train, data.val, prep, {})


def run_seed(args, seed: int) -> dict:
    config = make_config(
        args.modality,
        "fast",
        "cpu",
        weights="none",
        seed=seed,
        augmentation=args.augment,
        augment=args.augment != "none",
        norm=args.norm,
        roi_within=args.roi_within,
        epochs=args.epochs,
        pool=args.pool,
        **dict(_setting(kv) for kv in args.set),
    )
    prep = preprocessing_for(config)
    started = time.perf_counter()
    train_specs = _plan(args.size, seed, args.train_variation)
    test_specs = _plan(args.size, seed, args.test_variation)
    specs = [s for s in train_specs if s.cohort == "train"] + [s for s in test_specs if s.cohort != "train"]
    per_cohort: dict[str, list] = {}
    for index, spec in enumerate(s for s in specs if s.modality == config.modality):
        per_cohort.setdefault(spec.cohort, []).append(
            (render_item(spec).frames, _target(spec), spec.patient, index)
        )
    render_s = time.perf_counter() - started
    data, val_ids = split_train(per_cohort["train"], config, prep)
    pool = config.pool  # the product's default (SGS pools DGS) unless --pool says otherwise
    if pool:
        held_out = set(val_ids)
        val_patients = {p for _, _, p, i in per_cohort["train"] if i in held_out}
        data = pooled(data, train_specs, val_patients, pool, prep)
    train, val = data.train, data.val
    started_fit, cpu_fit = time.perf_counter(), time.process_time()
    result = fit(config, data)
    fit_s, fit_cpu = time.perf_counter() - started_fit, time.process_time() - cpu_fit
    record = {
        "seed": seed,
        "modality": config.modality,
        "size": args.size,
        "augment": args.augment,
        "norm": args.norm,
        "roi_within": args.roi_within,
        "train_variation": args.train_variation,
        "test_variation": args.test_variation,
        "set": args.set,
        "pool": list(pool),  # rows without it trained on the modality's own items
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "fit_seconds": round(fit_s, 1),  # wall: moves with other processes' load
        "fit_cpu_seconds": round(fit_cpu, 1),  # CPU of this process (all its threads)
        "render_seconds": round(render_s, 1),
        "train_fallback": sum(c == "fallback" for c in train.crops + val.crops),
        "n_train": len(train),
        "n_val": len(val),
        "validation_macro_auc": result.validation.get("macro_auc"),
        "cohorts": {},
    }
    cohorts = [c for c in ("test1", "test2", "test3") if c in per_cohort]
    for name in cohorts:
        split = _arrays(per_cohort[name], prep)
        probs = evaluate(result.model, split, prep, torch.device("cpu"))
        record["cohorts"][name] = scores(split.y.numpy(), probs, split.crops)
    if args.test3_plans > 1 and "test3" in per_cohort:
        # the unseen profile's items of more independent plans: one cohort of several times the size
        more = [
            s
            for k in range(1, args.test3_plans)
            for s in _plan(args.size, 10_000 + 100 * seed + k, args.test_variation)
            if s.cohort == "test3" and s.modality == config.modality
        ]
        items = per_cohort["test3"] + [
            (render_item(s).frames, _target(s), s.patient, -1 - n) for n, s in enumerate(more)
        ]
        split = _arrays(items, prep)
        probs = evaluate(result.model, split, prep, torch.device("cpu"))
        record["cohorts"][f"test3x{args.test3_plans}"] = scores(split.y.numpy(), probs, split.crops)
    foreign = foreign_cohort(args.foreign, config.modality, args.foreign_n, args.foreign_seed)
    if foreign is not None:
        split = _arrays([(f, int(t), "", i) for i, (f, t) in enumerate(foreign)], prep)
        probs = evaluate(result.model, split, prep, torch.device("cpu"))
        record["cohorts"]["foreign"] = scores(split.y.numpy(), probs, split.crops)
    return record


def table(records: list[dict]) -> str:
    """Per seed and cohort, then mean and spread (sd, min-max) over seeds."""
    lines = [
        f"{'seed':>4} {'cohort':<8} {'n':>4} {'macro AUC':>9} {'accuracy':>8} {'fallback':>8}  predicted"
    ]
    cohorts: dict[str, list[dict]] = {}
    for r in records:
        for name, c in r["cohorts"].items():
            cohorts.setdefault(name, []).append(c)
            lines.append(
                f"{r['seed']:>4} {name:<8} {c['n']:>4} {c['macro_auc']:>9.3f} {c['accuracy']:>8.3f} "
                f"{c['fallback']:>8}  {c['predicted']} (true {c['true']})"
                + (
                    "  per grade " + " ".join(f"{g}:{v:.2f}" for g, v in c["auc"].items())
                    if c.get("auc")
                    else ""
                )
            )
    lines.append("")
    for name, cs in cohorts.items():
        auc = np.array([c["macro_auc"] for c in cs])
        acc = np.array([c["accuracy"] for c in cs])
        lines.append(
            f"mean {name:<8} over {len(cs)} seeds: macro AUC {auc.mean():.3f} (sd {auc.std(ddof=1) if len(cs) > 1 else 0:.3f}, "
            f"{auc.min():.3f}-{auc.max():.3f}), accuracy {acc.mean():.3f} (sd {acc.std(ddof=1) if len(cs) > 1 else 0:.3f}, "
            f"{acc.min():.3f}-{acc.max():.3f})"
        )
    fits = ", ".join(
        f"{r['fit_seconds']:.0f} wall / {r.get('fit_cpu_seconds', float('nan')):.0f} CPU" for r in records
    )
    lines.append(f"training seconds per run: {fits}")
    return "\n".join(lines)


def time_augment(repeats: int = 30) -> None:
    """ms per batch of the basic and wide augmentation (fast preset shapes), interleaved: best wall
    and best CPU time of this process (the CPU figure moves less with other processes' load)."""
    shapes = {
        "SGS still batch 16x1x96x128": (16, 1, 96, 128),
        "DPD clip batch 16x3x4x96x128": (16, 3, 4, 96, 128),
    }
    sets = {"basic": Augmentation(), "wide": WideAugmentation()}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; best of {repeats}, interleaved"
    )
    for label, shape in shapes.items():
        x = torch.rand(shape)
        wall = dict.fromkeys(sets, float("inf"))
        cpu = dict.fromkeys(sets, float("inf"))
        g = torch.Generator().manual_seed(0)
        for _ in range(repeats):
            for name, aug in sets.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                aug(x, g)
                wall[name] = min(wall[name], time.perf_counter() - start)
                cpu[name] = min(cpu[name], time.process_time() - start_cpu)
        print(
            f"  {label}: "
            + ", ".join(f"{k} {wall[k] * 1000:.1f} ms wall / {cpu[k] * 1000:.1f} ms CPU" for k in sets)
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--modality", type=str.upper, default="SGS", choices=list(scale.MODALITIES))
    parser.add_argument("--size", default="paper", choices=list(synth_cohort.SIZES))
    parser.add_argument("--augment", default="wide", choices=list(AUGMENTATIONS))
    parser.add_argument(
        "--test3-plans",
        type=int,
        default=1,
        help="also score the unseen profile's items of this many independent plans together "
        "(the cohort's own and N-1 more; one plan holds 38 SGS items, 1-3 of them grade 3)",
    )
    parser.add_argument(
        "--pool",
        nargs="+",
        help="other modalities whose training items join the training half ('none': the "
        "modality's own only; default: the product's, rascore.train.config.POOLED)",
    )
    parser.add_argument("--norm", default="image", choices=list(NORMS))
    parser.add_argument("--roi-within", default="field", choices=list(WITHIN), help="joint crop placement")
    parser.add_argument(
        "--train-variation",
        default=None,
        help="simulator variation of the train cohort: none or wide (if offered)",
    )
    parser.add_argument(
        "--test-variation",
        default=None,
        help="simulator variation of the test cohorts (default: the simulator's)",
    )
    parser.add_argument(
        "--foreign", type=Path, default=FOREIGN, help="a foreign_cohort.py (make_foreign, target)"
    )
    parser.add_argument("--foreign-n", type=int, default=240)
    parser.add_argument("--foreign-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="override the fast preset's epochs (smoke runs)")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="TrainConfig overrides, e.g. size=128x176 net_width=24 lr=0.001 roi=0.5x0.6",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="append one JSON line per seed here")
    parser.add_argument("--time-augment", action="store_true")
    parser.add_argument(
        "--table", type=Path, nargs="+", help="print the table of these JSON-lines files and exit"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.time_augment:
        time_augment()
        return
    if args.table:
        for path in args.table:
            records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            first = records[0]
            print(
                f"\n{path.name}: {first['modality']} {first['size']}, augment {first['augment']}, norm "
                f"{first['norm']}, crop {first.get('roi_within', 'frame')}, train variation "
                f"{first.get('train_variation') or 'default'}"
            )
            print(table(records))
        return
    if "test3" not in synth_cohort.SIZES[args.size]:
        print("note: this simulator has no test3 (unseen profile) cohort; scoring test1 and test2 only")
    if not args.foreign.exists():
        print(f"note: {args.foreign} is not here; no foreign cohort")
    records = []
    for seed in args.seeds:
        record = run_seed(args, seed)
        records.append(record)
        print(json.dumps(record), flush=True)
        if args.out:
            with args.out.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
    print(
        f"\n{args.modality} {args.size}, augment {args.augment}, norm {args.norm}"
        + f", simulator variation train {args.train_variation or 'default'}, tests {args.test_variation or 'default'}"
    )
    print(table(records))


if __name__ == "__main__":
    main()
