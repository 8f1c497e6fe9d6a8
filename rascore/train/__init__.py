"""Training of the four modality models: presets, data, loop, checkpoints, versions, evaluation.

The names below are imported on first use (PEP 562), so that ``rascore.train.distributed`` or
``rascore.train.checkpoint`` alone does not pull in torchvision and scikit-learn: a process that
torch.multiprocessing spawns, or a short command, starts faster.
"""

from __future__ import annotations

import importlib

_EXPORTS: dict[str, str] = {
    "PRESETS": "config",
    "Preset": "config",
    "TrainConfig": "config",
    "choose_preset": "config",
    "make_config": "config",
    "resolve_device": "config",
    "FitResult": "loop",
    "TrainData": "loop",
    "TrainingCancelled": "loop",
    "evaluate": "loop",
    "fit": "loop",
    "load_data": "loop",
    "train_one_epoch": "loop",
    "TrainOutcome": "pipeline",
    "run_training": "pipeline",
    "Preprocessing": "preprocess",
    "Published": "versions",
    "find_version": "versions",
    "load_version": "versions",
    "publish": "versions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Import an exported name from its submodule the first time it is asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
