"""bench/select_on_validation.py: the declared decision rule, and its refusal to read test cohorts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "select_on_validation", ROOT / "bench" / "select_on_validation.py"
)
select = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = select  # dataclasses look their module up there
_spec.loader.exec_module(select)


def table(auc) -> list[dict]:
    """The script's runs (BASE and each one-factor variant, 2 seeds) with validation macro AUC auc(run)."""
    return [
        {**run.__dict__, "val_macro_auc": auc(run), "val_log_loss": 1.0}
        for run in select.grid(select.ALL, [0, 1])
    ]


def test_the_rule_picks_the_highest_mean_and_gives_ties_to_the_simpler_option():
    def auc(run):
        value = 0.80
        value += 0.05 if run.roi == "preset" else 0.0  # crop clearly better
        value += 0.005 if run.head == "ordinal" else 0.0  # ordinal ahead by less than TIE
        value += 0.03 if run.clip_epochs == 20 else 0.0  # 20 epochs clearly better
        return value

    decisions = select.decide(table(auc))
    assert decisions["roi"]["choice"] == "preset"
    assert decisions["head"]["choice"] == "softmax"  # a tie: the simpler head
    assert "tie" in decisions["head"]["reason"]
    assert decisions["clip_epochs"]["choice"] == 20
    assert decisions["clip_epochs"]["means"][20] == pytest.approx(
        decisions["clip_epochs"]["means"][12] + 0.03
    )


def test_clip_epochs_are_decided_on_clip_models_only_and_a_missing_run_leaves_a_factor_open():
    def auc(run):  # stills would favour nothing; DPD at 12 epochs is better
        return 0.9 if run.clip_epochs == 12 and run.modality == "DPD" else 0.8

    rows = table(auc)
    decisions = select.decide(rows)
    assert decisions["clip_epochs"]["choice"] == 12
    assert decisions["clip_epochs"]["n_runs"] == {12: 4, 20: 4}  # 2 clip modalities x 2 seeds, rest at BASE
    partial = [r for r in rows if not (r["modality"] == "SGS" and r["head"] == "ordinal" and r["seed"] == 1)]
    decisions = select.decide(partial)
    assert decisions["head"]["choice"] is None
    assert decisions["clip_epochs"]["choice"] == 12  # SGS does not bear on it
    one_seed = [r for r in rows if r["seed"] == 0]
    clips_again = [
        {**r.__dict__, "val_macro_auc": auc(r), "val_log_loss": 1.0}
        for r in select.grid(select.ALL, [1], only=["clip_epochs"])
    ]
    assert {r["modality"] for r in clips_again} == {"DGS", "DPD"}
    assert len(clips_again) == 4  # BASE and 12 epochs, per clip model
    mixed = select.decide(one_seed + clips_again)
    assert mixed["clip_epochs"]["n_runs"] == {12: 4, 20: 4}  # two seeds for the clip epochs
    assert mixed["head"]["n_runs"] == {"softmax": 4, "ordinal": 4}  # seed 1 has no head variant
    assert mixed["head"]["choice"] == "softmax"
    only_stills = [r for r in rows if r["modality"] in ("SGS", "SPD")]
    assert select.decide(only_stills)["head"]["choice"] is None  # DGS and DPD not run yet
    off_and_ordinal = {**rows[0], "roi": "off", "head": "ordinal", "val_macro_auc": 1.0}
    assert select.decide(rows + [off_and_ordinal])["head"] == select.decide(rows)["head"]  # not at BASE


class FakeStore:
    def __init__(self, rows):
        self.rows, self.asked = rows, []

    def references(self, modality=None, cohort=None):
        self.asked.append(cohort)
        return [r for r in self.rows if cohort is None or r["cohort"] == cohort]


def test_the_selection_refuses_to_read_test_cohorts_or_anything_but_train_labels():
    rows = [{"item_id": 1, "cohort": "train"}, {"item_id": 2, "cohort": "test1"}]
    store = FakeStore(rows)
    guarded = select.TrainOnlyStore(store)
    assert [r["item_id"] for r in guarded.references("SGS", "train")] == [1]
    for cohort in ("test1", "test2", None):
        with pytest.raises(PermissionError):
            guarded.references("SGS", cohort)
    assert store.asked == ["train"]  # the refused ones never reached the store
    with pytest.raises(PermissionError):
        guarded.predictions  # noqa: B018 - any other store access
    lying = select.TrainOnlyStore(type("S", (), {"references": lambda self, m=None, c=None: rows})())
    with pytest.raises(PermissionError):
        lying.references("SGS", "train")


def test_a_demo_built_with_the_reserved_seed_is_refused():
    select.check_not_reserved([1, 3])
    with pytest.raises(SystemExit):
        select.check_not_reserved([1, select.RESERVED_SEED])
