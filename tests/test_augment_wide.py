"""The wide augmentation: nothing that changes the label.

Doppler pixels keep their channel ratios (no hue shift), and the geometry never moves any part of
the input out of the frame, so a synovium reaching the crop's edges is never cut.
"""

from __future__ import annotations

import pytest
import torch

from rascore.train.augment import Augmentation, Geometry, WideAugmentation, make_augmentation


def _doppler_batch(b: int = 8, h: int = 48, w: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Speckle-grey images with an orange and a red Doppler patch; the patches' interior mask."""
    g = torch.Generator().manual_seed(1)
    grey = torch.rand((b, 1, h, w), generator=g) * 0.6
    x = grey.repeat(1, 3, 1, 1)
    x[:, :, 10:30, 10:30] = torch.tensor([0.95, 0.55, 0.08]).view(1, 3, 1, 1)
    x[:, :, 20:40, 36:56] = torch.tensor([0.7, 0.12, 0.05]).view(1, 3, 1, 1)
    inside = torch.zeros((h, w), dtype=torch.bool)
    inside[13:27, 13:27] = True  # 3 px from the patch edge: the blur reads only the patch
    inside[23:37, 39:53] = True
    return x, inside


def test_intensity_changes_keep_doppler_hue_ratios():
    x, inside = _doppler_batch()
    out = WideAugmentation().intensity(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    before, after = x[:, :, inside], out[:, :, inside]  # B, 3, pixels
    # every Doppler pixel keeps R:G:B exactly (one factor for all channels), though its level changed
    ratio_before = before / before[:, :1]
    ratio_after = after / after[:, :1]
    assert torch.allclose(ratio_after, ratio_before, rtol=1e-4, atol=1e-5)
    assert (after - before).abs().max() > 0.05  # the intensity did change
    # the basic set's contrast (offset per channel) does not keep the ratios: the check can fail
    basic = Augmentation(degrees=0, translate=0, scale=(1, 1))(x, torch.Generator().manual_seed(0))
    assert not torch.allclose(basic[:, :, inside] / basic[:, :1, inside], ratio_before, rtol=1e-3)


def test_greyscale_and_clips_keep_shape_and_range():
    g = torch.Generator().manual_seed(3)
    for shape in ((4, 1, 32, 40), (4, 3, 5, 32, 40), (4, 1, 5, 32, 40)):
        x = torch.rand(shape, generator=g)
        out = WideAugmentation()(x, torch.Generator().manual_seed(0))
        assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
        again = WideAugmentation()(x, torch.Generator().manual_seed(0))
        assert torch.equal(out, again)  # one generator, one draw


def _kept(augment_geometry, mask: torch.Tensor, draws: int) -> torch.Tensor:
    """Share of the mask's mass still in the frame after each draw, allowing for the scale change."""
    b = draws
    x = mask.expand(b, 1, *mask.shape).contiguous()
    geometry = Geometry()
    params = geometry.draw(b, torch.Generator().manual_seed(7))
    theta, used = geometry.theta(params, *mask.shape)
    out = augment_geometry(geometry, x, theta)
    area = used["scale_x"] * used["scale_y"]
    return out.sum(dim=(1, 2, 3)) / (mask.sum() * area)


def test_geometry_never_cuts_a_synovium_that_reaches_the_edges():
    """A synthetic synovium mask filling the whole input (2 px margin): every draw keeps it all."""
    h, w = 96, 128
    mask = torch.zeros((h, w))
    mask[2:-2, 2:-2] = 1.0
    kept = _kept(lambda geo, x, theta: geo.apply(x, theta), mask, 400)
    assert kept.min() > 0.985, kept.min()
    # and the geometry did vary: zoom, aspect and shift
    params = Geometry().draw(400, torch.Generator().manual_seed(7))
    _, used = Geometry().theta(params, h, w)
    assert used["scale_x"].min() < 0.8 and (used["scale_x"] / used["scale_y"]).std() > 0.05
    assert used["shift_x"].abs().max() > 0.1


def test_basic_augmentation_can_cut_the_edges():
    """The same check fails for the basic set (zoom up to 1.1, free shift): the test can fail."""
    h, w = 96, 128
    mask = torch.zeros((1, 1, h, w))
    mask[..., 2:-2, 2:-2] = 1.0
    out = Augmentation(brightness=0, contrast=0)(
        mask.expand(200, 1, h, w).contiguous(), torch.Generator().manual_seed(7)
    )
    assert (out.sum(dim=(1, 2, 3)) / mask.sum()).min() < 0.9


def test_make_augmentation_names():
    assert isinstance(make_augmentation("wide"), WideAugmentation)
    assert isinstance(make_augmentation("basic"), Augmentation)
    assert make_augmentation("none") is None
    with pytest.raises(ValueError, match="unknown augmentation"):
        make_augmentation("strong")
