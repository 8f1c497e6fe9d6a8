"""Grade heads: plain softmax over 4 grades, or ordinal (cumulative binary tasks 0|123, 01|23, 012|3, as RATING).

Both heads end in 4 grade probabilities that sum to 1, so every metric treats them alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rascore.names import HEAD_NAMES as HEADS

N_GRADES = 4


def check_head(head: str) -> str:
    """Validate a head name."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {', '.join(HEADS)}")
    return head


def n_outputs(head: str) -> int:
    """Logits a network needs for this head: 4 for softmax, 3 cumulative tasks for ordinal."""
    return N_GRADES if check_head(head) == "softmax" else N_GRADES - 1


def ordinal_targets(grades: torch.Tensor) -> torch.Tensor:
    """Grades (B,) -> cumulative binary targets (B, 3): [grade > 0, grade > 1, grade > 2]."""
    thresholds = torch.arange(N_GRADES - 1, device=grades.device)
    return (grades.long().unsqueeze(1) > thresholds).to(torch.float32)


def cumulative_to_grades(exceed: torch.Tensor) -> torch.Tensor:
    """P(grade > k) for k = 0..2 (B, 3) -> grade probabilities (B, 4) summing to 1.

    The exceedance probabilities are made non-increasing (running minimum) first, so every grade
    probability is >= 0 even when the three binary tasks disagree.
    """
    exceed = torch.cummin(exceed.clamp(0.0, 1.0), dim=1).values
    ones = torch.ones_like(exceed[:, :1])
    zeros = torch.zeros_like(exceed[:, :1])
    upper = torch.cat([ones, exceed], dim=1)
    lower = torch.cat([exceed, zeros], dim=1)
    return upper - lower


def grade_probabilities(logits: torch.Tensor, head: str) -> torch.Tensor:
    """Network outputs -> (B, 4) grade probabilities for either head (computed in fp32)."""
    logits = logits.float()
    if check_head(head) == "softmax":
        return torch.softmax(logits, dim=1)
    return cumulative_to_grades(torch.sigmoid(logits))


def reweight(probs: torch.Tensor, ratio: torch.Tensor | None) -> torch.Tensor:
    """(B, 4) probabilities times a per-grade ``ratio``, renormalised (rascore.train.prior); None: as is."""
    if ratio is None:
        return probs
    weighted = probs * ratio.to(device=probs.device, dtype=probs.dtype)
    return weighted / weighted.sum(dim=1, keepdim=True).clamp_min(torch.finfo(probs.dtype).tiny)


def head_loss(
    logits: torch.Tensor, grades: torch.Tensor, head: str, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Training loss: cross-entropy for softmax, mean binary cross-entropy over the ordinal tasks."""
    logits = logits.float()
    if check_head(head) == "softmax":
        return F.cross_entropy(logits, grades.long(), label_smoothing=label_smoothing)
    targets = ordinal_targets(grades)
    if label_smoothing:
        targets = targets * (1 - label_smoothing) + 0.5 * label_smoothing
    return F.binary_cross_entropy_with_logits(logits, targets)
