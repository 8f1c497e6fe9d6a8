"""Test-cohort evaluation of a model version, beside the PD-only colour rule for SPD/DPD.

Per cohort: per-grade AUC (one grade against the rest) with 95% percentile-bootstrap CIs that
resample patients (each item's patient from the store), macro AUC with the grades it averaged,
accuracy, confusion matrix, linearly and quadratically weighted kappa and top-label ECE, all from
rascore.evaluate.report. Items are loaded in chunks, so a cohort never sits in memory at once.

The model's probabilities are corrected for class-balanced sampling (rascore.train.prior) before
anything is reported; ``calibration`` gives the ECE before and after. The PD-only colour rule
grades power Doppler alone, so it is scored against the PD reference of the same items, beside
the Doppler model's figures against that PD reference (``model_pd_reference``) as well as against
its own target, the combined EOSS (``model``). ``crops`` counts per cohort how many items the
network saw through the joint crop and how many fell back to the full frame (rascore.train.roi).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rascore.evaluate.agreement import accuracy
from rascore.evaluate.calibration import expected_calibration_error
from rascore.evaluate.report import model_report
from rascore.nets.colour_fraction import ColourFractionRule
from rascore.nets.factory import GradeNet
from rascore import scale
from rascore.scale import modality as lookup_modality
from rascore.store.results import patients as item_patients
from rascore.train.checkpoint import plain
from rascore.train.data import label_rows, preload
from rascore.train.loop import evaluate
from rascore.train.preprocess import Preprocessing
from rascore.train.prior import adjust
from rascore.train.shift import (
    NOT_TRAINED,
    RecordingLoader,
    ShiftReference,
    ShiftResult,
    head_input,
    shift_summary,
    undefined,
)
from rascore.train.roi import crop_counts

TEST_COHORTS: tuple[str, ...] = scale.TEST_COHORTS


def cohort_report(
    y: np.ndarray,
    probs: np.ndarray,
    predicted: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    patients: Sequence[object] | None = None,
) -> dict:
    """All figures of one model on one cohort (``rascore.evaluate.report``): NaN -> None, each
    undefined value's reason kept beside it; intervals resample patients when ``patients``
    gives one id per item."""
    report = model_report(
        np.asarray(y, dtype=int),
        np.asarray(probs, dtype=float),
        None if predicted is None else np.asarray(predicted, dtype=int),
        n_boot=n_boot,
        seed=seed,
        patients=patients,
    )
    return plain(report.to_dict())


def predict_rows(
    model: GradeNet,
    prep: Preprocessing,
    rows: Sequence[dict],
    load_frames: Callable[[str], np.ndarray],
    device: torch.device | str = "cpu",
    chunk: int = 64,
    adjusted: bool = True,
    shift: ShiftReference | None = None,
    shift_out: list[ShiftResult] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """(N, 4) grade probabilities for store rows (corrected for the sampling prior unless not
    ``adjusted``) and how each was cropped, loading and resizing ``chunk`` items at a time.

    With a ``shift`` reference each row's shift check (rascore.train.shift), from the same
    forward pass and the same loaded frames, is appended to ``shift_out``."""
    device = torch.device(device)
    model.to(device)
    parts, crops = [], []
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        if shift is None:
            arrays = preload(part, load_frames, prep)
            parts.append(evaluate(model, arrays, prep, device, adjusted=adjusted))
        else:
            recording = RecordingLoader(load_frames)
            arrays = preload(part, recording, prep)
            stop = head_input(model)
            try:
                parts.append(evaluate(model, arrays, prep, device, adjusted=adjusted))
            finally:
                features = stop()
            statistics = recording.table([r["media_sha256"] for r in part])
            if shift_out is not None:
                shift_out += shift.check(statistics, features)
        crops += arrays.crops
    return (np.concatenate(parts) if parts else np.zeros((0, 4), np.float32)), crops


def baseline_rows(
    rows: Sequence[dict], load_frames: Callable[[str], np.ndarray], rule: ColourFractionRule | None = None
) -> tuple[np.ndarray, np.ndarray, list]:
    """PD-only colour rule per row: (PD grade scores (N, 4), PD grades, readings)."""
    rule = rule or ColourFractionRule()
    readings = [rule.read(load_frames(r["media_sha256"])) for r in rows]
    grades = np.array([r.grade for r in readings], dtype=int)
    return rule.probabilities(readings), grades, readings


@dataclass
class Evaluation:
    """Figures per cohort and the per-item predictions behind them."""

    report: dict
    # (item id, grade, probabilities, crop, shift score, out of distribution): the last two None
    # when the model has no shift reference
    predictions: list[tuple] = field(default_factory=list)


def evaluate_model(
    project,
    model: GradeNet,
    prep: Preprocessing,
    modality: str,
    cohorts: Sequence[str] = TEST_COHORTS,
    device: str = "cpu",
    n_boot: int = 1000,
    baseline: bool = True,
    seed: int = 0,
    shift: ShiftReference | str | None = None,
) -> Evaluation:
    """Score a network on test cohorts (and the PD-only colour rule on Doppler modalities).

    With a ``shift`` reference each prediction carries its shift score and out-of-distribution
    flag, and each cohort its flagged share (``shift``); a reason string instead (an older
    checkpoint, too few validation items) is kept as each cohort's reason."""
    mod = lookup_modality(modality)
    load = project.media.load_cache
    ratio = None if model.prior_ratio is None else model.prior_ratio.cpu().numpy()
    out: dict = {
        "modality": mod.code,
        "target": mod.target,
        "prior_corrected": ratio is not None,
        "cohorts": {},
    }
    predictions: list[tuple] = []
    for cohort in cohorts:
        rows = label_rows(project.store, mod.code, cohort)
        y = np.array([r["target"] for r in rows], dtype=int)
        entry: dict = {"n": len(rows), "class_counts": np.bincount(y, minlength=4).tolist()}
        if rows:
            checks: list[ShiftResult] = []
            reference = shift if isinstance(shift, ShiftReference) else None
            raw, crops = predict_rows(
                model, prep, rows, load, device, adjusted=False, shift=reference, shift_out=checks
            )
            if reference is None:
                checks = [undefined(shift or NOT_TRAINED)] * len(rows)
            entry["shift"] = shift_summary(checks)
            probs = adjust(raw, ratio)
            patients = item_patients(project.store, [int(r["item_id"]) for r in rows])
            entry["model"] = cohort_report(y, probs, n_boot=n_boot, seed=seed, patients=patients)
            entry["calibration"] = plain(
                {
                    "ece_uncorrected": expected_calibration_error(y, raw),
                    "ece_corrected": expected_calibration_error(y, probs) if ratio is not None else None,
                    "accuracy_uncorrected": accuracy(y, raw.argmax(axis=1)),
                }
            )
            entry["crops"] = crop_counts(crops)
            predictions += [
                (int(r["item_id"]), int(p.argmax()), p.tolist(), c, s.shift_score, s.out_of_distribution)
                for r, p, c, s in zip(rows, probs, crops, checks)
            ]
            if mod.doppler:
                y_pd = np.array([r["pd"] for r in rows], dtype=int)
                entry["pd_class_counts"] = np.bincount(y_pd, minlength=4).tolist()
                entry["model_pd_reference"] = cohort_report(
                    y_pd, probs, n_boot=n_boot, seed=seed, patients=patients
                )
                if baseline:
                    rule_probs, rule_grades, _ = baseline_rows(rows, load)
                    entry["pd_colour_rule"] = cohort_report(
                        y_pd, rule_probs, rule_grades, n_boot=n_boot, seed=seed, patients=patients
                    )
        out["cohorts"][cohort] = entry
    return Evaluation(plain(out), predictions)
