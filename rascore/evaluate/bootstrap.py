"""Vectorised case bootstrap of the AUC: all resamples as a matrix of multinomial counts.

A bootstrap resample of n cases is a vector of multinomial counts (how often each case was
drawn), so B resamples are an (n, B) count matrix (one resample per column) and the AUC of every
resample is a weighted AUC. This module computes those B weighted AUCs at once, in chunks of
columns to bound memory:

* the cases of one class (the larger, "x") are sorted once by score; for each case of the other
  class ("query") we find, once, how many x cases score below it (``searchsorted``, left and
  right, so ties count one half: the midrank rule of the Mann-Whitney statistic);
* the weighted AUC of a resample is then a sum over query cases of count x (weight of x cases
  below), i.e. a prefix sum of the x counts read at precomputed places. The prefix sum is done
  in two levels (about sqrt(n) additions of contiguous (sqrt(n), B) blocks, then a short
  cumulative sum), which numpy runs far faster than one long ``cumsum`` per resample.

Exchangeability: multinomial counts with equal probabilities are exchangeable, so which row of
the count matrix stands for which case may be any fixed assignment made without looking at the
counts. Each prepared AUC lays the rows over its own sorted order (``case_of_row`` says which
case each row is). Every single AUC's resamples therefore have exactly the distribution of a
case bootstrap, while one count matrix serves every grade and every model of a cohort and no
per-grade gather of rows is needed. The joint distribution across grades or models is *not*
that of a paired case bootstrap: use these replicates for per-AUC confidence intervals only.
``WeightedAUC.gathered`` instead reads each case's count from a shared source matrix (the
per-patient counts of a patient bootstrap, ``rascore.evaluate.clusters``): then every grade and
model sees the very same resamples, which paired differences and macro averages need.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

DEFAULT_CHUNK_CELLS = 1 << 20  # about 4 MiB of int32 counts per chunk (measured best on 2 cores)
COUNT_DTYPE = np.int32  # counts and prefix sums are exact integers
INT32_EXACT_TOTAL = 60_000  # resample sizes below this keep the int32 statistic (<= W**2 / 2) exact


def multinomial_counts(rng: np.random.Generator, n: int, n_resamples: int) -> np.ndarray:
    """Draw case-bootstrap resamples of ``n`` cases as an (n, n_resamples) int32 count matrix.

    Column r holds how often each case was drawn in resample r (columns sum to ``n``). The
    resamples sit in columns so that the prefix sums below run over contiguous memory; they
    are counted row by row (cache-friendly) and transposed once.
    """
    draws = rng.integers(0, n, size=(n_resamples, n), dtype=np.int64)
    draws += (np.arange(n_resamples, dtype=np.int64) * n)[:, None]
    counts = np.bincount(draws.ravel(), minlength=n * n_resamples).reshape(n_resamples, n)
    return np.ascontiguousarray(counts.T, dtype=COUNT_DTYPE)


def count_chunks(
    n: int, n_boot: int, seed: int | np.random.Generator | None, chunk_cols: int | None = None
) -> Iterator[np.ndarray]:
    """Yield the n_boot resamples as (n, chunk) count matrices, reproducibly from ``seed``."""
    rng = np.random.default_rng(seed)
    if chunk_cols is None:
        chunk_cols = max(1, DEFAULT_CHUNK_CELLS // max(n, 1))
    done = 0
    while done < n_boot:
        cols = min(chunk_cols, n_boot - done)
        yield multinomial_counts(rng, n, cols)
        done += cols


class WeightedAUC:
    """One binary AUC prepared for fast evaluation under many count (weight) vectors.

    ``scores`` are the classifier's scores, ``positive`` a boolean mask of the positive cases.
    Calling the object with an (n, b) count matrix (one resample per column, row i standing for
    case ``case_of_row[i]``) returns the b weighted AUCs, NaN where a resample holds no
    positive or no negative case. Ties between a positive and a negative score
    count one half, as in ``sklearn.metrics.roc_auc_score``.
    """

    def __init__(self, scores: np.ndarray, positive: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=float)
        positive = np.asarray(positive, dtype=bool)
        self.n = scores.size
        self.n_pos = int(positive.sum())
        self.n_neg = self.n - self.n_pos
        if self.n_pos == 0 or self.n_neg == 0:
            raise ValueError("a weighted AUC needs at least one positive and one negative case")
        # the query class is the smaller one: fewer gathers per resample
        self.query_is_positive = self.n_pos <= self.n_neg
        query_mask = positive if self.query_is_positive else ~positive
        x_cases = np.flatnonzero(~query_mask)
        q_cases = np.flatnonzero(query_mask)
        x_order = np.argsort(scores[x_cases], kind="stable")
        x_cases = x_cases[x_order]
        x_sorted = scores[x_cases]
        q_scores = scores[q_cases]
        below = np.searchsorted(x_sorted, q_scores, side="left")
        below_or_tied = np.searchsorted(x_sorted, q_scores, side="right")
        q_order = np.argsort(below, kind="stable")  # memory locality of the gathers
        q_cases, below, below_or_tied = q_cases[q_order], below[q_order], below_or_tied[q_order]
        self.has_ties = bool(np.any(below != below_or_tied))
        self.nx, self.nq = x_cases.size, q_cases.size

        # two-level prefix sum layout: count row c < nx is slab k = c // m_len, offset
        # m = c % m_len, and stands for slot j = m * k_len + k of the sorted x cases.
        nx = self.nx
        self.k_len = max(1, int(round(math.sqrt(nx))))
        self.m_len = -(-nx // self.k_len)
        rows = np.arange(nx)
        slot_of_row = (rows % self.m_len) * self.k_len + rows // self.m_len
        slot_order = np.argsort(slot_of_row, kind="stable")
        slots = slot_of_row[slot_order]  # slots[r]: slot of the r-th smallest x case
        # which case each count row stands for (x cases by slot rank, then query cases)
        case_of_x_row = np.empty(nx, dtype=np.int64)
        case_of_x_row[slot_order] = x_cases
        self.case_of_row = np.concatenate([case_of_x_row, q_cases])
        slots_ext = np.append(slots, self.m_len * self.k_len)  # "every x case below"
        self._lo = self._gather_index(slots_ext[below])
        self._hi = self._gather_index(slots_ext[below_or_tied]) if self.has_ties else None
        self._slab_len = [int(np.clip(nx - k * self.m_len, 0, self.m_len)) for k in range(self.k_len)]

    def _gather_index(self, slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat index into the within-block prefix array and block index for each slot."""
        block, within = np.divmod(slot, self.k_len)
        return within * (self.m_len + 1) + block, block

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """Weighted AUC of each resample in an (n, b) count matrix (rows per ``case_of_row``).

        Returns b AUCs, NaN for a resample without a positive or without a negative case.
        """
        counts = np.asarray(counts)
        if counts.ndim != 2 or counts.shape[0] != self.n:
            raise ValueError(f"counts must have shape ({self.n}, b), got {counts.shape}")
        if counts.dtype.kind not in "iu" and not np.array_equal(counts, np.round(counts)):
            raise ValueError("counts must be whole numbers (resample counts)")
        counts_t = np.ascontiguousarray(counts, dtype=COUNT_DTYPE)
        return self._weighted(lambda start, stop: counts_t[start:stop], counts_t.shape[1])

    def gathered(self, source: np.ndarray, source_of_case: np.ndarray) -> np.ndarray:
        """Weighted AUC of each resample when case i's count is ``source[source_of_case[i]]``.

        ``source`` is an (n_sources, b) count matrix, e.g. the per-patient counts of a patient
        bootstrap with ``source_of_case`` each item's patient. Every prepared AUC then reads the
        same resamples (paired across grades and models), and the gather of each slab of rows
        is fused with the prefix sum, so no (n, b) matrix is built per AUC.
        """
        source = np.ascontiguousarray(source, dtype=COUNT_DTYPE)
        src = np.asarray(source_of_case, dtype=np.int64)[self.case_of_row]
        if src.size != self.n:
            raise ValueError(f"source_of_case must name a source for each of {self.n} cases")
        # gather slab by slab from the small (cache-resident) per-patient matrix: measured
        # several times faster than gathering all n rows first
        return self._weighted(lambda start, stop: source.take(src[start:stop], axis=0), source.shape[1])

    def _weighted(self, rows, b: int) -> np.ndarray:
        """The b weighted AUCs, reading count rows ``rows(start, stop)`` (per ``case_of_row``)."""
        k_len, m_len = self.k_len, self.m_len
        within = np.empty((k_len + 1, m_len + 1, b), dtype=COUNT_DTYPE)
        within[0] = 0
        within[:, m_len] = 0
        for k, length in enumerate(self._slab_len):
            start = k * m_len
            np.add(within[k, :length], rows(start, start + length), out=within[k + 1, :length])
            if length < m_len:
                within[k + 1, length:m_len] = within[k, length:m_len]
        blocks = np.zeros((m_len + 1, b), dtype=COUNT_DTYPE)
        np.cumsum(within[k_len, :m_len], axis=0, out=blocks[1:])
        flat = within.reshape(-1, b)
        flat_idx, block_idx = self._lo
        below = np.take(flat, flat_idx, axis=0)
        below += np.take(blocks, block_idx, axis=0)
        if self._hi is not None:
            flat_idx, block_idx = self._hi
            below += np.take(flat, flat_idx, axis=0)  # twice the midrank weight below
            below += np.take(blocks, block_idx, axis=0)
        q_counts = rows(self.nx, self.n)
        weight_x = blocks[m_len].astype(np.float64)
        weight_q = q_counts.sum(axis=0).astype(np.float64)
        if np.max(weight_x + weight_q) < INT32_EXACT_TOTAL:
            stat = np.einsum("ij,ij->j", q_counts, below).astype(np.float64)
        else:
            stat = np.einsum("ij,ij->j", q_counts, below, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = stat / (weight_x * weight_q * (2.0 if self._hi is not None else 1.0))
        auc = frac if self.query_is_positive else 1.0 - frac
        auc[(weight_x == 0) | (weight_q == 0)] = np.nan
        return auc
