"""Is an attribution map faithful? Checks against the simulated cohort's truth masks and against the model.

- Localisation: the share of positive attribution inside the synovium (and inside the synovial
  Doppler signal for PD models), beside the share a uniform map would give (the mask's area),
  and the pointing game (Zhang et al. 2018): is the map's maximum inside the synovium, dilated by
  a few pixels?
- Model-parameter randomisation (Adebayo et al., NeurIPS 2018, "Sanity checks for saliency
  maps"): re-initialise the network block by block from the head down (cascading) and measure
  the Spearman rank correlation of each map with the trained model's; a map that explains the
  model must change, so the correlations must fall.
- Captum's ``infidelity`` (Yeh et al. 2019; Gaussian input noise, attributions rescaled to their
  best fit with ``normalize=True`` so methods compare) and ``sensitivity_max`` (largest change of
  the explanation under small input perturbations).

Which method to trust, from these figures, is ``rascore.explain.trust``'s job.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from scipy.stats import spearmanr
from torch import nn

from rascore.explain.attribution import (
    ExplainOptions,
    GradeProbabilities,
    compute_maps,
    input_attributions,
    input_box,
    layer_for,
    model_input,
    to_image_size,
)
from rascore.nets.factory import GradeNet
from rascore.train.preprocess import Preprocessing

POINTING_TOLERANCE_PX = 3


def positive_share(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Share of the positive attribution inside ``mask`` (NaN when the mask is empty or nothing is positive)."""
    mask = np.asarray(mask, dtype=bool)
    positive = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    total = positive.sum()
    if not mask.any() or total <= 0:
        return float("nan")
    return float(positive[mask].sum() / total)


def area_share(mask: np.ndarray, box: tuple[int, int, int, int] | None = None) -> float:
    """What a uniform map over ``box`` (default the whole picture) puts inside ``mask`` (NaN when empty)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return float("nan")
    if box is not None:
        top, left, height, width = box
        return (
            float(mask[..., top : top + height, left : left + width].sum() / (mask.shape[0] * height * width))
            if mask.ndim == 3
            else float(mask[top : top + height, left : left + width].sum() / (height * width))
        )
    return float(mask.mean())


def dilate(mask: np.ndarray, pixels: int = POINTING_TOLERANCE_PX) -> np.ndarray:
    """Grow a (T, H, W) or (H, W) mask by ``pixels`` in the image plane only."""
    mask = np.asarray(mask, dtype=bool)
    if pixels <= 0:
        return mask
    structure = ndimage.generate_binary_structure(2, 1)
    if mask.ndim == 3:
        structure = structure[None]
    return ndimage.binary_dilation(mask, structure=structure, iterations=pixels)


def pointing_hit(heatmap: np.ndarray, mask: np.ndarray, tolerance: int = POINTING_TOLERANCE_PX) -> float:
    """Pointing game: 1.0 when the map's maximum lies inside the mask dilated by ``tolerance`` pixels, else 0.0.

    NaN when the mask is empty (nothing to point at). For a clip the maximum over all its frames counts.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return float("nan")
    heatmap = np.asarray(heatmap)
    where = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return float(dilate(mask, tolerance)[where])


def load_masks(project, item_id: int) -> dict[str, np.ndarray] | None:
    """Truth masks of a simulated item (``synovium``, ``doppler``: (T, H, W) bool), or None when it has none."""
    truth = project.store.truth(int(item_id))
    if truth is None or not truth.get("mask_path"):
        return None
    path = Path(project.settings.data_dir) / truth["mask_path"]
    if not path.is_file():
        return None
    with np.load(path) as data:
        return {"synovium": data["synovium"].astype(bool), "doppler": data["doppler"].astype(bool)}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps, flattened (NaN when one is constant)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _blocks_of(net: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """Children with parameters in forward order; residual stage containers are expanded to their stages."""
    blocks: list[tuple[str, nn.Module]] = []
    for name, child in net.named_children():
        full = f"{prefix}{name}"
        if not any(True for _ in child.parameters()):
            continue
        if name == "encoder":
            blocks += _blocks_of(child, f"{full}.")
        elif name == "layers" and isinstance(child, nn.Sequential):
            blocks += [(f"{full}.{i}", stage) for i, stage in enumerate(child)]
        else:
            blocks.append((full, child))
    return blocks


def cascade_blocks(model: GradeNet) -> list[tuple[str, nn.Module]]:
    """Blocks of a grade network from the head down: fc, (attention), layer4 ... layer1, stem parts.

    A frame model's encoder runs before its temporal pooling and head, so its stages come after them.
    """
    backbone = model.backbone
    order = _blocks_of(backbone, "backbone.")
    head_first = list(reversed(order))
    return head_first


def reinitialise(module: nn.Module) -> None:
    """Draw a module's parameters afresh (each submodule's own ``reset_parameters``; BatchNorm statistics reset too)."""
    for sub in module.modules():
        reset = getattr(sub, "reset_parameters", None)
        if callable(reset):
            reset()


@dataclass
class RandomisationStep:
    """One step of the cascading randomisation: blocks re-initialised so far and the map's rank correlation."""

    step: int
    block: str
    spearman: float  # rank correlation of the signed maps with the trained model's
    spearman_abs: float  # of their absolute values (Adebayo et al. report both)


def cascading_randomisation(
    model: GradeNet,
    prep: Preprocessing,
    frames: np.ndarray,
    method: str,
    target: int,
    options: ExplainOptions = ExplainOptions(),
    seed: int = 0,
    device: str = "cpu",
    max_steps: int | None = None,
) -> list[RandomisationStep]:
    """Re-initialise blocks from the head down, one more per step, and compare each map with the trained one.

    Works on a copy; ``model`` is untouched. Step 0 is the trained model (correlation 1).
    """
    torch.manual_seed(seed)
    trained = copy.deepcopy(model).eval().to(device)
    x, _ = model_input(prep, frames, device)
    reference = compute_maps(GradeProbabilities(trained, prep), x, method, target, options).cpu().numpy()
    steps = [RandomisationStep(0, "(trained)", 1.0, 1.0)]
    randomised = copy.deepcopy(trained)
    blocks = dict(cascade_blocks(randomised))
    for index, name in enumerate(blocks, start=1):
        if max_steps is not None and index > max_steps:
            break
        reinitialise(blocks[name])
        randomised.eval()
        maps = compute_maps(GradeProbabilities(randomised, prep), x, method, target, options).cpu().numpy()
        steps.append(
            RandomisationStep(
                index, name, spearman(reference, maps), spearman(np.abs(reference), np.abs(maps))
            )
        )
    return steps


def randomised_copy(model: GradeNet, seed: int = 0) -> GradeNet:
    """A copy of ``model`` with every block re-initialised (the end point of the cascade)."""
    torch.manual_seed(seed)
    copy_ = copy.deepcopy(model)
    for _, block in cascade_blocks(copy_):
        reinitialise(block)
    return copy_.eval()


def gaussian_perturbation(std: float = 0.02, seed: int = 0):
    """Perturbation for ``captum.metrics.infidelity``: Gaussian noise of ``std`` in [0, 1] pixel units."""
    generator = torch.Generator().manual_seed(seed)

    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn(inputs.shape, generator=generator).to(inputs.device, inputs.dtype) * std
        return noise, inputs - noise

    return perturb


def infidelity_score(
    model: GradeNet,
    prep: Preprocessing,
    frames: np.ndarray,
    method: str,
    target: int,
    options: ExplainOptions = ExplainOptions(),
    n_perturb_samples: int = 16,
    noise_std: float = 0.02,
    device: str = "cpu",
) -> float:
    """Captum ``infidelity`` of one explanation (lower is better), attributions rescaled (``normalize=True``)."""
    from captum.metrics import infidelity

    model = model.eval().to(device)
    net = GradeProbabilities(model, prep)
    x, _ = model_input(prep, frames, device)
    attributions = input_attributions(net, x, method, target, options)
    value = infidelity(
        net,
        gaussian_perturbation(noise_std),
        x,
        attributions.contiguous(),
        target=target,
        n_perturb_samples=n_perturb_samples,
        max_examples_per_batch=min(8, n_perturb_samples),
        normalize=True,
    )
    return float(value.reshape(-1)[0])


def sensitivity_score(
    model: GradeNet,
    prep: Preprocessing,
    frames: np.ndarray,
    method: str,
    target: int,
    options: ExplainOptions = ExplainOptions(),
    n_perturb_samples: int = 4,
    radius: float = 0.02,
    device: str = "cpu",
) -> float:
    """Captum ``sensitivity_max`` of one explanation (lower is steadier), maps scaled to unit total first.

    Each perturbed input is explained on its own (``max_examples_per_batch=1``); the maps are
    divided by their total absolute attribution so a method's units do not decide the figure.
    """
    from captum.metrics import sensitivity_max

    model = model.eval().to(device)
    net = GradeProbabilities(model, prep)
    x, _ = model_input(prep, frames, device)
    layer = layer_for(model, prep, x, options) if method == "gradcam" else None

    def explain(inputs: torch.Tensor | tuple[torch.Tensor, ...], target: int) -> torch.Tensor:
        if isinstance(inputs, tuple):
            inputs = inputs[0]
        out = []
        for one in inputs.split(1):
            attr = input_attributions(net, one, method, target, options, layer)
            out.append(attr / attr.abs().sum().clamp_min(1e-12))
        return torch.cat(out)

    value = sensitivity_max(
        explain,
        x,
        perturb_radius=radius,
        n_perturb_samples=n_perturb_samples,
        max_examples_per_batch=1,
        target=target,
    )
    return float(value.reshape(-1)[0])


@dataclass
class Localisation:
    """Where one map puts its positive attribution, against an item's truth masks."""

    synovium_share: float  # share of positive attribution inside the synovium
    synovium_area: float  # the share a uniform map would give
    doppler_share: float  # inside the synovial Doppler signal (NaN without any)
    doppler_area: float
    pointing_hit: float  # 1/0, NaN without synovium


def localisation(
    heatmap: np.ndarray,
    masks: dict[str, np.ndarray],
    frame_index: np.ndarray,
    box: tuple[int, int, int, int] | None = None,
    tolerance: int = POINTING_TOLERANCE_PX,
) -> Localisation:
    """Localisation figures of a (T, H, W) map at image resolution against the masks of the frames it shows.

    ``box``: the part of the picture the model saw (its ROI crop); the uniform-map reference is spread over it.
    """
    synovium = masks["synovium"][np.asarray(frame_index)]
    doppler = masks["doppler"][np.asarray(frame_index)] & synovium
    if synovium.shape != np.shape(heatmap):
        raise ValueError(f"masks {synovium.shape} do not match the map {np.shape(heatmap)}")
    return Localisation(
        positive_share(heatmap, synovium),
        area_share(synovium, box),
        positive_share(heatmap, doppler),
        area_share(doppler, box),
        pointing_hit(heatmap, synovium, tolerance),
    )


def map_at_image_size(
    model: GradeNet,
    prep: Preprocessing,
    frames: np.ndarray,
    method: str,
    target: int,
    options: ExplainOptions = ExplainOptions(),
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """(map (T, H, W) at the picture's resolution, frame index, box the model saw) for grade ``target``."""
    model = model.eval().to(device)
    x, index = model_input(prep, frames, device)
    maps = compute_maps(GradeProbabilities(model, prep), x, method, target, options).cpu().numpy()
    height, width = np.asarray(frames).shape[-3:-1]
    box = input_box(prep, frames)
    return to_image_size(maps, height, width, box), index, box
