"""rascore.services.explain: items to pick, the active model, uploads decoded but not stored, pictures at native size."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from rascore.explain import Explainer, ExplainOptions
from rascore.services import explain as view
from rascore.media import MediaError
from rascore.permissions import PermissionDenied
from tests.test_explain import H, W, add_item, picture, prep_for, publish_model

torch.set_num_threads(2)
EXPERT = {"name": "ex", "role": "expert"}
READER = {"name": "re", "role": "reader"}
FAST = ExplainOptions(occlusion_window=8, occlusion_stride=8)


def png(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def test_item_choices_filter_label_and_refuse_a_reader(project):
    still = add_item(project, picture(0), "SGS")
    clip = add_item(project, picture(1, frames=5), "DGS")
    sha = project.store.item(clip)["media_sha256"]  # the same file seen as another modality
    other = project.store.add_item(
        media_sha256=sha, modality="SGS", cohort="train", frames=1, fps=None, joint="MCP2", side="R"
    )
    choices = view.item_choices(project, EXPERT, "SGS")
    assert [c["id"] for c in choices] == [still, other]
    assert [c["label"] for c in choices] == [
        f"#{still} · test1 · still",
        f"#{other} · train · MCP2 R · still",
    ]
    assert [c["id"] for c in view.item_choices(project, EXPERT, "sgs", "train")] == [other]
    assert view.item_choices(project, EXPERT, "DGS")[0]["label"] == f"#{clip} · test1 · 5 frames"
    with pytest.raises(PermissionDenied):
        view.item_choices(project, READER, "SGS")
    with pytest.raises(PermissionDenied):
        view.active_model(project, READER, "SGS")


def test_no_active_model_then_one(project):
    item = add_item(project, picture(2), "SPD")
    assert view.active_model(project, EXPERT, "SPD") is None
    with pytest.raises(view.NoActiveModel) as caught:
        view.explain_item(Explainer(project, options=FAST), EXPERT, item, "occlusion")
    assert caught.value.modality == "SPD"
    publish_model(project, "SPD", "slim_resnet18", 0, prep_for(False))
    assert view.active_model(project, EXPERT, "SPD")["version"] == 1
    explanation = view.explain_item(Explainer(project, options=FAST), EXPERT, item, "occlusion")
    assert explanation.modality == "SPD" and explanation.version == 1
    with pytest.raises(PermissionDenied):
        view.explain_item(Explainer(project), READER, item, "occlusion")
    with pytest.raises(LookupError, match="no item 999"):
        view.explain_item(Explainer(project), EXPERT, 999, "occlusion")


def test_reference_target_is_the_modality_target(project):
    grey = add_item(project, picture(3), "SGS")
    doppler = add_item(project, picture(4), "SPD")
    assert view.reference_target(project, EXPERT, grey) is None
    project.store.set_reference(grey, 2, None, "agreement")
    project.store.set_reference(doppler, 1, 3, "agreement")
    assert view.reference_target(project, EXPERT, grey) == 2
    assert view.reference_target(project, EXPERT, doppler) == 3  # combined EOSS


def test_upload_is_decoded_explained_like_a_file_and_not_stored(project, tmp_path):
    with pytest.raises(MediaError, match="scan.png"):
        view.read_upload(b"garbage", "scan.png")
    with pytest.raises(MediaError, match="empty"):
        view.read_upload(b"", "empty.png")
    data = png(picture(5)[0])
    upload = view.read_upload(data, "scan.png")
    assert upload.frames.shape == (1, H, W, 3) and upload.kind == "image"
    explainer = Explainer(project, options=FAST)
    with pytest.raises(view.NoActiveModel):
        view.explain_upload(explainer, EXPERT, upload, "occlusion")  # guessed SPD: none yet
    publish_model(project, "SPD", "slim_resnet18", 0, prep_for(False))
    explanation = view.explain_upload(explainer, EXPERT, upload, "occlusion")
    assert explanation.modality == "SPD" and not explanation.cached
    path = tmp_path / "same.png"
    path.write_bytes(data)
    again = explainer.file(path, "occlusion")  # the same bytes through the file route: the same entry
    assert again.cached and again.probabilities == explanation.probabilities
    assert project.store.items() == [] and not list((project.settings.data_dir / "media").rglob("*.png"))
    with pytest.raises(PermissionDenied):
        view.explain_upload(explainer, READER, upload, "occlusion")


def test_frame_pair_is_native_size_and_paints_only_evidence(project):
    publish_model(project, "DPD", "frames_slim_resnet18", 0, prep_for(True, frames=4, cache_frames=8))
    item = add_item(project, picture(6, frames=12), "DPD")
    explanation = view.explain_item(Explainer(project, options=FAST), EXPERT, item, "gradcam")
    frames = view.item_frames(project, item)
    assert frames.shape == (12, H, W, 3)
    for position, frame in enumerate(explanation.frame_index):
        original, overlay = view.frame_pair(explanation, frames, position)
        assert original.shape == overlay.shape == (H, W, 3)
        assert np.array_equal(original, frames[frame])
        unpainted = explanation.heatmap[position] <= 0
        assert np.array_equal(overlay[unpainted], original[unpainted])
        assert not np.array_equal(overlay, original)
    still = add_item(project, picture(7), "SGS")
    publish_model(project, "SGS", "slim_resnet18", 0, prep_for(False, roi=(0.5, 0.5)))
    cropped = view.explain_item(Explainer(project, options=FAST), EXPERT, still, "occlusion")
    assert tuple(cropped.box) != (0, 0, H, W)
    original, overlay = view.frame_pair(cropped, view.item_frames(project, still))
    top, left = cropped.box[:2]
    assert tuple(overlay[top, left]) == (150, 150, 150)  # the model's crop outlined
