"""Model factory, grade heads, local pretrained weights and the PD-only colour rule."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from rascore.nets import (
    ARCHS,
    DYNAMIC_ARCHS,
    STATIC_ARCHS,
    ColourFractionRule,
    build_model,
    cumulative_to_grades,
    example_input,
    grade_probabilities,
    head_loss,
    load_weights,
    ordinal_targets,
    resolve_weights,
)

torch.set_num_threads(2)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection or use torch's downloader fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_arch_gives_four_grade_probabilities(arch, no_network):
    """Each architecture maps its input layout to 4 logits (softmax head) and 4 probabilities."""
    x = example_input(arch, 32, 32, frames=4, batch=2)
    net = build_model(arch, "softmax", width=8).eval()
    with torch.no_grad():
        logits, probs = net(x), net.probabilities(x)
    assert logits.shape == (2, 4) and probs.shape == (2, 4)
    assert torch.allclose(probs.sum(1), torch.ones(2), atol=1e-5)
    assert net.dynamic == (x.dim() == 5)


@pytest.mark.parametrize("arch", ["slim_resnet18", "frames_slim_resnet18", "mc3_18"])
def test_ordinal_head_has_three_cumulative_logits(arch):
    x = example_input(arch, 32, 32, frames=4, batch=3)
    net = build_model(arch, "ordinal", width=8).eval()
    with torch.no_grad():
        assert net(x).shape == (3, 3)
        probs = net.probabilities(x)
    assert probs.shape == (3, 4) and torch.allclose(probs.sum(1), torch.ones(3), atol=1e-5)


def test_static_and_dynamic_lists():
    assert {"resnet18", "resnet34", "resnet50", "slim_resnet18"} <= set(STATIC_ARCHS)
    assert {"r3d_18", "mc3_18", "r2plus1d_18", "frames_slim_resnet18"} <= set(DYNAMIC_ARCHS)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("vgg16")


def test_ordinal_targets_are_monotone_and_probabilities_valid():
    grades = torch.tensor([0, 1, 2, 3])
    targets = ordinal_targets(grades)
    assert targets.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert bool((targets[:, :-1] >= targets[:, 1:]).all())  # never "above 2" without "above 1"
    logits = torch.randn(500, 3) * 4  # incoherent tasks included
    probs = grade_probabilities(logits, "ordinal")
    assert bool((probs >= 0).all()) and torch.allclose(probs.sum(1), torch.ones(500), atol=1e-6)
    exact = cumulative_to_grades(torch.tensor([[0.9, 0.6, 0.2]]))
    assert torch.allclose(exact, torch.tensor([[0.1, 0.3, 0.4, 0.2]]))


def test_ordinal_loss_learns_grade_order():
    """Confident, correct cumulative logits give a lower loss than reversed ones."""
    grades = torch.tensor([0, 3])
    good = torch.tensor([[-5.0, -5.0, -5.0], [5.0, 5.0, 5.0]])
    assert head_loss(good, grades, "ordinal") < head_loss(-good, grades, "ordinal")
    assert head_loss(torch.eye(4)[[0, 3]] * 5, grades, "softmax") < 0.1


def test_local_weights_load_and_wrong_file_refused(tmp_path, no_network):
    """A torchvision-format state dict loads everything but the head; another arch's file is refused."""
    from torchvision.models import resnet18

    source = resnet18(weights=None)
    path = tmp_path / "resnet18-local.pth"
    torch.save(source.state_dict(), path)
    net = build_model("resnet18")
    report = load_weights(net, path)
    assert report["loaded"] == report["total"] and len(report["sha256"]) == 64
    assert torch.equal(net.backbone.conv1.weight, source.conv1.weight)
    frames = build_model("frames_resnet18")  # a frame model takes 2D weights into its encoder
    load_weights(frames, path)
    assert torch.equal(frames.backbone.encoder.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    with pytest.raises(ValueError, match="does not fit"):
        load_weights(build_model("r3d_18"), path)
    assert resolve_weights("resnet18", path) == path
    assert resolve_weights("resnet18", "none") is None
    with pytest.raises(FileNotFoundError):
        resolve_weights("resnet18", tmp_path / "missing.pth")


def test_hub_cache_file_is_found_without_download(tmp_path, monkeypatch, no_network):
    """``auto`` takes torchvision's file name from its weights enum and looks only on disk."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert resolve_weights("resnet18", "auto") is None
    (tmp_path / "checkpoints").mkdir()
    target = tmp_path / "checkpoints" / "resnet18-f37072fd.pth"
    torch.save({}, target)
    assert resolve_weights("resnet18", "auto") == target
    assert resolve_weights("slim_resnet18", "auto") is None  # no published weights exist


def _doppler_view(flow_rows: int) -> np.ndarray:
    """Speckle, a bone surface with a V-shaped joint recess at columns 52-76, dark synovium filling
    the recess and rising above it, orange flow in its top ``flow_rows`` rows, a colour bar."""
    rng = np.random.default_rng(0)
    grey = rng.uniform(90, 150, size=(96, 128))
    surface = np.full(128, 60)
    cols = np.arange(52, 77)
    surface[cols] = 60 + (12 - np.abs(cols - 64))
    for c in range(128):
        grey[surface[c] : surface[c] + 2, c] = 250
        grey[surface[c] + 2 :, c] = 20
        if 44 <= c < 84:
            grey[48 : surface[c], c] = 15
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)
    rgb[48 : 48 + flow_rows, 44:84] = (255, 140, 0)
    rgb[20:50, 4:8] = (255, 220, 0)  # a colour bar at the edge must not count
    rgb[5:9, 30:100] = (255, 160, 0)  # a subcutaneous vessel is not synovial flow
    return rgb


def _spots(columns: list[int], rows: int = 3) -> np.ndarray:
    """The Doppler view without flow, plus a ``rows`` x 3 px colour spot at each column in the synovium."""
    rgb = _doppler_view(0)
    for c in columns:
        rgb[52 : 52 + rows, c : c + 3] = (255, 140, 0)
    return rgb


def test_colour_fraction_rule_finds_flow_in_synovium():
    rule = ColourFractionRule()
    doppler = rule.doppler_mask(_doppler_view(4))
    assert doppler[48:52, 44:84].all() and not doppler[20:45, 20:120].any()
    synovium = rule.synovium_mask(_doppler_view(0))
    assert synovium[50:62, 48:80].mean() > 0.9  # the recess and the synovium above it
    assert not synovium[:, :10].any() and not synovium[:20].any() and synovium.mean() < 0.2
    fractions = [rule.fraction(_doppler_view(rows)) for rows in (0, 1, 3, 12)]
    assert fractions[0] == 0 and fractions == sorted(fractions)
    clip = np.stack([_doppler_view(0), _doppler_view(12), _doppler_view(0)])
    assert rule.fraction(clip) == pytest.approx(fractions[3], abs=0.01)  # graded at peak flow


def test_pd_colour_rule_grades_by_the_eoss_spot_and_area_rules():
    """Spots are counted with the EOSS definitions of rascore.scale, not colour-fraction cut-offs."""
    from rascore import scale

    rule = ColourFractionRule()
    # 3 px spots count as single at 0.1 mm/px (0.03 mm2), 3 x 3 px spots as confluent (0.09 mm2 at
    # the default 16 mm / 96 rows); the subcutaneous vessel and the colour bar never count
    single = rule.read(_spots([50, 58, 66], rows=1), mm_per_px=0.1)
    assert (single.n_single, single.n_confluent, single.grade) == (3, 0, 1)
    four = rule.read(_spots([50, 56, 62, 68], rows=1), mm_per_px=0.1)
    assert (four.n_single, four.grade) == (4, 2)  # one single spot too many for grade 1
    assert rule.read(_spots([50, 60])).grade == 1  # two confluent spots
    assert rule.read(_spots([50, 58, 66])).grade == 2  # three confluent spots
    assert rule.read(_doppler_view(0)).grade == 0
    # one confluent sheet: grade 1 by the spot count until it covers more than half the synovium
    sheet = [rule.read(_doppler_view(rows)) for rows in (12, 20)]
    assert sheet[0].coverage < scale.PD_GRADE3_COVERAGE < sheet[1].coverage
    assert [r.grade for r in sheet] == [1, 3]
    readings = [rule.read(_doppler_view(0)), single, rule.read(_spots([50, 58, 66])), sheet[1]]
    probs = rule.probabilities(readings)
    assert np.allclose(probs.sum(1), 1) and list(probs.argmax(1)) == [0, 1, 2, 3]
    clip = np.stack([_doppler_view(0), _doppler_view(20), _doppler_view(0)])
    assert rule.grade(clip) == 3  # graded at peak flow


def test_torch_side_definitions_hold_exactly_the_names_module():
    """rascore.names lists the names without torch; the torch-side tables must hold exactly those."""
    from rascore import names
    from rascore.nets.factory import ARCHS, DYNAMIC_ARCHS
    from rascore.nets.heads import HEADS
    from rascore.train.config import PRESETS

    assert sorted(ARCHS) == sorted(names.ARCH_NAMES)
    assert sorted(DYNAMIC_ARCHS) == sorted((*names.FRAME_ARCHS, *names.VIDEO_ARCHS))
    assert HEADS is names.HEAD_NAMES
    assert sorted(PRESETS) == sorted(names.PRESET_NAMES)


def test_cli_starts_without_torch():
    import subprocess
    import sys

    code = "import sys, rascore.cli; rascore.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
