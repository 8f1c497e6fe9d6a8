"""The training loop, in the shape of torchvision's references/classification/train.py.

``load_data`` -> ``fit``: ``train_one_epoch`` / ``evaluate`` per epoch. On CUDA: bf16 autocast
and channels_last; on CPU: fp32, channels_last for still models (a training step of the fast
preset's still network, batch 16 at 96 x 128 on 2 threads, 1.16x faster than contiguous:
bench/bench_train.py --memory-format; clip models stay contiguous there). Seeded; early stopping
on validation macro AUC (best weights kept); ``on_progress`` gets a dict per step and per
validation, ``should_stop`` is checked between steps (cancellation). No module-level state, so it
runs unchanged under torchrun: inside a process group (rascore.train.distributed) ``fit`` trains
a DistributedDataParallel copy on each rank's shard of the balanced batches, rank 0 alone
validates and keeps the best weights, and the early-stopping and cancel decisions are shared so
that every rank stops at the same step.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from rascore.evaluate.report import point_report
from rascore.nets.factory import GradeNet, build_model
from rascore.nets.heads import head_loss
from rascore.nets.pretrained import load_weights, resolve_weights
from rascore.train import distributed, start
from rascore.train.augment import Augmentation, WideAugmentation, make_augmentation
from rascore.train.config import TrainConfig
from rascore.train.data import (
    Arrays,
    balanced_batches,
    label_rows,
    labels_sha256,
    patient_split,
    preload,
    preprocessing_for,
    steps_per_epoch,
)
from rascore.train.preprocess import BatchBuffers, Preprocessing
from rascore.train.prior import PriorCorrection
from rascore.train.shift import RecordingLoader
from rascore.train.roi import crop_counts

ProgressFn = Callable[[dict], None]
StopFn = Callable[[], bool]


class TrainingCancelled(RuntimeError):
    """``should_stop()`` returned True between two steps."""


@dataclass
class TrainData:
    """Both splits in memory, their preprocessing and the snapshot that names the labels used."""

    train: Arrays
    val: Arrays
    prep: Preprocessing
    snapshot: dict
    # image statistics per item of each split, taken as the frames were loaded (rascore.train.shift)
    train_statistics: np.ndarray | None = None
    val_statistics: np.ndarray | None = None


@dataclass
class FitResult:
    """A trained network (best validation epoch) with its history and validation figures."""

    model: GradeNet
    history: list[dict]
    best_epoch: int
    validation: dict
    pretrained: dict | None
    seconds: float
    stopped_early: bool = False
    extra: dict = field(default_factory=dict)


def load_data(project, config: TrainConfig, progress: Callable[[int, int], None] | None = None) -> TrainData:
    """Reference labels of the train cohort, split by patient, preloaded at the config's size.

    Items of the pooled modalities (``config.pool``) join the training half only, and only from
    patients outside the validation half (an item without a patient cannot be checked and is left
    out), so validation stays this modality's own items and no patient is on both sides.
    """
    rows = label_rows(project.store, config.modality, "train")
    if len(rows) < 4:
        raise ValueError(
            f"{config.modality} has {len(rows)} training items with a reference label; "
            "need at least 4: grade and adjudicate, or import reference labels, first"
        )
    train_rows, val_rows = patient_split(rows, config.val_fraction, config.seed)
    val_patients = {r.get("patient") for r in val_rows}
    pooled_rows = {
        code: [
            r
            for r in label_rows(project.store, code, "train")
            if r.get("patient") and r["patient"] not in val_patients
        ]
        for code in config.pool
    }
    if config.max_items:
        train_rows, val_rows = train_rows[: config.max_items], val_rows[: config.max_items]
        pooled_rows = {code: found[: config.max_items] for code, found in pooled_rows.items()}
    train_rows = list(train_rows) + [r for found in pooled_rows.values() for r in found]
    prep = preprocessing_for(config)
    total = len(train_rows) + len(val_rows)
    done = [0]

    def step(_: int, __: int) -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    load = RecordingLoader(project.media.load_cache)
    train = preload(train_rows, load, prep, step)
    val = preload(val_rows, load, prep, step)
    snapshot = {
        "cohort": "train",
        "train_item_ids": train.item_ids,
        "val_item_ids": val.item_ids,
        "labels_sha256": labels_sha256(list(train_rows) + list(val_rows)),
        "train_class_counts": train.class_counts(),
        "val_class_counts": val.class_counts(),
        "train_patients": len({r.get("patient") for r in train_rows}),
        "val_patients": len({r.get("patient") for r in val_rows}),
        "item_sources": item_sources(list(train_rows) + list(val_rows)),
        # training items of other modalities with this one's target (config.pool), per modality
        "pooled": {code: len(found) for code, found in pooled_rows.items()},
        # how the network saw each training item: the joint crop, or the full frame where the
        # joint was not found with confidence (rascore.train.roi)
        "train_crops": crop_counts(train.crops),
        "val_crops": crop_counts(val.crops),
    }
    return TrainData(
        train,
        val,
        prep,
        snapshot,
        load.table([r["media_sha256"] for r in train_rows]),
        load.table([r["media_sha256"] for r in val_rows]),
    )


def item_sources(rows) -> dict[str, int]:
    """How many of the rows' items came from each source (demo, import, upload)."""
    counts: dict[str, int] = {}
    for row in rows:
        source = row.get("source") or "unknown"
        counts[source] = counts.get(source, 0) + 1
    return counts


def validation_metrics(y: np.ndarray, probs: np.ndarray) -> dict:
    """Per-grade AUC, macro AUC (with the grades it averaged), accuracy, kappas, ECE and log
    loss, from ``rascore.evaluate.report`` without intervals; undefined values keep a reason."""
    y = np.asarray(y, dtype=int)
    report = point_report(y, probs)
    picked = probs[np.arange(len(y)), y] if len(y) else np.zeros(0)
    out = {
        "n": int(len(y)),
        "auc": {g: float(r.auc) for g, r in report.auc.items()},
        "macro_auc": float(report.macro_auc),
        "macro_n_grades": report.macro.n_grades,
        "accuracy": float(report.accuracy),
        "kappa_linear": float(report.kappa_linear),
        "kappa_quadratic": float(report.kappa_quadratic),
        "ece": float(report.ece),
        "log_loss": float(-np.log(np.clip(picked, 1e-7, 1)).mean()) if len(y) else float("nan"),
    }
    reasons = {**{f"auc {g}": r.reason for g, r in report.auc.items() if r.reason}, **report.reasons()}
    if reasons:
        out["reasons"] = reasons
    return out


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _memory_format(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch in the layout ``fit`` gives the model: channels_last for stills on any device,
    channels_last_3d for clips on CUDA, as it is for clips on the CPU."""
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous(memory_format=torch.channels_last_3d) if device.type == "cuda" else x


def train_one_epoch(
    model: GradeNet,
    optimizer: torch.optim.Optimizer,
    scheduler,
    data: Arrays,
    prep: Preprocessing,
    config: TrainConfig,
    device: torch.device,
    generator: torch.Generator,
    augmentation: Augmentation | WideAugmentation | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    should_stop: StopFn | None = None,
    sample_generator: torch.Generator | None = None,
) -> float:
    """One pass of class-balanced batches; returns the mean training loss (of this rank's batches).

    In a process group ``model`` is the DDP wrapper and each rank takes its shard of the order
    drawn from ``sample_generator`` (seeded alike on every rank); ``generator`` then drives only
    this rank's augmentation. In one process ``generator`` does both, as it always has.
    """
    env = distributed.active()
    net = distributed.unwrap(model)
    model.train()
    steps = steps_per_epoch(len(data), config.batch_size, env.world_size)
    report_every = 10 if device.type == "cuda" else 1
    running = torch.zeros((), device=device)
    buffers = BatchBuffers()
    batches = balanced_batches(
        data.y, config.batch_size, sample_generator or generator, env.rank, env.world_size
    )
    for step, index in enumerate(batches, start=1):
        if should_stop is not None and should_stop():
            raise TrainingCancelled("training cancelled")
        index = torch.as_tensor(index, device=data.x.device)
        x = prep.batch(data.x, device, train=True, generator=generator, index=index, buffers=buffers)
        if augmentation is not None:
            x = augmentation(x, generator)
        x = _memory_format(prep.normalise(x, buffers), device)
        y = data.y.index_select(0, index).to(device, non_blocking=True)
        with _autocast(device):
            logits = model(x)
        loss = head_loss(logits, y, net.head, config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.detach()
        if on_step is not None and (step % report_every == 0 or step == steps):
            on_step(step, steps, float(running) / step)
    return float(running) / max(steps, 1)


def evaluate(
    model: GradeNet,
    data: Arrays,
    prep: Preprocessing,
    device: torch.device,
    batch_size: int = 64,
    adjusted: bool = True,
) -> np.ndarray:
    """(N, 4) grade probabilities for a preloaded split (segment-centre frames, no augmentation),
    corrected for the sampling prior (``model.prior_ratio``) unless not ``adjusted``."""
    model.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            x = _memory_format(prep.normalise(prep.batch(data.x[start : start + batch_size], device)), device)
            with _autocast(device):
                logits = model(x)
            chunks.append(model.grade_probabilities(logits, adjusted).cpu())
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 4), np.float32)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights only, not on norms and biases (torchvision's norm_weight_decay=0)."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_model(config: TrainConfig) -> tuple[GradeNet, dict | None]:
    """The configured network, with the weights it starts from loaded when any (report or None):
    a RAScore checkpoint (fine-tuning, rascore.train.start) or a torchvision-style file."""
    model = build_model(config.arch, config.head, width=config.net_width, pooling=config.pooling)
    if start.parse_version_ref(config.weights):
        raise ValueError(f"{config.weights} must be resolved through the project first (train.start.resolve)")
    path = resolve_weights(config.arch, config.weights)
    if path is None:
        return model, None
    source = start.read_rascore_checkpoint(path)
    if source is not None:
        return model, start.load_from_checkpoint(model, source, config, path)
    return model, load_weights(model, path)


def fit(
    config: TrainConfig,
    data: TrainData,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> FitResult:
    """Train with early stopping on validation macro AUC; returns the best epoch's network.

    In a process group (torchrun; see rascore.train.distributed) only rank 0's result carries the
    best weights, history and validation figures: the other ranks return their last weights.
    """
    started = time.perf_counter()
    env = distributed.active()
    device = distributed.local_device(config.device, env)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    sample_generator = None
    if env.enabled:  # one sample order for all ranks; augmentation differs per rank
        sample_generator = torch.Generator().manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed + env.rank)
    model, pretrained = make_model(config)
    # validation (and everything after) reports probabilities at the training prior, not at the
    # uniform prior class-balanced sampling trains towards (rascore.train.prior)
    prior = PriorCorrection(tuple(data.train.class_counts()))
    model.prior_ratio = torch.tensor(prior.ratio, dtype=torch.float32)
    model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model.to(
            memory_format=torch.channels_last
            if not model.dynamic or model.arch.startswith("frames_")
            else torch.channels_last_3d
        )
    elif not model.dynamic:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.lr)
    trained = distributed.wrap(model, device)  # model itself where there is one process
    if env.enabled:
        should_stop = distributed.collective_stop(
            should_stop if env.is_main else None, device, every=10 if device.type == "cuda" else 1
        )
    steps = steps_per_epoch(len(data.train), config.batch_size, env.world_size)
    total = max(1, config.epochs * steps)
    warmup = min(config.warmup_epochs * steps, total // 4)
    schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup))]
    if warmup > 0:
        schedulers.insert(0, torch.optim.lr_scheduler.LinearLR(optimizer, 0.1, 1.0, total_iters=warmup))
        scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, schedulers, milestones=[warmup])
    else:
        scheduler = schedulers[0]
    augmentation = make_augmentation(config.augmentation) if config.augment else None
    train_split, val_split = data.train, data.val
    if device.type == "cuda":  # uint8 splits live on the GPU: batches are indexed there
        train_split = data.train.to(device)
        val_split = data.val.to(device) if env.is_main else data.val  # only rank 0 validates

    history: list[dict] = []
    best_key, best_state, best_epoch, best_val = None, None, 0, {}
    since_best, last_auc = 0, {}
    steps_done, total_steps = 0, total
    stopped_early = False

    def report(epoch: int, step: int, loss: float, phase: str, extra: dict | None = None) -> None:
        if on_progress is None or not env.is_main:  # the other ranks stay quiet
            return
        elapsed = time.perf_counter() - started
        eta = elapsed / max(steps_done, 1) * (total_steps - steps_done)
        on_progress(
            {
                "epoch": epoch,
                "epochs": config.epochs,
                "step": step,
                "steps": steps,
                "loss": loss,
                "val_auc": dict(last_auc),
                "eta_s": eta,
                "phase": phase,
                **(extra or {}),
            }
        )

    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()

        def on_step(step: int, n: int, loss: float, _epoch: int = epoch) -> None:
            nonlocal steps_done
            steps_done = (_epoch - 1) * steps + step
            report(_epoch, step, loss, "train")

        loss = train_one_epoch(
            trained,
            optimizer,
            scheduler,
            train_split,
            data.prep,
            config,
            device,
            generator,
            augmentation,
            on_step,
            should_stop,
            sample_generator,
        )
        stop = False
        if env.enabled:
            loss = distributed.mean_across(loss, device)
        if env.is_main:
            probs = evaluate(model, val_split, data.prep, device)
            val = validation_metrics(data.val.y.numpy(), probs)
            last_auc = val["auc"]
            history.append(
                {
                    "epoch": epoch,
                    "loss": loss,
                    "val_macro_auc": val["macro_auc"],
                    "val_auc": val["auc"],
                    "val_accuracy": val["accuracy"],
                    "val_log_loss": val["log_loss"],
                    "seconds": time.perf_counter() - epoch_start,
                }
            )
            macro = val["macro_auc"] if not math.isnan(val["macro_auc"]) else -1.0
            key = (round(macro, 4), -val["log_loss"])
            if best_key is None or key > best_key:
                best_key, best_epoch, best_val, since_best = key, epoch, val, 0
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            else:
                since_best += 1
            steps_done = epoch * steps
            report(
                epoch, steps, loss, "validated", {"val_macro_auc": val["macro_auc"], "best_epoch": best_epoch}
            )
            stop = since_best >= config.patience and epoch < config.epochs
        if env.enabled:  # rank 0 decided; every rank leaves the loop at the same epoch
            stop = distributed.broadcast_flag(stop, device)
        if stop:
            stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        model,
        history,
        best_epoch,
        best_val,
        pretrained,
        time.perf_counter() - started,
        stopped_early,
        {
            "world_size": env.world_size,
            "backend": distributed.backend(),
            "rank": env.rank,
            "prior": prior.to_dict(),
        },
    )
