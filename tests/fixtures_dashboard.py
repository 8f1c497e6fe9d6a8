"""A results project for the dashboard, reader-study and train-page tests: items of every modality
on the test cohorts (no pixels: the figures only need labels and stored predictions), reference
labels, model versions registered through rascore.store.registry with stored predictions, and
readers' grades. Builds in well under a second.

Design: each case (patient, joint) is seen in all four modalities with the same target grade,
except case 0 of test1, whose SPD/DPD reference has PD 3 (combined EOSS 3 while SH is 1),
so the cross-modality comparison (against the joint's combined EOSS) must keep it, with grade 3
for the greyscale models too. test2 has no grade 3 at all, so every grade-3 AUC there is undefined.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from rascore import auth
from rascore.config import Settings
from rascore.project import Project
from rascore.store import accounts
from rascore.store import registry

PASSWORDS = {
    "demo-admin": "admin-password-1",
    "demo-expert": "expert-password-1",
    "demo-reader": "reader-password-1",
}
READERS = {
    "junior-1": ("reader", "junior", 0.9),
    "junior-2": ("reader", "junior", 0.7),
    "senior-1": ("reader", "senior", 0.15),
    "expert-a": ("expert", "expert", 0.0),
}
MODALITY_CODES = ("SGS", "DGS", "SPD", "DPD")


def settings_for(root: Path) -> Settings:
    """Settings of a project folder."""
    return Settings(db_path=root / "rascore.db", data_dir=root, models_dir=root / "models", device="cpu")


def noisy_probs(rng: np.random.Generator, grades: np.ndarray, skill: float) -> np.ndarray:
    """(n, 4) probabilities peaked at the true grade with strength ``skill``."""
    probs = rng.dirichlet(np.ones(4), size=grades.size)
    probs[np.arange(grades.size), grades] += skill
    return probs / probs.sum(axis=1, keepdims=True)


def register(
    project: Project,
    modality: str,
    version: int,
    activate: str,
    predictions: dict[int, list[float]],
    metrics: dict | None = None,
) -> int:
    """A model version without a checkpoint, with its stored predictions; returns its row id."""
    version_id, _ = registry.register_version(
        project.store,
        modality=modality,
        version=version,
        path=f"{modality}/v{version}/model.pt",
        card_path=None,
        preset="fast",
        architecture="fake-net",
        metrics=metrics or {"validation": {"macro_auc": 0.5 + 0.1 * version}},
        activate=activate,
    )
    registry.save_predictions(
        project.store, version_id, [(i, int(np.argmax(p)), p) for i, p in predictions.items()]
    )
    return version_id


def build_results_project(root: Path, n_cases: int = 24, seed: int = 0) -> Project:
    """The project described above; ``project.fixture`` holds the arrays behind every figure."""
    root = Path(root)
    project = Project(settings_for(root))
    store = project.store
    rng = np.random.default_rng(seed)
    for name, password in PASSWORDS.items():
        auth.add_user(store, name, name.split("-")[1], None, password, rounds=4)
    reader_ids = {
        name: accounts.add_user(store, name, role, level) for name, (role, level, _) in READERS.items()
    }
    truth: dict[str, dict[str, dict[int, int]]] = {m: {} for m in MODALITY_CODES}
    with store.transaction():
        for cohort in ("train", "test1", "test2"):
            top = 3 if cohort != "test2" else 2
            grades = np.arange(n_cases) % (top + 1)
            for case, grade in enumerate(grades.tolist()):
                for code in MODALITY_CODES:
                    sha = hashlib.sha256(f"{cohort}-{case}-{code}".encode()).hexdigest()
                    store.add_media(
                        sha, format="png", kind="image", nbytes=1, frames=1, height=8, width=8, fps=None
                    )
                    item = store.add_item(
                        media_sha256=sha,
                        modality=code,
                        cohort=cohort,
                        frames=1,
                        fps=None,
                        patient=f"pt-{cohort}-{case // 2}",
                        joint=("MCP2", "MCP3")[case % 2],
                        side="R",
                        source="demo",
                    )
                    doppler = code in ("SPD", "DPD")
                    if doppler and case == 0 and cohort == "test1":
                        sh, pd = 1, 3  # combined EOSS 3, SH 1: differs from the greyscale target
                    else:
                        sh, pd = grade, (min(grade, 1) if doppler else None)
                    store.set_reference(item, sh, pd, "agreement")
                    target = max(sh, pd) if doppler else sh
                    truth[code].setdefault(cohort, {})[item] = target
                    if cohort == "train":
                        continue
                    for name, (_, _, noise) in READERS.items():
                        read = int(np.clip(round(target + rng.normal(0, noise)), 0, 3))
                        if doppler:
                            store.add_annotation(item, reader_ids[name], read, min(read, 1))
                        else:
                            store.add_annotation(item, reader_ids[name], read)
    arrays: dict = {}
    for code, skill in zip(MODALITY_CODES, (0.6, 0.9, 0.4, 1.2)):
        preds: dict[int, list[float]] = {}
        for cohort in ("test1", "test2"):
            ids = np.array(sorted(truth[code][cohort]))
            y = np.array([truth[code][cohort][i] for i in ids])
            probs = noisy_probs(rng, y, skill)
            arrays[(code, cohort, 1)] = (ids, y, probs)
            preds.update({int(i): p.tolist() for i, p in zip(ids, probs)})
        metrics = {"validation": {"macro_auc": 0.6}}
        if code == "SPD":
            metrics["test"] = {
                "cohorts": {
                    "test1": {
                        "n": n_cases,
                        "pd_colour_rule": {
                            "auc": {
                                "0": {"auc": 0.71, "n_pos": 6},
                                "1": {"auc": None, "n_pos": 0},
                                "2": {"auc": 0.64, "n_pos": 6},
                                "3": {"auc": 0.9, "n_pos": 6},
                            },
                            "macro_auc": 0.75,
                            "accuracy": 0.5,
                        },
                        "model_pd_reference": {
                            "auc": {
                                "0": {"auc": 0.81, "n_pos": 6},
                                "1": {"auc": None, "n_pos": 0},
                                "2": {"auc": 0.74, "n_pos": 6},
                                "3": {"auc": 0.95, "n_pos": 6},
                            },
                            "macro_auc": 0.833,
                            "accuracy": 0.6,
                        },
                        "calibration": {"ece_uncorrected": 0.25, "ece_corrected": 0.11},
                        "crops": {"crop": 20, "fallback": 4, "none": 0},
                    }
                }
            }
        register(project, code, 1, "always", preds, metrics)
    # a second SGS version, not active, on test1 only
    ids, y, _ = arrays[("SGS", "test1", 1)]
    probs = noisy_probs(rng, y, 0.2)
    arrays[("SGS", "test1", 2)] = (ids, y, probs)
    register(project, "SGS", 2, "never", {int(i): p.tolist() for i, p in zip(ids, probs)})
    project.fixture = {"truth": truth, "arrays": arrays}  # type: ignore[attr-defined]
    return project
