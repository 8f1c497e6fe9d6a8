"""A model trained on the simulated cohort points at the synovium; the same network re-initialised does not.

The items are power Doppler stills (SPD) of the small demo cohort's plan (narrow, as the demo), rendered by rascore.synth
with their truth masks (several plan seeds, so there are enough of them), written straight into the
media cache instead of through PNG files to keep the test short. The reference label of each item is
its true grade. A couple of epochs teach this network nothing (its loss stays at ln 4), so it trains
16 short epochs at 48x72 pixels on the region of interest around the joint (a few seconds on 2 cores).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from rascore.explain import ExplainOptions, GradeProbabilities, model_input
from rascore.explain.faithfulness import (
    cascading_randomisation,
    load_masks,
    localisation,
    map_at_image_size,
    randomised_copy,
)

torch.set_num_threads(2)

N_TRAIN, N_TEST = 160, 40
# Stated margin: the trained model's mean share of positive Integrated Gradients (blurred baseline) inside
# the synovium is at least twice its randomised copy's and 3 percentage points above it (measured: 0.130
# against 0.049, with 0.043 for a uniform map over the crop, at 32 epochs with the current wide
# augmentation; its wider zoom, gamma and blur left 16 epochs short: 0.078; 0.101 with the earlier
# ranges at 16 epochs, 0.115 against 0.033 with the training before the wide augmentation).
SHARE_RATIO, SHARE_GAP = 2.0, 0.03
CONFIG = dict(
    epochs=32,
    size=(48, 72),
    net_width=8,
    lr=5e-3,
    batch_size=16,
    roi=(0.55, 0.6),
    weights="none",
    patience=100,
    seed=0,
)


def build_project(root):
    """A project of rendered SPD stills with truth masks and reference labels (train and test1)."""
    from rascore.config import Settings
    from rascore.project import Project
    from rascore.synth import plan_cohort, render_item

    data = root / "project"
    project = Project(
        Settings(db_path=data / "rascore.db", data_dir=data, models_dir=data / "models", device="cpu")
    )
    truth_dir = project.settings.truth_dir
    truth_dir.mkdir(parents=True, exist_ok=True)
    store = project.store
    wanted = {"train": N_TRAIN, "test1": N_TEST}
    counts = {"train": 0, "test1": 0}
    seed = 0
    with store.transaction():
        while counts != wanted:
            for spec in plan_cohort("small", seed, variation="none"):  # the demo's look
                cohort = "train" if spec.cohort == "train" else "test1"
                if spec.modality != "SPD" or counts[cohort] >= wanted[cohort]:
                    continue
                counts[cohort] += 1
                sim = render_item(spec)
                sha = hashlib.sha256(sim.frames.tobytes()).hexdigest()
                project.media.write_cache(sha, sim.frames)
                _, height, width, _ = sim.frames.shape
                store.add_media(
                    sha,
                    format="png",
                    kind="image",
                    nbytes=sim.frames.nbytes,
                    frames=1,
                    height=height,
                    width=width,
                    fps=None,
                )
                item = store.add_item(
                    media_sha256=sha,
                    modality="SPD",
                    cohort=cohort,
                    frames=1,
                    fps=None,
                    patient=f"s{seed}-{spec.patient}",
                    source="import",
                )
                mask = f"truth/s{seed}-{spec.key}.npz"
                np.savez_compressed(
                    project.settings.data_dir / mask,
                    synovium=sim.synovium,
                    doppler=sim.doppler,
                    bone_line=sim.bone_line,
                )
                store.set_truth(item, spec.sh, spec.pd, mask)
                store.set_reference(item, spec.sh, spec.pd, "import")
            seed += 1
    return project


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(project, trained network, preprocessing) on the rendered SPD cohort."""
    from rascore.train import fit, load_data, make_config

    project = build_project(tmp_path_factory.mktemp("faithful"))
    config = make_config("SPD", "fast", "cpu", **CONFIG)
    data = load_data(project, config)
    result = fit(config, data)
    yield project, result.model, data.prep
    project.store.close()


def test_trained_model_attributes_the_synovium_more_than_its_randomised_copy(trained):
    project, model, prep = trained
    randomised = randomised_copy(model)
    options = ExplainOptions(ig_steps=16)
    shares = {"trained": [], "randomised": []}
    hits = {"trained": [], "randomised": []}
    uniform = []
    for row in project.store.items("SPD", "test1"):
        masks = load_masks(project, row["id"])
        if not masks["synovium"].any():
            continue
        frames = project.media.load_cache(row["media_sha256"])
        x, _ = model_input(prep, frames)
        for name, net in (("trained", model), ("randomised", randomised)):
            with torch.no_grad():
                target = int(GradeProbabilities(net, prep)(x).argmax())
            heat, index, box = map_at_image_size(net, prep, frames, "ig", target, options)
            loc = localisation(heat, masks, index, box)
            shares[name].append(loc.synovium_share)
            hits[name].append(loc.pointing_hit)
        uniform.append(loc.synovium_area)
    assert len(shares["trained"]) >= 12
    share, share_random = np.nanmean(shares["trained"]), np.nanmean(shares["randomised"])
    print(
        f"IG share in synovium: trained {share:.3f}, randomised {share_random:.3f}, "
        f"uniform {np.mean(uniform):.3f}; pointing game {np.nanmean(hits['trained']):.2f} vs "
        f"{np.nanmean(hits['randomised']):.2f}"
    )
    assert share >= SHARE_RATIO * share_random and share >= share_random + SHARE_GAP
    assert share > np.mean(uniform)
    assert np.nanmean(hits["trained"]) > np.nanmean(hits["randomised"])


def test_maps_of_the_trained_model_decorrelate_as_layers_are_randomised(trained):
    """Adebayo et al.'s cascading randomisation: Grad-CAM and Occlusion maps lose their rank order.

    Integrated Gradients falls less (input times gradient keeps the picture's edges, as Adebayo et
    al. found for gradient-times-input), so for it only a fall is asserted.
    """
    project, model, prep = trained
    rows = [r for r in project.store.items("SPD", "test1") if load_masks(project, r["id"])["synovium"].any()][
        :2
    ]
    options = ExplainOptions(ig_steps=16, occlusion_window=12, occlusion_stride=12)
    finals: dict[str, list[float]] = {"gradcam": [], "occlusion": [], "ig": []}
    for row in rows:
        frames = project.media.load_cache(row["media_sha256"])
        x, _ = model_input(prep, frames)
        with torch.no_grad():
            target = int(GradeProbabilities(model, prep)(x).argmax())
        for method in finals:
            steps = cascading_randomisation(model, prep, frames, method, target, options)
            correlations = [s.spearman_abs for s in steps]
            print(method, [f"{s.block.removeprefix('backbone.')}: {s.spearman_abs:.2f}" for s in steps])
            assert correlations[0] == 1.0 and len(steps) == 8
            if method == "ig":
                assert correlations[-1] < correlations[1] < 1.0
            finals[method].append(correlations[-1])
    # a fully randomised network can give a constant map (Grad-CAM's ReLU of all-negative
    # evidence): no rank order is left, so its undefined correlation counts as none
    lost = {m: np.nan_to_num(np.asarray(v, dtype=float), nan=0.0) for m, v in finals.items()}
    assert lost["gradcam"].mean() < 0.5 and lost["occlusion"].mean() < 0.5
    assert np.mean(finals["ig"]) < 0.8


def test_faithfulness_script_runs_on_the_active_model_and_says_what_to_trust(
    trained, tmp_path, monkeypatch, capsys
):
    """bench/explain_faithfulness.py on a project's active model: the README's tables and a verdict from them."""
    import importlib.util
    import json
    from pathlib import Path

    from rascore.explain.trust import trust_verdict
    from rascore.train import make_config
    from rascore.train.checkpoint import make_checkpoint
    from rascore.train.versions import publish

    project, model, prep = trained
    config = make_config("SPD", "fast", "cpu", **CONFIG)
    metrics = {"test": {"cohorts": {"test1": {"model": {"macro_auc": 0.75}}}}}
    checkpoint = make_checkpoint(
        model,
        modality="SPD",
        prep=prep,
        args={},
        metrics=metrics,
        snapshot={},
        pretrained=None,
        arch_options={"width": config.net_width, "pooling": config.pooling},
    )
    publish(project, checkpoint, lambda version: f"# SPD v{version}\n", activate="always")
    settings = project.settings
    monkeypatch.setenv("RASCORE_DATA", str(settings.data_dir))
    monkeypatch.setenv("RASCORE_DB", str(settings.db_path))
    monkeypatch.setenv("RASCORE_MODELS", str(settings.models_dir))
    path = Path(__file__).resolve().parents[1] / "bench" / "explain_faithfulness.py"
    spec = importlib.util.spec_from_file_location("explain_faithfulness", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out_json = tmp_path / "faithfulness.json"
    assert (
        bench.main(
            [
                "--limit",
                "2",
                "--random-items",
                "1",
                "--metric-items",
                "0",
                "--steps",
                "4",
                "--cohort",
                "test1",
                "--variant",
                "ig",
                "--variant",
                "ig-black",
                "--variant",
                "gradcam",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    results = json.loads(out_json.read_text())
    assert [r["modality"] for r in results] == ["SPD"] and results[0]["n"] == 2
    assert lines[0].startswith(
        "Models (the active versions): SPD v1 slim_resnet18 (test1 macro AUC 0.75; n = 2)"
    )
    rows = [line for line in lines if line.startswith("| SPD |")]
    assert len(rows) == 9  # three variants in the localisation, randomisation and Captum tables
    ig = results[0]["methods"]["ig"]
    assert rows[0].startswith(
        f"| SPD | Integrated Gradients (blurred baseline) | {ig['share']:.3f} | {ig['area']:.3f} |"
    )
    assert ig["settings"] == "s4-blur0.15" and results[0]["methods"]["ig-black"]["settings"] == "s4-black"
    assert rows[3].endswith(
        f"| 1 | 1.00 | {ig['cascade'][1]['spearman_abs']:.2f} | {ig['cascade'][-1]['spearman_abs']:.2f} |"
    )
    assert lines[-1] == f"**{trust_verdict(bench.verdict_figures(results))}**"
    assert lines[-1].startswith("**Trust ")
