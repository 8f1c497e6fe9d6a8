"""Captum attributions of a grade model: Integrated Gradients (optionally NoiseTunnel), Grad-CAM, Occlusion.

Integrated Gradients and Occlusion attribute the probability of one grade
(``rascore.nets.heads.grade_probabilities``, through ``GradeProbabilities``), so softmax and
ordinal heads are treated alike. Grad-CAM attributes the grade's logit (``GradeScores``): a
probability near 0 or 1 has a vanishing gradient, so a confident prediction would give an empty
map. The input that is attributed is the picture the network sees in [0, 1] (after resizing,
before normalisation, which the wrapper applies). The Integrated Gradients baseline is by default
the picture under a strong Gaussian blur (``ig_baseline="blur"``), or a flat picture at the mean
brightness of the tissue (``"tissue"``), or black (``"black"``): hypoechoic synovium is nearly
black, so from a black baseline (x - baseline) is about 0 there and Integrated Gradients cannot
credit it. NoiseTunnel's noise is in pixel units. Greyscale pictures are one channel
(normalisation repeats it), Doppler three; maps are summed over channels.

Maps come back at the model's input resolution, one per frame the model sees (one for a still);
``to_image_size`` brings them to the original picture's resolution, into the box the model saw
(the whole picture, or the region-of-interest crop around the joint when the checkpoint's
preprocessing has one; outside it the attribution is zero).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from rascore.nets.factory import GradeNet
from rascore.nets.heads import check_head
from rascore.explain.layers import gradcam_layer
from rascore.names import (
    GRADCAM_STAGE_NAMES,
    GRADCAM_STAGES,
    IG_BASELINE_NAMES,
    IG_BASELINES,
    METHODS,
)
from rascore.train.preprocess import Preprocessing

TISSUE_FLOOR = 0.04  # pixels darker than this in every channel are background, not tissue, for "tissue"


def check_method(method: str) -> str:
    """Validate a method name (ig, gradcam, occlusion)."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; expected one of {', '.join(METHODS)}")
    return method


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class ExplainOptions:
    """Settings of the three methods; ``key(method)`` names the ones that change a method's map."""

    ig_steps: int = 32  # Riemann/Gauss-Legendre steps from the baseline
    ig_baseline: str = "blur"  # blur | tissue | black (see the module docstring)
    ig_blur_sigma: float = 0.15  # "blur": Gaussian sigma as a share of the input's short side
    internal_batch_size: int = 16  # IG evaluates its steps in batches of this many inputs
    smooth_samples: int = 0  # NoiseTunnel SmoothGrad samples around IG (0: plain IG)
    smooth_stdev: float = 0.05  # NoiseTunnel noise, in [0, 1] pixel units
    gradcam_layer: str | None = None  # dotted module name; None: chosen by ``gradcam_layer``
    gradcam_stage: str = "fine"  # fine | deep: which stage ``gradcam_layer`` picks when no name is given
    occlusion_window: int | None = (
        None  # square, input pixels; None: 1/8 (still), 1/6 (clip) of the short side
    )
    occlusion_stride: int | None = None  # None: half the window (still), the window (clip)
    perturbations_per_eval: int = 16  # occluded copies per forward pass

    def __post_init__(self) -> None:
        _check_choice(self.ig_baseline, IG_BASELINES, "Integrated Gradients baseline")
        _check_choice(self.gradcam_stage, GRADCAM_STAGES, "Grad-CAM stage")
        if not self.ig_blur_sigma > 0:
            raise ValueError("ig_blur_sigma must be > 0")

    def key(self, method: str) -> str:
        """Short stable text of the settings that matter for ``method`` (part of the cache key)."""
        check_method(method)
        if method == "ig":
            baseline = f"blur{self.ig_blur_sigma:g}" if self.ig_baseline == "blur" else self.ig_baseline
            parts = [f"s{self.ig_steps}", baseline]
            if self.smooth_samples:
                parts.append(f"nt{self.smooth_samples}x{self.smooth_stdev:g}")
        elif method == "gradcam":
            parts = ["logit", self.gradcam_layer or self.gradcam_stage]
        else:
            parts = [f"w{self.occlusion_window or 'auto'}", f"st{self.occlusion_stride or 'auto'}"]
        return "-".join(parts)

    def to_dict(self) -> dict:
        """Plain dict (JSON)."""
        return asdict(self)

    def describe(self, method: str) -> str:
        """The setting a person choosing between maps needs to know, e.g. ``baseline: blurred picture``."""
        check_method(method)
        if method == "ig":
            return f"baseline: {IG_BASELINE_NAMES[self.ig_baseline]}"
        if method == "gradcam":
            return (
                f"layer: {self.gradcam_layer}"
                if self.gradcam_layer
                else f"layer: {GRADCAM_STAGE_NAMES[self.gradcam_stage]}"
            )
        return ""


def grade_scores(outputs: torch.Tensor, head: str) -> torch.Tensor:
    """Network outputs -> (B, 4) grade logits (pre-softmax scores) for either head, in fp32.

    softmax: the outputs themselves. ordinal (3 cumulative logits z_k of P(grade > k)): grade g scores
    (sum_{k<g} z_k - sum_{k>=g} z_k) / 2, the part of log P(g) that depends on g when the three binary
    tasks are read as independent (log sigmoid(z) = z/2 - log(2 cosh(z/2))). Both are linear in the
    network's last layer, so their gradient never saturates.
    """
    outputs = outputs.float()
    if check_head(head) == "softmax":
        return outputs
    k = outputs.shape[1]
    # sign[g, k] = +1 when k < g (grade g exceeds threshold k), else -1
    sign = torch.where(torch.arange(k + 1).unsqueeze(1) > torch.arange(k).unsqueeze(0), 1.0, -1.0)
    return 0.5 * outputs @ sign.to(outputs.device).T


class GradeProbabilities(nn.Module):
    """[0, 1] picture -> (B, 4) grade probabilities: normalisation, the network and its head.

    Captum attributes one column (the target grade) of this output.
    """

    def __init__(self, model: GradeNet, prep: Preprocessing) -> None:
        super().__init__()
        self.model = model
        self.prep = prep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) or (B, C, T, H, W) in [0, 1] (C = 1 or 3) -> (B, 4) probabilities."""
        # corrected for the sampling prior, as every reported probability (rascore.train.prior)
        return self.model.grade_probabilities(self.model(self.prep.normalise(x)))


class GradeScores(GradeProbabilities):
    """[0, 1] picture -> (B, 4) grade logits (``grade_scores``): what Grad-CAM attributes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) or (B, C, T, H, W) in [0, 1] -> (B, 4) grade logits."""
        return grade_scores(self.model(self.prep.normalise(x)), self.model.head)


def ig_baseline(x: torch.Tensor, options: ExplainOptions = ExplainOptions()) -> torch.Tensor:
    """The Integrated Gradients baseline for input ``x`` (B, C, [T,] H, W) in [0, 1], shaped like it.

    blur: each frame under a Gaussian blur of sigma ``ig_blur_sigma`` x the short side (reflected
    at the edges; frames and channels not mixed), so a dark region is compared with its lighter
    surroundings. tissue: every pixel at the per-channel mean of the tissue (pixels brighter than
    ``TISSUE_FLOOR`` in some channel; all pixels when there are none). black: zeros.
    """
    if options.ig_baseline == "black":
        return torch.zeros_like(x)
    if options.ig_baseline == "tissue":
        spatial = tuple(range(2, x.dim()))
        tissue = (x.amax(dim=1, keepdim=True) > TISSUE_FLOOR).to(x.dtype)
        count = tissue.sum(dim=spatial, keepdim=True)
        mean = torch.where(
            count > 0,
            (x * tissue).sum(dim=spatial, keepdim=True) / count.clamp_min(1),
            x.mean(dim=spatial, keepdim=True),
        )
        return mean.expand_as(x).contiguous()
    sigma = options.ig_blur_sigma * min(x.shape[-2:])
    sigmas = (0,) * (x.dim() - 2) + (sigma, sigma)
    blurred = ndimage.gaussian_filter(x.detach().cpu().double().numpy(), sigma=sigmas, mode="reflect")
    return torch.from_numpy(blurred).to(x.device, x.dtype)


def model_input(
    prep: Preprocessing, frames: np.ndarray, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, np.ndarray]:
    """Decoded frames -> the [0, 1] input the model sees, and which original frame each input frame is.

    Exactly the prediction path (``Preprocessing.array`` then ``batch`` with segment-centre frames),
    so the attributed input is the predicted one. Returns ((1, C, H, W) or (1, C, T, H, W), index).
    """
    frames = np.asarray(frames)
    count = frames.shape[0] if frames.ndim == 4 else 1
    x = prep.batch(prep.array(frames).unsqueeze(0), device).contiguous()
    if prep.dynamic:
        cached = np.linspace(0, count - 1, prep.cache_frames).round().astype(int)
        index = cached[prep.frame_index(train=False).numpy()]
    else:
        index = np.array([count // 2])
    return x, index


def input_box(prep: Preprocessing, frames: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the part of the picture the model sees: its joint crop, or all
    of it when the preprocessing has no crop or its joint fit was weak (``Preprocessing.crop``)."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    return tuple(int(v) for v in prep.box(frames))


def layer_for(
    model: GradeNet, prep: Preprocessing, x: torch.Tensor, options: ExplainOptions = ExplainOptions()
) -> tuple[str, nn.Module]:
    """The Grad-CAM layer for model input ``x`` under ``options`` (its layer name, else its stage)."""
    return gradcam_layer(
        model,
        x.shape[2] if prep.dynamic else 1,
        options.gradcam_layer,
        tuple(x.shape[-2:]),
        stage=options.gradcam_stage,
    )


def occlusion_geometry(
    prep: Preprocessing, options: ExplainOptions, channels: int = 3
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Captum sliding window and strides: square patches over all channels, one frame at a time for clips."""
    short = min(prep.height, prep.width)
    window = min(short, options.occlusion_window or max(4, short // (6 if prep.dynamic else 8)))
    stride = min(window, options.occlusion_stride or (window if prep.dynamic else max(1, window // 2)))
    if prep.dynamic:
        return (channels, 1, window, window), (channels, 1, stride, stride)
    return (channels, window, window), (channels, stride, stride)


def _per_frame(attr: torch.Tensor, dynamic: bool) -> torch.Tensor:
    """Input-shaped attributions (1, C, [T,] H, W) -> (T, H, W), summed over colour channels."""
    summed = attr.sum(dim=1)[0]
    return summed if dynamic else summed.unsqueeze(0)


def input_attributions(
    net: GradeProbabilities,
    x: torch.Tensor,
    method: str,
    target: int,
    options: ExplainOptions = ExplainOptions(),
    layer: tuple[str, nn.Module] | None = None,
) -> torch.Tensor:
    """Attributions shaped like ``x`` (B, C, [T,] H, W) for grade ``target`` (what Captum's metrics take).

    ig: signed Integrated Gradients of the grade probability from ``ig_baseline(x, options)``
    (NoiseTunnel SmoothGrad around it when ``smooth_samples``), evaluated ``internal_batch_size``
    inputs at a time. gradcam: LayerGradCam of the grade's logit (``GradeScores``) with ReLU,
    upsampled by ``LayerAttribution.interpolate`` (bilinear, trilinear for video layers, so a
    deep stage's coarse time axis is stretched over every input frame; a frame model's per-frame
    maps are stacked in time) and shared equally by the channels. occlusion: drop of the grade
    probability when a patch of one frame is set to the picture's mean.
    """
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Occlusion

    check_method(method)
    prep = net.prep
    if method == "ig":
        ig = IntegratedGradients(net)
        kwargs = dict(
            baselines=ig_baseline(x, options),
            target=target,
            n_steps=options.ig_steps,
            internal_batch_size=options.internal_batch_size,
        )
        if options.smooth_samples:
            return (
                NoiseTunnel(ig)
                .attribute(
                    x,
                    nt_type="smoothgrad",
                    nt_samples=options.smooth_samples,
                    nt_samples_batch_size=1,
                    stdevs=options.smooth_stdev,
                    **kwargs,
                )
                .detach()
            )
        return ig.attribute(x, **kwargs).detach()
    if method == "occlusion":
        window, strides = occlusion_geometry(prep, options, x.shape[1])
        return (
            Occlusion(net)
            .attribute(
                x,
                sliding_window_shapes=window,
                strides=strides,
                baselines=float(x.mean()),
                target=target,
                perturbations_per_eval=options.perturbations_per_eval,
            )
            .detach()
        )
    batch, channels = x.shape[:2]
    frames = x.shape[2] if prep.dynamic else 1
    name, module = layer or layer_for(net.model, prep, x, options)
    scores = GradeScores(net.model, prep)
    cam = LayerGradCam(scores, module).attribute(x, target=target, relu_attributions=True).detach()
    if prep.dynamic and cam.dim() == 4:  # a frame model's 2D layer: (B*T, 1, h, w) -> (B, 1, T, h, w)
        cam = cam.reshape(batch, frames, 1, *cam.shape[-2:]).transpose(1, 2)
    mode = "trilinear" if cam.dim() == 5 else "bilinear"
    cam = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), mode)
    return (cam / channels).expand_as(x)


def compute_maps(
    net: GradeProbabilities,
    x: torch.Tensor,
    method: str,
    target: int,
    options: ExplainOptions = ExplainOptions(),
    layer: tuple[str, nn.Module] | None = None,
) -> torch.Tensor:
    """Attribution maps (T, H, W) at input resolution for grade ``target`` of one input ``x`` (T = 1 for a still)."""
    if x.shape[0] != 1:
        raise ValueError("compute_maps explains one input at a time")
    return _per_frame(input_attributions(net, x, method, target, options, layer), net.prep.dynamic)


@dataclass
class Attribution:
    """Maps of one method for one input: at model resolution, with the prediction they explain."""

    method: str
    target: int
    predicted: int
    probabilities: list[float]
    maps: np.ndarray  # float32 (T, h, w) at model input resolution (T = 1 for a still)
    frame_index: np.ndarray  # (T,) index of each map's frame in the original clip
    box: tuple[int, int, int, int]  # (top, left, height, width) of the picture the model saw
    layer: str | None  # Grad-CAM layer
    seconds: float


def predict_probabilities(net: GradeProbabilities, x: torch.Tensor) -> list[float]:
    """The (4,) grade probabilities of one input."""
    with torch.no_grad():
        return [float(v) for v in net(x)[0].cpu()]


def attribute(
    model: GradeNet,
    prep: Preprocessing,
    frames: np.ndarray,
    method: str,
    target: int | None = None,
    options: ExplainOptions = ExplainOptions(),
    device: torch.device | str = "cpu",
) -> Attribution:
    """Explain one picture or clip: predicted grade, probabilities and the maps for ``target``.

    ``target`` None means the predicted grade. The model is switched to eval mode and moved to
    ``device``.
    """
    started = time.perf_counter()
    check_method(method)
    model.eval().to(device)
    net = GradeProbabilities(model, prep)
    x, index = model_input(prep, frames, device)
    probabilities = predict_probabilities(net, x)
    predicted = int(np.argmax(probabilities))
    target = predicted if target is None else int(target)
    if target not in range(len(probabilities)):
        raise ValueError(f"target grade must be 0-{len(probabilities) - 1}, got {target}")
    layer = None
    layer_pair = None
    if method == "gradcam":
        layer_pair = layer_for(model, prep, x, options)
        layer = layer_pair[0]
    maps = compute_maps(net, x, method, target, options, layer_pair)
    return Attribution(
        method,
        target,
        predicted,
        probabilities,
        maps.float().cpu().numpy().astype(np.float32),
        index,
        input_box(prep, frames),
        layer,
        time.perf_counter() - started,
    )


def to_image_size(
    maps: np.ndarray, height: int, width: int, box: tuple[int, int, int, int] | None = None
) -> np.ndarray:
    """(T, h, w) maps -> (T, height, width): resized bilinearly onto ``box`` (default the whole picture), zero outside.

    The model input is a plain resize of the box, so this is its inverse.
    """
    maps = np.asarray(maps, dtype=np.float32)
    top, left, box_h, box_w = box or (0, 0, height, width)
    if maps.shape[-2:] == (box_h, box_w):
        resized = maps.copy()
    else:
        tensor = torch.from_numpy(maps).unsqueeze(1)
        resized = F.interpolate(tensor, size=(box_h, box_w), mode="bilinear", align_corners=False)[
            :, 0
        ].numpy()
    if (top, left, box_h, box_w) == (0, 0, height, width):
        return resized
    out = np.zeros((maps.shape[0], height, width), np.float32)
    out[:, top : top + box_h, left : left + box_w] = resized
    return out


def frame_importance(maps: np.ndarray) -> np.ndarray:
    """Share of the positive attribution in each frame (sums to 1; equal shares when there is none)."""
    positive = np.clip(np.asarray(maps, dtype=np.float64), 0, None).reshape(len(maps), -1).sum(axis=1)
    total = positive.sum()
    if total <= 0:
        return np.full(len(maps), 1.0 / len(maps))
    return positive / total
