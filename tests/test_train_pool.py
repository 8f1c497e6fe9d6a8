"""Pooling: a still model also learns from the training cohort's clips of the same target, from
patients outside validation only, and says so in its snapshot and card."""

from __future__ import annotations

import pytest
import torch

from rascore.train.config import POOLED, TrainConfig, make_config
from tests.test_train import build_tiny, tiny_config

torch.set_num_threads(2)


def test_sgs_pools_dgs_by_default_and_the_choice_is_checked():
    assert make_config("SGS", "fast", "cpu").pool == ("DGS",) == POOLED["SGS"]
    assert all(make_config(m, "fast", "cpu").pool == () for m in ("DGS", "SPD", "DPD"))
    assert (
        make_config("SGS", "fast", "cpu", pool=["none"]).pool
        == ()
        == make_config("SGS", "fast", "cpu", pool="NONE").pool
    )
    assert make_config("SPD", "fast", "cpu", pool=["dpd"]).pool == ("DPD",)
    with pytest.raises(ValueError, match="another target"):
        make_config("SGS", "fast", "cpu", pool=["SPD"])
    with pytest.raises(ValueError, match="with itself"):
        make_config("SGS", "fast", "cpu", pool=["SGS"])
    args = make_config("SGS", "fast", "cpu").to_dict()
    args.pop("pool")  # a run saved before pooling learnt from its own modality alone
    assert TrainConfig.from_dict(args).pool == ()
    assert TrainConfig.from_dict(make_config("SGS", "fast", "cpu").to_dict()).pool == ("DGS",)


def test_pooled_clips_join_the_training_half_only(project):
    from rascore.train.loop import load_data

    build_tiny(project, "SGS", {"train": 6})
    build_tiny(project, "DGS", {"train": 5}, seed=1, frames=3)
    items = project.store.items()
    modality_of = {r["id"]: r["modality"] for r in items}
    patient_of = {r["id"]: r["patient"] for r in items}

    alone = load_data(project, tiny_config("SGS", pool=["none"]))
    data = load_data(project, tiny_config("SGS"))
    assert data.prep.dynamic is False and data.train.x.shape[1:] == alone.train.x.shape[1:]
    # validation is the same SGS items either way, so validation figures stay comparable
    assert data.val.item_ids == alone.val.item_ids
    assert {modality_of[i] for i in data.val.item_ids} == {"SGS"}
    pooled = [i for i in data.train.item_ids if modality_of[i] == "DGS"]
    val_patients = {patient_of[i] for i in data.val.item_ids}
    assert pooled and not {patient_of[i] for i in pooled} & val_patients
    # every DGS item of a training-side patient, none of a validation patient's
    dgs = [i for i, m in modality_of.items() if m == "DGS"]
    assert sorted(pooled) == sorted(i for i in dgs if patient_of[i] not in val_patients)
    assert data.snapshot["pooled"] == {"DGS": len(pooled)} and alone.snapshot["pooled"] == {}
    assert len(data.train) == len(alone.train) + len(pooled)
    assert sum(data.snapshot["train_crops"].values()) == len(data.train)


def test_the_card_names_the_pooled_items():
    from rascore.train.card import _pooled_line

    assert _pooled_line({}) == [] and _pooled_line(None) == []
    assert "37 DGS" in _pooled_line({"DGS": 37})[0]
