"""Ultrasound augmentation on whole batches on the training device, each case with its own draw.

Two sets, chosen by ``TrainConfig.augmentation`` (``make_augmentation``):

- ``wide`` (the default since the scanner-robustness changes): the factors that differ between scanners and sites, so
  that a model does not learn one simulator's or one machine's look.
  Geometry (one affine per case, the same for every frame of a clip): anisotropic scale (zoom
  and aspect, each axis 0.6-1.0: a joint down to 0.6 of its size, as a deeper field or a smaller
  hand shows it), rotation up to 5 degrees and a shift. The transform only ever
  *shrinks* the input and the shift is bounded by the margin that leaves, so every pixel of the
  input (the joint crop, where the synovium may reach the edges) stays inside the frame: no
  augmentation can cut the synovium (``Geometry.extent``; tests/test_augment_wide.py checks it
  on a mask that fills the frame).
  Intensity: time-gain (a gain that changes with depth), overall gain, contrast around the
  case's mean, a grey-map curve (a gamma times an S- or inverse-S curve), speckle-like
  multiplicative noise (a random field at half resolution, smoothly upsampled) and a blur (two
  passes of a binomial 3x3, about a gaussian of sigma 1 px, as a lower-frequency probe or heavier
  compounding softens the image) of random strength. Every intensity change is a per-pixel factor applied equally to all three
  channels, and values over 1 are brought back by dividing the pixel's channels by their maximum,
  so a Doppler pixel keeps its channel ratios (its hue and saturation); nothing shifts hue. The
  blur mixes neighbouring pixels only.
- ``basic`` (before the scanner-robustness changes; ``Augmentation``): rotation up to 8 degrees, shift 6%, zoom
  0.9-1.1 (which can cut up to 10% from each edge), gain and contrast.

No horizontal flip by default: a dorsal longitudinal view has a convention (proximal bone on one
side) a flip breaks. Batched with affine_grid/grid_sample instead of torchvision's per-image
transforms, so the CPU loader never limits a GPU and each case still gets its own parameters.
Cost per batch: bench/bench_robustness.py --time-augment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

AUGMENTATIONS: tuple[str, ...] = ("wide", "basic", "none")


@dataclass(frozen=True)
class Augmentation:
    """The ``basic`` set (before the scanner-robustness changes): rotation, shift, zoom, gain and contrast."""

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


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


@dataclass(frozen=True)
class Geometry:
    """One affine per case that keeps the whole input inside the frame (``wide``)."""

    degrees: float = 5.0
    zoom: tuple[float, float] = (0.6, 1.0)  # per axis, so the aspect changes too

    def draw(self, b: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per case: angle (radians), scale_x, scale_y (content size / frame size), shift_x, shift_y
        (normalised units, -1..1 is the frame). Scales are reduced where the rotated input would
        not fit; the shift uses only the margin left."""
        angle = _uniform(b, -1, 1, generator) * math.radians(self.degrees)
        sx, sy = _uniform(b, *self.zoom, generator), _uniform(b, *self.zoom, generator)
        u = _uniform(2 * b, -1, 1, generator).view(b, 2)
        return {"angle": angle, "scale_x": sx, "scale_y": sy, "u": u}

    @staticmethod
    def extent(params: dict[str, torch.Tensor], h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Half-extent (normalised) of the transformed input along x and y before the shift."""
        c, s = torch.cos(params["angle"]).abs(), torch.sin(params["angle"]).abs()
        sx, sy = params["scale_x"], params["scale_y"]
        return c * sx + s * sy * (h / w), s * sx * (w / h) + c * sy

    def theta(self, params: dict[str, torch.Tensor], h: int, w: int) -> tuple[torch.Tensor, dict]:
        """affine_grid's (B, 2, 3) output->input map, and the parameters actually used (scales
        shrunk to fit, shifts in normalised units)."""
        params = dict(params)
        ex, ey = self.extent(params, h, w)
        fit = torch.clamp(torch.maximum(ex, ey), min=1.0)
        params["scale_x"], params["scale_y"] = params["scale_x"] / fit, params["scale_y"] / fit
        ex, ey = self.extent(params, h, w)
        params["shift_x"] = params["u"][:, 0] * (1 - ex).clamp(min=0)
        params["shift_y"] = params["u"][:, 1] * (1 - ey).clamp(min=0)
        c, s = torch.cos(params["angle"]), torch.sin(params["angle"])
        sx, sy = params["scale_x"], params["scale_y"]
        # inverse of q = D^-1 R S D p + t, with D = diag(w/2, h/2)
        m = torch.stack(
            [torch.stack([c / sx, s / sx * (h / w)], 1), torch.stack([-s / sy * (w / h), c / sy], 1)], 1
        )
        t = torch.stack([params["shift_x"], params["shift_y"]], 1).unsqueeze(-1)
        return torch.cat([m, -(m @ t)], dim=2), params

    def apply(self, flat: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """(B, K, H, W) warped by ``theta`` (zeros outside)."""
        theta = theta.to(device=flat.device, dtype=flat.dtype)
        grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
        return F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class WideAugmentation:
    """The ``wide`` set: geometry that cannot cut the input, and hue-keeping intensity changes."""

    geometry: Geometry = Geometry()
    tgc: float = 0.4  # depth gain: exp(+/- tgc) from top to bottom
    gain: float = 0.3  # overall gain exp(+/- gain)
    contrast: tuple[float, float] = (0.75, 1.3)
    gamma: float = 0.6  # grey-map gamma exp(+/- gamma): 0.55-1.8 times the scanner's
    curve: tuple[float, float] = (-0.5, 0.8)  # weight of an S-curve (negative: inverse S)
    speckle: float = 0.25  # sd of the log multiplicative noise, drawn 0..speckle per case
    blur: float = 0.6  # probability of a blur of random strength
    blur_passes: int = 2  # binomial 3x3 passes (2: about a gaussian of sigma 1 px)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x: float (B, C, H, W) or (B, C, T, H, W) in [0, 1] -> augmented, same shape and device."""
        shape = x.shape
        b, h, w = shape[0], shape[-2], shape[-1]
        theta, _ = self.geometry.theta(self.geometry.draw(b, generator), h, w)
        x = self.geometry.apply(x.reshape(b, -1, h, w), theta).reshape(shape)
        return self.intensity(x, generator)

    def intensity(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The intensity changes alone: one factor per pixel for all channels (hue kept)."""
        shape = x.shape
        b, h, w = shape[0], shape[-2], shape[-1]
        x5 = x if x.dim() == 5 else x.unsqueeze(2)  # B, C, T, H, W
        view = (b, 1, 1, 1, 1)

        def per_case(low: float, high: float) -> torch.Tensor:
            return _uniform(b, low, high, generator).to(x.device, x.dtype).view(view)

        level = x5.mean(dim=1, keepdim=True)  # B, 1, T, H, W: grey intensity
        rows = torch.linspace(-0.5, 0.5, h, device=x.device, dtype=x.dtype).view(1, 1, 1, h, 1)
        y = level * torch.exp(per_case(-self.tgc, self.tgc) * rows) * per_case(-self.gain, self.gain).exp()
        mean = y.mean(dim=(2, 3, 4), keepdim=True)
        y = ((y - mean) * per_case(*self.contrast) + mean).clamp(0.0, 1.0)
        y = y.pow(per_case(-self.gamma, self.gamma).exp())
        beta = per_case(*self.curve)
        y = (1 - beta) * y + beta * (y * y * (3 - 2 * y))
        t = x5.shape[2]  # speckle-like noise: a half-resolution random field, smoothly upsampled
        noise = torch.randn((b * t, 1, (h + 1) // 2, (w + 1) // 2), generator=generator).to(x.device, x.dtype)
        noise = F.interpolate(noise, size=(h, w), mode="bilinear", align_corners=False).view(b, 1, t, h, w)
        y = y * torch.exp(per_case(0.0, self.speckle) * 1.4 * noise)  # 1.4: upsampling halves the variance
        factor = y / level.clamp(min=1e-4)
        out = x5 * factor
        strength = _uniform(b, 0.0, 1.0, generator) * (torch.rand(b, generator=generator) < self.blur)
        blurred = torch.nonzero(strength).flatten()
        if len(blurred):  # only the cases drawn for a blur pay for it
            part = out.index_select(0, blurred.to(x.device))
            w_ = strength[blurred].to(x.device, x.dtype).view(-1, 1, 1, 1, 1)
            soft = part
            for _ in range(self.blur_passes):
                soft = _blur(soft)
            out = out.index_copy(0, blurred.to(x.device), part + w_ * (soft - part))
        out = out / out.amax(dim=1, keepdim=True).clamp(min=1.0)  # over 1: scale the pixel, keep its ratios
        return out.clamp_(min=0.0).reshape(shape)


def _blur(x5: torch.Tensor) -> torch.Tensor:
    """Binomial 3x3 blur ([1, 2, 1] / 4 each way, about a gaussian of sigma 0.7 px) over H and W of
    (B, C, T, H, W), edges replicated; by slicing (several times faster on a CPU than a conv)."""
    b, c, t, h, w = x5.shape
    p = F.pad(x5.reshape(b, c * t, h, w), (1, 1, 1, 1), mode="replicate")
    p = p[..., :, :-2] + 2 * p[..., :, 1:-1] + p[..., :, 2:]
    p = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    return p.mul_(1 / 16).view(b, c, t, h, w)


def make_augmentation(name: str | None) -> Augmentation | WideAugmentation | None:
    """The named set: "wide", "basic" or "none" (None: no augmentation)."""
    if name in (None, "none"):
        return None
    if name == "wide":
        return WideAugmentation()
    if name == "basic":
        return Augmentation()
    raise ValueError(f"unknown augmentation {name!r}; expected one of {', '.join(AUGMENTATIONS)}")
