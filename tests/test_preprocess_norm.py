"""Per-image input normalisation: identical in training and prediction, old checkpoints
keep the fixed per-channel normalisation they were trained with."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rascore.train.config import make_config
from rascore.train.data import Arrays, preload, preprocessing_for
from rascore.train.preprocess import MIN_STD, Preprocessing

torch.set_num_threads(1)


def _frames(seed: int = 0, doppler: bool = False) -> np.ndarray:
    """(1, 48, 64, 3) uint8: speckle, a bright line, and an orange patch when ``doppler``."""
    rng = np.random.default_rng(seed)
    grey = rng.gamma(2.0, 30.0, size=(48, 64)).clip(0, 200)
    grey[30:32] = 245
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if doppler:
        rgb[18:26, 28:36] = (250, 150, 20)
    return rgb.astype(np.uint8)[None]


def _prep(modality: str = "SGS", **overrides) -> Preprocessing:
    config = make_config(modality, "fast", "cpu", size=(32, 40), weights="none", roi="none", **overrides)
    return preprocessing_for(config)


def test_new_configs_normalise_per_image_and_save_it():
    prep = _prep()
    assert prep.norm == "image" and Preprocessing.from_dict(prep.to_dict()) == prep
    assert _prep(norm="dataset").norm == "dataset"
    with pytest.raises(ValueError, match="unknown normalisation"):
        _prep(norm="robust")


def test_old_checkpoint_without_norm_keeps_the_dataset_normalisation():
    old = _prep().to_dict()
    (
        old.pop("norm"),
        old.pop("roi_within"),
    )  # what a checkpoint saved before the scanner-robustness changes holds
    prep = Preprocessing.from_dict(old)
    assert prep.norm == "dataset" and prep.roi_within == "frame"
    from rascore.train.config import TrainConfig

    args = make_config("SGS", "fast", "cpu").to_dict()
    for key in ("augmentation", "norm", "roi_within"):
        args.pop(key)
    before = TrainConfig.from_dict(args)  # a retrain from an old checkpoint's args
    assert (before.augmentation, before.norm, before.roi_within) == ("basic", "dataset", "frame")
    x = prep.batch(prep.array(_frames()).unsqueeze(0))
    mean = torch.tensor(prep.mean).view(1, 3, 1, 1)
    std = torch.tensor(prep.std).view(1, 3, 1, 1)
    assert torch.allclose(prep.normalise(x), (x - mean) / std, atol=1e-5)  # the formula of before


def test_per_image_normalisation_removes_gain_and_contrast_and_keeps_colour():
    prep = _prep("SPD")
    frames = _frames(doppler=True)
    x = prep.batch(prep.array(frames).unsqueeze(0))
    out = prep.normalise(x)
    grey = out.mean(dim=1)
    assert abs(float(grey.mean())) < 1e-4 and abs(float(grey.std(unbiased=False)) - 1) < 1e-3
    # another gain and contrast: the same network input
    brighter = (x * 0.7 + 0.1).clamp(0, 1)
    assert torch.allclose(prep.normalise(brighter), out, atol=1e-4)
    # Doppler colour is kept: the three channels still differ on the coloured patch, grey pixels do not
    patch = out[0, :, 12:16, 18:22]
    assert float((patch[0] - patch[2]).min()) > 1.0
    assert torch.allclose(out[0, 0, 2:5, 2:5], out[0, 2, 2:5, 2:5], atol=1e-5)
    # a blank image is not blown up
    blank = prep.normalise(torch.full_like(x, 0.5))
    assert float(blank.abs().max()) == 0.0 and MIN_STD > 0


def test_training_and_prediction_feed_the_network_the_same_tensor():
    """The tensor the network gets in a training step (no augmentation), in validation and in
    rascore.predict for the same image is the same, for both normalisations."""
    from rascore.predict import LoadedModel, predict_frames
    from rascore.train.loop import evaluate, make_model, parameter_groups, train_one_epoch

    frames = _frames(3)
    inputs = {}
    for norm in ("image", "dataset"):
        config = make_config(
            "SGS", "fast", "cpu", size=(32, 40), weights="none", net_width=4, batch_size=1, norm=norm
        )
        prep = preprocessing_for(config)
        data = preload([{"item_id": 1, "target": 2, "media_sha256": "x"}], lambda _: frames, prep)
        assert isinstance(data, Arrays)
        model, _ = make_model(config)
        seen: list[torch.Tensor] = []
        model.register_forward_pre_hook(lambda _m, args, seen=seen: seen.append(args[0].detach().clone()))
        optimizer = torch.optim.SGD(parameter_groups(model, 0.0), lr=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        train_one_epoch(
            model, optimizer, scheduler, data, prep, config, torch.device("cpu"), torch.Generator(), None
        )
        evaluate(model, data, prep, torch.device("cpu"))
        loaded = LoadedModel("SGS", 1, 1, model, prep, "SH")
        predict_frames(loaded, frames)
        trained, validated, predicted = seen
        assert trained.shape == (1, 3, 32, 40)
        assert torch.equal(trained, predicted) and torch.equal(validated, predicted)
        inputs[norm] = predicted
    # and the two normalisations do differ (the check can fail)
    assert not torch.allclose(inputs["image"], inputs["dataset"], atol=1e-2)
