"""Explanations that can find dark synovium: the IG baseline, Grad-CAM on logits, the deep clip stage, cache keys."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from rascore.explain import (
    ExplainOptions,
    Explainer,
    GradeProbabilities,
    GradeScores,
    attribute,
    compute_maps,
    grade_scores,
    ig_baseline,
    model_input,
)
from rascore.nets.heads import grade_probabilities
from tests.test_explain import add_item, picture, prep_for, publish_model, trained_free_model

torch.set_num_threads(2)

SPOT = (slice(12, 20), slice(16, 24))  # the dark region, in the 32x40 model input


class DarkSpotNet(nn.Module):
    """Grade 1's logit grows as the spot gets darker than the rest of the picture (a hand-made detector)."""

    head = "softmax"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = x[:, 0]
        inside = torch.zeros_like(grey[0], dtype=torch.bool)
        inside[SPOT] = True
        contrast = grey[:, ~inside].mean(dim=1) - grey[:, inside].mean(dim=1)
        zeros = torch.zeros_like(contrast)
        return torch.stack([zeros, 2.0 * contrast, zeros, zeros], dim=1)

    def grade_probabilities(self, logits: torch.Tensor, adjusted: bool = True) -> torch.Tensor:
        """As ``GradeNet.grade_probabilities`` for a softmax head with no stored training prior."""
        return torch.softmax(logits.float(), dim=1)


def dark_spot_picture() -> np.ndarray:
    """Mid-grey speckled tissue (about 0.5) with a nearly black spot (0.02), at the model's input size."""
    rng = np.random.default_rng(0)
    grey = (128 + rng.normal(0, 12, size=(32, 40))).clip(60, 200)
    grey[SPOT] = 5
    return np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)[None]


@pytest.mark.parametrize("baseline", ["blur", "tissue"])
def test_integrated_gradients_credit_a_dark_region_that_the_black_baseline_cannot(baseline):
    prep = prep_for(False)
    net = GradeProbabilities(DarkSpotNet(), prep)
    x, _ = model_input(prep, dark_spot_picture())
    dark = compute_maps(net, x, "ig", 1, ExplainOptions(ig_steps=16, ig_baseline=baseline))[0]
    black = compute_maps(net, x, "ig", 1, ExplainOptions(ig_steps=16, ig_baseline="black"))[0]
    positive = dark.clamp_min(0).sum()
    assert float(dark[SPOT].sum()) > 0.5 * float(positive) > 0  # most of the evidence lies in the spot
    # From black the spot differs by 0.02 only: its attribution is about nothing, the bright tissue takes it all.
    assert abs(float(black[SPOT].sum())) < 0.05 * float(black.abs().sum())
    assert float(black.clamp_min(0).sum()) > 0


def test_baselines_are_shaped_like_the_input_and_keep_what_they_should():
    x = torch.full((1, 3, 4, 16, 20), 0.5)
    x[:, :, :, :4] = 0.0  # a black band outside the tissue
    assert torch.equal(ig_baseline(x, ExplainOptions(ig_baseline="black")), torch.zeros_like(x))
    tissue = ig_baseline(x, ExplainOptions(ig_baseline="tissue"))
    assert tissue.shape == x.shape and torch.allclose(tissue, torch.full_like(x, 0.5))
    flat = torch.full((1, 1, 16, 20), 0.3)
    assert torch.allclose(ig_baseline(flat, ExplainOptions(ig_baseline="blur")), flat, atol=1e-6)
    blurred = ig_baseline(x, ExplainOptions(ig_baseline="blur"))
    assert blurred.shape == x.shape and 0 < float(blurred[0, 0, 0, 2, 10]) < 0.5  # the band's edge softened
    assert torch.allclose(blurred[:, :, 0], blurred[:, :, 3])  # frames are not mixed (all equal here)
    with pytest.raises(ValueError, match="baseline"):
        ExplainOptions(ig_baseline="grey")
    with pytest.raises(ValueError, match="stage"):
        ExplainOptions(gradcam_stage="middle")


@pytest.mark.parametrize("baseline", ["blur", "tissue", "black"])
def test_integrated_gradients_complete_from_their_baseline(baseline):
    """IG completeness: the map sums to p(grade | picture) - p(grade | baseline)."""
    model = trained_free_model("slim_resnet18", seed=3)
    prep = prep_for(False)
    net = GradeProbabilities(model, prep)
    x, _ = model_input(prep, picture(2))
    options = ExplainOptions(ig_steps=48, ig_baseline=baseline)
    with torch.no_grad():
        delta = net(x)[0] - net(ig_baseline(x, options))[0]
    target = int(delta.abs().argmax())
    maps = compute_maps(net, x, "ig", target, options)
    assert abs(float(maps.sum()) - float(delta[target])) < 0.005 + 0.05 * abs(float(delta[target]))


def test_gradcam_reads_the_logit_so_a_saturated_prediction_still_has_a_map():
    model = trained_free_model("slim_resnet18", seed=2)
    prep = prep_for(False)
    x, _ = model_input(prep, picture(11))
    net = GradeProbabilities(model, prep)
    target = int(net(x).argmax())
    before = compute_maps(net, x, "gradcam", target)[0]
    assert float(before.sum()) > 0
    with torch.no_grad():  # the same network, its last layer 10^4 times larger: p(target) is exactly 1
        model.backbone.fc.weight.mul_(1e4)
        model.backbone.fc.bias.mul_(1e4)
    assert float(net(x).detach()[0, target]) == 1.0
    from captum.attr import LayerGradCam

    layer = dict(model.named_modules())["backbone.layers.1"]
    on_probability = LayerGradCam(net, layer).attribute(x, target=target, relu_attributions=True)
    assert float(on_probability.abs().sum()) == 0.0  # what Grad-CAM of the probability would show
    after = compute_maps(net, x, "gradcam", target)[0]
    assert float(after.sum()) > 0
    assert torch.allclose(
        after / after.sum(), before / before.sum(), atol=1e-4
    )  # the logit scales, the map not


def test_ordinal_grade_scores_are_the_logits_of_the_cumulative_tasks():
    z = torch.tensor([[1.5, -0.5, -2.0], [3.0, 2.0, 1.0]])
    scores = grade_scores(z, "ordinal")
    assert scores.shape == (2, 4)
    assert torch.allclose(scores[:, 1:] - scores[:, :-1], z)  # grade g+1 over g: the log-odds of P(grade > g)
    # softmax of the scores is the grade distribution when the three tasks are independent
    p = torch.sigmoid(z)
    independent = torch.stack(
        [torch.prod(torch.where(torch.arange(3) < g, p, 1 - p), dim=1) for g in range(4)], 1
    )
    assert torch.allclose(torch.softmax(scores, 1), independent / independent.sum(1, keepdim=True), atol=1e-6)
    assert torch.equal(grade_scores(z[:, :3], "softmax"), z[:, :3])
    model = trained_free_model("slim_resnet18", "ordinal", seed=1)
    prep = prep_for(False)
    x, _ = model_input(prep, picture(1))
    with torch.no_grad():
        out = model(prep.normalise(x))
        assert torch.allclose(GradeScores(model, prep)(x), grade_scores(out, "ordinal"))
        assert torch.allclose(GradeProbabilities(model, prep)(x), grade_probabilities(out, "ordinal"))


def test_clip_gradcam_at_the_deepest_stage_is_upsampled_to_every_frame():
    model = trained_free_model("r3d_18", seed=2)
    prep = prep_for(True, frames=4)
    clip = picture(5, frames=8)
    deep = attribute(model, prep, clip, "gradcam", options=ExplainOptions(gradcam_stage="deep"))
    assert deep.layer == "backbone.layer4"  # time 4 -> 1 there
    assert deep.maps.shape == (4, 32, 40) and np.isfinite(deep.maps).all() and deep.maps.sum() > 0
    frames = attribute(
        trained_free_model("frames_slim_resnet18", seed=1),
        prep,
        clip,
        "gradcam",
        options=ExplainOptions(gradcam_stage="deep"),
    )
    assert frames.layer == "backbone.encoder.layers.3" and frames.maps.shape == (4, 32, 40)


def test_cache_keys_differ_by_baseline_and_stage():
    keys = {ExplainOptions(ig_baseline=b).key("ig") for b in ("blur", "tissue", "black")}
    keys.add(ExplainOptions(ig_blur_sigma=0.3).key("ig"))
    assert len(keys) == 4
    assert ExplainOptions(gradcam_stage="deep").key("gradcam") != ExplainOptions().key("gradcam")
    assert ExplainOptions(ig_baseline="black").key("gradcam") == ExplainOptions().key("gradcam")


def test_a_baseline_is_never_served_from_another_baselines_cache(project, capsys):
    from rascore.cli import main

    publish_model(project, "SGS", "slim_resnet18", 0, prep_for(False))
    item = add_item(project, picture(12), "SGS")
    explainer = Explainer(project, options=ExplainOptions(ig_steps=4))
    blur = explainer.item(item, "ig")
    black = explainer.item(item, "ig", options=ExplainOptions(ig_steps=4, ig_baseline="black"))
    assert not blur.cached and not black.cached
    assert black.paths["heatmap"] != blur.paths["heatmap"] and not np.allclose(black.heatmap, blur.heatmap)
    assert "black" in black.options["setting"] and "blurred" in blur.options["setting"]
    assert explainer.item(item, "ig").cached
    again = explainer.item(item, "ig", options=ExplainOptions(ig_steps=4, ig_baseline="black"))
    assert again.cached and np.array_equal(again.heatmap, black.heatmap)

    args = ["explain", "--item", str(item), "--method", "ig", "--steps", "4", "--json"]
    assert main(args + ["--baseline", "tissue"]) == 0
    tissue = json.loads(capsys.readouterr().out)
    assert not tissue["cached"] and tissue["settings_key"] == "s4-tissue" and "tissue" in tissue["setting"]
    assert main(args + ["--baseline", "black"]) == 0
    assert json.loads(capsys.readouterr().out)["cached"]  # the library's black entry
    assert main(["explain", "--item", str(item), "--method", "gradcam", "--stage", "deep", "--json"]) == 0
    deep = json.loads(capsys.readouterr().out)
    assert deep["layer"] == "backbone.layers.3" and deep["settings_key"] == "logit-deep"


# --- which method to trust ---------------------------------------------------------------------


def figures(
    code: str, shares: list[float], finals: list[float], uniform: float = 0.04, randomised: float = 0.04
):
    from rascore.explain.trust import VariantFigures

    return [
        VariantFigures(f"M{i} v1", code, share, uniform, randomised, final)
        for i, (share, final) in enumerate(zip(shares, finals))
    ]


def test_trust_verdict_follows_the_numbers():
    from rascore.explain.trust import trust_verdict

    occlusion = figures("occlusion", [0.17, 0.22, 0.15], [0.02, 0.2, 0.04])
    ig = figures("ig", [0.09, 0.06, 0.10], [0.67, 0.7, 0.6])  # localises, but survives randomisation
    line = trust_verdict(occlusion + ig)
    assert line.startswith("Trust Occlusion: on 3 of 3 models") and "0.67, 0.70, 0.60" in line
    # the same figures with the roles swapped give the other answer
    swapped = figures("occlusion", [0.17, 0.22, 0.15], [0.67, 0.7, 0.6]) + figures(
        "ig", [0.09, 0.06, 0.10], [0.02, 0.2, 0.04]
    )
    assert trust_verdict(swapped).startswith("Trust Integrated Gradients (blurred baseline): on 3 of 3")
    # a map below the randomised model's share does not localise, however it randomises
    weak = figures("gradcam", [0.03, 0.03, 0.03], [0.0, 0.0, 0.0])
    assert trust_verdict(weak + ig).startswith("Trust none of these maps")
    # a clip-only variant trusted on its 2 models does not beat one trusted on all 4
    deep = figures("gradcam-deep", [0.3, 0.3], [0.1, 0.1])
    both = figures("occlusion", [0.1] * 4, [0.1] * 4)
    assert trust_verdict(deep + both).startswith("Trust Occlusion: on 4 of 4")
    assert "not run" in trust_verdict(figures("ig", [0.2], [float("nan")]))
