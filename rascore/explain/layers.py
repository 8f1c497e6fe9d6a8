"""Which layer Grad-CAM reads: the residual stages of a grade model, and the stage chosen per input size.

The choice is made from one small probe pass per network and input geometry and remembered for
the life of the loaded model (``gradcam_layer``'s docstring says which stage and why).
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

from rascore.nets.factory import GradeNet
from rascore.names import GRADCAM_STAGES
from rascore.nets.frames import FrameNet


def _stage_modules(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The residual stages of a 2D or video ResNet (torchvision layer1-4, or SlimResNet.layers)."""
    if isinstance(getattr(net, "layers", None), nn.Sequential):
        return [(f"layers.{i}", m) for i, m in enumerate(net.layers)]
    return [(n, getattr(net, n)) for n in ("layer1", "layer2", "layer3", "layer4") if hasattr(net, n)]


MIN_CAM_CELLS = 4  # Grad-CAM reads the deepest stage with at least this many cells on the short side
# Layer chosen per network and input geometry, so the probe pass runs once per loaded model.
_CHOSEN_LAYERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _stage_shapes(
    net: nn.Module,
    candidates: list[tuple[str, nn.Module]],
    dynamic: bool,
    frames: int,
    height: int,
    width: int,
) -> dict[str, tuple[int, int, int]]:
    """(time, height, width) each candidate outputs for an input of this size, from one small probe pass.

    The probe is 64x64 pixels (frames as given); each stage's spatial stride is read from it and
    applied to the real size, so the probe stays cheap whatever the input.
    """
    probe = 64
    sizes: dict[str, tuple[int, ...]] = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: sizes.__setitem__(name, tuple(out.shape[2:]))
        )
        for name, module in candidates
    ]
    param = next(net.parameters())
    shape = (1, 3, max(frames, 1), probe, probe) if dynamic else (1, 3, probe, probe)
    try:
        with torch.no_grad():
            net(torch.zeros(shape, device=param.device, dtype=param.dtype))
    finally:
        for hook in hooks:
            hook.remove()
    out = {}
    for name, size in sizes.items():
        time_steps = size[0] if dynamic and len(size) == 3 else max(frames, 1)
        h_out, w_out = size[-2:]
        out[name] = (time_steps, -(-height * h_out // probe), -(-width * w_out // probe))
    return out


def gradcam_layer(
    model: GradeNet,
    frames: int = 1,
    name: str | None = None,
    size: tuple[int, int] = (224, 224),
    min_cells: int = MIN_CAM_CELLS,
    stage: str = "fine",
) -> tuple[str, nn.Module]:
    """The layer Grad-CAM reads: (dotted name under ``model``, module).

    ``stage="deep"``: the deepest residual stage, whatever its size; a video network's map is then
    coarse in time too and is upsampled to every input frame. ``stage="fine"`` (the default): the
    deepest residual stage whose map still has ``min_cells`` cells on its short side at input
    ``size`` (height, width): ResNet-18's last stage at 224 px (7x7, the set-up Grad-CAM was made
    for), the stage before it at the fast preset's 96x128 (the last is 3x4, too coarse to point at a
    synovium a tenth of the picture wide). Frame models (a 2D network per frame) use their encoder,
    so there is one map per frame. Video ResNets must also keep every input frame, so the map
    changes across frames: r3d_18 and r2plus1d_18 halve time from layer2 on, mc3_18 keeps it to
    layer4. ``name`` picks a layer explicitly.
    """
    modules = dict(model.named_modules())
    if name is not None:
        if name not in modules:
            raise ValueError(f"model has no layer {name!r}")
        return name, modules[name]
    if stage not in GRADCAM_STAGES:
        raise ValueError(f"unknown Grad-CAM stage {stage!r}; expected one of {', '.join(GRADCAM_STAGES)}")
    memo = _CHOSEN_LAYERS.setdefault(model, {})
    key = (frames, tuple(size), min_cells, stage)
    if key in memo:
        return memo[key], modules[memo[key]]
    backbone = model.backbone
    if isinstance(backbone, FrameNet):
        net, prefix, dynamic = backbone.encoder, "backbone.encoder.", False
    else:
        net, prefix, dynamic = backbone, "backbone.", model.dynamic
    candidates = _stage_modules(net)
    if stage == "deep" and candidates:
        memo[key] = f"{prefix}{candidates[-1][0]}"
        return memo[key], candidates[-1][1]
    if dynamic and hasattr(net, "stem"):
        candidates = [("stem", net.stem)] + candidates
    shapes = _stage_shapes(net, candidates, dynamic, frames, *size)
    keep_time = [(n, m) for n, m in candidates if shapes[n][0] == max(frames, 1)] or candidates[:1]
    fine = [(n, m) for n, m in keep_time if min(shapes[n][1:]) >= min_cells] or keep_time[:1]
    stage_name, module = fine[-1]
    memo[key] = f"{prefix}{stage_name}"
    return memo[key], module
