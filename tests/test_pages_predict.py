"""AppTest of the Predict & explain page: the numbers it shows against rascore.explain, the method
choice, a clip's frame slider and importance curve, no active model, a reader refused, uploads."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from rascore.services import session
from rascore.explain import Explainer
from rascore.store import accounts
from rascore.train.preprocess import Preprocessing
from tests.test_explain import publish_model
from tests.apptest import assert_page_ok, texts
from tests.conftest import env_for
from tests.fixtures_labelling import build_project

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGE = str(ROOT / "pages/predict.py")
SGS_ITEM, DPD_ITEM, SGS_TEST_ITEM = 1, 4, 5  # build_project: SGS, DGS, SPD, DPD per round

torch.set_num_threads(2)


def small_prep(dynamic: bool) -> Preprocessing:
    """16x20 model inputs (4 frames for clips): Occlusion, the page's default, stays around a second."""
    return Preprocessing(
        16, 20, dynamic, 4 if dynamic else 1, 4 if dynamic else 1, 3, (0.45, 0.45, 0.45), (0.25, 0.25, 0.25)
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny project (48x64 stills, 4-frame clips) with tiny SGS and DPD models active; none for DGS/SPD."""
    root = tmp_path_factory.mktemp("predict") / "p"
    built = build_project(root, per_modality=2)
    publish_model(built, "SGS", "slim_resnet18", 0, small_prep(False))
    publish_model(built, "DPD", "frames_slim_resnet18", 1, small_prep(True))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env_for(root).items():
            patch.setenv(key, value)
        yield session.shared_project()


def page_as(project, name: str) -> AppTest:
    """The page opened through the app's navigation with ``name`` signed in."""
    at = AppTest.from_file(APP, default_timeout=120)
    session.begin(at.session_state, accounts.user(project.store, name))
    at.run()
    return at.switch_page(PAGE).run()


def chart(at: AppTest, title: str) -> dict:
    """The plotly figure with this title."""
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        if spec["layout"].get("title", {}).get("text") == title:
            return spec
    raise AssertionError(f"no chart titled {title!r}")


def captions(at: AppTest) -> list[str]:
    """Captions of the pictures on the page, in order."""
    return [caption for element in at.get("image") for caption in element.captions]


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    """Put one file in the page's uploader (replacing any) and rerun."""
    return at.file_uploader(key="rascore.predict.upload").set_value((name, data, "image/png")).run()


def png(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def test_expert_sees_the_grade_and_probabilities_and_picks_a_method(project):
    at = page_as(project, "demo-expert")
    assert_page_ok(at)
    assert at.selectbox(key="rascore.predict.method").value == "occlusion"
    assert at.selectbox(key="rascore.predict.item").value == SGS_ITEM
    expected = Explainer(project).item(SGS_ITEM, "occlusion")
    assert expected.cached  # the page computed it, and the library gives back the same
    bars = chart(at, "Probability per grade")["data"][0]
    assert bars["y"] == pytest.approx(expected.probabilities, abs=1e-9)
    assert bars["text"] == [f"{p:.1%}" for p in expected.probabilities]
    assert at.metric[0].label == "Predicted SH grade" and at.metric[0].value == str(expected.predicted)
    assert f"SGS v1: grade {expected.predicted}" in texts(at)
    assert not at.select_slider  # a still: no frame slider, no importance curve
    assert len(at.get("plotly_chart")) == 1
    assert "Occlusion of grade" in texts(at)

    at.selectbox(key="rascore.predict.method").select("gradcam").run()
    assert_page_ok(at)
    assert "Grad-CAM of grade" in texts(at)
    assert Explainer(project).item(SGS_ITEM, "gradcam").cached

    other = (expected.predicted + 1) % 4
    at.selectbox(key="rascore.predict.target").select(other).run()
    assert f"Grad-CAM of grade {other}" in texts(at)
    assert Explainer(project).item(SGS_ITEM, "gradcam", target=other).cached

    at.selectbox(key="rascore.predict.cohort").select("test1").run()
    assert at.selectbox(key="rascore.predict.item").value == SGS_TEST_ITEM
    assert "Reference standard: grade 1." in texts(at)  # build_project: round 1 has SH 1


def test_clip_item_has_a_frame_slider_and_importance_curve(project):
    at = page_as(project, "demo-admin")
    at.selectbox(key="rascore.predict.modality").select("DPD").run()
    assert_page_ok(at)
    assert at.selectbox(key="rascore.predict.item").value == DPD_ITEM
    expected = Explainer(project).item(DPD_ITEM, "occlusion")
    assert expected.cached and expected.n_frames == 4
    assert chart(at, "Probability per grade")["data"][0]["y"] == pytest.approx(expected.probabilities)
    assert "Predicted EOSS grade" == at.metric[0].label
    slider = at.select_slider[0]
    assert slider.label == "Frame" and slider.options == [str(f) for f in expected.frame_index]
    curve = chart(at, "Share of the positive attribution per frame")["data"][0]
    assert curve["x"] == expected.frame_index
    assert curve["y"] == pytest.approx(expected.importance)
    assert captions(at)[:2] == [
        f"Original (frame {expected.frame_index[0]}, 64 x 48 px)",
        f"Occlusion: evidence for grade {expected.target}",
    ]
    slider.set_value(len(expected.frame_index) - 1).run()
    assert_page_ok(at)
    last = expected.frame_index[-1]
    assert chart(at, "Share of the positive attribution per frame")["layout"]["shapes"][0]["x0"] == last


def test_no_active_model_says_to_train_one(project):
    at = page_as(project, "demo-expert")
    at.selectbox(key="rascore.predict.modality").select("DGS").run()
    assert_page_ok(at)
    assert [i.value for i in at.info] == ["No active model for DGS yet; train one on the Train page."]
    assert not at.get("plotly_chart") and not at.metric


def test_a_reader_is_refused(project):
    app = AppTest.from_file(APP, default_timeout=60)
    session.begin(app.session_state, accounts.user(project.store, "demo-reader"))
    app.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page(PAGE)
    direct = AppTest.from_file(PAGE, default_timeout=60)
    session.begin(direct.session_state, accounts.user(project.store, "demo-reader"))
    direct.run()
    assert_page_ok(direct, expected_errors=["Not allowed: demo-reader (reader) may not see model outputs."])
    assert direct.error[0].value == "Not allowed: demo-reader (reader) may not see model outputs."
    assert not direct.get("plotly_chart") and not direct.selectbox


def test_uploads_bad_one_refused_good_one_explained(project):
    at = page_as(project, "demo-expert")
    at.radio(key="rascore.predict.source").set_value("An uploaded file").run()
    assert_page_ok(at)
    items, media = len(project.store.items()), sorted((project.settings.data_dir / "media").rglob("*"))
    explained = sorted((project.settings.data_dir / "explain").rglob("*"))

    upload(at, "scan.png", b"not an image at all")
    assert_page_ok(at, expected_errors=["This file cannot be used: scan.png:"])
    assert len(at.error) == 1 and at.error[0].value.startswith("This file cannot be used: scan.png:")
    assert "not an image, video or DICOM file" in at.error[0].value
    assert not at.get("plotly_chart") and not at.metric
    assert len(project.store.items()) == items
    assert sorted((project.settings.data_dir / "media").rglob("*")) == media
    assert sorted((project.settings.data_dir / "explain").rglob("*")) == explained

    rng = np.random.default_rng(5)
    grey = rng.integers(0, 200, size=(48, 64), dtype=np.uint8)
    still = np.repeat(grey[..., None], 3, axis=2)  # greyscale still: guessed SGS
    path = project.settings.data_dir.parent / "upload.png"
    path.write_bytes(png(still))
    upload(at, "upload.png", path.read_bytes())
    assert_page_ok(at)
    expected = Explainer(project).file(path, "occlusion")
    assert expected.cached and expected.modality == "SGS"
    assert chart(at, "Probability per grade")["data"][0]["y"] == pytest.approx(expected.probabilities)
    assert len(project.store.items()) == items  # explained, not imported

    at.selectbox(key="rascore.predict.up_modality").select("SPD").run()
    assert [i.value for i in at.info] == ["No active model for SPD yet; train one on the Train page."]


def test_integrated_gradients_baseline_and_gradcam_stage_are_chosen_on_the_page(project):
    from rascore.explain import ExplainOptions

    at = page_as(project, "demo-expert")
    keys = [s.key for s in at.selectbox]
    assert (
        "rascore.predict.baseline" not in keys and "rascore.predict.stage" not in keys
    )  # occlusion: neither
    at.selectbox(key="rascore.predict.method").select("ig").run()
    assert_page_ok(at)
    assert at.selectbox(key="rascore.predict.baseline").value == "blur"
    assert "baseline: blurred picture" in texts(at)
    black, deep = ExplainOptions(ig_baseline="black"), ExplainOptions(gradcam_stage="deep")
    assert stored(project, ExplainOptions(), "ig") and not stored(project, black, "ig")
    at.selectbox(key="rascore.predict.baseline").select("black").run()
    assert "baseline: black picture" in texts(at)
    assert stored(project, black, "ig")

    at.selectbox(key="rascore.predict.method").select("gradcam").run()
    assert at.selectbox(key="rascore.predict.stage").value == "fine"
    assert not stored(project, deep, "gradcam")
    at.selectbox(key="rascore.predict.stage").select("deep").run()
    assert_page_ok(at)
    assert "layer: deepest stage" in texts(at)
    assert stored(project, deep, "gradcam")


def stored(project, options, method: str) -> bool:
    """Whether the SGS item's explanation under these settings is in the cache (looked up, not computed)."""
    from rascore.explain.service import registered_model

    explainer = Explainer(project)
    sha = project.store.item(SGS_ITEM)["media_sha256"]
    return (
        explainer.cache.lookup(
            registered_model(project, "SGS").key,
            f"item{SGS_ITEM}-{sha[:12]}",
            method,
            options.key(method),
            None,
        )
        is not None
    )


def test_a_link_opens_that_item_with_that_method(project):
    at = AppTest.from_file(APP, default_timeout=120)
    session.begin(at.session_state, accounts.user(project.store, "demo-expert"))
    at.run()
    at.query_params.update({"item": str(DPD_ITEM), "method": "gradcam"})
    at.switch_page(PAGE).run()
    assert_page_ok(at)
    assert at.selectbox(key="rascore.predict.modality").value == "DPD"
    assert at.selectbox(key="rascore.predict.item").value == DPD_ITEM
    assert at.selectbox(key="rascore.predict.method").value == "gradcam"
    assert "Grad-CAM of grade" in texts(at)
    assert f"/predict?item={DPD_ITEM}&method=gradcam" in [c.value for c in at.code]


def test_a_scan_unlike_the_training_data_is_flagged(project):
    """With a shift reference far from every scan the page warns, with the score and how the
    threshold was set; a model without one says the check was not made."""
    from rascore.explain.service import registered_model
    from rascore.train.checkpoint import load_checkpoint, save_checkpoint
    from rascore.train.shift import IMAGE_STATISTICS, fit_reference, reference_entry

    at = page_as(project, "demo-expert")
    assert_page_ok(at)
    assert not at.warning and "Shift check not made" in [e.label for e in at.expander]

    path = registered_model(project, "SGS").path
    original = path.read_bytes()
    checkpoint = load_checkpoint(path)
    width = checkpoint["model"]["backbone.fc.weight"].shape[1]
    rng = np.random.default_rng(0)

    def far(n: int, d: int) -> np.ndarray:
        return rng.normal(50.0, 1.0, size=(n, d))

    stats = len(IMAGE_STATISTICS)
    reference = fit_reference(far(30, stats), far(30, width), far(10, stats), far(10, width))
    checkpoint["shift"] = reference_entry(reference)
    save_checkpoint(checkpoint, path)
    try:
        at = page_as(project, "demo-expert")
        assert_page_ok(at)
        assert len(at.warning) == 1
        text = at.warning[0].value
        assert "does not look like the model's training data" in text
        assert "Shift score" in text and "validation split" in text
    finally:
        path.write_bytes(original)
