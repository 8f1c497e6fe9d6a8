"""Preprocessing shared by training and prediction: frames -> a fixed-size uint8 tensor -> network input.

Decoded frames (T, H, W, 3) uint8 are resized once (antialiased) and kept as uint8: greyscale
modalities as one channel (expanded to three equal channels on the device), Doppler in colour.
Clips keep ``cache_frames`` frames resampled evenly over the clip; each pass samples ``frames``
of them (a random frame per segment when training, the segment centres otherwise).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF


@dataclass(frozen=True)
class Preprocessing:
    """Everything needed to turn decoded frames into a network input, saved in each checkpoint."""

    height: int
    width: int
    dynamic: bool
    frames: int
    cache_frames: int
    channels: int  # 1: greyscale kept as one channel; 3: colour (power Doppler)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    roi: tuple[float, float] | None = None  # crop (share of height, width) around the joint first


    def to_dict(self) -> dict:
        """Plain types for the checkpoint."""
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        data["roi"] = list(self.roi) if self.roi else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        """Inverse of to_dict."""
        values = dict(data)
        values["mean"], values["std"] = tuple(values["mean"]), tuple(values["std"])
        values["roi"] = tuple(values["roi"]) if values.get("roi") else None
        return cls(**values)

    def array(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> uint8 (C, H, W) for an image model or (C, Tc, H, W) for a clip model.

        An image model given a clip takes its middle frame; a clip model given a still repeats it.
        With ``roi`` the frames are first cropped around the joint (rascore.train.roi).
        """
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
        count = frames.shape[0]
        if self.dynamic:
            index = np.linspace(0, count - 1, self.cache_frames).round().astype(int)
        else:
            index = np.array([count // 2])
        selected = frames[index]
        if self.roi:
            from rascore.train.roi import joint_box

            top, left, height, width = joint_box(frames[count // 2], self.roi)
            selected = selected[:, top:top + height, left:left + width]
        if self.channels == 1:
            grey = selected.mean(axis=-1, dtype=np.float32).round().astype(np.uint8)
            x = torch.from_numpy(grey[:, None])  # T,1,H,W
        else:
            # channel-first in numpy: torch's copy out of channels-last uint8 is ~100x slower
            x = torch.from_numpy(np.ascontiguousarray(selected.transpose(0, 3, 1, 2)))  # T,3,H,W
        x = TF.resize(x, [self.height, self.width], antialias=True)
        return x.transpose(0, 1).contiguous() if self.dynamic else x[0].contiguous()

    def frame_index(self, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """Which cached frames one pass uses: a random frame per segment (train) or segment centres."""
        edges = torch.linspace(0, self.cache_frames, self.frames + 1)
        if train:
            offsets = torch.rand(self.frames, generator=generator)
        else:
            offsets = torch.full((self.frames,), 0.5)
        index = (edges[:-1] + offsets * (edges[1:] - edges[:-1])).floor().long()
        return index.clamp_(0, self.cache_frames - 1)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Float batch in [0, 1] (one or three channels) -> the network's normalised 3-channel input."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, *x.shape[2:])
        shape = (1, 3) + (1,) * (x.dim() - 2)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(shape)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(shape)
        return (x - mean) / std

    def batch(self, x: torch.Tensor, device: torch.device | str = "cpu",
              train: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Cached uint8 batch -> frames sampled, on ``device``, float in [0, 1] (before augmentation).

        Greyscale stays one channel here, so augmentation costs a third; ``normalise`` expands it.
        """
        if self.dynamic:
            x = x[:, :, self.frame_index(train, generator)]
        return x.to(device, non_blocking=True).float().div_(255.0)
