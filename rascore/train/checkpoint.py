"""Checkpoints: weights plus everything needed to use and audit them, written atomically.

A checkpoint is a dict saved with torch.save and read back with ``weights_only=True`` (tensors
and plain types only, so a checkpoint file cannot run code when loaded). Metadata passes through
JSON first, so dict keys are strings (grades "0".."3").
"""

from __future__ import annotations

import json
import math
import platform
from datetime import datetime, UTC
from pathlib import Path

import numpy as np
import torch
import torchvision

from rascore.nets.factory import GradeNet, build_model
from rascore.scale import GRADES, ITEMS, modality as lookup_modality
from rascore.train.preprocess import Preprocessing
from rascore.atomic import write_atomic

FORMAT = "rascore-model/1"


def _nan_to_none(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def plain(value: object) -> object:
    """JSON round trip: numpy scalars, tuples and int keys become plain JSON types, NaN None."""

    def default(obj: object) -> object:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, (np.ndarray, torch.Tensor)):
            return obj.tolist()
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    return _nan_to_none(json.loads(json.dumps(value, default=default)))


def library_versions() -> dict[str, str]:
    """Versions of what produced a checkpoint."""
    from rascore import __version__

    return {
        "rascore": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def label_mapping(modality: str) -> dict:
    """What the 4 outputs mean: grades 0-3 of the modality's target item, with their definitions."""
    item = lookup_modality(modality).target
    return {"item": item, "grades": list(GRADES), "definitions": {str(g): ITEMS[item][g] for g in GRADES}}


def make_checkpoint(
    model: GradeNet,
    *,
    modality: str,
    prep: Preprocessing,
    args: dict,
    metrics: dict,
    snapshot: dict,
    pretrained: dict | None,
    history: list[dict] | None = None,
    arch_options: dict | None = None,
    prior: dict | None = None,
    shift: dict | None = None,
) -> dict:
    """Assemble the checkpoint dict (weights on the CPU); ``prior``: PriorCorrection.to_dict();
    ``shift``: rascore.train.shift.reference_entry() (tensors and plain types), absent in older
    checkpoints, whose predictions then carry no out-of-distribution flag."""
    return {
        "format": FORMAT,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        **({"shift": shift} if shift is not None else {}),
        **plain(
            {
                "arch": model.arch,
                "head": model.head,
                "arch_options": arch_options or {},
                "modality": lookup_modality(modality).code,
                "preprocessing": prep.to_dict(),
                "labels": label_mapping(modality),
                "metrics": metrics,
                "snapshot": snapshot,
                "args": args,
                "pretrained": pretrained,
                "prior": prior,
                "history": history or [],
                "versions": library_versions(),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        ),
    }


def save_checkpoint(checkpoint: dict, path: str | Path) -> Path:
    """Write a checkpoint atomically (temporary file + os.replace)."""
    path = Path(path)
    write_atomic(path, lambda handle: torch.save(checkpoint, handle))
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a text file atomically (a model card)."""
    path = Path(path)
    write_atomic(path, text.encode("utf-8"))
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint on the CPU, refusing anything but tensors and plain types."""
    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path} is not a RAScore model checkpoint ({FORMAT})")
    return checkpoint


def model_from_checkpoint(checkpoint: dict) -> tuple[GradeNet, Preprocessing]:
    """Rebuild the network (eval mode, CPU) and its preprocessing from a checkpoint dict.

    Its probabilities are corrected for class-balanced sampling with the stored training prior
    (rascore.train.prior); a checkpoint from before the prior was stored keeps raw probabilities.
    """
    from rascore.train.prior import PriorCorrection

    options = checkpoint.get("arch_options") or {}
    model = build_model(checkpoint["arch"], checkpoint["head"], **options)
    model.load_state_dict(checkpoint["model"])
    correction = PriorCorrection.from_checkpoint(checkpoint)
    model.prior_ratio = None if correction is None else torch.tensor(correction.ratio, dtype=torch.float32)
    model.eval()
    return model, Preprocessing.from_dict(checkpoint["preprocessing"])
