"""Ultrasound augmentation on whole batches on the training device, each case with its own draw.

Small rotation, shift and scale (one affine per case, the same for every frame of a clip) and
gain (brightness) and contrast jitter. No hue change: gain and contrast scale all three channels
by the same factor around a grey level, so a Doppler pixel keeps its hue. No horizontal flip by
default: a dorsal longitudinal view has a convention (proximal bone on one side) a flip breaks.
Batched with affine_grid/grid_sample instead of torchvision's per-image transforms, so the CPU
loader never limits a GPU and each case still gets its own parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Parameters of the random transform (RATING-like magnitudes)."""

    degrees: float = 8.0
    translate: float = 0.06  # share of width/height
    scale: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.2  # gain factor drawn from 1 +/- brightness
    contrast: float = 0.2
    hflip: bool = False

    def _uniform(self, n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x: float (B, C, H, W) or (B, C, T, H, W) in [0, 1] -> augmented, same shape and device."""
        shape = x.shape
        b, h, w = shape[0], shape[-2], shape[-1]
        flat = x.reshape(b, -1, h, w)
        angle = self._uniform(b, -1, 1, generator) * math.radians(self.degrees)
        scale = self._uniform(b, *self.scale, generator)
        shift = self._uniform(2 * b, -1, 1, generator).view(b, 2) * (2 * self.translate)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        flip = torch.ones(b)
        if self.hflip:
            flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
        theta = torch.stack(
            [
                torch.stack([cos * flip, -sin * (h / w), shift[:, 0]], dim=1),
                torch.stack([sin * (w / h) * flip, cos, shift[:, 1]], dim=1),
            ],
            dim=1,
        ).to(device=x.device, dtype=x.dtype)
        grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
        flat = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        gain = self._uniform(b, 1 - self.brightness, 1 + self.brightness, generator)
        contrast = self._uniform(b, 1 - self.contrast, 1 + self.contrast, generator)
        view = (b, 1, 1, 1)
        gain = gain.to(x.device, x.dtype).view(view)
        contrast = contrast.to(x.device, x.dtype).view(view)
        grey = flat.mean(dim=(1, 2, 3), keepdim=True)
        flat = ((flat - grey) * contrast + grey) * gain
        return flat.clamp_(0.0, 1.0).reshape(shape)
