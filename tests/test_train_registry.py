"""Checkpoints, versions and promotion, the patient split, preprocessing and augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_nets import no_network  # noqa: F401 - fixture
from tests.test_train import build_tiny, tiny_config, tiny_frames

torch.set_num_threads(2)


def _rows(n_patients: int, per_patient: int) -> list[dict]:
    rows, item = [], 0
    for p in range(n_patients):
        for k in range(per_patient):
            rows.append({"item_id": item, "patient": f"p{p}", "target": (p + k) % 4})
            item += 1
    return rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_patient_split_has_no_patient_on_both_sides(seed):
    from rascore.train.data import patient_split

    rows = _rows(30, 4)
    train, val = patient_split(rows, 0.2, seed)
    assert len(train) + len(val) == len(rows)
    assert not {r["patient"] for r in train} & {r["patient"] for r in val}
    assert 0.1 < len(val) / len(rows) < 0.3
    assert {r["target"] for r in val} == {0, 1, 2, 3}
    assert patient_split(rows, 0.2, seed) == (train, val)  # seeded


def test_preprocessing_layouts_and_frame_sampling():
    from rascore.train.preprocess import Preprocessing

    clip = tiny_frames(np.random.default_rng(0), 2, 2, frames=5)
    prep = Preprocessing(24, 32, True, frames=3, cache_frames=6, channels=3, mean=(0.5,) * 3, std=(0.25,) * 3)
    x = prep.array(clip)
    assert x.dtype == torch.uint8 and tuple(x.shape) == (3, 6, 24, 32)
    assert prep.frame_index(False).tolist() == [1, 3, 5]
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # one random frame inside each of the three segments
        idx = prep.frame_index(True, g).tolist()
        assert 0 <= idx[0] < 2 <= idx[1] < 4 <= idx[2] < 6
    batch = prep.batch(x[None], train=False)
    assert tuple(batch.shape) == (1, 3, 3, 24, 32) and float(batch.max()) <= 1.0
    assert tuple(prep.normalise(batch).shape) == (1, 3, 3, 24, 32)
    grey = Preprocessing(24, 32, False, 1, 1, channels=1, mean=(0.5,) * 3, std=(0.25,) * 3)
    still = grey.array(clip)  # an image model takes the middle frame of a clip
    assert tuple(still.shape) == (1, 24, 32)
    assert tuple(grey.batch(still[None]).shape) == (1, 1, 24, 32)  # augmented as one channel
    assert tuple(grey.normalise(grey.batch(still[None])).shape) == (1, 3, 24, 32)


def test_augmentation_keeps_doppler_hue_and_is_per_case():
    from rascore.nets.colour_fraction import rgb_to_hsv
    from rascore.train.augment import Augmentation

    rgb = np.zeros((2, 3, 32, 32), np.float32)
    rgb[:, :, 8:24, 8:24] = np.array([1.0, 0.55, 0.0], np.float32)[None, :, None, None]
    x = torch.from_numpy(rgb)
    out = Augmentation(degrees=0, translate=0, scale=(1, 1))(x, torch.Generator().manual_seed(3))
    hue, sat, _ = rgb_to_hsv((out[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    inside = hue[10:22, 10:22]
    assert np.allclose(inside, inside.mean(), atol=1.5) and abs(inside.mean() - 32.4) < 2
    moved = Augmentation()(x, torch.Generator().manual_seed(4))
    assert not torch.allclose(moved[0], moved[1])  # each case gets its own transform
    clip = torch.rand(2, 3, 4, 16, 16)
    out = Augmentation(brightness=0, contrast=0)(clip, torch.Generator().manual_seed(0))
    assert out.shape == clip.shape


def _train_v(project, activate: str = "if-better", **overrides):
    from rascore.train import run_training

    overrides.setdefault("epochs", 1)
    return run_training(project, tiny_config("SGS", **overrides), n_boot=10, activate=activate)


def test_checkpoint_round_trip_reproduces_outputs(project):
    from rascore.predict import load_model, predict_frames
    from rascore.train.checkpoint import load_checkpoint, model_from_checkpoint

    build_tiny(project, "SGS", {"train": 5, "test1": 1, "test2": 1})
    outcome = _train_v(project)
    checkpoint = load_checkpoint(outcome.published.path)
    for key in ("model", "preprocessing", "labels", "metrics", "snapshot", "args", "versions"):
        assert key in checkpoint
    assert checkpoint["labels"]["item"] == "SH" and checkpoint["args"]["modality"] == "SGS"
    snap = checkpoint["snapshot"]
    assert len(snap["labels_sha256"]) == 64 and len(snap["train_item_ids"]) + len(snap["val_item_ids"]) == 20
    model, prep = model_from_checkpoint(checkpoint)
    x = prep.normalise(prep.batch(prep.array(tiny_frames(np.random.default_rng(9), 1, 0))[None]))
    trained = outcome.fit.model.to("cpu").eval()
    with torch.no_grad():
        assert torch.allclose(model(x), trained(x), atol=1e-6)
    loaded = load_model(project, "SGS")
    frames = tiny_frames(np.random.default_rng(9), 1, 0)
    with torch.no_grad():
        expected = trained.probabilities(x)[0]
    assert np.allclose(predict_frames(loaded, frames).probabilities, expected.numpy(), atol=1e-6)


def test_interrupted_checkpoint_write_keeps_previous_version(project, monkeypatch):
    """An exception half way through writing model.pt: v1 stays active, nothing of v2 is visible."""
    from rascore.store import registry

    build_tiny(project, "SGS", {"train": 5, "test1": 1, "test2": 1})
    first = _train_v(project)
    models = project.settings.models_dir / "SGS"
    before = sorted(p.name for p in models.iterdir())

    def broken_save(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr("rascore.train.checkpoint.torch.save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        _train_v(project, activate="always")
    assert sorted(p.name for p in models.iterdir()) == before == ["v1"]
    assert sorted(p.name for p in (models / "v1").iterdir()) == ["card.md", "model.pt"]
    active = registry.active_version(project.store, "SGS")
    assert active["id"] == first.published.model_version_id
    assert [r["version"] for r in registry.list_versions(project.store, "SGS")] == [1]


def test_failed_registration_removes_the_version_folder(project, monkeypatch):
    from rascore.store import registry

    build_tiny(project, "SGS", {"train": 5, "test1": 1, "test2": 1})

    def refuse(*args, **kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(registry, "register_version", refuse)
    with pytest.raises(RuntimeError):
        _train_v(project)
    assert list((project.settings.models_dir / "SGS").iterdir()) == []


def test_if_better_promotion_compares_validation_auc(project):
    from rascore.store import registry

    def add(version, auc, policy="if-better"):
        return registry.register_version(
            project.store,
            modality="DGS",
            version=version,
            path=f"DGS/v{version}/model.pt",
            card_path=None,
            preset="fast",
            architecture="x",
            metrics={"validation": {"macro_auc": auc}},
            activate=policy,
        )

    assert add(1, 0.70)[1] is True  # nothing active yet
    assert add(2, 0.65)[1] is False
    assert add(3, 0.70)[1] is True  # ties promote: newer labels
    assert add(4, 0.10, "always")[1] is True
    assert add(5, 0.99, "never")[1] is False
    assert registry.active_version(project.store, "DGS")["version"] == 4
    registry.promote_version(project.store, "DGS", 5)
    listed = registry.list_versions(project.store, "DGS")
    assert [(r["version"], r["active"]) for r in listed][:2] == [(5, True), (4, False)]


def test_weights_file_makes_a_pretrained_card(project, tmp_path, no_network):
    """--weights with a local file loads it and the card says pretrained (and names the file);
    the whole run, training to registration, never opens a connection."""
    from rascore.nets import build_model
    from rascore.train.checkpoint import load_checkpoint

    source = build_model("slim_resnet18", width=4)
    path = tmp_path / "slim-init.pth"
    torch.save(source.state_dict(), path)
    build_tiny(project, "SGS", {"train": 5, "test1": 1, "test2": 1})
    outcome = _train_v(project, weights=str(path))
    card = outcome.published.card_path.read_text()
    assert "pretrained" in card and "slim-init.pth" in card and "from scratch" not in card
    assert load_checkpoint(outcome.published.path)["pretrained"]["file"] == str(path)


def test_joint_crop_keeps_the_joint_recess():
    """The crop box is centred on the V-shaped recess (where synovium lies) and stays inside the frame."""
    from rascore.train.roi import joint_box

    rng = np.random.default_rng(2)
    for _ in range(5):
        frame = tiny_frames(rng, 2, 2, height=96, width=128)[0]
        top, left, h, w = joint_box(frame, (0.5, 0.5))
        assert (h, w) == (48, 64) and 0 <= top <= 96 - h and 0 <= left <= 128 - w
        # the recess bottom is the darkest-channel minimum column of the bone line around 0.65 H
        recess = int(np.argmax([np.argmax(frame[:, c].min(axis=-1) > 240) for c in range(128)]))
        assert left + 0.3 * w <= recess <= left + 0.7 * w


def test_preprocessing_box_names_the_region_the_network_sees():
    from rascore.train.preprocess import Preprocessing

    frames = tiny_frames(np.random.default_rng(3), 2, 0, frames=3, height=96, width=128)
    full = Preprocessing(24, 32, False, 1, 1, channels=1, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert full.box(frames) == (0, 0, 96, 128)
    cropped = Preprocessing(24, 32, False, 1, 1, channels=1, mean=(0.5,) * 3, std=(0.25,) * 3, roi=(0.5, 0.5))
    top, left, h, w = cropped.box(frames)
    region = frames[1:2, top : top + h, left : left + w]  # the middle frame, cropped by hand
    assert torch.equal(cropped.array(frames), full.array(np.ascontiguousarray(region)))
    assert cropped.source_index(3).tolist() == [1]
    assert Preprocessing.from_dict(cropped.to_dict()) == cropped
