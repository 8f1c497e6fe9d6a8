"""The light clip model: a 2D ResNet applied to T sampled frames, then temporal pooling or attention.

Much cheaper on a CPU than 3D convolutions; attention or max pooling lets a pulsatile Doppler
peak in one frame decide, which a single still can miss.
"""

from __future__ import annotations

import torch
from torch import nn

POOLINGS: tuple[str, ...] = ("mean", "max", "attention")


class FrameNet(nn.Module):
    """(B, 3, T, H, W) clip -> per-frame 2D features -> pooled over T -> linear head."""

    def __init__(
        self, encoder: nn.Module, num_features: int, num_outputs: int, pooling: str = "attention"
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown temporal pooling {pooling!r}; expected one of {POOLINGS}")
        self.encoder = encoder
        self.pooling = pooling
        self.attention = (
            nn.Sequential(nn.Linear(num_features, 64), nn.Tanh(), nn.Linear(64, 1))
            if pooling == "attention"
            else None
        )
        self.fc = nn.Linear(num_features, num_outputs)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, T, D) features of each frame."""
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        return self.encoder(frames).reshape(b, t, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, num_outputs)."""
        features = self.frame_features(x)
        if self.pooling == "mean":
            pooled = features.mean(dim=1)
        elif self.pooling == "max":
            pooled = features.amax(dim=1)
        else:
            weights = torch.softmax(self.attention(features).float(), dim=1).to(features.dtype)
            pooled = (weights * features).sum(dim=1)
        return self.fc(pooled)
