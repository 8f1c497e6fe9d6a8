"""Test-cohort evaluation of a model version, beside the colour-fraction baseline for SPD/DPD.

Per cohort: per-grade AUC (one grade against the rest) with 95% percentile-bootstrap CIs that
resample patients (each item's patient from the store), macro AUC with the grades it averaged,
accuracy, confusion matrix, linearly and quadratically weighted kappa and top-label ECE, all from
rascore.evaluate.report. Items are loaded in chunks, so a cohort never sits in memory at once.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rascore.evaluate.report import model_report
from rascore.nets.colour_fraction import ColourFractionRule
from rascore.nets.factory import GradeNet
from rascore.scale import modality as lookup_modality
from rascore.store.results import patients as item_patients
from rascore.train.checkpoint import plain
from rascore.train.data import label_rows, preload
from rascore.train.loop import evaluate
from rascore.train.preprocess import Preprocessing

TEST_COHORTS: tuple[str, ...] = ("test1", "test2")


def cohort_report(y: np.ndarray, probs: np.ndarray, predicted: np.ndarray | None = None,
                  n_boot: int = 1000, seed: int = 0,
                  patients: Sequence[object] | None = None) -> dict:
    """All figures of one model on one cohort (``rascore.evaluate.report``): NaN -> None, each
    undefined value's reason kept beside it; intervals resample patients when ``patients``
    gives one id per item."""
    report = model_report(np.asarray(y, dtype=int), np.asarray(probs, dtype=float),
                          None if predicted is None else np.asarray(predicted, dtype=int),
                          n_boot=n_boot, seed=seed, patients=patients)
    return plain(report.to_dict())


def predict_rows(model: GradeNet, prep: Preprocessing, rows: Sequence[dict],
                 load_frames: Callable[[str], np.ndarray], device: torch.device | str = "cpu",
                 chunk: int = 64) -> np.ndarray:
    """(N, 4) grade probabilities for store rows, loading and resizing ``chunk`` items at a time."""
    device = torch.device(device)
    model.to(device)
    parts = [evaluate(model, preload(rows[i:i + chunk], load_frames, prep), prep, device)
             for i in range(0, len(rows), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, 4), np.float32)


def baseline_rows(rows: Sequence[dict], load_frames: Callable[[str], np.ndarray],
                  rule: ColourFractionRule | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour-fraction baseline per row: (probabilities (N, 4), hard grades, fractions)."""
    rule = rule or ColourFractionRule()
    fractions = np.array([rule.fraction(load_frames(r["media_sha256"])) for r in rows], dtype=float)
    grades = np.array([rule.grade(f) for f in fractions], dtype=int)
    return rule.probabilities(fractions), grades, fractions


@dataclass
class Evaluation:
    """Figures per cohort and the per-item predictions behind them."""

    report: dict
    predictions: list[tuple[int, int, list[float]]] = field(default_factory=list)


def evaluate_model(project, model: GradeNet, prep: Preprocessing, modality: str,
                   cohorts: Sequence[str] = TEST_COHORTS, device: str = "cpu", n_boot: int = 1000,
                   baseline: bool = True, seed: int = 0) -> Evaluation:
    """Score a network on test cohorts (and the baseline on Doppler modalities)."""
    mod = lookup_modality(modality)
    load = project.media.load_cache
    out: dict = {"modality": mod.code, "target": mod.target, "cohorts": {}}
    predictions: list[tuple[int, int, list[float]]] = []
    for cohort in cohorts:
        rows = label_rows(project.store, mod.code, cohort)
        y = np.array([r["target"] for r in rows], dtype=int)
        entry: dict = {"n": len(rows), "class_counts": np.bincount(y, minlength=4).tolist()}
        if rows:
            probs = predict_rows(model, prep, rows, load, device)
            patients = item_patients(project.store, [int(r["item_id"]) for r in rows])
            entry["model"] = cohort_report(y, probs, n_boot=n_boot, seed=seed, patients=patients)
            predictions += [(int(r["item_id"]), int(p.argmax()), p.tolist()) for r, p in zip(rows, probs)]
            if baseline and mod.doppler:
                base_probs, base_grades, _ = baseline_rows(rows, load)
                entry["baseline"] = cohort_report(y, base_probs, base_grades, n_boot=n_boot, seed=seed)
        out["cohorts"][cohort] = entry
    return Evaluation(plain(out), predictions)
