"""Fine-tuning from a RAScore model: ``--weights SGS@1`` or a checkpoint file (rascore.train.start).

A tiny project (tests/test_train.py's caricatures): a source version is trained, then a second
run starts from it by reference and by file; the head is kept for the same target and
re-initialised for another; a mismatched architecture is one clear line; the registry row and
the card say what the run started from; the simulator model is the newest demo-only version.
"""

from __future__ import annotations


import json

import pytest
import torch

from tests.test_train import build_tiny, tiny_config

torch.set_num_threads(2)


@pytest.fixture
def source(project):
    """A project with SGS and SPD items and an SGS v1 trained from scratch."""
    from rascore.train import run_training

    build_tiny(project, "SGS", {"train": 4, "test1": 1, "test2": 1})
    build_tiny(project, "SPD", {"train": 4, "test1": 1, "test2": 1}, seed=1)
    outcome = run_training(project, tiny_config("SGS", epochs=1), n_boot=10)
    return project, outcome


def test_start_from_a_registered_version(source):
    from rascore.store import registry
    from rascore.train import run_training
    from rascore.train.checkpoint import load_checkpoint

    project, first = source
    src = load_checkpoint(first.published.path)
    outcome = run_training(project, tiny_config("SGS", epochs=1, weights="SGS@1", lr=1e-9), n_boot=10)
    assert outcome.published.version == 2
    record = outcome.fit.pretrained
    assert record["kind"] == "rascore" and record["reference"] == "SGS@1" and record["version"] == 1
    assert record["head"] == "kept" and record["loaded"] == record["total"]
    assert record["sha256"] and record["item_sources"] == {"import": 16}
    # with a vanishing learning rate the weights are the source's
    new = load_checkpoint(outcome.published.path)
    for key, value in src["model"].items():
        if value.is_floating_point() and "running" not in key:
            assert torch.allclose(new["model"][key], value, atol=1e-5), key
    row = registry.get_version(project.store, "SGS", 2)
    start = row["metrics"]["training"]["start_from"]
    assert start["reference"] == "SGS@1" and start["sha256"] == record["sha256"]
    card = outcome.published.card_path.read_text()
    assert "fine-tuned from RAScore model SGS@1" in card and "grade head kept" in card


def test_start_from_a_file_for_another_target_reinitialises_the_head(source):
    from rascore.train import run_training

    project, first = source
    outcome = run_training(
        project, tiny_config("SPD", epochs=1, weights=str(first.published.path)), n_boot=10
    )
    record = outcome.fit.pretrained
    assert record["reference"] is None and record["version"] == 1 and record["modality"] == "SGS"
    assert record["head"].startswith("re-initialised") and "SH" in record["head"]
    assert record["loaded"] == record["total"] - 2  # all but the head's weight and bias
    ordinal = run_training(project, tiny_config("SGS", epochs=1, head="ordinal", weights="SGS@1"), n_boot=10)
    assert "softmax head, this run ordinal" in ordinal.fit.pretrained["head"]


def test_mismatched_architecture_or_missing_version_is_one_line(source):
    from rascore.train import run_training

    project, _ = source
    with pytest.raises(
        ValueError,
        match=r"cannot start from SGS@1: it is slim_resnet18, width 4 .*builds resnet18.*--preset fast",
    ):
        run_training(project, tiny_config("SGS", epochs=1, arch="resnet18", weights="SGS@1"), n_boot=10)
    with pytest.raises(LookupError, match="no SGS version 7"):
        run_training(project, tiny_config("SGS", epochs=1, weights="SGS@7"), n_boot=10)


def test_the_source_network_width_is_taken_over(source):
    """A source trained at another width (an earlier preset's) is fine-tuned at its own width."""
    from rascore.train import run_training
    from rascore.train.checkpoint import load_checkpoint

    project, _ = source
    outcome = run_training(project, tiny_config("SGS", epochs=1, net_width=8, weights="SGS@1"), n_boot=10)
    assert outcome.fit.pretrained["loaded"] == outcome.fit.pretrained["total"]
    checkpoint = load_checkpoint(outcome.published.path)
    assert checkpoint["arch_options"]["width"] == 4 and checkpoint["args"]["net_width"] == 4


def test_simulator_version_is_the_newest_demo_only_one(source):
    from rascore.train import run_training
    from rascore.train.start import simulator_version

    project, _ = source
    assert simulator_version(project.store, "SGS") is None  # imported items: not the simulator
    project.store.execute("UPDATE items SET source = 'demo'")
    run_training(project, tiny_config("SGS", epochs=1), n_boot=10)
    found = simulator_version(project.store, "SGS")
    assert found["version"] == 2 and found["metrics"]["training"]["item_sources"] == {"demo": 16}


def test_cli_train_weights_reference(source, capsys):
    from rascore.cli import main

    project, _ = source
    code = main(
        [
            "train",
            "--modality",
            "SGS",
            "--preset",
            "fast",
            "--epochs",
            "1",
            "--weights",
            "SGS@9",
            "--device",
            "cpu",
        ]
    )
    assert code != 0
    assert "no SGS version 9" in capsys.readouterr().err
    assert main(["jobs", "submit", "--modality", "SGS", "--weights", "SGS@9"]) == 2
    assert "no SGS version 9 is registered" in capsys.readouterr().err
    assert main(["jobs", "submit", "--modality", "SGS", "--weights", "sgs@1", "--json"]) == 0
    job = json.loads(capsys.readouterr().out)
    from rascore.store import jobs as job_sql

    assert job_sql.get(project.store, job["id"])["params"]["weights"] == "SGS@1"


def test_train_page_service_and_job_take_the_start(source):
    from rascore.jobs.train_job import job_config
    from rascore.services import training
    from rascore.store import jobs as job_sql
    from rascore.train import run_training

    project, _ = source
    admin = {"id": None, "name": "an admin", "role": "admin"}
    assert [c["value"] for c in training.start_choices(project.store, admin, "SGS")] == ["auto"]
    project.store.execute("UPDATE items SET source = 'demo'")
    run_training(project, tiny_config("SGS", epochs=1), n_boot=10)
    choices = training.start_choices(project.store, admin, "SGS")
    assert (
        choices[1]["value"] == "SGS@2"
        and "simulator model (SGS@2, trained on the demo" in choices[1]["label"]
    )
    with pytest.raises(training.TrainingError, match="Start from: no SGS version 9 is registered"):
        training.submit(project.store, admin, "SGS", "fast", 1, weights="SGS@9")
    job_id = training.submit(project.store, admin, "SGS", "fast", 1, weights="sgs@2")
    job = job_sql.get(project.store, job_id)
    assert job["params"]["weights"] == "SGS@2"
    assert job_config(project, job).weights == "SGS@2"  # resolved when the worker trains
