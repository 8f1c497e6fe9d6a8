"""Pretrained weights from a local file only: ``--weights PATH`` or a file already in torch's hub cache.

Nothing here downloads: torchvision's weight enums are read only for the file name they would use.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from rascore.nets.factory import GradeNet, arch_spec


def hub_checkpoint_dir() -> Path:
    """Where torch keeps downloaded weights (``torch.hub.get_dir()/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hub_weights_file(arch: str) -> Path | None:
    """A torchvision weights file for ``arch`` already on disk in the hub cache, or None."""
    name = arch_spec(arch).torchvision_name
    folder = hub_checkpoint_dir()
    if name is None or not folder.is_dir():
        return None
    from torchvision.models import get_model_weights

    try:
        url = get_model_weights(name).DEFAULT.url
        exact = folder / url.rsplit("/", 1)[-1]
        if exact.is_file():
            return exact
    except (ValueError, AttributeError):
        pass
    matches = sorted(folder.glob(f"{name}-*.pth"))
    return matches[0] if matches else None


def resolve_weights(arch: str, weights: str | Path | None) -> Path | None:
    """``none`` -> scratch; ``auto``/None -> the hub-cache file if present; a path -> that file."""
    if weights is None or str(weights).lower() == "auto":
        return hub_weights_file(arch)
    if str(weights).lower() in ("none", "scratch", ""):
        return None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    return path


def file_sha256(path: Path) -> str:
    """sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _state_dict(obj: object) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError("not a state dict of tensors")
    return {k.removeprefix("module.").removeprefix("backbone."): v for k, v in obj.items()}


def _matching(target: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    own = target.state_dict()
    return {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}


def load_weights(net: GradeNet, path: str | Path) -> dict:
    """Load every tensor of a local weights file whose name and shape fit (the grade head never does).

    Returns a report (file, sha256, loaded, total); raises ValueError when under half the network's
    tensors (head excluded) are found, i.e. the file is for another architecture.
    """
    path = Path(path)
    try:
        state = _state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets one readable message
        raise ValueError(f"weights file {path} could not be read: {exc}") from exc
    best_target, best = net.backbone, {}
    for target in net.weight_targets():
        found = _matching(target, state)
        if len(found) > len(best):
            best_target, best = target, found
    total = sum(1 for k in best_target.state_dict() if not k.startswith("fc."))
    if total == 0 or len(best) < total / 2:
        raise ValueError(f"weights file {path} does not fit {net.arch}: {len(best)} of {total} tensors match")
    best_target.load_state_dict(best, strict=False)
    return {"file": str(path), "sha256": file_sha256(path), "loaded": len(best), "total": total}
