"""Does a scan look like the training cohort of the model that grades it? The shift check.

When a model is trained, two references of its training cohort are kept in its checkpoint:

- **Image statistics** of each scan as decoded (``rascore.train.image_statistics``; the middle
  frame of a clip): size and aspect, the grey-level histogram, the speckle scale of tissue, the
  share of Doppler-coloured pixels, the tint of the grey pixels, and the hue shares, saturation,
  value and box of the colour. They do not depend on the network.
- **Penultimate-layer features**: the input of the grade head (``backbone.fc``, the pooled
  features every architecture ends in), taken from the same forward pass that grades the scan.

Each reference is a ``Gauge``: the statistics of the training split are standardised (training
mean and spread, the spread floored at ``IMAGE_FLOORS`` for the image statistics) and a shrunk covariance is fitted to them (scikit-learn's ``LedoitWolf``, which
stays invertible with more features than items); a scan's distance is its Mahalanobis distance
from the training mean. The threshold is set on the **validation split** (the patient-grouped
split early stopping uses, items the network never trained on): the k-th smallest validation
distance, k = ceil((1 - alpha) (n + 1)), alpha = 0.025 per gauge. For a new scan exchangeable with
the validation items (same population, unseen patients) the chance of exceeding that threshold is
(n + 1 - k) / (n + 1) <= alpha (the split-conformal argument); with few validation items k is
capped at n (the largest distance) and the rate is 1 / (n + 1), stated as it is. Training
distances are not used for the threshold: the network has seen those items and their features sit
closer to the mean than an unseen scan's would.

A scan is flagged **out of distribution** when either distance exceeds its own threshold, so the
expected false-flag rate on in-distribution scans is at most the sum of the two rates (union
bound; ``ShiftReference.false_flag_rate``). ``shift_score`` is the larger of the two ratios
distance / threshold: above 1 is flagged. The flag says the scan is unlike the training data in a
way these statistics see, so the grade was made outside what validation measured; it does not
say the grade is wrong, and an unflagged scan is not proven to be like the training data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rascore.names import SHIFT_NOT_TRAINED
from rascore.train.image_statistics import (  # noqa: F401  (re-exported: the statistics' home)
    HUES,
    IMAGE_FLOORS,
    IMAGE_STATISTICS,
    colour_statistics,
    image_statistics,
    speckle_scale,
)

ALPHA = 0.025  # per gauge: expected false-flag share on in-distribution scans
MIN_CALIBRATION = 5  # validation items needed to set a threshold at all
NOT_TRAINED = SHIFT_NOT_TRAINED


def head_input(model) -> Callable[[], np.ndarray]:
    """Start recording the input of ``model``'s grade head; returns ``stop`` -> (N, F) features of
    every forward pass since (the hook is removed). Every architecture's head is ``backbone.fc``."""
    seen: list[torch.Tensor] = []
    handle = model.backbone.fc.register_forward_pre_hook(
        lambda _module, inputs: seen.append(inputs[0].detach().float().cpu())
    )

    def stop() -> np.ndarray:
        handle.remove()
        if not seen:
            return np.zeros((0, model.backbone.fc.in_features))
        return torch.cat(seen).numpy().astype(np.float64)

    return stop


@dataclass
class Gauge:
    """Mahalanobis distance from a training reference (shrunk covariance of standardised values),
    with its threshold from the validation split."""

    name: str
    mean: np.ndarray
    scale: np.ndarray
    precision: np.ndarray
    threshold: float
    n_fit: int
    n_calibration: int
    rank: int  # the threshold is the rank-th smallest validation distance
    shrinkage: float

    @property
    def false_flag_rate(self) -> float:
        """Expected share of in-distribution scans above the threshold: (n + 1 - rank) / (n + 1)."""
        return (self.n_calibration + 1 - self.rank) / (self.n_calibration + 1)

    def distance(self, values: np.ndarray) -> np.ndarray:
        """(N, D) values -> (N,) Mahalanobis distances from the training mean."""
        z = (np.atleast_2d(np.asarray(values, dtype=np.float64)) - self.mean) / self.scale
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", z, self.precision, z), 0.0))

    @classmethod
    def fit(
        cls,
        name: str,
        train: np.ndarray,
        validation: np.ndarray,
        alpha: float = ALPHA,
        floor: Sequence[float] | None = None,
    ) -> "Gauge":
        """Fit on the training split, set the threshold on the validation split (module docstring).

        ``floor``: the smallest spread per column; by default a thousandth of the median spread,
        so that a value constant in training gets a small spread, not an infinite weight."""
        from sklearn.covariance import LedoitWolf

        train = np.asarray(train, dtype=np.float64)
        mean = train.mean(axis=0)
        spread = train.std(axis=0)
        if floor is None:
            positive = spread[spread > 0]
            floor = 1e-3 * (float(np.median(positive)) if positive.size else 1.0)
        scale = np.maximum(spread, np.asarray(floor, dtype=np.float64))
        fitted = LedoitWolf(assume_centered=True).fit((train - mean) / scale)
        gauge = cls(
            name, mean, scale, fitted.precision_, math.inf, len(train), 0, 0, float(fitted.shrinkage_)
        )
        distances = np.sort(gauge.distance(validation))
        n = len(distances)
        rank = min(n, math.ceil((1 - alpha) * (n + 1)))
        gauge.threshold, gauge.n_calibration, gauge.rank = float(distances[rank - 1]), n, rank
        return gauge

    def to_dict(self) -> dict:
        """Tensors and plain types (a checkpoint loads with ``weights_only``)."""
        return {
            "name": self.name,
            "mean": torch.from_numpy(self.mean.astype(np.float32)),
            "scale": torch.from_numpy(self.scale.astype(np.float32)),
            "precision": torch.from_numpy(self.precision.astype(np.float32)),
            "threshold": float(self.threshold),
            "n_fit": int(self.n_fit),
            "n_calibration": int(self.n_calibration),
            "rank": int(self.rank),
            "shrinkage": float(self.shrinkage),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Gauge":
        """Inverse of to_dict."""
        arrays = {k: np.asarray(data[k], dtype=np.float64) for k in ("mean", "scale", "precision")}
        return cls(
            data["name"],
            **arrays,
            threshold=float(data["threshold"]),
            n_fit=int(data["n_fit"]),
            n_calibration=int(data["n_calibration"]),
            rank=int(data["rank"]),
            shrinkage=float(data["shrinkage"]),
        )


@dataclass
class ShiftResult:
    """One scan's check: flagged or not (None: undefined, ``reason`` says why), its score."""

    out_of_distribution: bool | None
    shift_score: float | None
    threshold: float | None = 1.0
    checks: dict | None = None  # per gauge: distance, threshold, flagged
    reason: str | None = None

    def to_dict(self) -> dict:
        """Plain dict for JSON output."""
        return {
            "out_of_distribution": self.out_of_distribution,
            "shift_score": self.shift_score,
            "shift_threshold": self.threshold,
            "shift_checks": self.checks,
            "shift_reason": self.reason,
        }


def undefined(reason: str) -> ShiftResult:
    """A check that could not be made, with why."""
    return ShiftResult(None, None, None, None, reason)


def _which(rank: int, n: int) -> str:
    """'the largest' or 'the 3rd largest' (rank counted from the smallest, of n)."""
    k = n + 1 - rank
    if k == 1:
        return "the largest"
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"the {k}{suffix} largest"


RULE = (
    "flagged when the image statistics or the network's penultimate features are further from "
    "the training split (Mahalanobis, Ledoit-Wolf covariance) than the threshold set on the "
    "validation split"
)


@dataclass
class ShiftReference:
    """The training cohort's two gauges; ``check`` scores scans against them."""

    image: Gauge
    features: Gauge

    @property
    def gauges(self) -> tuple[Gauge, Gauge]:
        return self.image, self.features

    @property
    def false_flag_rate(self) -> float:
        """Upper bound on the share of in-distribution scans flagged (sum over the gauges)."""
        return min(1.0, sum(g.false_flag_rate for g in self.gauges))

    def describe(self) -> str:
        """How the threshold was set, in one sentence."""
        n = self.image.n_calibration
        parts = [
            f"{g.name}: {_which(g.rank, g.n_calibration)} of {g.n_calibration} validation distances "
            f"({g.threshold:.2f}; {g.false_flag_rate:.1%} expected above it)"
            for g in self.gauges
        ]
        return (
            f"{RULE}; thresholds from {n} validation items, " + "; ".join(parts) + ". Expected share of "
            f"in-distribution scans flagged: at most {self.false_flag_rate:.1%}"
        )

    def check(self, statistics: np.ndarray, features: np.ndarray) -> list[ShiftResult]:
        """One result per scan from (N, len(IMAGE_STATISTICS)) statistics and (N, F) features."""
        distances = {g.name: g.distance(v) for g, v in zip(self.gauges, (statistics, features))}
        out = []
        for i in range(len(distances[self.image.name])):
            checks = {
                g.name: {
                    "distance": float(distances[g.name][i]),
                    "threshold": g.threshold,
                    "flagged": bool(distances[g.name][i] > g.threshold),
                }
                for g in self.gauges
            }
            score = max(
                c["distance"] / c["threshold"] if c["threshold"] > 0 else math.inf for c in checks.values()
            )
            out.append(ShiftResult(bool(score > 1.0), float(score), 1.0, checks))
        return out

    def to_dict(self) -> dict:
        """For the checkpoint's ``shift`` entry."""
        return {
            "image": self.image.to_dict(),
            "features": self.features.to_dict(),
            "statistics": list(IMAGE_STATISTICS),
            "rule": self.describe(),
            "false_flag_rate": self.false_flag_rate,
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> "ShiftReference | str":
        """The checkpoint's reference, or the reason there is none (an older model, too few items)."""
        entry = checkpoint.get("shift")
        if not entry:
            return NOT_TRAINED
        if entry.get("reason"):
            return str(entry["reason"])
        if list(entry.get("statistics", [])) != list(IMAGE_STATISTICS):
            return "model trained with other image statistics than this version computes"
        return cls(Gauge.from_dict(entry["image"]), Gauge.from_dict(entry["features"]))


def fit_reference(
    train_statistics: np.ndarray,
    train_features: np.ndarray,
    val_statistics: np.ndarray,
    val_features: np.ndarray,
    alpha: float = ALPHA,
) -> ShiftReference | str:
    """Both gauges from the training split, thresholds from the validation split; a reason instead
    when the validation split is too small to set a threshold."""
    if len(val_statistics) < MIN_CALIBRATION or len(train_statistics) < 2:
        return (
            f"validation split too small to set a threshold ({len(val_statistics)} items; "
            f"need {MIN_CALIBRATION})"
        )
    return ShiftReference(
        Gauge.fit("image statistics", train_statistics, val_statistics, alpha, IMAGE_FLOORS),
        Gauge.fit("network features", train_features, val_features, alpha),
    )


def reference_entry(reference: ShiftReference | str) -> dict:
    """What a checkpoint stores under ``shift``: the reference, or the reason there is none."""
    return {"reason": reference} if isinstance(reference, str) else reference.to_dict()


def split_features(model, arrays, prep, device: torch.device | str = "cpu") -> np.ndarray:
    """(N, F) penultimate features of a preloaded split (as ``rascore.train.loop.evaluate`` sees it)."""
    from rascore.train.loop import evaluate

    stop = head_input(model)
    try:
        evaluate(model, arrays, prep, torch.device(device))
    finally:
        features = stop()
    return features


def build_reference(
    model, data, device: torch.device | str = "cpu", alpha: float = ALPHA
) -> ShiftReference | str:
    """The shift reference of a trained network from its ``TrainData`` (both splits, their image
    statistics), or the reason there is none."""
    if data.train_statistics is None or data.val_statistics is None:
        return "no image statistics were taken when the training data was loaded"
    if len(data.val) < MIN_CALIBRATION:
        return fit_reference(data.train_statistics, np.zeros((0, 1)), data.val_statistics, np.zeros((0, 1)))
    return fit_reference(
        data.train_statistics,
        split_features(model, data.train, data.prep, device),
        data.val_statistics,
        split_features(model, data.val, data.prep, device),
        alpha,
    )


class RecordingLoader:
    """Wraps a frame loader so that image statistics are computed as frames pass through it once."""

    def __init__(self, load_frames: Callable[[str], np.ndarray]) -> None:
        self.load_frames = load_frames
        self.statistics: dict[str, np.ndarray] = {}

    def __call__(self, sha: str) -> np.ndarray:
        frames = self.load_frames(sha)
        self.statistics[sha] = image_statistics(frames)
        return frames

    def table(self, shas: Sequence[str]) -> np.ndarray:
        """(N, len(IMAGE_STATISTICS)) statistics of these items, in this order (each loaded before)."""
        rows = [self.statistics[sha] for sha in shas]
        return np.array(rows) if rows else np.zeros((0, len(IMAGE_STATISTICS)))


def shift_summary(results: Sequence[ShiftResult]) -> dict:
    """Items checked and flagged among ``results``; the reason where none could be checked."""
    checked = [r for r in results if r.out_of_distribution is not None]
    flagged = sum(1 for r in checked if r.out_of_distribution)
    out: dict = {"n": len(results), "checked": len(checked), "flagged": flagged}
    out["share"] = flagged / len(checked) if checked else None
    if not checked and results:
        out["reason"] = next(r.reason for r in results)
    return out
