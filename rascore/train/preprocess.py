"""Preprocessing shared by training and prediction: frames -> a fixed-size uint8 tensor -> network input.

Decoded frames (T, H, W, 3) uint8 are resized once (antialiased) and kept as uint8: greyscale
modalities as one channel (expanded to three equal channels on the device), Doppler in colour.
Clips keep ``cache_frames`` frames resampled evenly over the clip; each pass samples ``frames``
of them (a random frame per segment when training, the segment centres otherwise).

Normalisation (``norm``, saved in each checkpoint; ``normalise`` is the one function training,
validation, testing, prediction and explanations all call, so it is identical everywhere):

- ``image`` (models trained since the scanner-robustness changes): each item by its own statistics. The grey
  intensity (the mean of the channels; the single channel of a greyscale model) of the whole item
  (every frame of a clip) gives a mean m and a standard deviation s (at least 1/50, so a blank
  image is not blown up), and every channel becomes (x - m) / s. The same affine map applies to
  all three channels, so Doppler colour is kept (channel differences keep their sign and
  ratio); a greyscale input is repeated into three channels. A scanner's overall gain and
  contrast then no longer reach the network.
- ``dataset`` (before the scanner-robustness changes, and every checkpoint saved without a ``norm`` field): fixed
  per-channel ``mean`` and ``std`` (the architecture's, e.g. ImageNet's), the same for every item.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

NORMS: tuple[str, ...] = ("image", "dataset")
MIN_STD = 0.02  # floor of an item's grey standard deviation under norm="image" (intensity 0..1)


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
    norm: str = "dataset"  # NORMS; absent from older checkpoints, which keep "dataset"
    roi_within: str = "frame"  # rascore.train.roi.WITHIN; absent from older checkpoints: "frame"

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
        values.setdefault("norm", "dataset")
        values.setdefault("roi_within", "frame")
        if values["norm"] not in NORMS:
            raise ValueError(f"unknown normalisation {values['norm']!r}; expected one of {', '.join(NORMS)}")
        return cls(**values)

    @staticmethod
    def _frames(frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
        return frames

    def source_index(self, count: int) -> np.ndarray:
        """Which of a scan's ``count`` frames are kept: evenly spread for a clip model, the middle one
        for an image model (a clip model given a still repeats it)."""
        if self.dynamic:
            return np.linspace(0, count - 1, self.cache_frames).round().astype(int)
        return np.array([count // 2])

    def crop(self, frames: np.ndarray) -> tuple[tuple[int, int, int, int], str]:
        """(top, left, height, width) of the region of the original frames the network sees, and
        "crop", "fallback" (the joint fit was weak: the whole frame) or "none" (no ``roi``).

        The joint crop when ``roi`` is set (found on the middle frame), else the whole frame; map
        attributions back onto the scan through this box.
        """
        from rascore.train.roi import NONE, joint_crop

        frames = self._frames(frames)
        count, h, w = frames.shape[:3]
        if not self.roi:
            return (0, 0, h, w), NONE
        box, mode, _ = joint_crop(frames[count // 2], self.roi, within=self.roi_within)
        return box, mode

    def box(self, frames: np.ndarray) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the region of the original frames the network sees (``crop``)."""
        return self.crop(frames)[0]

    def array(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> uint8 (C, H, W) for an image model or (C, Tc, H, W) for a clip model.

        Frames chosen by ``source_index``, cropped to ``box`` (the joint when ``roi`` is set),
        resized with antialiasing; greyscale kept as one channel.
        """
        return self.array_and_crop(frames)[0]

    def array_and_crop(self, frames: np.ndarray) -> tuple[torch.Tensor, str]:
        """``array`` and how the frame was cropped ("crop", "fallback" or "none", as ``crop``)."""
        frames = self._frames(frames)
        (top, left, height, width), mode = self.crop(frames)
        selected = frames[self.source_index(frames.shape[0]), top : top + height, left : left + width]
        if self.channels == 1:
            grey = selected.mean(axis=-1, dtype=np.float32).round().astype(np.uint8)
            x = torch.from_numpy(grey[:, None])  # T,1,H,W
        else:
            # channel-first in numpy: torch's copy out of channels-last uint8 is ~100x slower
            x = torch.from_numpy(np.ascontiguousarray(selected.transpose(0, 3, 1, 2)))  # T,3,H,W
        x = TF.resize(x, [self.height, self.width], antialias=True)
        return (x.transpose(0, 1).contiguous() if self.dynamic else x[0].contiguous()), mode

    def frame_index(self, train: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        """Which cached frames one pass uses: a random frame per segment (train) or segment centres."""
        edges = torch.linspace(0, self.cache_frames, self.frames + 1)
        if train:
            offsets = torch.rand(self.frames, generator=generator)
        else:
            offsets = torch.full((self.frames,), 0.5)
        index = (edges[:-1] + offsets * (edges[1:] - edges[:-1])).floor().long()
        return index.clamp_(0, self.cache_frames - 1)

    def normalise(self, x: torch.Tensor, buffers: "BatchBuffers | None" = None) -> torch.Tensor:
        """Float batch in [0, 1] (one or three channels) -> the network's normalised 3-channel input.

        One fused pass, x * scale + bias, broadcasting a greyscale channel to three: scale and
        bias per channel (``norm="dataset"``) or per item from its grey mean and standard
        deviation (``norm="image"``; see the module docstring).
        """
        shape = (1, 3) + (1,) * (x.dim() - 2)
        if self.norm == "image":
            dims = tuple(range(1, x.dim()))
            level = x if x.shape[1] == 1 else x.mean(dim=1, keepdim=True)
            std, mean = torch.std_mean(level, dim=dims, keepdim=True)
            ones = torch.ones(shape, device=x.device, dtype=x.dtype)
            scale = ones / std.clamp(min=MIN_STD)
            bias = -mean * scale
        else:
            scale = 1.0 / torch.tensor(self.std, device=x.device, dtype=x.dtype).view(shape)
            bias = -torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(shape) * scale
        if buffers is None:
            return torch.addcmul(bias, x, scale)
        out = buffers.get("input", (x.shape[0], 3, *x.shape[2:]), x.dtype, x.device)
        return torch.addcmul(bias, x, scale, out=out)

    def batch(
        self,
        x: torch.Tensor,
        device: torch.device | str = "cpu",
        train: bool = False,
        generator: torch.Generator | None = None,
        index: torch.Tensor | None = None,
        buffers: "BatchBuffers | None" = None,
    ) -> torch.Tensor:
        """Cached uint8 batch (or the items ``index`` of a split) -> frames sampled, on ``device``,
        float in [0, 1] (before augmentation).

        Greyscale stays one channel here, so augmentation costs a third; ``normalise`` expands it.
        With ``buffers`` the result lives in a reused tensor, valid until the next call.
        """

        def select(t: torch.Tensor, dim: int, which: torch.Tensor, name: str) -> torch.Tensor:
            which = which.to(t.device)
            if buffers is None:  # index_select: several times faster than advanced indexing here
                return t.index_select(dim, which)
            shape = list(t.shape)
            shape[dim] = len(which)
            return torch.index_select(t, dim, which, out=buffers.get(name, shape, t.dtype, t.device))

        if index is not None:
            x = select(x, 0, torch.as_tensor(index), "items")
        if self.dynamic:
            x = select(x, 2, self.frame_index(train, generator), "frames")
        x = x.to(device, non_blocking=True)
        if buffers is None:
            return x.float().div_(255.0)
        return buffers.get("float", x.shape, torch.float32, x.device).copy_(x).div_(255.0)


class BatchBuffers:
    """Tensors reused from one training step to the next.

    A fresh multi-megabyte CPU tensor per step costs page faults on first touch (measured: 5.6 ms
    against 0.9 ms per clip batch in bench/bench_train.py's loop comparison).
    """

    def __init__(self) -> None:
        self._tensors: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
        """A tensor of this shape, type and device, reused when the last one under ``name`` fits."""
        shape = tuple(shape)
        tensor = self._tensors.get(name)
        if (
            tensor is None
            or tuple(tensor.shape) != shape
            or tensor.dtype != dtype
            or tensor.device != torch.device(device)
        ):
            tensor = torch.empty(shape, dtype=dtype, device=device)
            self._tensors[name] = tensor
        return tensor
