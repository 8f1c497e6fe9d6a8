"""``rascore train | evaluate | predict | models list``: the modality models from the command line.

``rascore train`` also runs under torchrun (``torchrun --nproc_per_node=N -m rascore.cli train
...``): the processes train together with DistributedDataParallel and rank 0 alone shows the
progress bar, publishes the version and prints the summary (rascore.train.distributed).
"""

from __future__ import annotations

import argparse
import json
import sys

from rascore.cli.numbers import number
from rascore import names
from rascore.cli import CliError
from rascore.project import open_project
from rascore import scale
from rascore.scale import MODALITIES

_MODALITIES = list(MODALITIES)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate``, ``predict`` and ``models``."""
    # Choices from rascore.names, so that building the parser never imports torch.
    p = sub.add_parser(
        "train",
        help="train a modality model on the current reference labels",
        description="Train one modality model, test it on the test cohorts, register it "
        "as a new version and activate it if its validation macro AUC is at least "
        "the active one's. Under torchrun (torchrun --nproc_per_node=N -m rascore.cli "
        "train ...) the N processes train one model together (DistributedDataParallel; "
        "NCCL on GPUs, Gloo on CPUs) and rank 0 publishes it; --batch-size is per process.",
    )
    p.add_argument("--modality", required=True, type=str.upper, choices=_MODALITIES)
    p.add_argument(
        "--preset",
        choices=names.PRESET_CHOICES,
        default="auto",
        help="paper (GPU) or fast (CPU); auto picks by device",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--device", default=None, help="auto, cpu or cuda (default $RASCORE_DEVICE or auto)")
    p.add_argument("--head", choices=names.HEAD_NAMES, default="softmax")
    p.add_argument("--arch", choices=names.ARCH_NAMES)
    p.add_argument(
        "--weights",
        default="auto",
        help="where training starts: MODALITY@VERSION (a registered RAScore model, e.g. SGS@3) "
        "or a RAScore checkpoint file (models/SGS/v3/model.pt of any project) to fine-tune from; "
        "a local torchvision weights file; 'auto' uses a file in the torch hub cache if present; "
        "'none' trains from scratch; never downloads. A RAScore source must have this run's "
        "architecture (same preset); its grade head is kept only for the same head and target",
    )
    p.add_argument(
        "--pool",
        nargs="+",
        metavar="MODALITY",
        help="also learn from the training cohort's items of these modalities of the same target "
        "(a still model takes a clip's middle frame), from patients outside validation only; "
        "'none' for this modality's items alone (default: SGS pools DGS, the others pool nothing)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--size", type=int, nargs="+", metavar="PX", help="input height [width]")
    p.add_argument("--frames", type=int, help="frames a clip model sees per pass")
    p.add_argument("--activate", choices=names.ACTIVATE_POLICIES, default=names.DEFAULT_POLICY)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "evaluate",
        help="score a model version on the test cohorts",
        description="Per-grade AUC with 95% bootstrap CI, macro AUC, accuracy, "
        "confusion matrix, weighted kappa and ECE (before and after the sampling-prior "
        "correction) per test cohort, crops and fallbacks of the joint crop; the PD-only "
        "colour rule beside SPD/DPD models, against the PD reference. Stores the "
        "predictions.",
    )
    p.add_argument("--modality", required=True, type=str.upper, choices=_MODALITIES)
    p.add_argument(
        "--cohort",
        choices=list(scale.TEST_COHORTS),
        action="append",
        help="cohort to evaluate (repeatable; default all test cohorts)",
    )
    p.add_argument("--version", type=int, help="model version (default: the active one)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs")
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser(
        "predict",
        help="grade one file with the active model",
        description="Decode a file as ingest does and print each grade's probability "
        "and the predicted grade from the active model of its modality.",
    )
    p.add_argument("file")
    p.add_argument(
        "--modality",
        type=str.upper,
        choices=_MODALITIES,
        help="default: guessed (clip or still; colour Doppler or greyscale)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_predict)

    models = sub.add_parser("models", help="list model versions", description="Model registry.")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION")
    q = models_sub.add_parser("list", help="every version per modality, the active one marked")
    q.add_argument("--modality", type=str.upper, choices=_MODALITIES)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_models_list)
    q = models_sub.add_parser(
        "promote",
        help="make a version the active one",
        description="Make a version the active model of its modality (one transaction, audited).",
    )
    q.add_argument("version", type=int)
    q.add_argument("--modality", type=str.upper, choices=_MODALITIES, required=True)
    q.set_defaults(func=_models_promote)
    q = models_sub.add_parser(
        "rollback",
        help="go back to the previous version",
        description="Activate the newest version older than the active one.",
    )
    q.add_argument("--modality", type=str.upper, choices=_MODALITIES, required=True)
    q.set_defaults(func=_models_rollback)
    models.set_defaults(func=lambda args: (models.print_help(), 2)[1])


def _device(args: argparse.Namespace, project) -> str:
    return args.device or project.settings.device or "auto"


class _Bar:
    """tqdm progress bar on stderr driven by the training loop's on_progress dicts."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, info: dict) -> None:
        from tqdm import tqdm

        total = info["epochs"] * info["steps"]
        if self.bar is None:
            self.bar = tqdm(total=total, file=sys.stderr, unit="step", dynamic_ncols=True, desc="training")
        done = (info["epoch"] - 1) * info["steps"] + info["step"]
        self.bar.update(max(0, done - self.bar.n))
        postfix = {"epoch": f"{info['epoch']}/{info['epochs']}", "loss": f"{info['loss']:.3f}"}
        if info.get("val_macro_auc") is not None:
            postfix["val_auc"] = f"{info['val_macro_auc']:.3f}"
        self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _train(args: argparse.Namespace) -> int:
    from rascore.train import TrainingCancelled, make_config, run_training
    from rascore.train.distributed import environment

    try:
        env = environment()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    project = open_project()
    size = args.size
    if size is not None and len(size) not in (1, 2):
        raise CliError("--size takes a height and optionally a width")
    try:
        config = make_config(
            args.modality,
            args.preset,
            _device(args, project),
            epochs=args.epochs,
            head=args.head,
            arch=args.arch,
            weights=args.weights,
            pool=args.pool,
            seed=args.seed,
            batch_size=args.batch_size,
            lr=args.lr,
            frames=args.frames,
            size=(size[0] if len(size) == 1 else tuple(size)) if size else None,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    bar = _Bar() if env.is_main else None  # under torchrun the other ranks stay quiet
    try:
        # baseline: the PD-only colour rule beside SPD/DPD models, as `rascore evaluate` shows it
        outcome = run_training(project, config, on_progress=bar, activate=args.activate, baseline=True)
    except (ValueError, FileNotFoundError, LookupError) as exc:
        raise CliError(str(exc)) from None
    except TrainingCancelled as exc:
        raise CliError(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    if outcome is None:  # a rank other than 0: rank 0 published and reports
        return 0
    summary = outcome.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    val = summary["validation"]
    state = "active" if summary["activated"] else "not activated (the active version validates better)"
    training = summary.get("training") or {}
    processes = (
        f", {training['world_size']} processes ({training.get('backend')})"
        if (training.get("world_size") or 1) > 1
        else ""
    )
    print(
        f"{summary['modality']} v{summary['version']} ({config.arch}, {config.head} head, "
        f"preset {config.preset}{processes}): {state}"
    )
    print(
        f"  validation macro AUC {number(val['macro_auc'])}, accuracy {number(val['accuracy'])}, "
        "per grade " + ", ".join(f"{g}: {number(v)}" for g, v in val["auc"].items())
    )
    crops = training.get("crops") or {}
    if crops.get("train"):
        print(
            "  joint crop in training: "
            + "; ".join(
                f"{split} {c.get('crop', 0)} cropped, {c.get('fallback', 0)} fell back to the full frame"
                for split, c in crops.items()
                if c
            )
        )
    for cohort, entry in summary["test"]["cohorts"].items():
        if "model" in entry:
            print(
                f"  {cohort}: macro AUC {number(entry['model']['macro_auc'])}, "
                f"accuracy {number(entry['model']['accuracy'])}"
            )
        if entry.get("model_pd_reference"):
            pdref = entry["model_pd_reference"]
            print(
                f"  {cohort} model against the PD reference: macro AUC {number(pdref['macro_auc'])}, "
                f"accuracy {number(pdref['accuracy'])}"
            )
        if entry.get("pd_colour_rule"):
            base = entry["pd_colour_rule"]
            print(
                f"  {cohort} PD-only colour rule (PD reference): macro AUC {number(base['macro_auc'])}, "
                f"accuracy {number(base['accuracy'])}, per grade "
                + ", ".join(f"{g}: {number(v['auc'])}" for g, v in base["auc"].items())
            )
    print(f"  card: {summary['card']}")
    return 0


_COHORT_ROWS = (
    ("model", "model ({target} reference)"),
    ("model_pd_reference", "model against the PD reference"),
    ("pd_colour_rule", "PD-only colour rule (PD reference)"),
)


def _print_cohort(cohort: str, entry: dict, target: str = "target") -> None:
    pd_counts = f", PD grades 0-3: {entry['pd_class_counts']}" if entry.get("pd_class_counts") else ""
    print(f"{cohort} (n={entry['n']}, {target} grades 0-3: {entry['class_counts']}{pd_counts})")
    crops = entry.get("crops")
    if crops:
        print(
            f"  joint crop: {crops.get('crop', 0)} cropped, {crops.get('fallback', 0)} fell back to "
            f"the full frame (weak joint fit), {crops.get('none', 0)} without a crop"
        )
    shift = entry.get("shift")
    if shift and shift.get("n"):
        print(
            f"  unlike the training data (shift check): {shift['flagged']} of {shift['checked']} flagged"
            if shift.get("checked")
            else f"  shift check: not made ({shift.get('reason')})"
        )
    calibration = entry.get("calibration")
    if calibration:
        after = calibration.get("ece_corrected")
        print(
            f"  calibration: ECE {number(calibration.get('ece_uncorrected'))} before the sampling-prior "
            f"correction, "
            + (
                f"{number(after)} after"
                if after is not None
                else "no correction (checkpoint without a stored training prior)"
            )
        )
    for name, label in _COHORT_ROWS:
        figures = entry.get(name)
        if not figures:
            continue
        aucs = "  ".join(
            f"{g}: {number(a['auc'])} [{number(a['ci_low'])}, {number(a['ci_high'])}]"
            for g, a in figures["auc"].items()
        )
        print(f"  {label.format(target=target)}: AUC {aucs}")
        if figures.get("resampled"):
            print(f"    {figures['resampled']}")
        print(
            f"    macro AUC {number(figures['macro_auc'])}  accuracy {number(figures['accuracy'])}  "
            f"kappa linear {number(figures['kappa_linear'])}  quadratic "
            f"{number(figures['kappa_quadratic'])}  ECE {number(figures['ece'])}"
        )
        print(f"    confusion (rows reference 0-3, columns predicted): {figures['confusion']}")
        for key, reason in (figures.get("reasons") or {}).items():
            print(f"    {key} undefined: {reason}")
        for grade, reason in (figures.get("macro_left_out") or {}).items():
            print(f"    macro AUC leaves out grade {grade}: {reason}")


def _evaluate(args: argparse.Namespace) -> int:
    from rascore.store import registry
    from rascore.train.card import render_card
    from rascore.train.checkpoint import model_from_checkpoint, write_text_atomic
    from rascore.train.config import resolve_device
    from rascore.train.evaluation import TEST_COHORTS, evaluate_model
    from rascore.train.shift import ShiftReference
    from rascore.train.versions import load_version, version_files

    project = open_project()
    try:
        row, checkpoint = load_version(project, args.modality, args.version)
        device = str(resolve_device(_device(args, project)))
    except (LookupError, ValueError) as exc:
        raise CliError(str(exc)) from None
    model, prep = model_from_checkpoint(checkpoint)
    cohorts = tuple(dict.fromkeys(args.cohort)) if args.cohort else TEST_COHORTS
    evaluation = evaluate_model(
        project,
        model,
        prep,
        row["modality"],
        cohorts,
        device=device,
        n_boot=args.n_boot,
        shift=ShiftReference.from_checkpoint(checkpoint),
    )
    registry.save_predictions(project.store, row["id"], evaluation.predictions)
    metrics = dict(row["metrics"])
    test = dict(metrics.get("test") or {"modality": row["modality"], "cohorts": {}})
    test.setdefault("cohorts", {}).update(evaluation.report["cohorts"])
    metrics["test"] = test
    registry.update_metrics(project.store, row["id"], metrics)
    _, card = version_files(project, row)
    if card is not None:
        write_text_atomic(card, render_card({**checkpoint, "metrics": metrics}, row["version"]))
    report = {
        "modality": row["modality"],
        "version": row["version"],
        "model_version_id": row["id"],
        "target": evaluation.report["target"],
        "prior_corrected": evaluation.report["prior_corrected"],
        "cohorts": evaluation.report["cohorts"],
        "predictions_stored": len(evaluation.predictions),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{row['modality']} v{row['version']} ({row['architecture']}), target {report['target']}")
    for cohort, entry in report["cohorts"].items():
        _print_cohort(cohort, entry, report["target"])
    return 0


def _predict(args: argparse.Namespace) -> int:
    from rascore.media import MediaError
    from rascore.predict import predict_file

    project = open_project()
    try:
        prediction = predict_file(project, args.file, args.modality)
    except (MediaError, LookupError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    result = {"file": args.file, **prediction.to_dict()}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{args.file}: {prediction.modality} v{prediction.version}, {prediction.item} grade "
        f"{prediction.grade} ({prediction.crop_note})"
    )
    for grade, p in enumerate(prediction.probabilities):
        print(f"  grade {grade}: {p:.3f}")
    print(f"  {prediction.shift_note}")
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from rascore.store import registry

    project = open_project()
    rows = registry.list_versions(project.store, args.modality)
    out = [
        {
            "modality": r["modality"],
            "version": r["version"],
            "active": r["active"],
            "id": r["id"],
            "architecture": r["architecture"],
            "preset": r["preset"],
            "created_at": r["created_at"],
            "path": r["path"],
            "card_path": r["card_path"],
            "val_macro_auc": (r["metrics"].get("validation") or {}).get("macro_auc"),
            "test_macro_auc": {
                c: (e.get("model") or {}).get("macro_auc")
                for c, e in ((r["metrics"].get("test") or {}).get("cohorts") or {}).items()
            },
        }
        for r in rows
    ]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if not out:
        print("no model versions yet; train one with `rascore train --modality SGS`")
        return 0
    for r in out:
        mark = "*" if r["active"] else " "
        tests = ", ".join(f"{c} {number(v)}" for c, v in r["test_macro_auc"].items())
        print(
            f"{mark} {r['modality']} v{r['version']:<3} {r['architecture']:<22} {r['preset'] or '':<6} "
            f"val AUC {number(r['val_macro_auc'])}  test AUC {tests or 'n/a'}  {r['created_at']}"
        )
    print("* active")
    return 0


def _models_promote(args: argparse.Namespace) -> int:
    from rascore.store import StoreError, registry

    try:
        registry.promote_version(open_project().store, args.modality, args.version)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    print(f"{args.modality} v{args.version} is now active")
    return 0


def _models_rollback(args: argparse.Namespace) -> int:
    from rascore.store import StoreError, registry

    try:
        moved = registry.rollback_version(open_project().store, args.modality)
    except StoreError as exc:
        raise CliError(str(exc)) from None
    print(f"{args.modality} v{moved['to']} is now active")
    return 0
