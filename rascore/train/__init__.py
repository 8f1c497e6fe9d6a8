"""Training of the four modality models: presets, data, loop, checkpoints, versions, evaluation."""
from __future__ import annotations

from rascore.train.config import PRESETS, Preset, TrainConfig, choose_preset, make_config, resolve_device
from rascore.train.loop import FitResult, TrainData, TrainingCancelled, evaluate, fit, load_data, main, train_one_epoch
from rascore.train.pipeline import TrainOutcome, run_training
from rascore.train.preprocess import Preprocessing
from rascore.train.versions import Published, find_version, load_version, publish

__all__ = [
    "PRESETS", "FitResult", "Preprocessing", "Preset", "Published", "TrainConfig", "TrainData",
    "TrainOutcome", "TrainingCancelled", "choose_preset", "evaluate", "find_version", "fit",
    "load_data", "load_version", "main", "make_config", "publish", "resolve_device", "run_training",
    "train_one_epoch",
]
