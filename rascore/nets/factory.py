"""Model factory: every architecture the four modality models may use, with a 4-grade head.

Static (SGS, SPD): torchvision resnet18/34/50 and the narrow ``slim_resnet18``; input (B, 3, H, W).
Dynamic (DGS, DPD): torchvision video ResNets r3d_18, mc3_18, r2plus1d_18 and the light
``frames_*`` models (a 2D ResNet over T frames with temporal pooling); input (B, 3, T, H, W).
Always ``weights=None``: pretrained weights come only from a local file (rascore.nets.pretrained).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models import resnet18, resnet34, resnet50
from torchvision.models.video import mc3_18, r2plus1d_18, r3d_18

from rascore.nets.frames import FrameNet
from rascore.nets.heads import check_head, grade_probabilities, n_outputs, reweight
from rascore.nets.slim import SlimResNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def _slim(num_classes: int, width: int) -> SlimResNet:
    return SlimResNet(num_classes, layers=(2, 2, 2, 2), widths=(width, 2 * width, 4 * width, 8 * width))


_IMAGE_BUILDERS: dict[str, Callable[[int, int], nn.Module]] = {
    "resnet18": lambda n, w: resnet18(weights=None, num_classes=n),
    "resnet34": lambda n, w: resnet34(weights=None, num_classes=n),
    "resnet50": lambda n, w: resnet50(weights=None, num_classes=n),
    "slim_resnet18": _slim,
}
_VIDEO_BUILDERS: dict[str, Callable[[int], nn.Module]] = {
    "r3d_18": lambda n: r3d_18(weights=None, num_classes=n),
    "mc3_18": lambda n: mc3_18(weights=None, num_classes=n),
    "r2plus1d_18": lambda n: r2plus1d_18(weights=None, num_classes=n),
}


@dataclass(frozen=True)
class ArchSpec:
    """What an architecture name means: clip or image input, family, weights name, normalisation."""

    name: str
    dynamic: bool
    family: str  # "image", "video" or "frames"
    torchvision_name: str | None  # name of torchvision's weights, for a local hub-cache file

    @property
    def mean(self) -> tuple[float, float, float]:
        """Per-channel input mean (ImageNet for 2D nets, Kinetics for video nets)."""
        return KINETICS_MEAN if self.family == "video" else IMAGENET_MEAN

    @property
    def std(self) -> tuple[float, float, float]:
        """Per-channel input standard deviation."""
        return KINETICS_STD if self.family == "video" else IMAGENET_STD


def _specs() -> dict[str, ArchSpec]:
    specs: dict[str, ArchSpec] = {}
    for name in _IMAGE_BUILDERS:
        tv = None if name.startswith("slim") else name
        specs[name] = ArchSpec(name, False, "image", tv)
        specs[f"frames_{name}"] = ArchSpec(f"frames_{name}", True, "frames", tv)
    for name in _VIDEO_BUILDERS:
        specs[name] = ArchSpec(name, True, "video", name)
    return specs


ARCHS: dict[str, ArchSpec] = _specs()
STATIC_ARCHS: tuple[str, ...] = tuple(n for n, s in ARCHS.items() if not s.dynamic)
DYNAMIC_ARCHS: tuple[str, ...] = tuple(n for n, s in ARCHS.items() if s.dynamic)


def arch_spec(name: str) -> ArchSpec:
    """Look up an architecture, or raise ValueError listing the valid names."""
    if name not in ARCHS:
        raise ValueError(f"unknown architecture {name!r}; expected one of {', '.join(ARCHS)}")
    return ARCHS[name]


class GradeNet(nn.Module):
    """A backbone whose last layer is the grade head; ``forward`` gives logits, ``probabilities`` 4 grades."""

    def __init__(self, backbone: nn.Module, arch: str, head: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.arch = arch
        self.head = check_head(head)
        self.dynamic = arch_spec(arch).dynamic
        # pi_train / pi_sample per grade (rascore.train.prior); None: raw probabilities. A plain
        # attribute, not a buffer, so state dicts (and old checkpoints) are unchanged.
        self.prior_ratio: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) image or (B, 3, T, H, W) clip -> head logits (4 softmax or 3 ordinal)."""
        return self.backbone(x)

    def grade_probabilities(self, logits: torch.Tensor, adjusted: bool = True) -> torch.Tensor:
        """Head outputs -> (B, 4) grade probabilities, corrected for the sampling prior unless not ``adjusted``."""
        probs = grade_probabilities(logits, self.head)
        return reweight(probs, self.prior_ratio) if adjusted else probs

    def probabilities(self, x: torch.Tensor, adjusted: bool = True) -> torch.Tensor:
        """(B, 4) grade probabilities summing to 1 (corrected for the sampling prior when one is set)."""
        return self.grade_probabilities(self(x), adjusted)

    def weight_targets(self) -> list[nn.Module]:
        """Modules a pretrained state dict may load into (the backbone; a frame net's 2D encoder)."""
        targets = [self.backbone]
        if isinstance(self.backbone, FrameNet):
            targets.append(self.backbone.encoder)
        return targets


def build_model(arch: str, head: str = "softmax", *, width: int = 16, pooling: str = "attention") -> GradeNet:
    """A freshly initialised network for ``arch`` with a ``head`` grade head (never downloads).

    ``width`` is the first-stage width of ``slim_resnet18`` (doubling per stage); ``pooling`` the
    temporal pooling of ``frames_*`` models (mean, max or attention).
    """
    spec = arch_spec(arch)
    n = n_outputs(head)
    if spec.family == "video":
        backbone = _VIDEO_BUILDERS[arch](n)
    elif spec.family == "image":
        backbone = _IMAGE_BUILDERS[arch](n, width)
    else:
        encoder = _IMAGE_BUILDERS[arch.removeprefix("frames_")](n, width)
        num_features = encoder.fc.in_features
        encoder.fc = nn.Identity()
        backbone = FrameNet(encoder, num_features, n, pooling)
    return GradeNet(backbone, arch, head)


def example_input(
    arch: str, height: int = 32, width: int = 32, frames: int = 4, batch: int = 2
) -> torch.Tensor:
    """A random input of the right layout for ``arch`` (for shape checks and benchmarks)."""
    if arch_spec(arch).dynamic:
        return torch.randn(batch, 3, frames, height, width)
    return torch.randn(batch, 3, height, width)
