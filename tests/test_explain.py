"""Explanations: map shapes for stills and clips, pictures written, the cache, the CLI, the faithfulness helpers."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from rascore.explain import (
    ExplainCache,
    ExplainOptions,
    Explainer,
    GradeProbabilities,
    attribute,
    compute_maps,
    frame_importance,
    gradcam_layer,
    input_attributions,
    model_input,
    to_image_size,
)
from rascore.explain.faithfulness import (
    area_share,
    cascade_blocks,
    cascading_randomisation,
    infidelity_score,
    localisation,
    pointing_hit,
    positive_share,
    randomised_copy,
    sensitivity_score,
    spearman,
)
from rascore.explain.service import ModelRef
from rascore.nets import build_model
from rascore.train.preprocess import Preprocessing

torch.set_num_threads(2)

H, W = 48, 64  # decoded picture size of the hand-made items


def prep_for(
    dynamic: bool,
    channels: int = 3,
    frames: int = 4,
    cache_frames: int = 8,
    roi: tuple[float, float] | None = None,
) -> Preprocessing:
    """A small preprocessing: 32x40 inputs."""
    return Preprocessing(
        32,
        40,
        dynamic,
        frames if dynamic else 1,
        cache_frames if dynamic else 1,
        channels,
        (0.45, 0.45, 0.45),
        (0.25, 0.25, 0.25),
        roi=roi,
    )


def picture(seed: int, frames: int = 1) -> np.ndarray:
    """Speckle with a bright bone line and an orange blob that moves from frame to frame."""
    rng = np.random.default_rng(seed)
    out = np.empty((frames, H, W, 3), np.uint8)
    for t in range(frames):
        grey = rng.gamma(2.0, 30.0, size=(H, W)).clip(0, 200)
        grey[36:38] = 240
        rgb = np.repeat(grey[..., None], 3, axis=2)
        x0 = 10 + 3 * t
        rgb[24:32, x0 : x0 + 10] = (250, 140, 20)
        out[t] = rgb.astype(np.uint8)
    return out


def trained_free_model(arch: str, head: str = "softmax", seed: int = 0):
    """A random tiny network; BatchNorm scales drawn around 1 (not the zero residual init), so no map is all zero."""
    torch.manual_seed(seed)
    model = build_model(arch, head, width=4)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    return model.eval()


SMALL = ExplainOptions(ig_steps=8, occlusion_window=8, occlusion_stride=8)


def publish_model(project, modality: str, arch: str, seed: int, prep: Preprocessing):
    """Register an (untrained) tiny model as the next version of ``modality`` and activate it."""
    from rascore.train.checkpoint import make_checkpoint
    from rascore.train.versions import publish

    model = trained_free_model(arch, seed=seed)
    checkpoint = make_checkpoint(
        model,
        modality=modality,
        prep=prep,
        args={"seed": seed},
        metrics={},
        snapshot={},
        pretrained=None,
        arch_options={"width": 4, "pooling": "attention"},
    )
    return publish(project, checkpoint, lambda version: f"# {modality} v{version}\n", activate="always")


def add_item(project, frames: np.ndarray, modality: str) -> int:
    """Store decoded frames in the media cache and an item for them."""
    store = project.store
    sha = hashlib.sha256(frames.tobytes() + modality.encode()).hexdigest()
    project.media.write_cache(sha, frames)
    t = frames.shape[0]
    store.add_media(
        sha,
        format="png" if t == 1 else "mp4",
        kind="image" if t == 1 else "clip",
        nbytes=frames.nbytes,
        frames=t,
        height=H,
        width=W,
        fps=15.0 if t > 1 else None,
    )
    return store.add_item(
        media_sha256=sha,
        modality=modality,
        cohort="test1",
        frames=t,
        fps=15.0 if t > 1 else None,
        patient="p1",
        source="import",
    )


# --- maps -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ig", "gradcam", "occlusion"])
def test_still_maps_have_input_then_image_resolution(method):
    model = trained_free_model("slim_resnet18")
    prep = prep_for(False)
    result = attribute(model, prep, picture(0), method, options=SMALL)
    assert result.maps.shape == (1, 32, 40)
    assert np.isfinite(result.maps).all() and np.abs(result.maps).sum() > 0
    assert result.target == result.predicted == int(np.argmax(result.probabilities))
    assert abs(sum(result.probabilities) - 1) < 1e-5
    assert list(result.frame_index) == [0] and result.box == (0, 0, H, W)
    assert to_image_size(result.maps, H, W, result.box).shape == (1, H, W)
    if method == "gradcam":
        assert result.layer == "backbone.layers.1" and (result.maps >= 0).all()  # 4x5 cells at 32x40


def test_chosen_target_is_explained_and_checked():
    model = trained_free_model("slim_resnet18")
    prep = prep_for(False)
    predicted = attribute(model, prep, picture(1), "ig", options=ExplainOptions(ig_steps=8))
    other = (predicted.predicted + 1) % 4
    chosen = attribute(model, prep, picture(1), "ig", target=other, options=ExplainOptions(ig_steps=8))
    assert chosen.target == other and chosen.predicted == predicted.predicted
    assert not np.allclose(chosen.maps, predicted.maps)
    with pytest.raises(ValueError, match="target grade"):
        attribute(model, prep, picture(1), "ig", target=7)


@pytest.mark.parametrize("head", ["softmax", "ordinal"])
def test_integrated_gradients_attribute_the_grade_probability(head):
    """IG completeness: the map sums to p(grade | picture) - p(grade | black), for either head."""
    model = trained_free_model("slim_resnet18", head, seed=3)
    prep = prep_for(False)
    net = GradeProbabilities(model, prep)
    x, _ = model_input(prep, picture(2))
    with torch.no_grad():
        delta = net(x)[0] - net(torch.zeros_like(x))[0]
    target = int(delta.abs().argmax())
    maps = compute_maps(net, x, "ig", target, ExplainOptions(ig_steps=48, ig_baseline="black"))
    assert abs(float(maps.sum()) - float(delta[target])) < 0.01 + 0.1 * abs(float(delta[target]))


def test_greyscale_model_attributes_one_channel():
    model = trained_free_model("slim_resnet18")
    prep = prep_for(False, channels=1)
    net = GradeProbabilities(model, prep)
    x, _ = model_input(prep, picture(3))
    assert x.shape == (1, 1, 32, 40)
    for method in ("ig", "gradcam", "occlusion"):
        attr = input_attributions(net, x, method, 0, SMALL)
        assert attr.shape == x.shape


def test_frame_model_gives_one_map_per_frame_that_changes():
    model = trained_free_model("frames_slim_resnet18", seed=1)
    prep = prep_for(True)
    clip = picture(4, frames=10)
    for method in ("gradcam", "ig", "occlusion"):
        result = attribute(model, prep, clip, method, options=SMALL)
        assert result.maps.shape == (4, 32, 40)
        assert list(result.frame_index) == sorted(result.frame_index)
        assert 0 <= min(result.frame_index) and max(result.frame_index) <= 9
        differences = [np.abs(result.maps[t] - result.maps[0]).max() for t in range(1, 4)]
        assert max(differences) > 0, method
    assert result.layer is None
    cam = attribute(model, prep, clip, "gradcam")
    assert cam.layer == "backbone.encoder.layers.1"
    importance = frame_importance(cam.maps)
    assert importance.shape == (4,) and abs(importance.sum() - 1) < 1e-9


def test_gradcam_layer_is_the_deepest_with_enough_cells():
    slim = build_model("slim_resnet18", width=4)
    assert gradcam_layer(slim, size=(256, 256))[0] == "backbone.layers.3"  # 8x8 cells
    assert gradcam_layer(slim, size=(96, 128))[0] == "backbone.layers.2"  # last stage would be 3x4
    assert gradcam_layer(build_model("resnet18"), size=(224, 224))[0] == "backbone.layer4"
    assert gradcam_layer(slim, name="backbone.layers.0")[0] == "backbone.layers.0"
    with pytest.raises(ValueError, match="no layer"):
        gradcam_layer(slim, name="backbone.nope")


def test_video_gradcam_reads_a_layer_that_keeps_time():
    expected = {"r3d_18": "backbone.layer1", "r2plus1d_18": "backbone.layer1", "mc3_18": "backbone.layer4"}
    for arch, layer in expected.items():
        assert gradcam_layer(trained_free_model(arch), frames=4, size=(112, 112))[0] == layer, arch
    model = trained_free_model("r3d_18", seed=2)
    result = attribute(model, prep_for(True, frames=4), picture(5, frames=8), "gradcam")
    assert result.layer == "backbone.layer1" and result.maps.shape == (4, 32, 40)
    assert np.isfinite(result.maps).all()
    assert max(np.abs(result.maps[t] - result.maps[0]).max() for t in range(1, 4)) > 0


def test_roi_maps_go_back_into_the_crop_box():
    maps = np.ones((2, 8, 10), np.float32)
    out = to_image_size(maps, 48, 64, (10, 20, 16, 20))
    assert out.shape == (2, 48, 64)
    assert np.allclose(out[:, 10:26, 20:40], 1) and out.sum() == pytest.approx(2 * 16 * 20)


# --- explainer, pictures, cache ----------------------------------------------------------------


def test_item_explanation_writes_overlay_and_is_cached_until_a_new_version(project, monkeypatch):
    prep = prep_for(False)
    publish_model(project, "SPD", "slim_resnet18", 0, prep)
    item = add_item(project, picture(6), "SPD")

    first = Explainer(project).item(item, "gradcam")
    assert not first.cached and first.version == 1 and first.modality == "SPD"
    assert first.heatmap.shape == (1, H, W) and first.importance is None
    overlay = Image.open(first.paths["overlay"])
    assert overlay.format == "PNG" and overlay.width > W and overlay.height > H

    fresh = Explainer(project)  # a new process would be the same: nothing loaded
    with monkeypatch.context() as patch:
        patch.setattr(ModelRef, "load", lambda self: pytest.fail("a cached view loaded the model"))
        second = fresh.item(item, "gradcam")
    assert second.cached
    assert second.paths == first.paths and second.target == first.target
    assert np.array_equal(second.heatmap, first.heatmap)

    chosen = fresh.item(item, "gradcam", target=(first.target + 1) % 4)
    assert not chosen.cached and chosen.target == (first.target + 1) % 4
    assert fresh.item(item, "gradcam").cached  # the predicted grade's entry is still the same

    publish_model(project, "SPD", "slim_resnet18", 1, prep)
    third = Explainer(project).item(item, "gradcam")
    assert not third.cached and third.version == 2 and third.model_key != first.model_key
    assert Explainer(project).item(item, "gradcam", version=1).cached  # old version still answerable

    removed = Explainer(project).prune()
    assert removed == []  # both versions are registered: nothing is stale


def test_clip_explanation_has_importance_curve_and_animation(project):
    prep = prep_for(True, frames=4, cache_frames=8)
    publish_model(project, "DPD", "frames_slim_resnet18", 0, prep)
    item = add_item(project, picture(7, frames=12), "DPD")
    result = Explainer(project).item(item, "gradcam")
    assert result.heatmap.shape == (4, H, W) and result.n_frames == 12
    assert len(result.importance) == 4 and abs(sum(result.importance) - 1) < 1e-6
    import imageio.v3 as iio

    animation = iio.imread(result.paths["animation"], index=None)
    assert animation.shape[0] == 4
    assert Image.open(result.paths["importance"]).format == "PNG"
    overlay = Image.open(result.paths["overlay"])
    assert overlay.width > 4 * W // 2  # frames tiled side by side
    again = Explainer(project, use_cache=False, animation="mp4").item(item, "gradcam")
    assert not again.cached and again.paths["animation"].endswith(".mp4")
    assert iio.imread(again.paths["animation"], index=None).shape[0] == 4


def test_cache_store_is_atomic(tmp_path):
    cache = ExplainCache(tmp_path / "explain")

    def broken(folder):
        (folder / "overlay.png").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cache.store("m1", "item1", "ig", "s8", 2, {"a": 1}, broken, predicted=2)
    assert cache.lookup("m1", "item1", "ig", "s8", 2) is None
    assert cache.lookup("m1", "item1", "ig", "s8", None) is None
    assert not [p for p in cache.method_dir("m1", "item1", "ig", "s8").iterdir()]

    def good(folder):
        (folder / "overlay.png").write_bytes(b"png")
        return {"overlay": "overlay.png"}

    folder, meta = cache.store("m1", "item1", "ig", "s8", 2, {"a": 1}, good, predicted=2)
    assert cache.lookup("m1", "item1", "ig", "s8", None) == (folder, meta)
    assert cache.prune(keep=["m2"]) == ["m1"] and cache.lookup("m1", "item1", "ig", "s8", 2) is None


# --- command line ------------------------------------------------------------------------------


def test_cli_explain_item_and_file(project, tmp_path, capsys):
    from rascore.cli import main

    publish_model(project, "SPD", "slim_resnet18", 0, prep_for(False))
    item = add_item(project, picture(8), "SPD")
    out = tmp_path / "figs" / "overlay.png"
    assert (
        main(
            [
                "explain",
                "--item",
                str(item),
                "--method",
                "occlusion",
                "--window",
                "8",
                "--stride",
                "8",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "occlusion" and result["cached"] is False
    assert result["predicted"] == int(np.argmax(result["probabilities"])) == result["target"]
    assert result["paths"]["overlay"] == str(out) and Image.open(out).format == "PNG"
    assert result["importance"] is None and result["seconds"] > 0

    assert (
        main(
            [
                "explain",
                "--item",
                str(item),
                "--method",
                "occlusion",
                "--window",
                "8",
                "--stride",
                "8",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["cached"] is True

    scan = tmp_path / "scan.png"
    Image.fromarray(picture(9)[0]).save(scan)
    assert (
        main(
            [
                "explain",
                str(scan),
                "--modality",
                "SPD",
                "--method",
                "ig",
                "--target",
                "2",
                "--steps",
                "4",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["target"] == 2 and result["modality"] == "SPD" and not result["cached"]

    published = project.settings.models_dir / "SPD" / "v1" / "model.pt"
    assert main(["explain", str(scan), "--checkpoint", str(published), "--method", "gradcam", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["version"] is None and result["modality"] == "SPD" and not result["cached"]

    assert main(["explain", "--method", "ig"]) == 2
    assert main(["explain", "--item", "999", "--method", "ig"]) == 2
    assert "no item 999" in capsys.readouterr().err


# --- faithfulness helpers ----------------------------------------------------------------------


def test_localisation_figures_on_hand_made_maps():
    mask = np.zeros((1, 10, 10), bool)
    mask[0, 2:4, 2:4] = True
    heat = np.zeros((1, 10, 10))
    heat[0, 2, 2], heat[0, 8, 8], heat[0, 5, 5] = 3.0, 1.0, -5.0
    assert positive_share(heat, mask) == pytest.approx(0.75)
    assert area_share(mask) == pytest.approx(0.04)
    assert area_share(mask, (0, 0, 5, 5)) == pytest.approx(4 / 25)
    assert pointing_hit(heat, mask) == 1.0
    heat[0, 9, 9] = 10.0
    assert pointing_hit(heat, mask, tolerance=3) == 0.0
    assert np.isnan(positive_share(heat, np.zeros_like(mask)))
    loc = localisation(heat, {"synovium": mask, "doppler": mask.copy()}, np.array([0]))
    assert loc.synovium_share == pytest.approx(3 / 14) and loc.doppler_share == loc.synovium_share
    assert spearman(np.arange(5), np.arange(5) ** 2) == pytest.approx(1.0)


def test_cascade_goes_from_head_down():
    names = [n for n, _ in cascade_blocks(build_model("slim_resnet18", width=4))]
    assert names[:2] == ["backbone.fc", "backbone.layers.3"] and names[-1] == "backbone.conv1"
    names = [n for n, _ in cascade_blocks(build_model("frames_slim_resnet18", width=4))]
    assert names[:3] == ["backbone.fc", "backbone.attention", "backbone.encoder.layers.3"]
    names = [n for n, _ in cascade_blocks(build_model("r3d_18"))]
    assert names == [
        "backbone.fc",
        "backbone.layer4",
        "backbone.layer3",
        "backbone.layer2",
        "backbone.layer1",
        "backbone.stem",
    ]
    model = build_model("slim_resnet18", width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    randomised = randomised_copy(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # original untouched
    assert not torch.equal(randomised.backbone.fc.weight, model.backbone.fc.weight)


def test_randomisation_and_captum_metrics_run_on_a_small_model():
    model = trained_free_model("slim_resnet18", seed=4)
    prep = prep_for(False)
    steps = cascading_randomisation(model, prep, picture(10), "gradcam", 1, max_steps=3)
    assert [s.step for s in steps] == [0, 1, 2, 3] and steps[0].spearman == 1.0
    assert steps[1].block == "backbone.fc"
    assert all(-1 <= s.spearman_abs <= 1 or np.isnan(s.spearman_abs) for s in steps)
    for method in ("ig", "gradcam"):
        value = infidelity_score(
            model, prep, picture(10), method, 1, ExplainOptions(ig_steps=4), n_perturb_samples=4
        )
        assert np.isfinite(value) and value >= 0
        value = sensitivity_score(
            model, prep, picture(10), method, 1, ExplainOptions(ig_steps=4), n_perturb_samples=2
        )
        assert np.isfinite(value) and value >= 0


def test_explained_input_is_the_predicted_input():
    """Same probabilities as the product's prediction path, and frame_index names the frames the model saw."""
    from rascore.predict import LoadedModel, predict_frames

    model = trained_free_model("frames_slim_resnet18", seed=5)
    prep = prep_for(True, frames=4, cache_frames=8)
    clip = np.stack([np.full((H, W, 3), 10 * t, np.uint8) for t in range(20)])
    loaded = LoadedModel(modality="DPD", version=1, model_version_id=1, model=model, prep=prep, item="EOSS")
    result = attribute(model, prep, clip, "gradcam")
    assert np.allclose(result.probabilities, predict_frames(loaded, clip).probabilities, atol=1e-5)
    x, index = model_input(prep, clip)
    assert list(index) == list(result.frame_index)
    seen = x[0].mean(dim=(0, 2, 3)).numpy() * 255
    assert np.allclose(seen, 10 * np.asarray(index), atol=0.6)
