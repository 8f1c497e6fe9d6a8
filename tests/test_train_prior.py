"""Probabilities corrected for class-balanced sampling, and the joint crop's fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rascore.nets import build_model
from rascore.train.checkpoint import make_checkpoint, model_from_checkpoint
from rascore.train.preprocess import Preprocessing
from rascore.train.prior import PriorCorrection, adjust, sampling_prior


def test_sampling_prior_is_what_balanced_batches_draw():
    """balanced_batches weights 1/count: every grade present equally often, absent grades never."""
    from rascore.train.data import balanced_batches

    y = torch.tensor([0] * 60 + [1] * 30 + [3] * 10)
    drawn = torch.cat(
        [
            torch.tensor(b)
            for _ in range(30)
            for b in balanced_batches(y, 20, torch.Generator().manual_seed(_))
        ]
    )
    shares = torch.bincount(y[drawn], minlength=4).double() / len(drawn)
    assert np.allclose(shares.numpy(), sampling_prior([60, 30, 0, 10]), atol=0.03)
    prior = PriorCorrection((60, 30, 0, 10))
    assert prior.ratio.tolist() == pytest.approx([1.8, 0.9, 1.0, 0.3])


def test_adjustment_recovers_the_training_prior():
    """A classifier trained towards the uniform sampling prior, corrected, is Bayes at the training prior."""
    counts = (70, 20, 8, 2)
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=20000, p=np.array(counts) / sum(counts))
    x = y + rng.normal(0, 0.9, size=y.size)
    # exact posterior under a uniform prior (what balanced sampling trains towards)
    like = np.exp(-0.5 * ((x[:, None] - np.arange(4)[None]) / 0.9) ** 2)
    uniform = like / like.sum(1, keepdims=True)
    corrected = adjust(uniform, PriorCorrection(counts).ratio)
    from rascore.evaluate.calibration import expected_calibration_error

    before, after = expected_calibration_error(y, uniform), expected_calibration_error(y, corrected)
    assert after < 0.02 < before
    assert (corrected.argmax(1) == y).mean() > (uniform.argmax(1) == y).mean()
    assert np.allclose(corrected.sum(1), 1)


@pytest.mark.parametrize("head", ["softmax", "ordinal"])
def test_checkpoint_prior_corrects_probabilities_and_old_checkpoints_stay_raw(head):
    model = build_model("slim_resnet18", head, width=4)
    prep = Preprocessing(16, 16, False, 1, 1, channels=3, mean=(0.5,) * 3, std=(0.25,) * 3)
    prior = PriorCorrection((50, 30, 15, 5))
    kwargs = dict(
        modality="SPD",
        prep=prep,
        args={},
        metrics={},
        snapshot={},
        pretrained=None,
        arch_options={"width": 4},
    )
    new, _ = model_from_checkpoint(make_checkpoint(model, prior=prior.to_dict(), **kwargs))
    old, _ = model_from_checkpoint(make_checkpoint(model, **kwargs))  # no stored prior
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        raw = old.probabilities(x).numpy()
        assert np.allclose(new.probabilities(x, adjusted=False).numpy(), raw, atol=1e-6)
        assert np.allclose(new.probabilities(x).numpy(), adjust(raw, prior.ratio), atol=1e-5)
        assert not np.allclose(new.probabilities(x).numpy(), raw, atol=1e-3)


def test_card_says_whether_probabilities_are_corrected():
    from rascore.train.card import render_card

    base = {"modality": "SPD", "metrics": {}, "labels": {"item": "EOSS"}}
    assert "predates the stored training prior" in render_card(base, 1)
    card = render_card({**base, "prior": PriorCorrection((5, 3, 1, 1)).to_dict()}, 1)
    assert "Corrected for class-balanced sampling" in card and "0.50, 0.30, 0.10, 0.10" in card


def test_weak_joint_fit_falls_back_to_the_full_frame():
    """A frame with a clear joint is cropped; flat speckle without bone falls back, and says so."""
    from rascore.train.roi import CROP, FALLBACK, joint_crop
    from tests.test_train import tiny_frames

    rng = np.random.default_rng(4)
    joint = tiny_frames(rng, 2, 0, height=96, width=128)[0]
    box, mode, _ = joint_crop(joint, (0.5, 0.5))
    assert mode == CROP and box[2:] == (48, 64)
    flat = rng.integers(60, 120, size=(96, 128, 1)).repeat(3, axis=2).astype(np.uint8)
    box, mode, _ = joint_crop(flat, (0.5, 0.5))
    assert mode == FALLBACK and box == (0, 0, 96, 128)
    prep = Preprocessing(24, 32, False, 1, 1, channels=1, mean=(0.5,) * 3, std=(0.25,) * 3, roi=(0.5, 0.5))
    assert prep.array_and_crop(flat)[1] == FALLBACK and prep.box(flat) == (0, 0, 96, 128)
    assert prep.array_and_crop(joint)[1] == CROP
    assert Preprocessing(24, 32, False, 1, 1, 1, (0.5,) * 3, (0.25,) * 3).array_and_crop(joint)[1] == "none"


def test_explanations_map_back_through_the_box_the_model_really_saw():
    """A fallback frame's attribution covers the whole picture, a cropped one only the joint box."""
    from rascore.explain.attribution import input_box
    from tests.test_train import tiny_frames

    rng = np.random.default_rng(4)
    joint = tiny_frames(rng, 2, 0, height=96, width=128)[0]
    flat = rng.integers(60, 120, size=(96, 128, 1)).repeat(3, axis=2).astype(np.uint8)
    prep = Preprocessing(24, 32, False, 1, 1, channels=1, mean=(0.5,) * 3, std=(0.25,) * 3, roi=(0.5, 0.5))
    assert input_box(prep, flat) == (0, 0, 96, 128)
    assert input_box(prep, joint) == prep.box(joint) and input_box(prep, joint)[2:] == (48, 64)
