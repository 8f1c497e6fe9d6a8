"""Correct a network's probabilities for class-balanced sampling (logit adjustment).

Training draws batches class-balanced (rascore.train.data.balanced_batches: weight 1/count, so
every grade present is drawn equally often), so the network learns towards that uniform sampling
prior. The probabilities a study reports must hold at the training prior instead:
p_adj(k) is proportional to p(k) * pi_train(k) / pi_sample(k), which is logit adjustment by
log(pi_train / pi_sample) for a softmax head and the same reweighting of the four grade
probabilities an ordinal head ends in. A grade absent from training has neither prior; its ratio
is 1 (nothing to correct). A checkpoint without a stored prior (trained before the correction)
keeps its raw probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_GRADES = 4
METHOD = "logit adjustment: p * training prior / sampling prior, renormalised"


def training_prior(counts: Sequence[int]) -> np.ndarray:
    """The training split's grade shares."""
    counts = np.asarray(counts, dtype=float)
    return counts / counts.sum() if counts.sum() else np.full(N_GRADES, 1.0 / N_GRADES)


def sampling_prior(counts: Sequence[int]) -> np.ndarray:
    """What class-balanced sampling draws: every grade present equally often, absent ones never."""
    present = np.asarray(counts, dtype=float) > 0
    return present / present.sum() if present.any() else np.full(N_GRADES, 1.0 / N_GRADES)


@dataclass(frozen=True)
class PriorCorrection:
    """The training split's class counts and the reweighting they imply."""

    train_class_counts: tuple[int, ...]

    @property
    def training(self) -> np.ndarray:
        """Training prior per grade."""
        return training_prior(self.train_class_counts)

    @property
    def sampling(self) -> np.ndarray:
        """Sampling prior per grade."""
        return sampling_prior(self.train_class_counts)

    @property
    def ratio(self) -> np.ndarray:
        """pi_train / pi_sample per grade (1 where a grade was never drawn)."""
        sampling = self.sampling
        return np.where(sampling > 0, self.training / np.where(sampling > 0, sampling, 1.0), 1.0)

    def to_dict(self) -> dict:
        """Plain types for the checkpoint and the model card."""
        return {
            "method": METHOD,
            "train_class_counts": list(self.train_class_counts),
            "training_prior": self.training.tolist(),
            "sampling_prior": self.sampling.tolist(),
            "ratio": self.ratio.tolist(),
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> "PriorCorrection | None":
        """The correction a checkpoint stores, or None for one trained before it was stored."""
        stored = checkpoint.get("prior")
        if not stored or stored.get("train_class_counts") is None:
            return None
        return cls(tuple(int(c) for c in stored["train_class_counts"]))


def adjust(probs: np.ndarray, ratio: Sequence[float] | None) -> np.ndarray:
    """(N, 4) probabilities -> the same reweighted by ``ratio`` and renormalised (None: unchanged)."""
    probs = np.asarray(probs, dtype=np.float64)
    if ratio is None:
        return probs
    weighted = probs * np.asarray(ratio, dtype=np.float64)[None, :]
    total = weighted.sum(axis=1, keepdims=True)
    return np.where(total > 0, weighted / np.where(total > 0, total, 1.0), probs)
