"""End to end on a tiny hand-made project: train -> register -> evaluate -> predict, via library and CLI."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from rascore import scale

torch.set_num_threads(2)

TINY = dict(
    arch=None, epochs=2, batch_size=8, size=(32, 40), net_width=4, weights="none", patience=5, lr=3e-3
)


def tiny_frames(
    rng: np.random.Generator, sh: int, pd: int, frames: int = 1, height: int = 48, width: int = 64
) -> np.ndarray:
    """A caricature of a dorsal joint view: speckle, a bright bone surface with a V-shaped joint
    recess, dark synovium filling it and rising with SH, orange Doppler pixels covering a share of
    it growing with PD."""
    out = np.empty((frames, height, width, 3), np.uint8)
    centre = width // 2 + int(rng.integers(-4, 5))
    cols = np.arange(width)
    surface = (height * 0.65 + np.clip(7 - np.abs(cols - centre), 0, None)).astype(int)
    for t in range(frames):
        grey = rng.gamma(2.0, 30.0, size=(height, width)).clip(0, 200)
        synovium = np.zeros((height, width), bool)
        for c in cols:
            grey[surface[c] : surface[c] + 2, c] = 245
            grey[surface[c] + 2 :, c] *= 0.15
            if sh and abs(c - centre) <= 4 + 3 * sh:
                synovium[int(height * 0.65) - 3 * sh : surface[c], c] = True
        grey[synovium] *= 0.2
        rgb = np.repeat(grey[..., None], 3, axis=2)
        if pd:
            flow = synovium & (rng.random((height, width)) < (0.15, 0.3, 0.6)[pd - 1])
            rgb[flow] = (250, 150 + 30 * (t % 2), 20)
        out[t] = rgb.clip(0, 255).astype(np.uint8)
    return out


def add_cached_item(
    project, frames: np.ndarray, modality: str, cohort: str, patient: str, sh: int, pd: int | None
) -> int:
    """Put decoded frames straight into the media cache and the store, with a reference label."""
    store = project.store
    sha = hashlib.sha256(frames.tobytes() + modality.encode()).hexdigest()
    project.media.write_cache(sha, frames)
    t, h, w, _ = frames.shape
    store.add_media(
        sha,
        format="png" if t == 1 else "mp4",
        kind="image" if t == 1 else "clip",
        nbytes=frames.nbytes,
        frames=t,
        height=h,
        width=w,
        fps=15.0 if t > 1 else None,
    )
    item = store.add_item(
        media_sha256=sha,
        modality=modality,
        cohort=cohort,
        frames=t,
        fps=15.0 if t > 1 else None,
        patient=patient,
        source="import",
    )
    store.set_reference(item, sh, pd if scale.modality(modality).doppler else None, "import")
    return item


def build_tiny(
    project, modality: str, per_grade: dict[str, int] | None = None, seed: int = 0, frames: int = 1
) -> None:
    """Items of every grade in train (several patients), test1 and test2."""
    rng = np.random.default_rng(seed)
    per_grade = per_grade or {"train": 8, "test1": 3, "test2": 3}
    doppler = scale.modality(modality).doppler
    with project.store.transaction():
        for cohort, n in per_grade.items():
            for grade in range(4):
                for k in range(n):
                    sh, pd = (grade, grade) if doppler else (grade, 0)
                    if doppler and grade == 0:
                        pd = 0
                    patient = f"{cohort}-p{k % 6}"
                    add_cached_item(
                        project,
                        tiny_frames(rng, sh, pd, frames),
                        modality,
                        cohort,
                        patient,
                        sh,
                        pd if doppler else None,
                    )


def tiny_config(modality: str, **overrides):
    from rascore.train import make_config

    values = dict(TINY)
    values.update(overrides)
    if values.get("arch") is None:
        values["arch"] = "frames_slim_resnet18" if scale.modality(modality).dynamic else "slim_resnet18"
    return make_config(modality, "fast", "cpu", **values)


def test_train_register_evaluate_predict(project, tmp_path):
    """A tiny SPD run registers v1 as active with validation and test figures, a card, predictions."""
    from rascore.predict import Predictor, predict_file
    from rascore.store import registry
    from rascore.train import run_training

    build_tiny(project, "SPD")
    seen = []
    outcome = run_training(project, tiny_config("SPD"), on_progress=seen.append, n_boot=50, baseline=True)
    assert outcome.published.version == 1 and outcome.published.activated
    assert {"epoch", "epochs", "step", "steps", "loss", "val_auc", "eta_s"} <= set(seen[0])
    assert seen[-1]["phase"] == "validated" and set(seen[-1]["val_auc"]) == {0, 1, 2, 3}
    active = registry.active_version(project.store, "SPD")
    assert active["version"] == 1 and active["architecture"] == "slim_resnet18"
    test = active["metrics"]["test"]["cohorts"]
    assert set(test) == {"test1", "test2", "test3"} and test.pop("test3")["n"] == 0  # none built
    for entry in test.values():
        assert entry["n"] == 12
        for name in ("model", "model_pd_reference", "pd_colour_rule"):
            figures = entry[name]
            assert set(figures["auc"]) == {"0", "1", "2", "3"}
            assert np.asarray(figures["confusion"]).sum() == 12
            assert {"macro_auc", "accuracy", "kappa_linear", "kappa_quadratic", "ece"} <= set(figures)
        # the PD-only colour rule is scored against the PD reference of the same items
        assert sum(entry["pd_class_counts"]) == 12
        assert (
            np.asarray(entry["pd_colour_rule"]["confusion"]).sum(axis=1).tolist() == entry["pd_class_counts"]
        )
        # calibration before and after the sampling-prior correction; every item cropped or not
        assert entry["calibration"]["ece_corrected"] == entry["model"]["ece"]
        assert entry["calibration"]["ece_uncorrected"] is not None
        assert sum(entry["crops"].values()) == 12 and set(entry["crops"]) == {"crop", "fallback", "none"}
    # the PD-only colour rule ranks these caricatures' flow at both ends of the scale (their PD 3
    # colours 60% of the true synovium, just over half of the rule's grown estimate)
    assert test["test1"]["pd_colour_rule"]["auc"]["0"]["auc"] == 1.0
    assert test["test1"]["pd_colour_rule"]["auc"]["3"]["auc"] > 0.75
    stored = registry.get_predictions(project.store, active["id"])
    assert len(stored) == 24 and {p["crop"] for p in stored} <= {"crop", "fallback"}
    from rascore.train.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(outcome.published.path)
    assert checkpoint["prior"]["train_class_counts"] == checkpoint["snapshot"]["train_class_counts"]
    # the joint crop's fallbacks in training are counted, in the snapshot, the figures and the card
    snapshot = checkpoint["snapshot"]
    assert sum(snapshot["train_crops"].values()) == len(snapshot["train_item_ids"])
    assert sum(snapshot["val_crops"].values()) == len(snapshot["val_item_ids"])
    assert checkpoint["metrics"]["training"]["crops"]["train"] == snapshot["train_crops"]
    assert (
        checkpoint["preprocessing"]["norm"] == "image"
        and checkpoint["preprocessing"]["roi_within"] == "field"
    )
    card = outcome.published.card_path.read_text()
    assert "SPD v1" in card and "trained from scratch" in card and "PD-only colour rule" in card
    assert "Corrected for class-balanced sampling" in card and "Joint crop:" in card
    assert "Joint crop in training (train: " in card and "augmentation wide" in card
    assert "normalised by its own grey mean" in card

    # predict a PNG file the way ingest decodes it, with the modality guessed from its colour
    import imageio.v3 as iio

    still = tiny_frames(np.random.default_rng(5), 3, 3)[0]
    path = tmp_path / "scan.png"
    iio.imwrite(path, still)
    prediction = predict_file(project, path)
    assert prediction.modality == "SPD" and prediction.version == 1
    assert abs(sum(prediction.probabilities) - 1) < 1e-5 and len(prediction.probabilities) == 4
    assert prediction.crop in ("crop", "fallback")
    assert prediction.grade == int(np.argmax(prediction.probabilities))
    predictor = Predictor(project)
    same = predictor.predict(still[None], "SPD")
    assert np.allclose(same.probabilities, prediction.probabilities, atol=1e-6)


def test_dynamic_model_trains_and_cancels(project):
    """A clip modality trains a frame model from cached clips; should_stop cancels between steps."""
    from rascore.train import TrainingCancelled, fit, load_data

    build_tiny(project, "DPD", {"train": 5}, frames=4)
    config = tiny_config("DPD", frames=3, cache_frames=4, epochs=1)
    data = load_data(project, config)
    assert tuple(data.train.x.shape[1:]) == (3, 4, 32, 40)
    assert not set(data.train.item_ids) & set(data.val.item_ids)
    result = fit(config, data)
    assert len(result.history) == 1 and result.validation["n"] == len(data.val)
    calls = []
    with pytest.raises(TrainingCancelled):
        fit(config, data, should_stop=lambda: calls.append(1) or len(calls) > 1)
    assert len(calls) == 2


def test_cli_train_evaluate_predict_models(project_env, tmp_path, capsys):
    """The CLI: train (JSON), models list marks the active one, evaluate stores predictions, predict."""
    from rascore.cli import main
    from rascore.project import open_project

    project = open_project()
    build_tiny(project, "SGS", {"train": 6, "test1": 2, "test2": 2})
    args = [
        "train",
        "--modality",
        "SGS",
        "--preset",
        "fast",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--size",
        "32",
        "40",
        "--weights",
        "none",
        "--batch-size",
        "8",
        "--json",
    ]
    assert main(args) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["version"] == 1 and trained["activated"] is True
    assert set(trained["validation"]["auc"]) == {"0", "1", "2", "3"}
    assert main(args[:-1] + ["--head", "ordinal", "--activate", "always", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["version"] == 2 and second["activated"] is True

    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["version"], r["active"]) for r in listed] == [(2, True), (1, False)]

    assert (
        main(
            [
                "evaluate",
                "--modality",
                "SGS",
                "--version",
                "1",
                "--cohort",
                "test1",
                "--n-boot",
                "20",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == 1 and set(report["cohorts"]) == {"test1"}
    assert report["predictions_stored"] == 8 and "baseline" not in report["cohorts"]["test1"]
    figures = report["cohorts"]["test1"]["model"]  # the items' patients: clustered intervals
    assert (figures["cluster"], figures["n_clusters"]) == ("patient", 2)
    assert figures["resampled"] == "Intervals resample patients: 2 patients, 8 items"
    assert all("n_excluded" in entry for entry in figures["auc"].values())
    assert figures["macro_n_grades"] == 4

    import imageio.v3 as iio

    path = tmp_path / "grey.png"
    iio.imwrite(path, tiny_frames(np.random.default_rng(1), 2, 0)[0])
    assert main(["predict", str(path), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["modality"] == "SGS" and predicted["version"] == 2
    assert main(["predict", str(path), "--modality", "DPD"]) == 2
    assert "no DPD active model" in capsys.readouterr().err
