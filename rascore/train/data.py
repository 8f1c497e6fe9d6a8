"""Training data: reference labels from the store, a patient-grouped split, arrays preloaded once.

Each item's decoded frames come from the media cache (MediaStore.load_cache) and are resized once
into one uint8 tensor per split, so an epoch decodes nothing. Batches are drawn class-balanced
(WeightedRandomSampler) straight from that tensor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold
from torch.utils.data import BatchSampler, WeightedRandomSampler

from rascore.nets.factory import arch_spec
from rascore.scale import modality as lookup_modality
from rascore.train.config import TrainConfig
from rascore.train.preprocess import Preprocessing


def target_of(row: dict, modality: str) -> int:
    """The grade a modality's model learns: SH for greyscale, combined EOSS for power Doppler."""
    mod = lookup_modality(modality)
    return int(row["combined"] if mod.target == "EOSS" else row["sh"])


def label_rows(store, modality: str, cohort: str) -> list[dict]:
    """Current reference labels of one modality and cohort, each with its ``target`` grade."""
    rows = store.references(modality, cohort)
    for row in rows:
        row["target"] = target_of(row, modality)
    return rows


def labels_sha256(rows: Sequence[dict]) -> str:
    """sha256 of (item id, target) pairs: names exactly which labels a model was trained on."""
    pairs = sorted((int(r["item_id"]), int(r["target"])) for r in rows)
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()


def patient_split(rows: Sequence[dict], val_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Split by patient (no patient on both sides), stratified by grade as far as groups allow.

    One fold of scikit-learn's StratifiedGroupKFold with about 1/val_fraction folds; an item with
    no patient is its own group.
    """
    rows = list(rows)
    if not 0 < val_fraction < 1:
        raise ValueError("val_fraction must be between 0 and 1")
    groups = [r.get("patient") or f"item-{r['item_id']}" for r in rows]
    n_groups = len(set(groups))
    folds = min(max(2, round(1 / val_fraction)), n_groups)
    if folds < 2:
        raise ValueError("need items of at least two patients to hold some out for validation")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    targets = [r["target"] for r in rows]
    train_index, val_index = next(splitter.split(np.zeros(len(rows)), targets, groups))
    return [rows[i] for i in train_index], [rows[i] for i in val_index]


@dataclass
class Arrays:
    """One split in memory: uint8 inputs (N, C, H, W) or (N, C, T, H, W), grades, item ids, and
    per item how it was cropped ("crop", "fallback" or "none"; rascore.train.roi)."""

    x: torch.Tensor
    y: torch.Tensor
    item_ids: list[int]
    crops: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def class_counts(self) -> list[int]:
        """Items per grade 0-3."""
        return torch.bincount(self.y.cpu(), minlength=4).tolist()

    def to(self, device: torch.device | str) -> "Arrays":
        """The same split on another device (on a GPU the whole uint8 split fits: no per-batch copies)."""
        return Arrays(self.x.to(device), self.y.to(device), self.item_ids, self.crops)


def preprocessing_for(config: TrainConfig) -> Preprocessing:
    """The preprocessing a config implies (greyscale one channel, Doppler three)."""
    mod = lookup_modality(config.modality)
    spec = arch_spec(config.arch)
    return Preprocessing(
        height=config.height,
        width=config.width,
        dynamic=spec.dynamic,
        frames=config.frames if spec.dynamic else 1,
        cache_frames=config.cache_frames if spec.dynamic else 1,
        channels=3 if mod.doppler else 1,
        mean=spec.mean,
        std=spec.std,
        roi=tuple(config.roi) if config.roi else None,
        norm=config.norm,
        roi_within=config.roi_within,
    )


def preload(
    rows: Sequence[dict],
    load_frames: Callable[[str], np.ndarray],
    prep: Preprocessing,
    progress: Callable[[int, int], None] | None = None,
) -> Arrays:
    """Decode-cache frames of every row, resized once, stacked into one uint8 tensor."""
    arrays, crops = [], []
    for index, row in enumerate(rows, start=1):
        array, crop = prep.array_and_crop(load_frames(row["media_sha256"]))
        arrays.append(array)
        crops.append(crop)
        if progress:
            progress(index, len(rows))
    if arrays:
        x = torch.stack(arrays)
    else:
        shape = (prep.channels, prep.cache_frames) if prep.dynamic else (prep.channels,)
        x = torch.zeros((0, *shape, prep.height, prep.width), dtype=torch.uint8)
    y = torch.tensor([int(r["target"]) for r in rows], dtype=torch.long)
    return Arrays(x, y, [int(r["item_id"]) for r in rows], crops)


def balanced_batches(
    y: torch.Tensor, batch_size: int, generator: torch.Generator, rank: int = 0, world_size: int = 1
) -> Iterator[list[int]]:
    """One epoch of class-balanced batches (sampling with replacement, weights 1/class count).

    With ``world_size`` > 1 every rank draws the same order from an identically seeded generator
    and keeps its own disjoint slice of it (rascore.train.distributed.shard), so the ranks together
    see one epoch's draw and each runs steps_per_epoch(n, batch_size, world_size) steps.
    """
    y = y.cpu()
    counts = torch.bincount(y, minlength=4).clamp(min=1).double()
    weights = (1.0 / counts)[y]
    if world_size > 1:
        from rascore.train.distributed import shard

        order = torch.multinomial(weights, len(y), replacement=True, generator=generator).tolist()
        sampler = shard(order, rank, world_size)
        drop_last = len(sampler) > batch_size
        return iter(BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last))
    sampler = WeightedRandomSampler(weights, num_samples=len(y), replacement=True, generator=generator)
    drop_last = len(y) > batch_size
    return iter(BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last))


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Batches one epoch has per process (the last partial batch dropped when there is more than one)."""
    if world_size > 1:
        n = -(-n // world_size)  # each rank's share, padded up as distributed.shard pads
    return n // batch_size if n > batch_size else 1
